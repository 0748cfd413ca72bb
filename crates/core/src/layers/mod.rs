//! The layer vocabulary of `[model] layers`. Each kind lives in one file of this folder: its
//! TOML spec, the checks of its values, its shape plan (output shape, parameter and
//! multiply-add counts), the Burn module it builds, that module's forward pass and its
//! PyTorch export. This file is the registry: the list of kinds ([`LayerSpec`]) and the list
//! of Burn modules they build ([`Layer`]).
//!
//! A new kind: a file implementing [`LayerKind`] (and [`LayerModule`] for a new module, or
//! [`Transform`] for a layer without parameters), one line in `kinds!` below (and one in
//! `modules!` for a new module), and its tests beside it. A kind that forgets a method does
//! not compile; no match over kinds has a catch-all arm.

mod activation;
mod adaptive_avg_pool2d;
mod avg_pool2d;
mod batchnorm;
mod block;
mod conv2d;
mod dropout;
mod features;
mod flatten;
mod global_avg_pool2d;
mod linear;
mod max_pool2d;
mod merge;
mod node;
mod reshape;
mod size;
pub mod wiring;

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::init::InitConfig;
use crate::problems::Problems;

pub use activation::{Activation, Yields};
pub use adaptive_avg_pool2d::AdaptiveAvgPool2d;
pub use avg_pool2d::AvgPool2d;
pub use batchnorm::Batchnorm;
pub use block::BlockUse;
pub use conv2d::Conv2d;
pub use dropout::Dropout;
pub use features::Features;
pub use flatten::Flatten;
pub use global_avg_pool2d::GlobalAvgPool2d;
pub use linear::Linear;
pub use max_pool2d::MaxPool2d;
pub use merge::{Add, Concat, MergeOp};
pub use node::{INPUT, Names, Node};
pub use reshape::Reshape;
pub use size::Size2;

/// What a layer kind does, from its TOML spec to its PyTorch export.
pub trait LayerKind {
    /// Adds to `p` the values serde accepted but that make no sense (`units = 0`); `key` is the
    /// layer's own (`model.layers[2]`).
    fn check(&self, p: &mut Problems, key: &str);
    /// This layer on one example of shape `input`. `Err` completes the sentence
    /// "model.layers[i] (type) ..." and says how to fix it.
    fn plan(&self, input: &[usize]) -> Result<LayerPlan, String>;
    /// The initialised Burn module, for an input [`Self::plan`] accepted.
    fn build(&self, input: &[usize], init: &InitConfig, device: &Device) -> Layer;
    /// The `torch.nn` module that computes the same (without the activation, which
    /// [`Activation::torch`] exports), or `None` for a layer that is only an activation.
    fn torch(&self, input: &[usize]) -> Option<String>;
    /// The activation that ends the layer (the identity when there is none).
    fn activation(&self) -> Activation;
}

/// What one layer turns into, for building and for the summary table.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerPlan {
    /// `linear`, `conv2d + relu`, `max_pool2d`, ...
    pub label: String,
    /// Shape of one example before this layer.
    pub input: Vec<usize>,
    /// Shape of one example after this layer.
    pub output: Vec<usize>,
    /// Trainable parameters.
    pub params: usize,
    /// Parameters that are state, not trained (BatchNorm's running mean and variance).
    pub frozen: usize,
    /// Multiply-adds per example.
    pub macs: usize,
    /// What the layer reads: set by the planner ([`crate::model::plan_layers`]) from the
    /// graph, empty in a kind's own plan.
    pub from: Vec<wiring::Source>,
}

impl LayerPlan {
    /// The layer's name in TensorBoard (histogram tags, graph nodes): `01_linear_sigmoid` for
    /// `model.layers[1]`, labelled "linear + sigmoid", numbered from 0 as the config's list,
    /// error messages and `runner inspect` number it; characters TensorBoard's tag filter
    /// would trip on become `_`.
    pub fn tag(&self, index: usize) -> String {
        let cleaned: String = self
            .label
            .replace(" + ", "_")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{index:02}_{}", cleaned.trim_end_matches('_'))
    }

