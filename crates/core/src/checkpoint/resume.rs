//! Which config a resumed run uses: the one it was trained with, except `train.epochs`
//! (raised to train longer), `train.max_time`, `[checkpoint]` and the description, which do not change what is
//! trained. Anything else that differs is refused, naming the keys, since the checkpoint's
//! weights and optimizer state belong to the original.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{self, ExperimentConfig, ScheduleKind};
use crate::error::{Error, Result};

/// The config to continue with, given what the experiment file (and `--set`s) ask for now,
/// before [`config::resolve`], and the config saved in the checkpoint.
pub fn config_for_resume(
    mut requested: ExperimentConfig,
    saved: &ExperimentConfig,
    experiment: &Path,
    run_dir: &Path,
) -> Result<ExperimentConfig> {
    // What kiln filled in for the original run is taken from it, not drawn again.
    if requested.seed.is_none() {
        requested.seed = saved.seed;
    }
    if let (
        ScheduleKind::Cosine { t_max, .. },
        ScheduleKind::Cosine {
            t_max: saved_t_max, ..
        },
    ) = (&mut requested.schedule.kind, &saved.schedule.kind)
        && t_max.is_none()
    {
        *t_max = *saved_t_max;
    }
    let resolved = config::resolve(requested);
    let (now, then) = (flatten(&resolved), flatten(saved));
    let keys: std::collections::BTreeSet<&String> = now.keys().chain(then.keys()).collect();
    let differ: Vec<String> = keys
        .into_iter()
        .filter(|k| !may_change(k) && now.get(*k) != then.get(*k))
        .map(|k| {
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(unset)".into());
            format!(
                "`{k}` ({} now, {} in the run)",
                show(now.get(k)),
                show(then.get(k))
            )
        })
        .collect();
    if !differ.is_empty() {
        return Err(Error::Config(format!(
            "{} differs from the run being resumed ({}) in {}; resume with the experiment it was started with (only train.epochs, [checkpoint] and the description may change), or start a new run without --resume",
            experiment.display(),
            run_dir.join("config.toml").display(),
            differ.join(", ")
        )));
    }
    Ok(resolved)
}

fn may_change(key: &str) -> bool {
    // A time budget is the invocation's, not the run's: a run stopped by it resumes with more.
    key == "train.epochs"
        || key == "train.max_time"
        || key == "description"
        || key.starts_with("checkpoint.")
}

/// Dotted key -> value text, for every leaf of the config.
fn flatten(config: &ExperimentConfig) -> BTreeMap<String, String> {
    crate::log::hparams::flatten(config)
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
}
