//! `batchnorm` (aliases `batchnorm1d`, `batchnorm2d`): batch normalisation over features
//! (`[f]`, BatchNorm1d) or channels (`[c, h, w]`, BatchNorm2d), chosen by the input's shape,
//! optionally followed by an activation. Running statistics are used in evaluation. Training
//! batches on flex take kiln's fused kernel (with the ReLU when one follows).

use burn::nn::{self, BatchNormConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{
    Activation, Features, Layer, LayerKind, LayerModule, LayerPlan, TorchTensor, labelled,
};
use crate::init::InitConfig;
use crate::problems::Problems;
use kiln_kernels as kernels;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batchnorm {
    #[serde(default = "eps")]
    pub eps: f64,
    #[serde(default = "momentum")]
    pub momentum: f64,
    #[serde(default, skip_serializing_if = "Activation::is_identity")]
    pub activation: Activation,
}

impl Batchnorm {
    /// torch's defaults (eps 1e-5, momentum 0.1), then `activation`.
    pub fn new(activation: Activation) -> Self {
        Batchnorm {
            eps: eps(),
            momentum: momentum(),
            activation,
        }
    }
}

fn eps() -> f64 {
    1e-5
}
fn momentum() -> f64 {
    0.1
}

impl LayerKind for Batchnorm {
    fn check(&self, p: &mut Problems, key: &str) {
        p.positive(self.eps, &format!("{key}.eps"));
        p.check(
            (0.0..=1.0).contains(&self.momentum),
            format!("{key}.momentum"),
            format!("must be in [0, 1] (got {})", self.momentum),
        );
    }

    fn plan(&self, input: &[usize]) -> Result<LayerPlan, String> {
        let (features, kind) = match *input {
            [f] => (f, "batchnorm1d"),
            [c, _, _] => (c, "batchnorm2d"),
            _ => {
                return Err(format!(
                    "needs [features] or [channels, height, width], not {input:?}"
                ));
            }
        };
        Ok(LayerPlan {
            label: labelled(kind, self.activation),
            params: 2 * features,
            frozen: 2 * features,
            ..LayerPlan::reshaping(kind, input, input.to_vec())
        })
    }

    fn build(&self, input: &[usize], _: &InitConfig, device: &Device) -> Layer {
        let norm = BatchNormConfig::new(input[0])
            .with_epsilon(self.eps)
            .with_momentum(self.momentum)
            .init(device);
        Layer::Norm(Norm {
            norm,
            activation: self.activation,
        })
    }

    fn torch(&self, input: &[usize]) -> Option<String> {
        let kind = if input.len() == 3 { "2d" } else { "1d" };
        Some(format!(
            "nn.BatchNorm{kind}({}, eps={}, momentum={})",
            input[0], self.eps, self.momentum
        ))
    }

    fn activation(&self) -> Activation {
        self.activation
    }
}

/// BatchNorm (1d on `[batch, f]`, 2d on `[batch, c, h, w]`) and the activation after it.
#[derive(burn::module::Module, Debug)]
pub struct Norm {
    norm: nn::BatchNorm,
    #[module(skip)]
    activation: Activation,
}

impl LayerModule for Norm {
    fn forward(&self, x: Features) -> Features {
        let relu = self.activation == Activation::Relu;
        let fused = match &x {
            Features::Flat(t) => train(&self.norm, t, relu).map(Features::Flat),
            Features::Image(t) => train(&self.norm, t, relu).map(Features::Image),
        };
        match fused {
            Some(out) if relu => out,
            Some(out) => out.apply(self.activation),
            None => {
                let (pre, f) = self.pre_activation(x);
                pre.apply(f)
            }
        }
    }
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        let out = match x {
            Features::Flat(t) => Features::Flat(self.norm.forward(t)),
            Features::Image(t) => Features::Image(self.norm.forward(t)),
        };
        (out, self.activation)
    }
    fn traced(&self) -> bool {
        true
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor<1>)> {
        vec![
            ("weight", self.norm.gamma.val()),
            ("bias", self.norm.beta.val()),
        ]
    }
    /// `gamma`/`beta` as `weight`/`bias`, with `running_mean` and `running_var`.
    fn torch_tensors(&self) -> Vec<TorchTensor> {
        vec![
            TorchTensor::of("weight", self.norm.gamma.val()),
            TorchTensor::of("bias", self.norm.beta.val()),
            TorchTensor::of("running_mean", self.norm.running_mean.value()),
            TorchTensor::of("running_var", self.norm.running_var.value()),
        ]
    }
}

/// Training-mode BatchNorm (an autodiff device and a layer not frozen, Burn's own test),
/// followed by a ReLU when `relu`, through the kernels; the batch statistics are folded into
/// the running ones with Burn's momentum rule. `None` when the kernels do not apply: the
/// caller then runs Burn's layer.
fn train<const D: usize>(norm: &nn::BatchNorm, x: &Tensor<D>, relu: bool) -> Option<Tensor<D>> {
    let training = x.device().is_autodiff() && norm.training.is_enabled();
    if !training || !kernels::enabled(x) {
        return None;
    }
    let device = x.device();
    let (gamma, beta) = (norm.gamma.val(), norm.beta.val());
    let (y, mean, var) = kernels::batch_norm_train(x.clone(), gamma, beta, norm.epsilon, relu);
    let momentum = norm.momentum;
    let update = |running: Tensor<1>, batch: Tensor<1>| {
        (running.to_device(&device) * (1.0 - momentum) + batch.detach() * momentum).detach()
    };
    // Burn keeps each update pending until the next `value_sync`; a checkpoint folds it in
    // first (`checkpoint::network_bytes`), for Burn's own BatchNorm as for this one.
    for (running, batch) in [(&norm.running_mean, mean), (&norm.running_var, var)] {
        running.update(update(running.value_sync(), batch));
    }
    Some(y)
}
