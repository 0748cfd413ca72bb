//! The network built at run time from the layer list: a Burn `Module`, so Burn's autodiff,
//! optimizers and records work on it as on any hand-written model.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation;
use burn::tensor::{Device, Tensor};

use super::init::initializer;
use super::shape::LayerPlan;
use crate::config::{Activation, InitConfig, LayerSpec, ModelConfig};

/// A sequential network.
#[derive(Module, Debug)]
pub struct Network {
    layers: Vec<Layer>,
    /// Shape of one input example, e.g. `[1, 28, 28]`.
    #[module(skip)]
    input: Vec<usize>,
}

/// One layer: parameters where it has them, an operation where it has none.
#[derive(Module, Debug)]
pub enum Layer {
    Dense(Dense),
    Op(Op),
}

/// A linear layer and the activation that follows it.
#[derive(Module, Debug)]
pub struct Dense {
    linear: Linear,
    #[module(skip)]
    activation: Activation,
}

/// A layer without parameters.
#[derive(Module, Debug)]
pub struct Op {
    #[module(skip)]
    kind: OpKind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OpKind {
    Flatten,
    Activation(Activation),
}

/// Activations between layers: flat `[batch, features]` or image `[batch, c, h, w]`.
#[derive(Debug, Clone)]
pub enum Act {
    Flat(Tensor<2>),
    Image(Tensor<4>),
}

impl Network {
    /// Builds the network `model` describes; `plans` come from [`super::shape::plan`], which
    /// has already checked that every layer fits.
    pub fn new(
        model: &ModelConfig,
        default_init: &InitConfig,
        input: &[usize],
        plans: &[LayerPlan],
        device: &Device,
    ) -> Self {
        let layers = model
            .layers
            .iter()
            .zip(plans)
            .map(|(spec, plan)| match (spec, plan.linear) {
                (
                    LayerSpec::Linear {
                        activation,
                        bias,
                        init,
                        ..
                    },
                    Some((fan_in, fan_out)),
                ) => {
                    let local = init.clone().unwrap_or_default();
                    let weight = local.weight.as_ref().unwrap_or(&default_init.weight);
                    let bias_init = local.bias.as_ref().unwrap_or(&default_init.bias);
                    let linear = Linear {
                        weight: initializer(weight).init_with(
                            [fan_in, fan_out],
                            Some(fan_in),
                            Some(fan_out),
                            device,
                        ),
                        bias: bias.then(|| {
                            initializer(bias_init).init_with(
                                [fan_out],
                                Some(fan_in),
                                Some(fan_out),
                                device,
                            )
                        }),
                    };
                    Layer::Dense(Dense {
                        linear,
                        activation: *activation,
                    })
                }
                (LayerSpec::Flatten {}, _) => Layer::Op(Op {
                    kind: OpKind::Flatten,
                }),
                (other, _) => Layer::Op(Op {
                    kind: OpKind::Activation(other.as_activation().unwrap_or_default()),
                }),
            })
            .collect();
        Network {
            layers,
            input: input.to_vec(),
        }
    }

    /// Runs a batch of flat inputs `[batch, features]` through the network; returns logits
    /// (or whatever the last layer gives) as `[batch, outputs]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [batch, _] = x.dims();
        let mut act = match *self.input.as_slice() {
            [c, h, w] => Act::Image(x.reshape([batch, c, h, w])),
            [h, w] => Act::Image(x.reshape([batch, 1, h, w])),
            _ => Act::Flat(x),
        };
        for layer in &self.layers {
            act = layer.forward(act);
        }
        act.flat()
    }
}

impl Layer {
    fn forward(&self, act: Act) -> Act {
        match self {
            Layer::Dense(d) => Act::Flat(apply(d.activation, d.linear.forward(act.flat()))),
            Layer::Op(op) => match op.kind {
                OpKind::Flatten => Act::Flat(act.flat()),
                OpKind::Activation(a) => match act {
                    Act::Flat(t) => Act::Flat(apply(a, t)),
                    Act::Image(t) => Act::Image(apply(a, t)),
                },
            },
        }
    }
}

impl Act {
    /// Collapses to `[batch, features]` (a no-op on flat activations).
    fn flat(self) -> Tensor<2> {
        match self {
            Act::Flat(t) => t,
            Act::Image(t) => t.flatten(1, 3),
        }
    }
}

fn apply<const D: usize>(activation: Activation, x: Tensor<D>) -> Tensor<D> {
    match activation {
        Activation::Identity => x,
        Activation::Relu => activation::relu(x),
        Activation::Sigmoid => activation::sigmoid(x),
        Activation::Tanh => x.tanh(),
    }
}
