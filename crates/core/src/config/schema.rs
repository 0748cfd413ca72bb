//! The experiment schema: what a TOML file may say, with its defaults.
//!
//! Every struct denies unknown keys, so a typo is an error rather than a silently ignored
//! setting. Defaults follow PyTorch wherever a user would compare against PyTorch. After
//! [`crate::config::load`] every optional value that has a default is filled in, so the resolved
//! config written beside a run (`config.toml`) states everything the run used.

use std::fmt;

pub use super::blocks::BlockDef;
pub use super::controls::{EarlyStopping, OneCycle, Plateau, TimeBudget};
pub use crate::init::{FanMode, InitConfig, InitSpec, LayerInit};
pub use crate::layers::{Activation, LayerSpec, Node, Size2};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A whole experiment: one TOML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Names the run's folder under the log root: `logs/<name>/<run-id>/`.
    pub name: String,
    /// Free text, shown by `runner` and kept in the resolved config.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Seeds weight init, shuffling and dropout. Absent: drawn at random and written to the
    /// resolved config, so the run can still be repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Which Burn backend runs the network.
    #[serde(default)]
    pub backend: Backend,
    /// Which GPU, for `tch-cuda` and `cuda` (0 is the first).
    #[serde(default)]
    pub device: usize,
    pub data: DataConfig,
    pub model: ModelConfig,
    /// Default initialisation of every layer's parameters; a layer may override it.
    #[serde(default)]
    pub init: InitConfig,
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
}

/// The backends an experiment can name. Only those compiled in can start; see
/// [`crate::backend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Burn's pure-Rust CPU backend; always available.
    #[default]
    Flex,
    /// libtorch on the CPU (cargo feature `tch`).
    Tch,
    /// libtorch on a CUDA GPU (cargo feature `tch`).
    TchCuda,
    /// CubeCL on a CUDA GPU (cargo feature `cuda`).
    Cuda,
}

impl Backend {
    /// The name used in TOML.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Tch => "tch",
            Backend::TchCuda => "tch-cuda",
            Backend::Cuda => "cuda",
        }
    }
}

/// `[data]`: where the examples come from and how pixels are scaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub dataset: DatasetKind,
    /// Folder holding the dataset's files. Given, it must hold them: kiln looks nowhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// CSV only: the training file (relative paths are taken from `dir`, else the working folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_file: Option<PathBuf>,
    /// CSV only: the test file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_file: Option<PathBuf>,
    /// How raw values become network inputs: `((x - center) / scale - mean) / std`.
    #[serde(default)]
    pub normalize: Normalize,
    /// CSV and IDX only: the number of classes. Given, every label must be below it (an error
    /// names the first that is not); absent, it is the largest label plus one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Use only the first N training examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_train: Option<usize>,
    /// Use only the first N test examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_test: Option<usize>,
    /// Whether a named dataset missing from every folder may be downloaded into the cache.
    #[serde(default = "yes")]
    pub download: bool,
    /// CIFAR archives: refuse one whose SHA-256 is not the publisher's (false: a warning).
    #[serde(default = "yes")]
    pub verify: bool,
    /// image_folder only: every picture is resized to `[height, width]` (shorter side first,
    /// aspect kept, then the centre cropped: torchvision's `Resize(min) + CenterCrop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<[usize; 2]>,
    /// image_folder only: 1 (grey) or 3 (RGB); pictures are converted. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// cifar100 only: `"fine"` (100 classes, the default) or `"coarse"` (20 superclasses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_mode: Option<LabelMode>,
    /// A stratified, seeded hold-out of the training set: a fraction (`0.1`) or a count (`5000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Holdout>,
    /// `[data.augment]`: random transforms of the training batches (pictures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<Augment>,
}

