//! `conv2d`: a 2-D convolution over `[channels, height, width]`, as `torch.nn.Conv2d`,
//! optionally followed by an activation. On flex, without dilation or groups, it runs through
//! kiln's im2col + gemm kernel.

use burn::nn::conv::Conv2dConfig;
use burn::nn::{self, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::features::flat;
use super::size::{Size2, check_at_least_one, check_positive, conv_out, image, product};
use super::{
    Activation, Features, Layer, LayerKind, LayerModule, LayerPlan, TorchTensor, labelled, py_bool,
};
use crate::init::{self, InitConfig, LayerInit, initializer};
use crate::problems::Problems;
use kiln_kernels as kernels;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2d {
    pub filters: usize,
    pub kernel: Size2,
    #[serde(default = "one2")]
    pub stride: Size2,
    #[serde(default = "zero2")]
    pub padding: Size2,
    #[serde(default = "one2")]
    pub dilation: Size2,
    #[serde(default = "one")]
    pub groups: usize,
    #[serde(default, skip_serializing_if = "Activation::is_identity")]
    pub activation: Activation,
    #[serde(default = "yes")]
    pub bias: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<LayerInit>,
}

impl Conv2d {
    /// `filters` square `kernel`s, stride 1, `padding`, a bias and `activation`.
    pub fn new(filters: usize, kernel: usize, padding: usize, activation: Activation) -> Self {
        Conv2d {
            filters,
            kernel: Size2([kernel, kernel]),
            stride: one2(),
            padding: Size2([padding, padding]),
            dilation: one2(),
            groups: 1,
            activation,
            bias: true,
            init: None,
        }
    }
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn one2() -> Size2 {
    Size2([1, 1])
}
fn zero2() -> Size2 {
    Size2([0, 0])
}

impl LayerKind for Conv2d {
    fn check(&self, p: &mut Problems, key: &str) {
        check_at_least_one(p, self.filters, key, "filters");
        check_at_least_one(p, self.groups, key, "groups");
        check_positive(p, &self.kernel, key, "kernel");
        check_positive(p, &self.stride, key, "stride");
        check_positive(p, &self.dilation, key, "dilation");
        init::check_layer(p, &self.init, key);
    }

    fn plan(&self, input: &[usize]) -> Result<LayerPlan, String> {
        let Conv2d {
            filters,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            ..
        } = *self;
        let [channels, h, w] = image(input)?;
        if groups == 0 || channels % groups != 0 || filters % groups != 0 {
            return Err(format!(
                "has groups = {groups}, which must divide both its {channels} input channels and its {filters} filters"
            ));
        }
        let out = [0, 1].map(|d| {
            conv_out(
                [h, w][d],
                kernel.0[d],
                stride.0[d],
                padding.0[d],
                dilation.0[d],
            )
        });
        let [Some(oh), Some(ow)] = out else {
            return Err(format!(
                "with kernel {:?}, stride {:?}, padding {:?}, dilation {:?} does not fit its input {input:?}",
                kernel.0, stride.0, padding.0, dilation.0
            ));
        };
        let weights = product(&[filters, channels / groups, kernel.0[0], kernel.0[1]])?;
        Ok(LayerPlan {
            label: labelled("conv2d", self.activation),
            input: input.to_vec(),
            output: vec![filters, oh, ow],
            params: weights + if self.bias { filters } else { 0 },
            frozen: 0,
            macs: product(&[weights, oh, ow])?,
            from: Vec::new(),
        })
    }

    fn build(&self, input: &[usize], init: &InitConfig, device: &Device) -> Layer {
        let (channels, filters, groups) = (input[0], self.filters, self.groups);
        let (w, b) = init::of_layer(&self.init, init);
        let [ph, pw] = self.padding.0;
        let mut conv = Conv2dConfig::new([channels, filters], self.kernel.0)
            .with_stride(self.stride.0)
            .with_dilation(self.dilation.0)
            .with_groups(groups)
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
            .with_bias(false)
            .with_initializer(initializer(w))
            .init(device);
        let receptive = self.kernel.0[0] * self.kernel.0[1];
        let (fan_in, fan_out) = (channels / groups * receptive, filters / groups * receptive);
        conv.bias = self
            .bias
            .then(|| initializer(b).init_with([filters], Some(fan_in), Some(fan_out), device));
        Layer::Conv(Conv {
            conv,
            activation: self.activation,
        })
    }

    fn torch(&self, input: &[usize]) -> Option<String> {
        Some(format!(
            "nn.Conv2d({}, {}, kernel_size={}, stride={}, padding={}, dilation={}, groups={}, bias={})",
            input[0],
            self.filters,
            self.kernel.py(),
            self.stride.py(),
            self.padding.py(),
            self.dilation.py(),
            self.groups,
            py_bool(self.bias)
        ))
    }

    fn activation(&self) -> Activation {
        self.activation
    }
}

/// A 2-D convolution and the activation that follows it.
#[derive(burn::module::Module, Debug)]
pub struct Conv {
    conv: nn::conv::Conv2d,
    #[module(skip)]
    activation: Activation,
}

impl LayerModule for Conv {
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        (
            Features::Image(forward(&self.conv, x.image())),
            self.activation,
        )
    }
    fn traced(&self) -> bool {
        true
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor<1>)> {
        let mut out = vec![("weight", flat(self.conv.weight.val()))];
        out.extend(self.conv.bias.as_ref().map(|b| ("bias", b.val())));
        out
    }
    /// `[out, in, kh, kw]` in both.
    fn torch_tensors(&self) -> Vec<TorchTensor> {
        let mut out = vec![TorchTensor::of("weight", self.conv.weight.val())];
        out.extend(
            self.conv
                .bias
                .as_ref()
                .map(|b| TorchTensor::of("bias", b.val())),
        );
        out
    }
}

/// kiln's kernel where it covers the layer's settings and `x` is on flex, Burn's otherwise.
fn forward(conv: &nn::conv::Conv2d, x: Tensor<4>) -> Tensor<4> {
    let fits = conv.dilation == [1, 1] && conv.groups == 1 && kernels::enabled(&x);
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    };
    match padding {
        Some(padding) if fits => {
            // Without a bias (a convolution before BatchNorm, as in ResNets), a constant zero
            // one: the kernel adds it for nothing, and autodiff gives it no gradient.
            let bias = conv.bias.as_ref().map_or_else(
                || Tensor::zeros([conv.weight.dims()[0]], &x.device()),
                |b| b.val(),
            );
            kernels::conv2d(x, conv.weight.val(), bias, conv.stride, padding)
        }
        _ => conv.forward(x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_larger_than_its_input_is_refused() {
        let err = Conv2d::new(4, 30, 0, Activation::Relu)
            .plan(&[1, 28, 28])
            .unwrap_err();
        assert!(err.contains("does not fit"), "{err}");
    }

    /// A convolution without bias runs through kiln's kernel too, and computes what Burn's
    /// does, forward and backward.
    #[test]
    fn without_bias_the_kernel_agrees_with_burn() {
        let device = Device::flex().autodiff();
        let mut spec = Conv2d::new(6, 3, 1, Activation::Identity);
        spec.bias = false;
        spec.stride = Size2([2, 2]);
        let Layer::Conv(layer) = spec.build(&[3, 9, 9], &InitConfig::default(), &device) else {
            panic!("conv2d builds a Conv")
        };
        let values: Vec<f32> = (0..2 * 3 * 9 * 9)
            .map(|v| ((v * 37) % 19) as f32 / 7.0 - 1.0)
            .collect();
        let x = || {
            Tensor::<4>::from_data(
                burn::tensor::TensorData::new(values.clone(), [2, 3, 9, 9]),
                &device,
            )
            .require_grad()
        };
        let (ours, theirs) = (x(), x());
        let a = forward(&layer.conv, ours.clone());
        let b = layer.conv.forward(theirs.clone());
        let close = |a: Tensor<4>, b: Tensor<4>| {
            let diff = (a - b).abs().max().into_scalar::<f32>();
            assert!(diff < 1e-4, "{diff}");
        };
        close(a.clone().inner(), b.clone().inner());
        let (ga, gb) = ((a * 1.5).sum().backward(), (b * 1.5).sum().backward());
        close(ours.grad(&ga).unwrap(), theirs.grad(&gb).unwrap());
        let w = layer.conv.weight.val();
        close(w.grad(&ga).unwrap(), w.grad(&gb).unwrap());
    }

    #[test]
    fn groups_must_divide_channels_and_filters() {
        let mut c = Conv2d::new(6, 3, 1, Activation::Identity);
        c.groups = 4;
        assert!(c.plan(&[8, 5, 5]).unwrap_err().contains("groups = 4"));
        c.groups = 2;
        assert_eq!(c.plan(&[8, 5, 5]).unwrap().params, 6 * 4 * 9 + 6);
    }
}
