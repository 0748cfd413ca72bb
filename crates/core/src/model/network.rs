//! The network built at run time from the layer list: a Burn `Module`, so Burn's autodiff,
//! optimizers and records work on it as on any hand-written model.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};

use super::host_layers;
use burn::nn::pool::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2d,
    MaxPool2dConfig,
};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, PaddingConfig2d};
use burn::tensor::activation;
use burn::tensor::{Device, Tensor};

use super::init::initializer;
use super::shape::LayerPlan;
use crate::config::{ActivationFn, InitConfig, InitSpec, LayerInit, LayerSpec, ModelConfig};

/// A sequential network.
#[derive(Module, Debug)]
pub struct Network {
    layers: Vec<Layer>,
    /// Shape of one input example, e.g. `[1, 28, 28]`.
    #[module(skip)]
    input: Vec<usize>,
}

/// One layer: Burn's module where it has one, followed by its activation.
#[derive(Module, Debug)]
pub enum Layer {
    Dense(Dense),
    Conv(Conv),
    Norm(Norm),
    MaxPool(MaxPool2d),
    AvgPool(AvgPool2d),
    AdaptiveAvgPool(AdaptiveAvgPool2d),
    Dropout(Dropout),
    Op(Op),
}

/// A linear layer and the activation that follows it.
#[derive(Module, Debug)]
pub struct Dense {
    linear: Linear,
    #[module(skip)]
    activation: ActivationFn,
}

/// A 2-D convolution and the activation that follows it.
#[derive(Module, Debug)]
pub struct Conv {
    conv: Conv2d,
    #[module(skip)]
    activation: ActivationFn,
}

/// BatchNorm (1d on `[batch, f]`, 2d on `[batch, c, h, w]`) and the activation after it.
#[derive(Module, Debug)]
pub struct Norm {
    norm: BatchNorm,
    #[module(skip)]
    activation: ActivationFn,
}

impl Norm {
    /// Training batches on flex take the fused kernel (with the ReLU when one follows);
    /// everything else Burn's layer and then the activation.
    fn forward(&self, act: Act) -> Act {
        let relu = self.activation == ActivationFn::Relu;
        let fused = match &act {
            Act::Flat(t) => host_layers::batch_norm_train(&self.norm, t, relu).map(Act::Flat),
            Act::Image(t) => host_layers::batch_norm_train(&self.norm, t, relu).map(Act::Image),
        };
        match (fused, act) {
            (Some(out), _) if relu => out,
            (Some(out), _) => out.apply(self.activation),
            (None, Act::Flat(t)) => Act::Flat(self.norm.forward(t)).apply(self.activation),
            (None, Act::Image(t)) => Act::Image(self.norm.forward(t)).apply(self.activation),
        }
    }
}

/// A layer without parameters.
#[derive(Module, Debug)]
pub struct Op {
    #[module(skip)]
    kind: OpKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OpKind {
    Flatten,
    Reshape(Vec<usize>),
    Activation(ActivationFn),
}

/// Activations between layers: flat `[batch, features]` or image `[batch, c, h, w]`.
#[derive(Debug, Clone)]
pub enum Act {
    Flat(Tensor<2>),
    Image(Tensor<4>),
}

impl Network {
    /// Builds the network `model` describes; `plans` come from [`super::shape::plan`], which
    /// has already checked that every layer fits its input.
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
            .map(|(spec, plan)| build(spec, plan, default_init, device))
            .collect();
        Network {
            layers,
            input: input.to_vec(),
        }
    }

    /// Runs a batch of flat inputs `[batch, features]` through the network; returns the last
    /// layer's output as `[batch, outputs]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut act = Act::Flat(x).reshape(&self.input);
        for layer in &self.layers {
            act = layer.forward(act);
        }
        act.flat()
    }
}

/// The weight and bias init of a layer: its own `init` over `[init]`.
fn inits<'a>(
    local: &'a Option<LayerInit>,
    default: &'a InitConfig,
) -> (&'a InitSpec, &'a InitSpec) {
    let local = local.as_ref();
    (
        local
            .and_then(|l| l.weight.as_ref())
            .unwrap_or(&default.weight),
        local.and_then(|l| l.bias.as_ref()).unwrap_or(&default.bias),
    )
}