/// `[data.augment]`, each transform off unless given; applied to training batches only, in
/// the order listed, drawn from (seed, global step) so that a resumed run draws the same.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// torchvision's `RandomCrop(size, padding)`: zero padding, then a random window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_crop: Option<RandomCrop>,
    /// Mirror left-right: `true` (half the pictures) or a probability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_flip: Option<Chance>,
    /// Rotate by a random angle in [-degrees, degrees] (nearest pixel, zero fill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<f64>,
    /// Shift by up to this fraction of the width and height (nearest pixel, zero fill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translate: Option<f64>,
    /// Zero a random square of the normalised picture (DeVries & Taylor 2017).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutout: Option<Cutout>,
    /// Mix each batch with a shuffled copy of itself, by a weight drawn from Beta(alpha, alpha).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixup: Option<f64>,
    /// Paste a box of a shuffled copy of the batch, its area from Beta(alpha, alpha).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutmix: Option<f64>,
}

/// `random_crop = { size = 32, padding = 4 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomCrop {
    pub size: crate::layers::Size2,
    #[serde(default)]
    pub padding: usize,
}

/// `cutout = { size = 8 }`: the side of the square.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cutout {
    pub size: usize,
}

/// `true` (probability one half), `false`, or a probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Chance {
    Half(bool),
    Probability(f64),
}

impl Chance {
    pub fn probability(self) -> f64 {
        match self {
            Chance::Half(true) => 0.5,
            Chance::Half(false) => 0.0,
            Chance::Probability(p) => p,
        }
    }
}

impl DataConfig {
    /// Channels of the dataset's pictures (1 for grey datasets and CSV).
    pub fn channels(&self) -> usize {
        match self.dataset {
            DatasetKind::Mnist | DatasetKind::FashionMnist | DatasetKind::Idx => 1,
            DatasetKind::Csv => 1,
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => 3,
            DatasetKind::ImageFolder => self.channels.unwrap_or(3),
        }
    }
}

/// CIFAR-100's two label sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelMode {
    /// 100 classes.
    #[default]
    Fine,
    /// 20 superclasses.
    Coarse,
}

/// How much of the training set is held out: a fraction of it or a number of examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Holdout {
    Count(usize),
    Fraction(f64),
}

/// The datasets kiln can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// LeCun's handwritten digits, 60,000 + 10,000 28x28 grey images, IDX files.
    Mnist,
    /// Zalando's clothing images in MNIST's format.
    FashionMnist,
    /// A CSV file per split, the label in the first column, one pixel per further column.
    Csv,
    /// Any dataset in MNIST's IDX layout (its four file names, `.gz` or not) in `[data] dir`,
    /// e.g. EMNIST or KMNIST; not checksummed, classes counted from the labels.
    Idx,
    /// Krizhevsky's 50,000 + 10,000 32x32 RGB images in 10 classes, binary version.
    Cifar10,
    /// The same size in 100 classes (or 20 superclasses), binary version.
    Cifar100,
    /// `dir/train/<class>/*` and `dir/test/<class>/*` pictures (torchvision's ImageFolder).
    #[serde(rename = "image_folder", alias = "image-folder")]
    ImageFolder,
}

impl DatasetKind {
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Csv => "csv",
            DatasetKind::Idx => "idx",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::ImageFolder => "image_folder",
        }
    }
}

/// `normalize = { ... }`: `x' = ((x - center) / scale - mean[c]) / std[c]` for channel `c`.
///
/// `{ scale = 255.0 }` gives [0, 1]; `{ mean = 0.1307, std = 0.3081 }` is torchvision's
/// `ToTensor()` + `Normalize` (scale stays 255); `{ center = 127.5, scale = 255.0 }` centres on 0;
/// `{ mean = [0.4914, 0.4822, 0.4465], std = [0.2470, 0.2435, 0.2616] }` is per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    #[serde(default)]
    pub center: f64,
    #[serde(default = "pixel_max")]
    pub scale: f64,
    #[serde(default)]
    pub mean: PerChannel,
    #[serde(default = "one_per_channel")]
    pub std: PerChannel,
}

impl Default for Normalize {
    fn default() -> Self {
        Normalize {
            center: 0.0,
            scale: pixel_max(),
            mean: PerChannel::default(),
            std: one_per_channel(),
        }
    }
}

/// One value for every channel (`0.5`), or one per channel (`[0.49, 0.48, 0.45]`).
#[derive(Debug, Clone, PartialEq)]
pub struct PerChannel(pub Vec<f64>);

