//! Activation functions: the one [`Activation`] type that a layer's `activation` key names
//! and that the stand-alone activation layers (`{ type = "relu" }`) apply.
//!
//! A new activation: a variant of [`Activation`] with its arms below (name, parameter,
//! function, torch module), a spec struct for its stand-alone layer, and a line in the
//! registry (`layers/mod.rs`).

use std::fmt;

use burn::tensor::{Device, Tensor, activation};
use serde::{Deserialize, Serialize};

use super::{Features, Layer, LayerKind, LayerPlan, Op, Transform};
use crate::init::InitConfig;
use crate::problems::Problems;

/// An activation function with its parameters (torch's defaults when not given).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Activation {
    #[default]
    Identity,
    Relu,
    Sigmoid,
    Tanh,
    Gelu,
    /// Softmax over the features of each example.
    Softmax,
    LogSoftmax,
    /// Negative slope (0.01 by default).
    LeakyRelu(f64),
    /// Alpha (1 by default).
    Elu(f64),
}

impl Activation {
    /// Every name, for error messages.
    pub const NAMES: &[&str] = &[
        "identity",
        "relu",
        "sigmoid",
        "tanh",
        "gelu",
        "softmax",
        "log_softmax",
        "leaky_relu",
        "elu",
    ];

    pub fn is_identity(&self) -> bool {
        *self == Activation::Identity
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
            Activation::Softmax => "softmax",
            Activation::LogSoftmax => "log_softmax",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Elu(_) => "elu",
        }
    }

    /// The parameter's key in a stand-alone layer, its value and its default.
    pub fn parameter(self) -> Option<(&'static str, f64, f64)> {
        match self {
            Activation::LeakyRelu(slope) => Some(("slope", slope, LEAKY_SLOPE)),
            Activation::Elu(alpha) => Some(("alpha", alpha, ELU_ALPHA)),
            Activation::Identity
            | Activation::Relu
            | Activation::Sigmoid
            | Activation::Tanh
            | Activation::Gelu
            | Activation::Softmax
            | Activation::LogSoftmax => None,
        }
    }

    /// What a network ending in this activation outputs, for the loss and `predict`.
    pub fn yields(self) -> Yields {
        match self {
            Activation::Softmax => Yields::Probabilities,
            Activation::LogSoftmax => Yields::LogProbabilities,
            Activation::Identity
            | Activation::Relu
            | Activation::Sigmoid
            | Activation::Tanh
            | Activation::Gelu
            | Activation::LeakyRelu(_)
            | Activation::Elu(_) => Yields::Scores,
        }
    }

    /// The activation called `name`, with `parameter` or its default.
    fn named(name: &str, parameter: Option<f64>) -> Option<Activation> {
        let plain = |a| parameter.is_none().then_some(a);
        match name {
            "identity" => plain(Activation::Identity),
            "relu" => plain(Activation::Relu),
            "sigmoid" => plain(Activation::Sigmoid),
            "tanh" => plain(Activation::Tanh),
            "gelu" => plain(Activation::Gelu),
            "softmax" => plain(Activation::Softmax),
            "log_softmax" => plain(Activation::LogSoftmax),
            "leaky_relu" => Some(Activation::LeakyRelu(parameter.unwrap_or(LEAKY_SLOPE))),
            "elu" => Some(Activation::Elu(parameter.unwrap_or(ELU_ALPHA))),
            _ => None,
        }
    }

    /// `f(x)`, element-wise (softmax: over all features of each example).
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Identity => x,
            Activation::Relu => activation::relu(x),
            Activation::Sigmoid => activation::sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => activation::gelu(x),
            Activation::Softmax => softmax_features(x, false),
            Activation::LogSoftmax => softmax_features(x, true),
            Activation::LeakyRelu(slope) => activation::leaky_relu(x, slope),
            Activation::Elu(alpha) => activation::elu(x, alpha),
        }
    }

    /// The `torch.nn` module; `None` for the identity.
    pub fn torch(self) -> Option<String> {
        Some(match self {
            Activation::Identity => return None,
            Activation::Relu => "nn.ReLU()".into(),
            Activation::Sigmoid => "nn.Sigmoid()".into(),
            Activation::Tanh => "nn.Tanh()".into(),
            Activation::Gelu => "nn.GELU()".into(),
            Activation::Softmax => "nn.Softmax(dim=1)".into(),
            Activation::LogSoftmax => "nn.LogSoftmax(dim=1)".into(),
            Activation::LeakyRelu(s) => format!("nn.LeakyReLU({s})"),
            Activation::Elu(a) => format!("nn.ELU({a})"),
        })
    }
}

/// What a network's last activation makes of its outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Yields {
    /// Unnormalised scores (logits).
    Scores,
    /// Each row sums to 1.
    Probabilities,
    /// Their logarithms.
    LogProbabilities,
}

impl Yields {
    /// Class probabilities from a network output of this kind: the softmax of scores (and of
    /// log-probabilities, which gives them back), probabilities as they are.
    pub fn probabilities(self, output: Tensor<2>) -> Tensor<2> {
        match self {
            Yields::Probabilities => output,
            Yields::Scores | Yields::LogProbabilities => activation::softmax(output, 1),
        }
    }
}

const LEAKY_SLOPE: f64 = 0.01;
const ELU_ALPHA: f64 = 1.0;

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

