//! Checkpoints: everything needed to continue a run exactly where it stopped, or to use the
//! trained network, in one file under the run folder's `checkpoints/`.
//!
//! Names: `epoch-0003.ckpt` after epoch 3; `epoch-0004-step-00120.ckpt` when a run stopped
//! 120 steps into epoch 4 (Ctrl-C); `best.ckpt`, the epoch that scored best so far. The
//! newest `keep_last` of the first two kinds are kept.
//!
//! The random state is not a byte dump of generators: each epoch's data order is drawn
//! from (seed, epoch) and each step re-seeds Burn's generator (dropout) from (seed, global
//! step), so the seed in the config and the position here are the whole state.

mod file;
pub mod policy;
mod resume;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::optim::OptimizerState;

pub use file::{FORMAT, decode, encode, write_atomic};
pub use resume::config_for_resume;

/// The folder of a run's checkpoints.
pub const FOLDER: &str = "checkpoints";
/// The file name of the best checkpoint.
pub const BEST: &str = "best.ckpt";

/// One checkpoint's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Epochs fully trained and evaluated.
    pub epochs_done: usize,
    /// Steps already taken in the next epoch (0 at an epoch's end).
    pub steps_into_epoch: usize,
    pub global_step: usize,
    /// The interrupted epoch's running sums, so its logged figures match an uninterrupted run.
    pub partial: PartialEpoch,
    /// Every finished epoch's figures.
    pub history: Vec<EpochMetrics>,
    /// The best value of the best-checkpoint metric so far, and its epoch.
    pub best: Option<(f64, usize)>,
    /// Each event file (relative to the run folder) and its length when this was written: a
    /// resumed run cuts them back to these lengths, dropping what a killed process logged
    /// after its last checkpoint.
    pub event_files: Vec<(PathBuf, u64)>,
    /// The resolved experiment, as the run's `config.toml`.
    pub config_toml: String,
    /// The network's parameters and BatchNorm statistics (Burn's burnpack record, which also
    /// keeps each parameter's id, by which the optimizer state is keyed).
    #[serde(with = "serde_bytes")]
    pub model: Vec<u8>,
    pub optimizer: OptimizerState,
    /// The moving average of the weights (`[train] ema`), by parameter id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<crate::optim::ema::EmaState>,
    /// The dataset's class names, by class index, where it names them (CIFAR, image folders):
    /// what `predict` and `eval` print.
    #[serde(default)]
    pub class_names: Vec<String>,
}

/// What one epoch measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    /// Optimizer steps taken in this epoch.
    pub steps: usize,
    pub learning_rate: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// Measured on the held-out part of the training set (`[data] validation`), if any.
    #[serde(default)]
    pub validation_loss: Option<f64>,
    #[serde(default)]
    pub validation_accuracy: Option<f64>,
    /// Wall time of the training steps of this epoch (evaluation excluded).
    pub train_seconds: f64,
}

impl EpochMetrics {
    /// Figures for tests of what reads them: `epoch`, with the rest at plain values.
    #[cfg(test)]
    pub fn example(epoch: usize) -> Self {
        EpochMetrics {
            epoch,
            steps: 1,
            learning_rate: 0.1,
            train_loss: 1.0,
            train_accuracy: 0.5,
            test_loss: 1.0,
            test_accuracy: 0.5,
            validation_loss: None,
            validation_accuracy: None,
            train_seconds: 1.0,
        }
    }

    /// The value of `which` in these figures (NaN for a validation metric without the split,
    /// which the config check refuses).
    pub fn get(&self, which: crate::config::BestMetric) -> f64 {
        use crate::config::BestMetric;
        match which {
            BestMetric::TestAccuracy => self.test_accuracy,
            BestMetric::TestLoss => self.test_loss,
            BestMetric::TrainAccuracy => self.train_accuracy,
            BestMetric::TrainLoss => self.train_loss,
            BestMetric::ValidationAccuracy => self.validation_accuracy.unwrap_or(f64::NAN),
            BestMetric::ValidationLoss => self.validation_loss.unwrap_or(f64::NAN),
        }
    }
}

/// Where a run stands: what it has trained so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Position {
    /// Epochs fully trained and evaluated.
    pub epochs_done: usize,
    /// Steps already taken in the next epoch (0 at an epoch's end).
    pub steps_into_epoch: usize,
    pub global_step: usize,
    /// The running sums of the steps taken in the next epoch.
    pub partial: PartialEpoch,
}

/// Sums over the steps of an epoch taken so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PartialEpoch {
    pub loss_sum: f64,
    pub seen: usize,
    pub correct: i64,
    pub train_seconds: f64,
}

impl Checkpoint {
    /// Where the run stood when this was written.
    pub fn position(&self) -> Position {
        Position {
            epochs_done: self.epochs_done,
            steps_into_epoch: self.steps_into_epoch,
            global_step: self.global_step,
            partial: self.partial,
        }
    }

