//! The training loop: epochs of shuffled batches, an evaluation on the test set after each,
//! TensorBoard scalars and a console line per epoch.

mod controls;
mod histograms;
mod loss;
mod pending;
mod run;
mod step;
mod warm;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use burn::tensor::Device;

pub use crate::checkpoint::EpochMetrics;
pub use controls::{Stopped, SupervisorStop};
pub use loss::Objective;
pub use step::evaluate;

use crate::checkpoint::Checkpoint;
use crate::config::ExperimentConfig;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{self, LayerPlan};
use crate::optim::Schedule;
use kiln_kernels::denormals::FlushDenormals;
use run::Run;

/// How a run is carried out (as opposed to what it trains, which is the config).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Root of the log tree (`logs` by default).
    pub log_root: PathBuf,
    /// No progress bar, no per-epoch lines.
    pub quiet: bool,
    /// Set by a Ctrl-C handler; checked after every step.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Dotted config keys to record as HParams beside [`crate::log::hparams::BASE_KEYS`]
    /// (a sweep passes the keys it varies).
    pub hparams: Vec<String>,
    /// The command line that started the run, less any `--resume`, to say how to continue
    /// an interrupted one.
    pub command: Option<String>,
    /// Asked after every epoch whether the run goes on (a sweep's scheduler).
    pub supervisor: Option<Supervisor>,
}

/// Told every epoch's figures as the epoch ends (the last included); `Some` ends the run
/// there (ignored after the last epoch). A sweep's ASHA or median rule answers through it.
#[derive(Clone)]
pub struct Supervisor(pub Arc<SupervisorFn>);

/// What a [`Supervisor`] calls.
pub type SupervisorFn = dyn Fn(&EpochMetrics) -> Option<SupervisorStop> + Send + Sync;

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Supervisor(..)")
    }
}

/// The outcome of a finished run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub epochs: Vec<EpochMetrics>,
    /// Why the run ended before its last epoch, if a control ended it.
    pub stopped: Option<Stopped>,
}

impl RunSummary {
    /// The figures of the weights the run ended with: the last epoch's, or the best epoch's
    /// when early stopping restored them.
    pub fn final_metrics(&self) -> Option<&EpochMetrics> {
        match &self.stopped {
            Some(Stopped::Early {
                best_epoch: Some(best),
                restored: true,
                ..
            }) => self.epochs.iter().find(|m| m.epoch == *best),
            _ => self.epochs.last(),
        }
    }
}

/// Everything prepared before the first step: checked, loaded, built.
pub struct Prepared {
    pub config: ExperimentConfig,
    pub dataset: Dataset,
    pub input: Vec<usize>,
    pub plans: Vec<LayerPlan>,
    pub device: Device,
    /// Things that will run but are probably not what the user meant.
    pub warnings: Vec<String>,
    /// Built here because Burn may refuse a schedule (lr > 1 for cosine), before any file exists.
    pub schedule: Schedule,
    /// `[data.augment]`, checked against the pictures' shape.
    pub augment: Option<crate::data::augment::Augmenter>,
}

/// Checks the config against the data and the backend, without creating any file.
pub fn prepare(config: &ExperimentConfig, progress: bool) -> Result<Prepared> {
    let device = crate::backend::device(config.backend, config.device)?;
    let (dataset, data_warnings) =
        crate::data::load(&config.data, config.seed.unwrap_or(0), progress)?;
    let input = model::input_shape(&config.model, &dataset.shape)?;
    let plans = model::plan_layers(&config.model, &input)?;
    model::check_classes(
        &config.model,
        &plans,
        &input,
        dataset.classes,
        &dataset.classes_source(),
    )?;
    let n = dataset.train.len();
    let batch = config.train.batch_size.resolve(n);
    if n == 0 {
        return Err(Error::Data(format!(
            "the dataset has no training examples ({}); give data with at least one",
            config.data.dataset.name()
        )));
    }
    if config.train.drop_last && n < batch {
        return Err(Error::Config(format!(
            "train.batch_size = {batch} is more than the {n} training examples, and drop_last = true drops that one partial batch, leaving none; lower batch_size or set drop_last = false"
        )));
    }
    if let Some(problem) = model::memory_problem(&input, &plans, batch.min(n))? {
        return Err(Error::Model(problem));
    }
    let last = config
        .model
        .layers
        .last()
        .map(|l| l.layer.kind().activation());
    let warnings = data_warnings
        .into_iter()
        .chain(model::unread_warnings(&config.model, &plans))
        .chain(objective(config).mismatch(last))
        .collect();
    let batches = crate::data::batches_per_epoch(n, batch, config.train.drop_last);
    let steps = config.train.optimizer_steps(batches);
    let schedule = Schedule::new(
        &config.schedule,
        config.optimizer.lr(),
        config.train.epochs,
        steps,
    )?;
    let augment = match &config.data.augment {
        Some(spec) => Some(crate::data::augment::Augmenter::new(
            spec,
            &dataset.shape,
            config.seed.unwrap_or(0),
        )?),
        None => None,
    };
    Ok(Prepared {
        config: config.clone(),
        dataset,
        input,
        plans,
        device,
        warnings,
        schedule,
        augment,
    })
}

/// The loss a config trains with.
pub fn objective(config: &ExperimentConfig) -> Objective {
    Objective {
        loss: config.train.loss,
        smoothing: config.train.label_smoothing,
    }
}

/// A run to continue: its folder and the checkpoint to continue from.
#[derive(Debug, Clone)]
pub struct Resume {
    pub run_dir: PathBuf,
    pub checkpoint: Checkpoint,
}

/// Trains a prepared experiment, writing its run folder under `options.log_root`, or
/// continuing the run `resume` names.
pub fn train(
    prepared: Prepared,
    options: &RunOptions,
    resume: Option<Resume>,
) -> Result<RunSummary> {
    // Subnormals flushed (or not) on this thread and every worker of the pool before the
    // first step, and the previous mode back afterwards.
    let _mode = FlushDenormals::apply(prepared.config.train.flush_denormals);
    // On a worker of rayon's pool: a kernel's parallel product then runs one block here and
    // leaves the other to a worker that is polling for it (`warm`), instead of waking the pool
    // from outside and sleeping until it is done (two thread hand-offs per product).
    let (stop, started) = (AtomicBool::new(false), AtomicUsize::new(0));
    rayon::scope(|scope| {
        let _warm = warm::Warm::start(scope, &stop, &started);
        let (run, network) = Run::open(prepared, options, resume)?;
        run.train(network)
    })
}
