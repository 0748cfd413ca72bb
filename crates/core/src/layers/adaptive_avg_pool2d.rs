//! `adaptive_avg_pool2d`: `torch.nn.AdaptiveAvgPool2d`, averaging down to `output` =
//! [height, width].

use burn::nn::pool::{self, AdaptiveAvgPool2dConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::size::{Size2, check_positive, image};
use super::{Activation, Features, Layer, LayerKind, LayerModule, LayerPlan, TorchTensor};
use crate::init::InitConfig;
use crate::problems::Problems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveAvgPool2d {
    pub output: Size2,
}

impl LayerKind for AdaptiveAvgPool2d {
    fn check(&self, p: &mut Problems, key: &str) {
        check_positive(p, &self.output, key, "output");
    }
    fn plan(&self, input: &[usize]) -> Result<LayerPlan, String> {
        let [c, ..] = image(input)?;
        let [h, w] = self.output.0;
        Ok(LayerPlan::reshaping(
            "adaptive_avg_pool2d",
            input,
            vec![c, h, w],
        ))
    }
    fn build(&self, _: &[usize], _: &InitConfig, _: &Device) -> Layer {
        Layer::AdaptiveAvgPool(AdaptiveAvgPool2dConfig::new(self.output.0).init())
    }
    fn torch(&self, _: &[usize]) -> Option<String> {
        Some(format!("nn.AdaptiveAvgPool2d({})", self.output.py()))
    }
    fn activation(&self) -> Activation {
        Activation::Identity
    }
}

impl LayerModule for pool::AdaptiveAvgPool2d {
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        (
            Features::Image(self.forward(x.image())),
            Activation::Identity,
        )
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