fn build(spec: &LayerSpec, plan: &LayerPlan, default_init: &InitConfig, device: &Device) -> Layer {
    let op = |kind| Layer::Op(Op { kind });
    match spec {
        LayerSpec::Linear {
            units,
            activation,
            bias,
            init,
            ..
        } => {
            let fan_in = plan.input.iter().product::<usize>();
            let (w, b) = inits(init, default_init);
            let linear = Linear {
                weight: initializer(w).init_with(
                    [fan_in, *units],
                    Some(fan_in),
                    Some(*units),
                    device,
                ),
                bias: bias.then(|| {
                    initializer(b).init_with([*units], Some(fan_in), Some(*units), device)
                }),
            };
            Layer::Dense(Dense {
                linear,
                activation: (*activation).into(),
            })
        }
        LayerSpec::Conv2d {
            filters,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            activation,
            bias,
            init,
        } => {
            let channels = plan.input[0];
            let (w, b) = inits(init, default_init);
            let [ph, pw] = padding.0;
            let mut conv = Conv2dConfig::new([channels, *filters], kernel.0)
                .with_stride(stride.0)
                .with_dilation(dilation.0)
                .with_groups(*groups)
                .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                .with_bias(false)
                .with_initializer(initializer(w))
                .init(device);
            let receptive = kernel.0[0] * kernel.0[1];
            let (fan_in, fan_out) = (channels / groups * receptive, filters / groups * receptive);
            conv.bias = bias
                .then(|| initializer(b).init_with([*filters], Some(fan_in), Some(fan_out), device));
            Layer::Conv(Conv {
                conv,
                activation: (*activation).into(),
            })
        }
        LayerSpec::Batchnorm {
            eps,
            momentum,
            activation,
        } => {
            let features = plan.input[0];
            let norm = BatchNormConfig::new(features)
                .with_epsilon(*eps)
                .with_momentum(*momentum)
                .init(device);
            Layer::Norm(Norm {
                norm,
                activation: (*activation).into(),
            })
        }
        LayerSpec::MaxPool2d {
            kernel,
            stride,
            padding,
        } => Layer::MaxPool(
            MaxPool2dConfig::new(kernel.0)
                .with_strides(stride.unwrap_or(*kernel).0)
                .with_padding(pad(padding.0))
                .init(),
        ),
        LayerSpec::AvgPool2d {
            kernel,
            stride,
            padding,
        } => Layer::AvgPool(
            AvgPool2dConfig::new(kernel.0)
                .with_strides(stride.unwrap_or(*kernel).0)
                .with_padding(pad(padding.0))
                .init(),
        ),
        LayerSpec::AdaptiveAvgPool2d { output } => {
            Layer::AdaptiveAvgPool(AdaptiveAvgPool2dConfig::new(output.0).init())
        }
        LayerSpec::Dropout { p } => Layer::Dropout(DropoutConfig::new(*p).init()),
        LayerSpec::Flatten {} => op(OpKind::Flatten),
        LayerSpec::Reshape { shape } => op(OpKind::Reshape(shape.clone())),
        other => op(OpKind::Activation(
            other.as_activation().unwrap_or(ActivationFn::Identity),
        )),
    }
}

fn pad([h, w]: [usize; 2]) -> PaddingConfig2d {
    PaddingConfig2d::Explicit(h, w, h, w)
}

impl Layer {
    fn forward(&self, act: Act) -> Act {
        if let Layer::Norm(n) = self {
            return n.forward(act);
        }
        if let Layer::Dense(d) = self {
            let x = act.flat();
            return match host_layers::dense(&d.linear, d.activation, &x) {
                Some(y) => Act::Flat(y),
                None => Act::Flat(d.linear.forward(x)).apply(d.activation),
            };
        }
        let (pre, f) = self.pre_activation(act);
        pre.apply(f)
    }

    /// The layer's output before its activation, and that activation (identity for layers
    /// that have none).
    fn pre_activation(&self, act: Act) -> (Act, ActivationFn) {
        use ActivationFn::Identity;
        match self {
            Layer::Dense(d) => (Act::Flat(d.linear.forward(act.flat())), d.activation),
            Layer::Conv(c) => (
                Act::Image(host_layers::conv2d(&c.conv, act.image())),
                c.activation,
            ),
            Layer::Norm(n) => match act {
                Act::Flat(t) => (Act::Flat(n.norm.forward(t)), n.activation),
                Act::Image(t) => (Act::Image(n.norm.forward(t)), n.activation),
            },
            Layer::MaxPool(p) => (
                Act::Image(host_layers::max_pool2d(p, act.image())),
                Identity,
            ),
            Layer::AvgPool(p) => (Act::Image(p.forward(act.image())), Identity),
            Layer::AdaptiveAvgPool(p) => (Act::Image(p.forward(act.image())), Identity),
            Layer::Dropout(d) => match act {
                Act::Flat(t) => (Act::Flat(d.forward(t)), Identity),
                Act::Image(t) => (Act::Image(d.forward(t)), Identity),
            },
            Layer::Op(op) => match &op.kind {
                OpKind::Flatten => (Act::Flat(act.flat()), Identity),
                OpKind::Reshape(shape) => (Act::Flat(act.flat()).reshape(shape), Identity),
                OpKind::Activation(a) => (act, *a),
            },
        }
    }

