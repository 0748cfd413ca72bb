//! An experiment's network worked out without training: shapes, parameter counts, and
//! whether training it fits in memory.

use crate::config::ExperimentConfig;
use crate::error::{Error, Result};
use crate::layers::LayerPlan;

/// What an experiment's network is, worked out without training.
pub struct Planned {
    /// Shape of one input example, as the network takes it.
    pub input: Vec<usize>,
    pub plans: Vec<LayerPlan>,
    pub classes: usize,
    /// Layers whose output nothing reads; why it could not be trained here (more memory than
    /// the machine has).
    pub warnings: Vec<String>,
}

/// The input shape, layer plans and number of classes of an experiment, without training
/// (and without reading named datasets, whose shape is known).
pub fn plan_only(config: &ExperimentConfig) -> Result<Planned> {
    let described = match crate::data::describe(&config.data)? {
        Some(d) => d,
        None => {
            let (dataset, _) = crate::data::load(&config.data, config.seed.unwrap_or(0), false)?;
            crate::data::Described {
                shape: dataset.shape,
                classes: dataset.classes,
                examples: dataset.train.len(),
            }
        }
    };
    plan_described(config, described)
}

/// [`plan_only`] for a dataset already described (by a checkpoint, say).
pub fn plan_described(config: &ExperimentConfig, data: crate::data::Described) -> Result<Planned> {
    let crate::data::Described {
        shape,
        classes,
        examples,
    } = data;
    let input = super::input_shape(&config.model, &shape)?;
    let plans = super::plan(&config.model, &input, classes)?;
    let batch = config.train.batch_size.resolve(examples).min(examples);
    let warnings = super::shape::unread_warnings(&config.model, &plans)
        .into_iter()
        .chain(memory_problem(&input, &plans, batch)?)
        .collect();
    Ok(Planned {
        input,
        plans,
        classes,
        warnings,
    })
}

/// Why training `plans` on batches of `batch` cannot fit in memory (see [`super::memory`]),
/// if it cannot; `Err` for a `KILN_MEMORY_LIMIT` that is not a size.
pub fn memory_problem(
    input: &[usize],
    plans: &[LayerPlan],
    batch: usize,
) -> Result<Option<String>> {
    let Some(limit) = super::memory::limit().map_err(Error::Config)? else {
        return Ok(None);
    };
    let floor = super::memory::training_floor(input, plans, batch);
    Ok(super::memory::check(plans, batch, floor, limit).err())
}