impl Default for PerChannel {
    fn default() -> Self {
        PerChannel(vec![0.0])
    }
}

impl PerChannel {
    /// The value for channel `c` (the one value, when there is one).
    pub fn get(&self, c: usize) -> f64 {
        match self.0.as_slice() {
            [one] => *one,
            each => each.get(c).copied().unwrap_or(f64::NAN),
        }
    }
}

impl Serialize for PerChannel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_f64(*one),
            each => each.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for PerChannel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PerChannel;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, or a list of numbers (one per channel)")
            }
            fn visit_f64<E>(self, v: f64) -> Result<PerChannel, E> {
                Ok(PerChannel(vec![v]))
            }
            fn visit_i64<E>(self, v: i64) -> Result<PerChannel, E> {
                Ok(PerChannel(vec![v as f64]))
            }
            fn visit_u64<E>(self, v: u64) -> Result<PerChannel, E> {
                Ok(PerChannel(vec![v as f64]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<PerChannel, A::Error> {
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<f64>()? {
                    values.push(v);
                }
                if values.is_empty() {
                    return Err(serde::de::Error::invalid_length(0, &self));
                }
                Ok(PerChannel(values))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `[model]`: the input shape and the layers, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Shape of one example, without the batch dimension (`[1, 28, 28]` for MNIST). Absent: the
    /// dataset's own shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Vec<usize>>,
    /// The layers, in order; each reads the one before it unless its `from` says otherwise.
    /// Empty when `zoo` names the architecture instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Node>,
    /// Blocks of layers declared once and used by `{ type = "block", block = "name" }`;
    /// expanded into `layers` when the config is loaded, so the resolved config has none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub blocks: std::collections::BTreeMap<String, BlockDef>,
    /// A named architecture of kiln-model-zoo (`mlp`, `cnn_bn`, `lenet5`, `ann5`), expanded into
    /// `layers` when the config is loaded; the resolved config lists the layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoo: Option<String>,
    /// The zoo architecture's parameters, e.g. `{ hidden = [250, 200], activation = "relu" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<toml::Table>,
}

impl ModelConfig {
    /// What the network outputs, by its last layer's activation (scores without layers).
    pub fn yields(&self) -> crate::layers::Yields {
        self.layers
            .last()
            .map_or(crate::layers::Yields::Scores, |l| {
                l.layer.kind().activation().yields()
            })
    }
}

/// `[optimizer]`, chosen by `kind`. Defaults are `torch.optim`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// `torch.optim.SGD`.
    Sgd {
        #[serde(default = "lr_sgd")]
        lr: f64,
        #[serde(default)]
        momentum: f64,
        #[serde(default)]
        dampening: f64,
        #[serde(default)]
        nesterov: bool,
        /// L2 penalty added to the gradient.
        #[serde(default)]
        weight_decay: f64,
    },
    /// `torch.optim.Adam`; `weight_decay` is L2 added to the gradient.
    Adam {
        #[serde(default = "lr_adam")]
        lr: f64,
        #[serde(default = "betas")]
        betas: [f64; 2],
        #[serde(default = "eps")]
        eps: f64,
        #[serde(default)]
        weight_decay: f64,
        #[serde(default)]
        amsgrad: bool,
    },
    /// `torch.optim.AdamW`; `weight_decay` is decoupled from the gradient.
    Adamw {
        #[serde(default = "lr_adam")]
        lr: f64,
        #[serde(default = "betas")]
        betas: [f64; 2],
        #[serde(default = "eps")]
        eps: f64,
        #[serde(default = "adamw_decay")]
        weight_decay: f64,
        #[serde(default)]
        amsgrad: bool,
    },
    /// `torch.optim.RMSprop`.
    Rmsprop {
        #[serde(default = "lr_rmsprop")]
        lr: f64,
        #[serde(default = "rms_alpha")]
        alpha: f64,
        #[serde(default = "eps")]
        eps: f64,
        #[serde(default)]
        momentum: f64,
        #[serde(default)]
        centered: bool,
        #[serde(default)]
        weight_decay: f64,
    },
}

impl OptimizerConfig {
    /// The base learning rate, before any schedule.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::Adamw { lr, .. }
            | OptimizerConfig::Rmsprop { lr, .. } => *lr,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Adam { .. } => "adam",
            OptimizerConfig::Adamw { .. } => "adamw",
            OptimizerConfig::Rmsprop { .. } => "rmsprop",
        }
    }
}

