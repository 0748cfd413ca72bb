//! `linear`: a fully connected layer, `y = x W + b`, optionally followed by an activation
//! (`torch.nn.Linear`). On flex, with a bias and an activation the kernel fuses, layer and
//! activation run as one kernel.

use burn::nn;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::features::flat;
use super::size::{check_at_least_one, product};
use super::{
    Activation, Features, Layer, LayerKind, LayerModule, LayerPlan, TorchTensor, labelled, py_bool,
};
use crate::init::{self, InitConfig, LayerInit, initializer};
use crate::problems::Problems;
use kiln_kernels as kernels;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Linear {
    pub units: usize,
    /// Input width, as `torch.nn.Linear(in_features, ...)` states it. Optional: kiln infers
    /// it, and checks it against the previous layer when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_features: Option<usize>,
    #[serde(default, skip_serializing_if = "Activation::is_identity")]
    pub activation: Activation,
    #[serde(default = "yes")]
    pub bias: bool,
    /// Overrides `[init]` for this layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<LayerInit>,
}

impl Linear {
    /// `units` outputs with a bias, `[init]`'s initialisation and `activation`.
    pub fn new(units: usize, activation: Activation) -> Self {
        Linear {
            units,
            in_features: None,
            activation,
            bias: true,
            init: None,
        }
    }
}

fn yes() -> bool {
    true
}

impl LayerKind for Linear {
    fn check(&self, p: &mut Problems, key: &str) {
        check_at_least_one(p, self.units, key, "units");
        init::check_layer(p, &self.init, key);
    }

    fn plan(&self, input: &[usize]) -> Result<LayerPlan, String> {
        let [width] = *input else {
            return Err(format!(
                "needs a flat input [features], but it receives {input:?}; add {{ type = \"flatten\" }} before it"
            ));
        };
        if let Some(declared) = self.in_features.filter(|&d| d != width) {
            return Err(format!(
                "declares in_features = {declared}, but the layer before it outputs [{width}]; set in_features = {width} or remove it"
            ));
        }
        let macs = product(&[width, self.units])?;
        Ok(LayerPlan {
            label: labelled("linear", self.activation),
            input: input.to_vec(),
            output: vec![self.units],
            params: macs + if self.bias { self.units } else { 0 },
            frozen: 0,
            macs,
            from: Vec::new(),
        })
    }

    fn build(&self, input: &[usize], init: &InitConfig, device: &Device) -> Layer {
        let (units, fan_in) = (self.units, input.iter().product::<usize>());
        let (w, b) = init::of_layer(&self.init, init);
        let linear = nn::Linear {
            weight: initializer(w).init_with([fan_in, units], Some(fan_in), Some(units), device),
            bias: self
                .bias
                .then(|| initializer(b).init_with([units], Some(fan_in), Some(units), device)),
        };
        Layer::Dense(Dense {
            linear,
            activation: self.activation,
        })
    }

    fn torch(&self, input: &[usize]) -> Option<String> {
        Some(format!(
            "nn.Linear({}, {}, bias={})",
            input.iter().product::<usize>(),
            self.units,
            py_bool(self.bias)
        ))
    }

    fn activation(&self) -> Activation {
        self.activation
    }
}

/// A linear layer and the activation that follows it.
#[derive(burn::module::Module, Debug)]
pub struct Dense {
    linear: nn::Linear,
    #[module(skip)]
    activation: Activation,
}

impl LayerModule for Dense {
    fn forward(&self, x: Features) -> Features {
        let x = x.flat();
        match fused(&self.linear, self.activation, &x) {
            Some(y) => Features::Flat(y),
            None => Features::Flat(self.linear.forward(x)).apply(self.activation),
        }
    }
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        (
            Features::Flat(self.linear.forward(x.flat())),
            self.activation,
        )
    }
    fn traced(&self) -> bool {
        true
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor<1>)> {
        let mut out = vec![("weight", flat(self.linear.weight.val()))];
        out.extend(self.linear.bias.as_ref().map(|b| ("bias", b.val())));
        out
    }
    /// torch keeps `Linear.weight` as `[out, in]`, Burn as `[in, out]`.
    fn torch_tensors(&self) -> Vec<TorchTensor> {
        let mut out = vec![TorchTensor::of(
            "weight",
            self.linear.weight.val().transpose(),
        )];
        out.extend(
            self.linear
                .bias
                .as_ref()
                .map(|b| TorchTensor::of("bias", b.val())),
        );
        out
    }
}

/// `linear` followed by `f` in one kernel, when the layer has a bias, `f` is one the kernel
/// fuses and `x` is on flex; `None` otherwise, for the caller to run Burn's layer.
fn fused(linear: &nn::Linear, f: Activation, x: &Tensor<2>) -> Option<Tensor<2>> {
    use kernels::dense::Epilogue;
    let epilogue = match f {
        Activation::Identity => Epilogue::Identity,
        Activation::Relu => Epilogue::Relu,
        Activation::Sigmoid => Epilogue::Sigmoid,
        Activation::Tanh => Epilogue::Tanh,
        Activation::Gelu
        | Activation::Softmax
        | Activation::LogSoftmax
        | Activation::LeakyRelu(_)
        | Activation::Elu(_) => return None,
    };
    let bias = linear.bias.as_ref().filter(|_| kernels::enabled(x))?;
    Some(kernels::dense(
        x.clone(),
        linear.weight.val(),
        bias.val(),
        epilogue,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_width_must_match_the_previous_layer() {
        let mut l = Linear::new(10, Activation::Identity);
        l.in_features = Some(700);
        let err = l.plan(&[784]).unwrap_err();
        assert!(err.contains("700") && err.contains("784"), "{err}");
        let err = l.plan(&[1, 28, 28]).unwrap_err();
        assert!(err.contains("flatten"), "{err}");
    }

    #[test]
    fn counts_weights_and_biases() {
        let plan = Linear::new(250, Activation::Relu).plan(&[784]).unwrap();
        assert_eq!((plan.params, plan.macs), (784 * 250 + 250, 784 * 250));
        assert_eq!(plan.label, "linear + relu");
    }
}
