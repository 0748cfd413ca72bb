//! `{ type = "block", block = "basic", repeat = 3, args = { filters = 32 } }`: a use of a
//! block declared under `[model.blocks]`. Uses exist only in the config as written: loading
//! it expands each into the block's layers ([`crate::config::blocks`]), so the network, the
//! resolved `config.toml` and `runner inspect` see plain layers.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::{Activation, Features, Layer, LayerKind, LayerPlan, Op, Transform};
use crate::init::InitConfig;
use crate::problems::Problems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockUse {
    /// The block's name in `[model.blocks]`.
    pub block: String,
    /// How many times the block follows itself (each repetition reads the one before).
    #[serde(default = "one")]
    pub repeat: usize,
    /// Values for the block's `args`; the others keep the block's defaults.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub args: toml::Table,
}

fn one() -> usize {
    1
}

impl LayerKind for BlockUse {
    fn check(&self, p: &mut Problems, key: &str) {
        p.check(
            self.repeat >= 1,
            format!("{key}.repeat"),
            "must be at least 1",
        );
    }
    fn plan(&self, _: &[usize]) -> Result<LayerPlan, String> {
        Err(format!(
            "uses block {:?}, which was not expanded; blocks are expanded when a config is loaded (kiln_core::config::blocks::expand)",
            self.block
        ))
    }
    /// Never reached: [`Self::plan`] refuses every input, and networks are built from plans.
    fn build(&self, _: &[usize], _: &InitConfig, _: &Device) -> Layer {
        Op::layer(Unexpanded)
    }
    fn torch(&self, _: &[usize]) -> Option<String> {
        None
    }
    fn activation(&self) -> Activation {
        Activation::Identity
    }
}

#[derive(Debug)]
struct Unexpanded;

impl Transform for Unexpanded {
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        (x, Activation::Identity)
    }
    fn traced(&self) -> bool {
        false
    }
}