/// `relu`, `leaky_relu(0.01)`: with its parameter, for labels and messages.
impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parameter() {
            Some((_, value, _)) => write!(f, "{}({value})", self.name()),
            None => f.write_str(self.name()),
        }
    }
}

/// A layer's `activation` key: `"relu"`, or with a parameter, `"leaky_relu(0.2)"`; the
/// parameter is written only when it is not the default.
impl Serialize for Activation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.parameter() {
            Some((_, value, default)) if value != default => {
                serializer.serialize_str(&format!("{}({value})", self.name()))
            }
            _ => serializer.serialize_str(self.name()),
        }
    }
}

impl<'de> Deserialize<'de> for Activation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Unexpected};
        let text = String::deserialize(deserializer)?;
        let (name, parameter) = match text.trim().strip_suffix(')') {
            Some(call) => {
                let (name, value) = call.split_once('(').unwrap_or((call, ""));
                let value = value.trim().parse::<f64>().map_err(|_| {
                    Error::invalid_value(
                        Unexpected::Str(&text),
                        &"a name, or a name and a number: \"leaky_relu(0.2)\"",
                    )
                })?;
                (name.trim(), Some(value))
            }
            None => (text.trim(), None),
        };
        match Activation::named(name, parameter) {
            Some(a) => Ok(a),
            None if Activation::NAMES.contains(&name) => Err(Error::invalid_value(
                Unexpected::Str(&text),
                &"a parameter only on leaky_relu and elu",
            )),
            None => Err(Error::unknown_variant(name, Activation::NAMES)),
        }
    }
}

/// A stand-alone activation layer: the spec of each `{ type = "relu" }` and so on.
trait ActivationLayer: Clone + fmt::Debug + Send + Sync + 'static {
    fn function(&self) -> Activation;
}

impl<T: ActivationLayer> LayerKind for T {
    fn check(&self, p: &mut Problems, key: &str) {
        if let Some((name, value, _)) = self.function().parameter() {
            p.check(
                value.is_finite(),
                format!("{key}.{name}"),
                "must be a finite number",
            );
        }
    }
    fn plan(&self, input: &[usize]) -> Result<LayerPlan, String> {
        Ok(LayerPlan::reshaping(
            self.function().to_string(),
            input,
            input.to_vec(),
        ))
    }
    fn build(&self, _: &[usize], _: &InitConfig, _: &Device) -> Layer {
        Op::layer(Applies(self.function()))
    }
    fn torch(&self, _: &[usize]) -> Option<String> {
        None
    }
    fn activation(&self) -> Activation {
        self.function()
    }
}

/// The built form of a stand-alone activation.
#[derive(Debug)]
struct Applies(Activation);

impl Transform for Applies {
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        (x, self.0)
    }
    fn traced(&self) -> bool {
        true
    }
}

/// Stand-alone activations without parameters.
macro_rules! plain {
    ($($name:ident),*) => {$(
        #[doc = concat!("`{ type = \"", stringify!($name), "\" }` (snake case).")]
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {}

        impl ActivationLayer for $name {
            fn function(&self) -> Activation {
                Activation::$name
            }
        }
    )*};
}

plain!(Identity, Relu, Sigmoid, Tanh, Gelu, Softmax, LogSoftmax);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakyRelu {
    #[serde(default = "leaky_slope")]
    pub slope: f64,
}

impl ActivationLayer for LeakyRelu {
    fn function(&self) -> Activation {
        Activation::LeakyRelu(self.slope)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Elu {
    #[serde(default = "elu_alpha")]
    pub alpha: f64,
}

impl ActivationLayer for Elu {
    fn function(&self) -> Activation {
        Activation::Elu(self.alpha)
    }
}

fn leaky_slope() -> f64 {
    LEAKY_SLOPE
}
fn elu_alpha() -> f64 {
    ELU_ALPHA
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Key {
        activation: Activation,
    }

    fn parse(text: &str) -> Result<Activation, String> {
        toml::from_str::<Key>(&format!("activation = \"{text}\""))
            .map(|k| k.activation)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_key_takes_a_name_or_a_name_with_its_parameter() {
        assert_eq!(parse("relu"), Ok(Activation::Relu));
        assert_eq!(parse("leaky_relu"), Ok(Activation::LeakyRelu(0.01)));
        assert_eq!(parse("leaky_relu(0.2)"), Ok(Activation::LeakyRelu(0.2)));
        assert_eq!(parse("elu( 0.5 )"), Ok(Activation::Elu(0.5)));
        assert!(parse("relu(2)").unwrap_err().contains("only on leaky_relu"));
        assert!(parse("elu(x)").unwrap_err().contains("leaky_relu(0.2)"));
        assert!(parse("rleu").unwrap_err().contains("unknown variant"));
    }

    #[test]
    fn the_key_writes_a_parameter_only_when_it_is_not_the_default() {
        let write = |a| toml::to_string(&Key { activation: a }).unwrap();
        assert_eq!(
            write(Activation::LeakyRelu(0.01)).trim(),
            "activation = \"leaky_relu\""
        );
        assert_eq!(
            write(Activation::Elu(0.5)).trim(),
            "activation = \"elu(0.5)\""
        );
        assert_eq!(parse("elu(0.5)"), Ok(Activation::Elu(0.5)));
    }

    #[test]
    fn every_name_parses_to_itself() {
        for name in Activation::NAMES {
            let a = parse(name).unwrap();
            assert_eq!(a.name(), *name);
            assert_eq!(a.torch().is_none(), a.is_identity());
        }
    }
}
