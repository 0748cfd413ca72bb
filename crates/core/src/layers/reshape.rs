//! `reshape`: gives each example a new shape with the same number of values (`[1, 28, 28]`,
//! `[784]`).

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::size::product;
use super::{Activation, Features, Layer, LayerKind, LayerPlan, Op, Transform};
use crate::init::InitConfig;
use crate::problems::Problems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reshape {
    pub shape: Vec<usize>,
}

impl LayerKind for Reshape {
    fn check(&self, p: &mut Problems, key: &str) {
        let shape = &self.shape;
        p.check(
            !shape.is_empty() && shape.len() <= 3 && shape.iter().all(|&d| d > 0),
            format!("{key}.shape"),
            format!("{shape:?} must list 1 to 3 positive sizes"),
        )
    }
    fn plan(&self, input: &[usize]) -> Result<LayerPlan, String> {
        let to = &self.shape;
        let (have, want) = (product(input)?, product(to)?);
        if have != want || to.is_empty() || to.len() > 3 {
            return Err(format!(
                "cannot reshape {input:?} ({have} values) into {to:?} ({want} values); give 1 to 3 sizes whose product is {have}"
            ));
        }
        Ok(LayerPlan::reshaping("reshape", input, to.clone()))
    }
    fn build(&self, _: &[usize], _: &InitConfig, _: &Device) -> Layer {
        Op::layer(self.clone())
    }
    /// kiln flattens each example before giving it the new shape; torch's `Unflatten` needs
    /// that flat input.
    fn torch(&self, input: &[usize]) -> Option<String> {
        let unflatten = format!("nn.Unflatten(1, {:?})", self.shape);
        Some(match input {
            [_] => unflatten,
            _ => format!("nn.Sequential(nn.Flatten(), {unflatten})"),
        })
    }
    fn activation(&self) -> Activation {
        Activation::Identity
    }
}

impl Transform for Reshape {
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        (
            Features::Flat(x.flat()).reshape(&self.shape),
            Activation::Identity,
        )
    }
    fn traced(&self) -> bool {
        false
    }
}