    /// The layer's parameters (not its running statistics), named as in PyTorch.
    fn parameters(&self) -> Vec<(&'static str, Tensor<1>)> {
        let mut out = Vec::new();
        let mut push = |name, t: Option<Tensor<1>>| {
            if let Some(t) = t {
                out.push((name, t));
            }
        };
        match self {
            Layer::Dense(d) => {
                push("weight", Some(flat(d.linear.weight.val())));
                push("bias", d.linear.bias.as_ref().map(|b| b.val()));
            }
            Layer::Conv(c) => {
                push("weight", Some(flat(c.conv.weight.val())));
                push("bias", c.conv.bias.as_ref().map(|b| b.val()));
            }
            Layer::Norm(n) => {
                push("weight", Some(n.norm.gamma.val()));
                push("bias", Some(n.norm.beta.val()));
            }
            _ => {}
        }
        out
    }
}

/// Every element of `t` in one dimension.
fn flat<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    let n = t.shape().num_elements();
    t.reshape([n])
}

/// What one layer did to a batch, for histograms: its output before and after its activation
/// (`post` is `None` when the activation is the identity).
pub struct LayerTrace {
    /// Position in the layer list, from 0.
    pub index: usize,
    pub pre: Tensor<1>,
    pub post: Option<Tensor<1>>,
}

impl Network {
    /// Runs `x` through the network, keeping each layer's output before and after its
    /// activation. Layers that only move data (flatten, reshape, pooling, dropout) are left out.
    pub fn trace(&self, x: Tensor<2>) -> Vec<LayerTrace> {
        let mut act = Act::Flat(x).reshape(&self.input);
        let mut traces = Vec::new();
        for (index, layer) in self.layers.iter().enumerate() {
            let (pre, f) = layer.pre_activation(act);
            let post = pre.clone().apply(f);
            let keep = matches!(
                layer,
                Layer::Dense(_)
                    | Layer::Conv(_)
                    | Layer::Norm(_)
                    | Layer::Op(Op {
                        kind: OpKind::Activation(_)
                    })
            );
            if keep {
                traces.push(LayerTrace {
                    index,
                    pre: pre.flat_all(),
                    post: (f != ActivationFn::Identity).then(|| post.clone().flat_all()),
                });
            }
            act = post;
        }
        traces
    }

    /// Each layer's parameters as `(layer index, "weight" | "bias", values)`.
    pub fn parameters(&self) -> Vec<(usize, &'static str, Tensor<1>)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, layer)| {
                layer
                    .parameters()
                    .into_iter()
                    .map(move |(name, t)| (i, name, t))
            })
            .collect()
    }
}

/// One tensor in PyTorch's layout: its name within the torch module, shape and values.
pub struct TorchTensor {
    pub layer: usize,
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl Network {
    /// Every parameter and BatchNorm statistic in the layout and under the names the
    /// equivalent torch module uses: `Linear.weight` transposed to `[out, in]` (Burn keeps
    /// `[in, out]`); BatchNorm's `gamma`/`beta` as `weight`/`bias`, with `running_mean` and
    /// `running_var`. Conv2d weights are `[out, in, kh, kw]` in both.
    pub fn torch_tensors(&self) -> Vec<TorchTensor> {
        fn values<const D: usize>(t: Tensor<D>) -> (Vec<usize>, Vec<f32>) {
            let shape = t.dims().to_vec();
            (
                shape,
                t.into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap_or_default(),
            )
        }
        let mut out = vec![];
        let mut push =
            |layer: usize, name: &'static str, (shape, values): (Vec<usize>, Vec<f32>)| {
                out.push(TorchTensor {
                    layer,
                    name,
                    shape,
                    values,
                });
            };
        for (i, layer) in self.layers.iter().enumerate() {
            match layer {
                Layer::Dense(d) => {
                    push(i, "weight", values(d.linear.weight.val().transpose()));
                    if let Some(b) = &d.linear.bias {
                        push(i, "bias", values(b.val()));
                    }
                }
                Layer::Conv(c) => {
                    push(i, "weight", values(c.conv.weight.val()));
                    if let Some(b) = &c.conv.bias {
                        push(i, "bias", values(b.val()));
                    }
                }
                Layer::Norm(n) => {
                    push(i, "weight", values(n.norm.gamma.val()));
                    push(i, "bias", values(n.norm.beta.val()));
                    push(i, "running_mean", values(n.norm.running_mean.value()));
                    push(i, "running_var", values(n.norm.running_var.value()));
                }
                _ => {}
            }
        }
        out
    }
}

