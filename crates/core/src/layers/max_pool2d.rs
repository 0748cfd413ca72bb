//! `max_pool2d`: `torch.nn.MaxPool2d`; `stride` defaults to `kernel`. The 2x2, stride-2 case
//! on flex runs through kiln's kernel.

use burn::nn::PaddingConfig2d;
use burn::nn::pool::{self, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::size::{Size2, window};
use super::{Activation, Features, Layer, LayerKind, LayerModule, LayerPlan, TorchTensor};
use crate::init::InitConfig;
use crate::problems::Problems;
use kiln_kernels as kernels;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPool2d {
    pub kernel: Size2,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<Size2>,
    #[serde(default = "zero2")]
    pub padding: Size2,
}

fn zero2() -> Size2 {
    Size2([0, 0])
}

impl LayerKind for MaxPool2d {
    fn check(&self, p: &mut Problems, key: &str) {
        window::check(p, key, &self.kernel, &self.stride, &self.padding);
    }
    fn plan(&self, input: &[usize]) -> Result<LayerPlan, String> {
        let output = window::output(input, self.kernel, self.stride, self.padding)?;
        Ok(LayerPlan::reshaping("max_pool2d", input, output))
    }
    fn build(&self, _: &[usize], _: &InitConfig, _: &Device) -> Layer {
        let [h, w] = self.padding.0;
        Layer::MaxPool(
            MaxPool2dConfig::new(self.kernel.0)
                .with_strides(self.stride.unwrap_or(self.kernel).0)
                .with_padding(PaddingConfig2d::Explicit(h, w, h, w))
                .init(),
        )
    }
    fn torch(&self, _: &[usize]) -> Option<String> {
        Some(format!(
            "nn.MaxPool2d(kernel_size={}, stride={}, padding={})",
            self.kernel.py(),
            self.stride.unwrap_or(self.kernel).py(),
            self.padding.py()
        ))
    }
    fn activation(&self) -> Activation {
        Activation::Identity
    }
}

impl LayerModule for pool::MaxPool2d {
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        (
            Features::Image(forward(self, x.image())),
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

fn forward(pool: &pool::MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let two = pool.kernel_size == [2, 2] && pool.stride == [2, 2] && pool.dilation == [1, 1];
    let unpadded = matches!(
        pool.padding,
        PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
    );
    if two && unpadded && !pool.ceil_mode && kernels::enabled(&x) {
        kernels::max_pool2x2(x)
    } else {
        pool.forward(x)
    }
}