    /// The experiment this checkpoint was trained with.
    pub fn config(&self, path: &Path) -> Result<crate::config::ExperimentConfig> {
        toml::from_str(&self.config_toml).map_err(|e| {
            Error::Data(format!(
                "checkpoint {} holds a config this kiln cannot read ({e}); use the kiln that wrote it",
                path.display()
            ))
        })
    }

    /// The file name for this position.
    pub fn file_name(&self) -> String {
        if self.steps_into_epoch == 0 {
            format!("epoch-{:04}.ckpt", self.epochs_done)
        } else {
            format!(
                "epoch-{:04}-step-{:05}.ckpt",
                self.epochs_done + 1,
                self.steps_into_epoch
            )
        }
    }
}

/// A network's parameters and BatchNorm statistics as a checkpoint keeps them: Burn's
/// burnpack record, which also keeps each parameter's id (the optimizer state's key).
pub fn network_bytes(network: &crate::model::Network) -> Result<Vec<u8>> {
    use burn::module::Module;
    // A record reads BatchNorm's running statistics without their pending update (Burn folds
    // it in at the next forward); `valid` folds it in the shared state first.
    drop(network.valid());
    network
        .clone()
        .into_record()
        .into_bytes()
        .map(|b| b.to_vec())
        .map_err(|e| Error::Run(format!("cannot save the network's weights: {e}")))
}

/// `network` with the weights [`network_bytes`] saved; `Err` is Burn's reason they do not fit,
/// for the caller to put in its own message.
pub fn load_network(
    network: crate::model::Network,
    bytes: Vec<u8>,
) -> std::result::Result<crate::model::Network, String> {
    use burn::module::Module;
    burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .and_then(|r| network.try_load_record(r))
        .map_err(|e| e.to_string())
}

/// Reads and checks a checkpoint file; its size comes from the file system and its header
/// before anything is allocated (`--checkpoint /dev/zero` is refused, not read forever).
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = file::read_bounded(path)?;
    decode(&bytes, path)
}

/// Removes the temporary files that a write killed midway left in `run_dir/checkpoints/`
/// (`.tmp-*`; see [`write_atomic`]). Called when a run is resumed, the only time its folder
/// is written again: no other write of it can be in flight then.
pub fn remove_temporaries(run_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(run_dir.join(FOLDER)) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            // Best effort: a file that cannot be removed costs disk, nothing else.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `checkpoint` into `run_dir/checkpoints/` under its position's name and removes the
/// oldest ones beyond `keep_last`. Returns the file written.
pub fn save(run_dir: &Path, checkpoint: &Checkpoint, keep_last: usize) -> Result<PathBuf> {
    let dir = run_dir.join(FOLDER);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io("cannot create the checkpoint folder", &dir, e))?;
    let path = dir.join(checkpoint.file_name());
    write_atomic(&path, &encode(checkpoint)?)?;
    let positions = positions(&dir)?;
    for (_, old) in positions.iter().skip(keep_last.max(1)) {
        std::fs::remove_file(old)
            .map_err(|e| Error::io("cannot remove the old checkpoint", old, e))?;
    }
    Ok(path)
}

/// Writes `checkpoint` as `best.ckpt`.
pub fn save_best(run_dir: &Path, checkpoint: &Checkpoint) -> Result<PathBuf> {
    let dir = run_dir.join(FOLDER);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io("cannot create the checkpoint folder", &dir, e))?;
    let path = dir.join(BEST);
    write_atomic(&path, &encode(checkpoint)?)?;
    Ok(path)
}

/// The periodic and interrupt checkpoints of a folder, newest first.
fn positions(dir: &Path) -> Result<Vec<((usize, usize), PathBuf)>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io("cannot list the checkpoints in", dir, e))?;
    let mut found: Vec<((usize, usize), PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            position(&name).map(|p| (p, e.path()))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

/// `(epoch, step)` ordering key of a checkpoint name; an epoch's end sorts after its steps.
fn position(name: &str) -> Option<(usize, usize)> {
    let stem = name.strip_prefix("epoch-")?.strip_suffix(".ckpt")?;
    match stem.split_once("-step-") {
        None => Some((stem.parse().ok()?, usize::MAX)),
        Some((epoch, step)) => Some((epoch.parse().ok()?, step.parse().ok()?)),
    }
}

/// Which checkpoint of a run to use.
#[derive(Debug, Clone, PartialEq)]
pub enum Which {
    /// The newest one that loads.
    Last,
    Best,
    Path(PathBuf),
}

impl std::str::FromStr for Which {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s {
            "last" | "latest" => Which::Last,
            "best" => Which::Best,
            other => Which::Path(other.into()),
        })
    }
}