    /// A layer without parameters from `input` to `output`.
    pub fn reshaping(label: impl Into<String>, input: &[usize], output: Vec<usize>) -> Self {
        LayerPlan {
            label: label.into(),
            input: input.to_vec(),
            output,
            params: 0,
            frozen: 0,
            macs: 0,
            from: Vec::new(),
        }
    }
}

/// `name`, or `name + activation` when the layer ends with one.
fn labelled(name: &str, activation: Activation) -> String {
    if activation.is_identity() {
        name.to_string()
    } else {
        format!("{name} + {activation}")
    }
}

/// A Python boolean, for the torch modules of [`LayerKind::torch`].
fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// The registry of kinds: `type` name => variant(spec type), `merging` and the [`MergeOp`] for
/// the kinds that read several layers. Generates [`LayerSpec`] (serde picks the variant by
/// `type`), its `type` names and the dispatch to [`LayerKind`].
macro_rules! kinds {
    ($( $(#[$attr:meta])* $name:literal => $variant:ident($spec:ty) $(merging $op:ident)?, )*) => {
        /// One entry of `layers = [...]`, chosen by its `type`. Names and defaults follow
        /// `torch.nn`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum LayerSpec {
            $( $(#[$attr])* #[serde(rename = $name)] $variant($spec), )*
        }

        impl LayerSpec {
            /// Every `type` name, in registry order.
            pub const TYPE_NAMES: &[&str] = &[$($name),*];

            /// The `type` name as written in TOML.
            pub fn type_name(&self) -> &'static str {
                match self { $( LayerSpec::$variant(_) => $name, )* }
            }

            /// What this kind does.
            pub fn kind(&self) -> &dyn LayerKind {
                match self { $( LayerSpec::$variant(spec) => spec, )* }
            }

            /// How this kind merges the layers it reads; `None` for kinds that read one.
            pub fn merge(&self) -> Option<MergeOp> {
                match self { $( LayerSpec::$variant(_) => merge_op!($($op)?), )* }
            }
        }
    };
}

macro_rules! merge_op {
    () => {
        None
    };
    ($op:ident) => {
        Some(MergeOp::$op)
    };
}

kinds! {
    /// Collapses every dimension but the batch into one.
    "flatten" => Flatten(Flatten),
    /// Gives each example a new shape with the same number of values.
    "reshape" => Reshape(Reshape),
    "linear" => Linear(Linear),
    "conv2d" => Conv2d(Conv2d),
    #[serde(alias = "batchnorm1d", alias = "batchnorm2d")]
    "batchnorm" => Batchnorm(Batchnorm),
    "max_pool2d" => MaxPool2d(MaxPool2d),
    "avg_pool2d" => AvgPool2d(AvgPool2d),
    "adaptive_avg_pool2d" => AdaptiveAvgPool2d(AdaptiveAvgPool2d),
    "global_avg_pool2d" => GlobalAvgPool2d(GlobalAvgPool2d),
    "dropout" => Dropout(Dropout),
    /// The sum of the layers in `from` (equal shapes).
    "add" => Add(Add) merging Add,
    /// The layers in `from` side by side along channels or features.
    "concat" => Concat(Concat) merging Concat,
    /// A use of a `[model.blocks]` block; expanded when the config is loaded.
    "block" => Block(BlockUse),
    // Stand-alone activations ([`Activation`] has their functions).
    "relu" => Relu(activation::Relu),
    "sigmoid" => Sigmoid(activation::Sigmoid),
    "tanh" => Tanh(activation::Tanh),
    "identity" => Identity(activation::Identity),
    "gelu" => Gelu(activation::Gelu),
    "softmax" => Softmax(activation::Softmax),
    "log_softmax" => LogSoftmax(activation::LogSoftmax),
    "leaky_relu" => LeakyRelu(activation::LeakyRelu),
    "elu" => Elu(activation::Elu),
}

/// What a built layer does to a batch.
pub trait LayerModule {
    /// The layer's output for `x`. By default its pre-activation output with the activation
    /// applied; layers that fuse the two into one kernel say so here.
    fn forward(&self, x: Features) -> Features {
        let (pre, f) = self.pre_activation(x);
        pre.apply(f)
    }
    /// The output before the layer's activation, and that activation.
    fn pre_activation(&self, x: Features) -> (Features, Activation);
    /// Whether histograms show this layer's outputs (layers that only move values do not).
    fn traced(&self) -> bool;
    /// The trainable parameters (not running statistics), by their PyTorch names.
    fn parameters(&self) -> Vec<(&'static str, Tensor<1>)>;
    /// Every parameter and statistic in the layout and under the names of the equivalent
    /// torch module.
    fn torch_tensors(&self) -> Vec<TorchTensor>;
}

/// One tensor in PyTorch's layout: its name within the torch module, shape and values.
pub struct TorchTensor {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl TorchTensor {
    pub fn of<const D: usize>(name: &'static str, t: Tensor<D>) -> Self {
        let shape = t.dims().to_vec();
        let values = t
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        TorchTensor {
            name,
            shape,
            values,
        }
    }
}

/// The registry of Burn modules the kinds build. The variants and their fields are the names
/// in a checkpoint's record: renaming one makes older checkpoints unreadable.
macro_rules! modules {
    ($( $variant:ident($module:ty), )*) => {
        /// One built layer.
        #[derive(Module, Debug)]
        pub enum Layer {
            $( $variant($module), )*
        }

        impl Layer {
            /// What this layer does.
            pub fn module(&self) -> &dyn LayerModule {
                match self { $( Layer::$variant(m) => m, )* }
            }
        }
    };
}

modules! {
    Dense(linear::Dense),
    Conv(conv2d::Conv),
    Norm(batchnorm::Norm),
    MaxPool(burn::nn::pool::MaxPool2d),
    AvgPool(burn::nn::pool::AvgPool2d),
    AdaptiveAvgPool(burn::nn::pool::AdaptiveAvgPool2d),
    Dropout(burn::nn::Dropout),
    Op(Op),
}

/// A layer without parameters: what it does is a [`Transform`] of its kind.
#[derive(Module, Debug)]
pub struct Op {
    #[module(skip)]
    transform: Arc<dyn Transform>,
}

impl Op {
    pub fn layer(transform: impl Transform + 'static) -> Layer {
        Layer::Op(Op {
            transform: Arc::new(transform),
        })
    }
}

/// What a layer without parameters does to a batch.
pub trait Transform: std::fmt::Debug + Send + Sync {
    /// The output before the layer's activation, and that activation.
    fn pre_activation(&self, x: Features) -> (Features, Activation);
    /// Whether histograms show this layer's outputs.
    fn traced(&self) -> bool;
}

impl LayerModule for Op {
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        self.transform.pre_activation(x)
    }
    fn traced(&self) -> bool {
        self.transform.traced()
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor<1>)> {
        vec![]
    }
    fn torch_tensors(&self) -> Vec<TorchTensor> {
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_refuses_keys_it_does_not_have() {
        for name in LayerSpec::TYPE_NAMES {
            let text = format!("type = \"{name}\"\nnot_a_key = 1\n");
            let err = toml::from_str::<LayerSpec>(&text).unwrap_err().to_string();
            assert!(err.contains("not_a_key"), "{name}: {err}");
        }
    }

    #[test]
    fn type_names_round_trip() {
        let spec: LayerSpec = toml::from_str("type = \"global_avg_pool2d\"").unwrap();
        assert_eq!(spec.type_name(), "global_avg_pool2d");
        let back = toml::to_string(&spec).unwrap();
        assert_eq!(back.trim(), "type = \"global_avg_pool2d\"");
    }
}
