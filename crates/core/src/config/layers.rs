//! The layer vocabulary of `[model] layers`: each entry a table chosen by its `type`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::schema::LayerInit;

/// One entry of `layers = [...]`, chosen by its `type`. Names and defaults follow `torch.nn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// Collapses every dimension but the batch into one.
    Flatten {},
    /// Gives each example a new shape with the same number of values (`[1, 28, 28]`, `[784]`).
    Reshape {
        shape: Vec<usize>,
    },
    /// A fully connected layer, `y = x W + b`, optionally followed by an activation.
    Linear {
        units: usize,
        /// Input width, as `torch.nn.Linear(in_features, ...)` states it. Optional: kiln infers
        /// it, and checks it against the previous layer when given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_features: Option<usize>,
        #[serde(default, skip_serializing_if = "Activation::is_identity")]
        activation: Activation,
        #[serde(default = "yes")]
        bias: bool,
        /// Overrides `[init]` for this layer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<LayerInit>,
    },
    /// A 2-D convolution over `[channels, height, width]`, as `torch.nn.Conv2d`.
    Conv2d {
        filters: usize,
        kernel: Size2,
        #[serde(default = "one2")]
        stride: Size2,
        #[serde(default = "zero2")]
        padding: Size2,
        #[serde(default = "one2")]
        dilation: Size2,
        #[serde(default = "one")]
        groups: usize,
        #[serde(default, skip_serializing_if = "Activation::is_identity")]
        activation: Activation,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<LayerInit>,
    },
    /// Batch normalisation over features (`[f]`, BatchNorm1d) or channels (`[c, h, w]`,
    /// BatchNorm2d), chosen by the input's shape. Running statistics are used in evaluation.
    #[serde(alias = "batchnorm1d", alias = "batchnorm2d")]
    Batchnorm {
        #[serde(default = "bn_eps")]
        eps: f64,
        #[serde(default = "bn_momentum")]
        momentum: f64,
        #[serde(default, skip_serializing_if = "Activation::is_identity")]
        activation: Activation,
    },
    /// `torch.nn.MaxPool2d`; `stride` defaults to `kernel`.
    MaxPool2d {
        kernel: Size2,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<Size2>,
        #[serde(default = "zero2")]
        padding: Size2,
    },
    /// `torch.nn.AvgPool2d` (padding counted in the average, as torch's default).
    AvgPool2d {
        kernel: Size2,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<Size2>,
        #[serde(default = "zero2")]
        padding: Size2,
    },
    /// `torch.nn.AdaptiveAvgPool2d`: averages down to `output` = [height, width].
    AdaptiveAvgPool2d {
        output: Size2,
    },
    /// Zeroes each value with probability `p` in training (scaling the rest by 1/(1-p)).
    Dropout {
        p: f64,
    },
    Relu {},
    Sigmoid {},
    Tanh {},
    Identity {},
    Gelu {},
    /// Softmax over the features of each example.
    Softmax {},
    LogSoftmax {},
    LeakyRelu {
        #[serde(default = "leaky_slope")]
        slope: f64,
    },
    Elu {
        #[serde(default = "one_f")]
        alpha: f64,
    },
}

impl LayerSpec {
    /// The `type` name as written in TOML.
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerSpec::Flatten {} => "flatten",
            LayerSpec::Reshape { .. } => "reshape",
            LayerSpec::Linear { .. } => "linear",
            LayerSpec::Conv2d { .. } => "conv2d",
            LayerSpec::Batchnorm { .. } => "batchnorm",
            LayerSpec::MaxPool2d { .. } => "max_pool2d",
            LayerSpec::AvgPool2d { .. } => "avg_pool2d",
            LayerSpec::AdaptiveAvgPool2d { .. } => "adaptive_avg_pool2d",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::Relu {} => "relu",
            LayerSpec::Sigmoid {} => "sigmoid",
            LayerSpec::Tanh {} => "tanh",
            LayerSpec::Identity {} => "identity",
            LayerSpec::Gelu {} => "gelu",
            LayerSpec::Softmax {} => "softmax",
            LayerSpec::LogSoftmax {} => "log_softmax",
            LayerSpec::LeakyRelu { .. } => "leaky_relu",
            LayerSpec::Elu { .. } => "elu",
        }
    }

    /// The function a stand-alone activation layer applies.
    pub fn as_activation(&self) -> Option<ActivationFn> {
        Some(match *self {
            LayerSpec::Relu {} => ActivationFn::Relu,
            LayerSpec::Sigmoid {} => ActivationFn::Sigmoid,
            LayerSpec::Tanh {} => ActivationFn::Tanh,
            LayerSpec::Identity {} => ActivationFn::Identity,
            LayerSpec::Gelu {} => ActivationFn::Gelu,
            LayerSpec::Softmax {} => ActivationFn::Softmax,
            LayerSpec::LogSoftmax {} => ActivationFn::LogSoftmax,
            LayerSpec::LeakyRelu { slope } => ActivationFn::LeakyRelu(slope),
            LayerSpec::Elu { alpha } => ActivationFn::Elu(alpha),
            _ => return None,
        })
    }

    /// The activation that ends this layer, if any (a layer's `activation` key, or the layer
    /// itself when it is one).
    pub fn final_activation(&self) -> Option<ActivationFn> {
        match self {
            LayerSpec::Linear { activation, .. }
            | LayerSpec::Conv2d { activation, .. }
            | LayerSpec::Batchnorm { activation, .. } => Some((*activation).into()),
            other => other.as_activation(),
        }
    }
}