/// `Err` unless the checkpoint file `path` is one of `run_dir`'s own (in its `checkpoints/`
/// folder): evaluating run B's weights into run A's TensorBoard files would mislabel them.
pub fn check_belongs(path: &Path, run_dir: &Path) -> Result<()> {
    let folder = |p: &Path| std::fs::canonicalize(p).ok();
    let own = folder(&run_dir.join(FOLDER));
    let holder = path.parent().and_then(folder);
    if own.is_some() && own == holder {
        return Ok(());
    }
    let whose = path
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == FOLDER))
        .and_then(Path::parent)
        .map_or_else(
            || "not a checkpoint of this run".to_string(),
            |other| format!("a checkpoint of the run {}", other.display()),
        );
    Err(Error::Config(format!(
        "--checkpoint {} is {whose}, not of {}; give that run's folder instead, or add --force to use it with {}'s folders",
        path.display(),
        run_dir.display(),
        run_dir.display()
    )))
}

/// A checkpoint found for a run, with the warnings met on the way (damaged newer files).
pub struct Found {
    pub path: PathBuf,
    pub checkpoint: Checkpoint,
    pub warnings: Vec<String>,
}

/// Finds and loads the checkpoint `which` of the run in `run_dir`. For `Last`, a file that
/// does not load is reported in `warnings` and the one before it is tried.
pub fn find(run_dir: &Path, which: &Which) -> Result<Found> {
    let dir = run_dir.join(FOLDER);
    let one = |path: PathBuf| {
        load(&path).map(|checkpoint| Found {
            path,
            checkpoint,
            warnings: vec![],
        })
    };
    match which {
        Which::Path(path) => one(path.clone()),
        Which::Best if !dir.join(BEST).is_file() && dir.is_dir() => Err(Error::Config(format!(
            "{} has no {BEST} yet (no epoch of the run has finished); use --checkpoint last",
            run_dir.display()
        ))),
        Which::Best => one(dir.join(BEST)),
        Which::Last => {
            if !dir.is_dir() {
                return Err(Error::Config(format!(
                    "{} has no checkpoints folder: is it a run folder (logs/<experiment>/<run>)?",
                    run_dir.display()
                )));
            }
            let mut warnings = vec![];
            for (_, path) in positions(&dir)? {
                match load(&path) {
                    Ok(checkpoint) => {
                        return Ok(Found {
                            path,
                            checkpoint,
                            warnings,
                        });
                    }
                    Err(e) => warnings.push(format!("{e}; using the one before it")),
                }
            }
            let why = warnings
                .last()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            Err(Error::Data(format!(
                "no usable checkpoint in {}{why}",
                dir.display()
            )))
        }
    }
}

/// The newest run folder of experiment `name` under `log_root` that has a checkpoint, for
/// `--resume latest`.
pub fn latest_run(log_root: &Path, name: &str) -> Result<PathBuf> {
    let parent = log_root.join(name);
    let entries = std::fs::read_dir(&parent).map_err(|e| {
        Error::Config(format!(
            "--resume latest: no runs of {name} under {} ({e}); give the run folder instead",
            log_root.display()
        ))
    })?;
    let mut runs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(FOLDER).is_dir())
        .collect();
    // Run folders are named by their UTC start time (then -2, -3...): newest sorts last.
    runs.sort_by_key(|p| run_order(p));
    runs.pop().ok_or_else(|| {
        Error::Config(format!(
            "--resume latest: no run of {name} under {} has a checkpoint",
            parent.display()
        ))
    })
}

fn run_order(path: &Path) -> (String, usize) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rsplit_once('-') {
        Some((stamp, n)) if n.len() < 4 && n.parse::<usize>().is_ok() => {
            (stamp.to_string(), n.parse().unwrap_or(0))
        }
        _ => (name, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_steps_before_their_epochs_end() {
        assert_eq!(position("epoch-0003.ckpt"), Some((3, usize::MAX)));
        assert_eq!(position("epoch-0004-step-00120.ckpt"), Some((4, 120)));
        assert_eq!(position("best.ckpt"), None);
        assert_eq!(position(".tmp-x"), None);
        assert!(position("epoch-0004-step-00001.ckpt") > position("epoch-0003.ckpt"));
    }

    #[test]
    fn latest_run_prefers_later_stamps_and_suffixes() {
        let root = tempfile::tempdir().unwrap();
        for run in [
            "2026-01-02_00-00-00",
            "2026-01-02_00-00-00-2",
            "2026-01-01_23-59-59",
        ] {
            std::fs::create_dir_all(root.path().join("exp").join(run).join(FOLDER)).unwrap();
        }
        std::fs::create_dir_all(root.path().join("exp/2026-01-03_00-00-00")).unwrap();
        let latest = latest_run(root.path(), "exp").unwrap();
        assert!(latest.ends_with("2026-01-02_00-00-00-2"), "{latest:?}");
    }
}