/// `[schedule]`: how the learning rate changes during the run: a kind, and an optional linear
/// warmup in front of any kind but `onecycle` (which has its own).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScheduleConfig {
    #[serde(flatten)]
    pub kind: ScheduleKind,
    /// Warm up over the first N optimizer steps: the rate is multiplied by a factor going
    /// linearly from `warmup_start` to 1 (torch's `LinearLR`, chained with the kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_steps: Option<usize>,
    /// The same over the first N epochs' steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_epochs: Option<usize>,
    /// The warmup's first factor (the first step trains at `warmup_start * lr`); 0 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_start: Option<f64>,
}

impl ScheduleConfig {
    /// A schedule of `kind` without warmup.
    pub fn of(kind: ScheduleKind) -> Self {
        ScheduleConfig {
            kind,
            ..ScheduleConfig::default()
        }
    }
}

/// The kinds of `[schedule]`. The epoch kinds are stepped once per epoch, as
/// `torch.optim.lr_scheduler` is in the usual loop; `onecycle` and any warmup change the rate
/// every optimizer step. `constant` is written `{}` for the reason [`InitSpec`]'s variants are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleKind {
    Constant {},
    /// Multiply by `gamma` every `step_size` epochs (`StepLR`).
    Step {
        step_size: usize,
        #[serde(default = "step_gamma")]
        gamma: f64,
    },
    /// Multiply by `gamma` every epoch (`ExponentialLR`).
    Exponential {
        gamma: f64,
    },
    /// Cosine from `lr` down to `eta_min` over `t_max` epochs (`CosineAnnealingLR`);
    /// `t_max` defaults to the number of epochs.
    Cosine {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        t_max: Option<usize>,
        #[serde(default)]
        eta_min: f64,
    },
    /// Lower the rate when a metric stops improving (`ReduceLROnPlateau`), after each epoch.
    Plateau(super::controls::Plateau),
    /// Up then down over the whole run, per step (`OneCycleLR`).
    Onecycle(super::controls::OneCycle),
}

impl Default for ScheduleKind {
    fn default() -> Self {
        ScheduleKind::Constant {}
    }
}

impl ScheduleKind {
    pub fn name(&self) -> &'static str {
        match self {
            ScheduleKind::Constant {} => "constant",
            ScheduleKind::Step { .. } => "step",
            ScheduleKind::Exponential { .. } => "exponential",
            ScheduleKind::Cosine { .. } => "cosine",
            ScheduleKind::Plateau(_) => "plateau",
            ScheduleKind::Onecycle(_) => "onecycle",
        }
    }
}