/// The activations a layer's `activation` key may name (with torch's default parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Identity,
    Relu,
    Sigmoid,
    Tanh,
    Gelu,
    Softmax,
    LogSoftmax,
    /// Slope 0.01.
    LeakyRelu,
    /// Alpha 1.
    Elu,
}

impl Activation {
    pub fn is_identity(&self) -> bool {
        *self == Activation::Identity
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        ActivationFn::from(*self).fmt(f)
    }
}

/// An activation with its parameters, as the network applies it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ActivationFn {
    Identity,
    Relu,
    Sigmoid,
    Tanh,
    Gelu,
    Softmax,
    LogSoftmax,
    LeakyRelu(f64),
    Elu(f64),
}

impl From<Activation> for ActivationFn {
    fn from(a: Activation) -> Self {
        match a {
            Activation::Identity => ActivationFn::Identity,
            Activation::Relu => ActivationFn::Relu,
            Activation::Sigmoid => ActivationFn::Sigmoid,
            Activation::Tanh => ActivationFn::Tanh,
            Activation::Gelu => ActivationFn::Gelu,
            Activation::Softmax => ActivationFn::Softmax,
            Activation::LogSoftmax => ActivationFn::LogSoftmax,
            Activation::LeakyRelu => ActivationFn::LeakyRelu(leaky_slope()),
            Activation::Elu => ActivationFn::Elu(one_f()),
        }
    }
}

impl fmt::Display for ActivationFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActivationFn::Identity => f.write_str("identity"),
            ActivationFn::Relu => f.write_str("relu"),
            ActivationFn::Sigmoid => f.write_str("sigmoid"),
            ActivationFn::Tanh => f.write_str("tanh"),
            ActivationFn::Gelu => f.write_str("gelu"),
            ActivationFn::Softmax => f.write_str("softmax"),
            ActivationFn::LogSoftmax => f.write_str("log_softmax"),
            ActivationFn::LeakyRelu(s) => write!(f, "leaky_relu({s})"),
            ActivationFn::Elu(a) => write!(f, "elu({a})"),
        }
    }
}

/// A 2-D size written as one number (`5`, both dimensions) or a pair (`[5, 3]`, height then
/// width), as torch accepts for `kernel_size`, `stride`, `padding`, `dilation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size2(pub [usize; 2]);

impl Serialize for Size2 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let [h, w] = self.0;
        if h == w {
            serializer.serialize_u64(h as u64)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Size2 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Size2;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size (5) or a pair [height, width] ([5, 3])")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Size2, E> {
                Ok(Size2([v as usize, v as usize]))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Size2, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("a size cannot be negative (got {v})")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Size2, A::Error> {
                let h: usize = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                let w: usize = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(1, &self))?;
                if seq.next_element::<usize>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(3, &self));
                }
                Ok(Size2([h, w]))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn one_f() -> f64 {
    1.0
}
fn one2() -> Size2 {
    Size2([1, 1])
}
fn zero2() -> Size2 {
    Size2([0, 0])
}
fn bn_eps() -> f64 {
    1e-5
}
fn bn_momentum() -> f64 {
    0.1
}
fn leaky_slope() -> f64 {
    0.01
}
