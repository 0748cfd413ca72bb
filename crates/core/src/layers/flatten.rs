//! `flatten`: collapses every dimension but the batch into one.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::size::product;
use super::{Activation, Features, Layer, LayerKind, LayerPlan, Op, Transform};
use crate::init::InitConfig;
use crate::problems::Problems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flatten {}

impl LayerKind for Flatten {
    fn check(&self, _: &mut Problems, _: &str) {}
    fn plan(&self, input: &[usize]) -> Result<LayerPlan, String> {
        Ok(LayerPlan::reshaping(
            "flatten",
            input,
            vec![product(input)?],
        ))
    }
    fn build(&self, _: &[usize], _: &InitConfig, _: &Device) -> Layer {
        Op::layer(self.clone())
    }
    fn torch(&self, _: &[usize]) -> Option<String> {
        Some("nn.Flatten()".to_string())
    }
    fn activation(&self) -> Activation {
        Activation::Identity
    }
}

impl Transform for Flatten {
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        (Features::Flat(x.flat()), Activation::Identity)
    }
    fn traced(&self) -> bool {
        false
    }
}