/// `[train]`: the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default = "epochs")]
    pub epochs: usize,
    #[serde(default)]
    pub batch_size: BatchSize,
    /// Reshuffle the training set every epoch.
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Drop the last batch of an epoch when it is smaller than `batch_size`.
    #[serde(default)]
    pub drop_last: bool,
    /// Batch size of evaluation on the test set (no effect on results, only on speed and memory).
    #[serde(default = "eval_batch")]
    pub eval_batch_size: usize,
    /// What is minimised; see [`Loss`].
    #[serde(default)]
    pub loss: Loss,
    /// Spreads this much of each target's probability evenly over all classes (torch's
    /// `label_smoothing`).
    #[serde(default)]
    pub label_smoothing: f64,
    /// Subnormal floats are flushed to zero and read as zero on every thread that computes
    /// (FTZ and DAZ), as TensorFlow's compute threads and `torch.set_flush_denormal(True)` do:
    /// on Intel cores each operation on a subnormal takes a microcode assist. `false` keeps
    /// IEEE gradual underflow. See [`kiln_kernels::denormals`].
    #[serde(default = "yes")]
    pub flush_denormals: bool,
    /// Stop when a metric stops improving (see [`EarlyStopping`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// Scale all gradients together so that their global L2 norm is at most this
    /// (`torch.nn.utils.clip_grad_norm_`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// Clamp every gradient element to [-x, x] (`clip_grad_value_`), before any norm clipping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_value: Option<f64>,
    /// Average the gradients of this many consecutive batches (weighted by their sizes) into
    /// one optimizer step. BatchNorm's statistics still update on every batch.
    #[serde(default = "one_usize")]
    pub accumulate: usize,
    /// Keep an exponential moving average of the weights with this decay, updated after every
    /// optimizer step; evaluation, `best.ckpt`, eval, predict and export use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<f64>,
    /// With `ema`: evaluate the moving average (true) or the trained weights (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema_eval: Option<bool>,
    /// Stop at the end of the epoch after which another epoch would run past this wall-clock
    /// time (counted from when this process starts the run, its data loaded), with a checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_time: Option<TimeBudget>,
}

impl TrainConfig {
    /// Optimizer steps in an epoch of `batches` batches: groups of `accumulate`.
    pub fn optimizer_steps(&self, batches: usize) -> usize {
        batches.div_ceil(self.accumulate.max(1))
    }

    /// Whether evaluation (and what is saved for eval, predict and export) uses the moving
    /// average of the weights.
    pub fn evaluates_ema(&self) -> bool {
        self.ema.is_some() && self.ema_eval != Some(false)
    }
}

/// The training objective; every form compares the network's output with the labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// `torch.nn.CrossEntropyLoss`: the output is logits.
    #[default]
    CrossEntropy,
    /// `torch.nn.NLLLoss`: the output is log-probabilities (end with `log_softmax`).
    Nll,
    /// Keras' `categorical_crossentropy`: the output is probabilities (end with `softmax`),
    /// clipped to [1e-7, 1 - 1e-7] as Keras does.
    CategoricalCrossentropy,
    /// Mean squared error against one-hot targets.
    Mse,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: epochs(),
            batch_size: BatchSize::default(),
            shuffle: true,
            drop_last: false,
            eval_batch_size: eval_batch(),
            loss: Loss::default(),
            label_smoothing: 0.0,
            flush_denormals: true,
            early_stopping: None,
            clip_grad_norm: None,
            clip_grad_value: None,
            accumulate: 1,
            ema: None,
            ema_eval: None,
            max_time: None,
        }
    }
}

/// `batch_size = 64` or `batch_size = "full"` (every example in one step: full-batch GD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    Size(usize),
    Full,
}

impl Default for BatchSize {
    fn default() -> Self {
        BatchSize::Size(64)
    }
}

impl BatchSize {
    /// The number of examples per step for a training set of `n` examples (a size above `n`
    /// stays: as in torch, the one batch is then partial, and dropped with `drop_last`).
    pub fn resolve(self, n: usize) -> usize {
        match self {
            BatchSize::Size(size) => size,
            BatchSize::Full => n,
        }
    }
}

impl Serialize for BatchSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            BatchSize::Size(n) => serializer.serialize_u64(*n as u64),
            BatchSize::Full => serializer.serialize_str("full"),
        }
    }
}

impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = BatchSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive number of examples or \"full\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<BatchSize, E> {
                usize::try_from(v)
                    .map(BatchSize::Size)
                    .map_err(|_| E::custom("batch_size is too large"))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<BatchSize, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("batch_size must be positive, or \"full\""))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<BatchSize, E> {
                match v {
                    "full" => Ok(BatchSize::Full),
                    // `--set train.batch_size=128` and KILN_ variables arrive as text.
                    _ => v
                        .parse::<u64>()
                        .map_err(|_| {
                            E::custom(format!(
                                "batch_size must be a number or \"full\", not {v:?}"
                            ))
                        })
                        .and_then(|v| self.visit_u64(v)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `[log]`: what goes to TensorBoard beyond the per-epoch curves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Write `batch_loss` every N training steps (0: never).
    #[serde(default = "one_usize")]
    pub batch_loss_every: usize,
    /// Write per-layer histograms of the parameters and of the pre- and post-activation
    /// outputs every N epochs, and once before training (0: never). Off by default, as in
    /// Keras's TensorBoard callback: they cost an extra forward pass and disk space.
    #[serde(default)]
    pub histograms_every: usize,
    /// How many test examples (the first ones) the activation histograms are taken over.
    #[serde(default = "histogram_examples")]
    pub histogram_examples: usize,
    /// Write precision–recall curves per class on the test set every N epochs and at the
    /// last (0: never; `runner eval` always writes them).
    #[serde(default)]
    pub pr_curves_every: usize,
}

/// `[checkpoint]`: what is saved under the run folder's `checkpoints/`, to resume a run or
/// use the trained network (`runner eval`, `predict`, `export`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Save every N epochs (0: only the best, the last epoch and on Ctrl-C).
    #[serde(default = "one_usize")]
    pub every: usize,
    /// How many of the newest checkpoints to keep (`best.ckpt` is kept apart).
    #[serde(default = "keep_last")]
    pub keep_last: usize,
    /// The metric that picks `best.ckpt`, measured after every epoch. Unset: the validation
    /// accuracy when `[data] validation` holds a split out, else the test accuracy (resolved
    /// when the config is loaded, so a run's config.toml names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<BestMetric>,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            every: 1,
            keep_last: keep_last(),
            best: None,
        }
    }
}

impl CheckpointConfig {
    /// The metric that picks `best.ckpt` (see [`CheckpointConfig::best`]).
    pub fn best_metric(&self, validation: bool) -> BestMetric {
        self.best.unwrap_or(if validation {
            BestMetric::ValidationAccuracy
        } else {
            BestMetric::TestAccuracy
        })
    }
}

/// An epoch metric, and whether more of it is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BestMetric {
    TestAccuracy,
    TestLoss,
    TrainAccuracy,
    TrainLoss,
    /// Needs `[data] validation`.
    ValidationAccuracy,
    ValidationLoss,
}

impl BestMetric {
    pub fn higher_is_better(self) -> bool {
        match self {
            BestMetric::TestAccuracy
            | BestMetric::TrainAccuracy
            | BestMetric::ValidationAccuracy => true,
            BestMetric::TestLoss | BestMetric::TrainLoss | BestMetric::ValidationLoss => false,
        }
    }

    /// Measured on the validation split (which the config must hold out).
    pub fn needs_validation(self) -> bool {
        matches!(
            self,
            BestMetric::ValidationAccuracy | BestMetric::ValidationLoss
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            BestMetric::TestAccuracy => "test_accuracy",
            BestMetric::TestLoss => "test_loss",
            BestMetric::TrainAccuracy => "train_accuracy",
            BestMetric::TrainLoss => "train_loss",
            BestMetric::ValidationAccuracy => "validation_accuracy",
            BestMetric::ValidationLoss => "validation_loss",
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            batch_loss_every: 1,
            histograms_every: 0,
            histogram_examples: histogram_examples(),
            pr_curves_every: 0,
        }
    }
}

// serde's `default = "..."` takes a function path, hence these.
fn yes() -> bool {
    true
}
fn one_usize() -> usize {
    1
}
fn keep_last() -> usize {
    3
}
fn histogram_examples() -> usize {
    1000
}
fn one_per_channel() -> PerChannel {
    PerChannel(vec![1.0])
}
fn pixel_max() -> f64 {
    255.0
}
fn lr_sgd() -> f64 {
    1e-3
}
fn lr_adam() -> f64 {
    1e-3
}
fn lr_rmsprop() -> f64 {
    1e-2
}
fn betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn eps() -> f64 {
    1e-8
}
fn adamw_decay() -> f64 {
    1e-2
}
fn rms_alpha() -> f64 {
    0.99
}
fn step_gamma() -> f64 {
    0.1
}
fn epochs() -> usize {
    10
}
fn eval_batch() -> usize {
    1000
}
