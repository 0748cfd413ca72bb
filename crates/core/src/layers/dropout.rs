//! `dropout`: zeroes each value with probability `p` in training (scaling the rest by
//! 1/(1-p)); does nothing in evaluation.

use burn::nn::DropoutConfig;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{Activation, Features, Layer, LayerKind, LayerModule, LayerPlan, TorchTensor};
use crate::init::InitConfig;
use crate::problems::Problems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dropout {
    pub p: f64,
}

impl LayerKind for Dropout {
    fn check(&self, p: &mut Problems, key: &str) {
        p.fraction(self.p, &format!("{key}.p"))
    }
    fn plan(&self, input: &[usize]) -> Result<LayerPlan, String> {
        Ok(LayerPlan::reshaping("dropout", input, input.to_vec()))
    }
    fn build(&self, _: &[usize], _: &InitConfig, _: &Device) -> Layer {
        Layer::Dropout(DropoutConfig::new(self.p).init())
    }
    fn torch(&self, _: &[usize]) -> Option<String> {
        Some(format!("nn.Dropout(p={})", self.p))
    }
    fn activation(&self) -> Activation {
        Activation::Identity
    }
}

impl LayerModule for burn::nn::Dropout {
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        let out = match x {
            Features::Flat(t) => Features::Flat(self.forward(t)),
            Features::Image(t) => Features::Image(self.forward(t)),
        };
        (out, Activation::Identity)
    }
    fn traced(&self) -> bool {
        false
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor<1>)> {
        vec![]
    }
    fn torch_tensors(&self) -> Vec<TorchTensor> {
        vec![]
    }
}
