//! Using a trained network: load it from a checkpoint, evaluate it on the test set
//! ([`eval`]), classify a user's pictures ([`predict`], [`preprocess`]), export its weights
//! for PyTorch ([`export`]).

pub mod embeddings;
pub mod eval;
pub mod export;
pub mod predict;
pub mod preprocess;

use std::path::{Path, PathBuf};

use crate::checkpoint::{self, Which};
use crate::config::ExperimentConfig;
use crate::error::{Error, Result};
use crate::model::{LayerPlan, Network};

/// A network restored from a checkpoint, on its backend's plain (inference) device.
pub struct Trained {
    pub config: ExperimentConfig,
    pub network: Network,
    pub plans: Vec<LayerPlan>,
    /// Shape of one input example, as the network takes it.
    pub input: Vec<usize>,
    pub classes: usize,
    pub device: burn::tensor::Device,
    /// The checkpoint it came from, and how far training had got.
    pub checkpoint: PathBuf,
    pub epochs_done: usize,
    pub global_step: usize,
    /// The training data's class names by index (empty where it did not name them).
    pub class_names: Vec<String>,
}

impl Trained {
    /// Loads checkpoint `which` of the run in `run_dir`; warnings name damaged newer
    /// checkpoints that were passed over. A checkpoint file of another run is refused unless
    /// `force` (what is computed from it is written into `run_dir`'s folders).
    pub fn load(run_dir: &Path, which: &Which, force: bool) -> Result<(Self, Vec<String>)> {
        if !run_dir.is_dir() {
            return Err(Error::Config(format!(
                "run folder {} not found; give a folder under logs/<experiment>/",
                run_dir.display()
            )));
        }
        if let Which::Path(path) = which
            && !force
        {
            checkpoint::check_belongs(path, run_dir)?;
        }
        let mut found = checkpoint::find(run_dir, which)?;
        let config = found.checkpoint.config(&found.path)?;
        let device = crate::backend::device(config.backend, config.device)?;
        // An image folder's classes are in the checkpoint: the pictures need not be there.
        let planned =
            match crate::data::describe_trained(&config.data, &found.checkpoint.class_names) {
                Some(described) => crate::model::plan_described(&config, described)?,
                None => crate::model::plan_only(&config)?,
            };
        let crate::model::Planned {
            input,
            plans,
            classes,
            ..
        } = planned;
        let network = Network::new(&config.model, &config.init, &input, &plans, &device);
        let bytes = std::mem::take(&mut found.checkpoint.model);
        let network = checkpoint::load_network(network, bytes).map_err(|e| {
            Error::Data(format!(
                "checkpoint {}: its weights do not fit the network its config describes ({e})",
                found.path.display()
            ))
        })?;
        // What training evaluated and picked best.ckpt by: the moving average, with `[train] ema`.
        let network = match (config.train.ema, found.checkpoint.ema.take()) {
            (Some(decay), Some(state)) if config.train.evaluates_ema() => {
                crate::optim::Ema::new(decay)
                    .with_state(state)
                    .apply(network)
            }
            _ => network,
        };
        let c = &found.checkpoint;
        Ok((
            Trained {
                config,
                network,
                plans,
                input,
                classes,
                device,
                checkpoint: found.path.clone(),
                epochs_done: c.epochs_done,
                global_step: c.global_step,
                class_names: c.class_names.clone(),
            },
            found.warnings,
        ))
    }
}