impl Act {
    fn apply(self, f: ActivationFn) -> Act {
        match self {
            Act::Flat(t) => Act::Flat(apply(f, t)),
            // Softmax over an image's features, as over a flat vector.
            Act::Image(t) => Act::Image(apply(f, t)),
        }
    }

    /// Every value of the batch in one dimension.
    fn flat_all(self) -> Tensor<1> {
        match self {
            Act::Flat(t) => flat(t),
            Act::Image(t) => flat(t),
        }
    }

    /// Collapses to `[batch, features]` (a no-op on flat activations).
    fn flat(self) -> Tensor<2> {
        match self {
            Act::Flat(t) => t,
            Act::Image(t) => t.flatten(1, 3),
        }
    }

    /// As `[batch, c, h, w]`; shape planning guarantees image layers receive images.
    fn image(self) -> Tensor<4> {
        match self {
            Act::Image(t) => t,
            Act::Flat(t) => {
                let [batch, features] = t.dims();
                t.reshape([batch, features, 1, 1])
            }
        }
    }

    /// Gives each example `shape` (1 to 3 sizes; `[h, w]` means one channel).
    fn reshape(self, shape: &[usize]) -> Act {
        let x = self.flat();
        let [batch, _] = x.dims();
        match *shape {
            [c, h, w] => Act::Image(x.reshape([batch, c, h, w])),
            [h, w] => Act::Image(x.reshape([batch, 1, h, w])),
            _ => Act::Flat(x),
        }
    }
}

fn apply<const D: usize>(f: ActivationFn, x: Tensor<D>) -> Tensor<D> {
    match f {
        ActivationFn::Identity => x,
        ActivationFn::Relu => activation::relu(x),
        ActivationFn::Sigmoid => activation::sigmoid(x),
        ActivationFn::Tanh => x.tanh(),
        ActivationFn::Gelu => activation::gelu(x),
        ActivationFn::Softmax => softmax_features(x, false),
        ActivationFn::LogSoftmax => softmax_features(x, true),
        ActivationFn::LeakyRelu(slope) => activation::leaky_relu(x, slope),
        ActivationFn::Elu(alpha) => activation::elu(x, alpha),
    }
}

/// (Log-)softmax over all features of each example (dim 1 of a flat batch).
fn softmax_features<const D: usize>(x: Tensor<D>, log: bool) -> Tensor<D> {
    let dims = x.dims();
    let flat: Tensor<2> = x.flatten(1, D - 1);
    let out = if log {
        activation::log_softmax(flat, 1)
    } else {
        activation::softmax(flat, 1)
    };
    out.reshape(dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Activation, LayerSpec, ModelConfig};
    use crate::model::plan;
    use burn::tensor::TensorData;

    #[test]
    fn batchnorm_uses_batch_statistics_in_training_and_running_ones_in_evaluation() {
        let model = ModelConfig {
            input: None,
            zoo: None,
            params: None,
            layers: vec![LayerSpec::Batchnorm {
                eps: 1e-5,
                momentum: 0.1,
                activation: Activation::Identity,
            }],
        };
        let plans = plan(&model, &[2], 2).unwrap();
        let device = Device::flex();
        let network = Network::new(
            &model,
            &InitConfig::default(),
            &[2],
            &plans,
            &device.clone().autodiff(),
        );
        let x = || {
            Tensor::<2>::from_data(
                TensorData::new(vec![4.0f32, 10.0, 6.0, 14.0], [2, 2]),
                &device,
            )
        };

        // Training: normalised by the batch's own mean and variance -> mean 0.
        let trained: Vec<f32> = network
            .forward(x().autodiff())
            .inner()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((trained[0] + trained[2]).abs() < 1e-4, "{trained:?}");
        // Evaluation: running mean moved from 0 by momentum 0.1 towards the batch mean (5, 12).
        let evaluated: Vec<f32> = network
            .valid()
            .forward(x())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let running_mean = 0.1 * 5.0;
        // Burn updates the running variance with the batch's biased variance (1 here); torch
        // uses the unbiased one (2 here). At batch 64 the two differ by 1.6%.
        let running_var = 0.9 + 0.1 * 1.0;
        let expected = (4.0 - running_mean) / (running_var + 1e-5f32).sqrt();
        assert!(
            (evaluated[0] - expected).abs() < 1e-3,
            "{evaluated:?} vs {expected}"
        );
    }
}
