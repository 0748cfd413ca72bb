//! Sweep files: a base experiment and a grid of dotted keys to values.
//!
//! ```toml
//! [sweep]
//! base = "../sigmoid_fullbatch.toml"    # relative to this file
//! mode = "grid"                          # or "random", with samples = N and seed = S
//! [sweep.grid]
//! "init.weight.std" = [0.01, 0.1, 1.0]
//! "optimizer.lr" = [0.1, 1.0]
//! ```
//!
//! Each run is the base with one combination applied as `--set`s, named after its values
//! (`std=0.1,lr=1.0`), so it lands in `logs/<sweep name>/<that name>/`.

use std::path::{Path, PathBuf};

use kiln_core::Error;
use rand::SeedableRng;
use rand::seq::IndexedRandom;
use serde::Deserialize;

use kiln_core::folder_name;

use super::Plan;
use super::manifest::Task;
use super::scheduler::SchedulerConfig;
use super::slurm::SlurmSettings;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    sweep: Sweep,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sweep {
    /// The sweep's log folder name; default: the file's stem.
    name: Option<String>,
    base: PathBuf,
    #[serde(default)]
    mode: Mode,
    samples: Option<usize>,
    #[serde(default)]
    seed: u64,
    /// Early termination of runs: `{ kind = "asha", metric = ..., ... }`.
    scheduler: Option<SchedulerConfig>,
    /// `[sweep.slurm]`: settings for `--launcher slurm`.
    slurm: Option<SlurmSettings>,
    grid: toml::Table,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Grid,
    Random,
}

/// The sweep's name, its runs and its settings.
pub(super) fn plan(path: &Path) -> Result<Plan, Error> {
    let bad = |what: String| Error::Config(format!("{}: {what}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(format!(
            "cannot read the sweep file ({e}); give a folder of experiments or a sweep .toml"
        ))
    })?;
    let file: SweepFile = toml::from_str(&text).map_err(|e| {
        bad(e.message().to_string()
            + "; a sweep file has a [sweep] table with base and [sweep.grid]")
    })?;
    let sweep = file.sweep;
    let base = path.parent().unwrap_or(Path::new(".")).join(&sweep.base);
    if !base.is_file() {
        return Err(bad(format!(
            "key `sweep.base`: {} is not a file",
            base.display()
        )));
    }
    let axes = axes(&sweep.grid).map_err(bad)?;
    if axes.is_empty() {
        return Err(bad(
            "[sweep.grid] is empty; give at least one \"dotted.key\" = [values]".into(),
        ));
    }
    let mut combos = product(&axes);
    if sweep.mode == Mode::Random {
        let samples = sweep
            .samples
            .ok_or_else(|| bad("key `sweep.samples` is required with mode = \"random\"".into()))?;
        if samples == 0 {
            return Err(bad(
                "key `sweep.samples` is 0, which runs nothing; give at least 1".into(),
            ));
        }
        let mut rng = rand::rngs::SmallRng::seed_from_u64(sweep.seed);
        combos = combos.choose_multiple(&mut rng, samples).cloned().collect();
    } else if sweep.samples.is_some() {
        return Err(bad(
            "key `sweep.samples` only applies with mode = \"random\"".into(),
        ));
    }
    let name = match sweep.name {
        Some(name) => match folder_name::problem(&name) {
            Some(problem) => return Err(bad(format!("key `sweep.name`: {problem}"))),
            None => name,
        },
        None => folder_name::from(
            &path
                .file_stem()
                .map_or("sweep".into(), |s| s.to_string_lossy()),
        ),
    };
    let jobs = combos
        .into_iter()
        .map(|combo| {
            let run_name = folder_name::from(
                &combo
                    .iter()
                    .map(|(key, value)| {
                        format!("{}={}", key.rsplit('.').next().unwrap_or(key), plain(value))
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            );
            let mut sets: Vec<String> = combo
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            sets.push(format!("name={run_name}"));
            Task {
                file: base.clone(),
                sets,
                label: run_name,
                hparams: axes.iter().map(|(key, _)| key.clone()).collect(),
                name: String::new(),
                epochs: 0,
            }
        })
        .collect();
    if let Some(problem) = sweep.scheduler.as_ref().and_then(|s| s.problem()) {
        return Err(bad(problem));
    }
    Ok(Plan {
        name,
        tasks: jobs,
        scheduler: sweep.scheduler,
        slurm: sweep.slurm.unwrap_or_default(),
    })
}

/// The grid's keys with their values: each a non-empty list without repeats (two runs with
/// one value could not be told apart). `Err` completes "SWEEP_FILE: ...".
fn axes(grid: &toml::Table) -> Result<Vec<(String, Vec<toml::Value>)>, String> {
    let mut axes = Vec::new();
    for (key, values) in grid {
        let values = match values {
            toml::Value::Array(v) if !v.is_empty() => v.clone(),
            _ => {
                return Err(format!(
                    "key `sweep.grid.\"{key}\"` must be a non-empty list of values"
                ));
            }
        };
        if let Some(twice) = values.iter().enumerate().find_map(|(i, v)| {
            values[..i]
                .iter()
                .any(|u| plain(u) == plain(v))
                .then_some(v)
        }) {
            return Err(format!(
                "key `sweep.grid.\"{key}\"` lists {twice} twice; its runs could not be told apart: remove one"
            ));
        }
        axes.push((key.clone(), values));
    }
    Ok(axes)
}

/// Every combination of one value per axis, the first axis varying slowest.
fn product(axes: &[(String, Vec<toml::Value>)]) -> Vec<Vec<(String, toml::Value)>> {
    axes.iter().fold(vec![Vec::new()], |combos, (key, values)| {
        combos
            .iter()
            .flat_map(|combo| {
                values.iter().map(move |v| {
                    let mut next = combo.clone();
                    next.push((key.clone(), v.clone()));
                    next
                })
            })
            .collect()
    })
}

/// A value as it reads in a run name: strings without quotes.
fn plain(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_is_the_cartesian_product_named_by_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.toml"), "").unwrap();
        let file = dir.path().join("study.toml");
        std::fs::write(
            &file,
            "[sweep]\nbase = \"base.toml\"\n[sweep.grid]\n\"init.weight.std\" = [0.01, 0.1, 1.0]\n\"optimizer.lr\" = [0.1, 1.0]\n\"model.zoo\" = [\"mlp\"]\n",
        )
        .unwrap();
        let Plan {
            name, tasks: jobs, ..
        } = plan(&file).unwrap();
        assert_eq!(name, "study");
        assert_eq!(jobs.len(), 6);
        assert_eq!(jobs[0].label, "std=0.01,lr=0.1,zoo=mlp");
        assert_eq!(jobs[5].label, "std=1.0,lr=1.0,zoo=mlp");
        assert_eq!(
            jobs[3].sets,
            [
                "init.weight.std=0.1",
                "optimizer.lr=1.0",
                "model.zoo=\"mlp\"",
                "name=std=0.1,lr=1.0,zoo=mlp"
            ]
        );
    }

    #[test]
    fn random_mode_samples_without_repeats_reproducibly() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.toml"), "").unwrap();
        let file = dir.path().join("r.toml");
        std::fs::write(
            &file,
            "[sweep]\nbase = \"base.toml\"\nmode = \"random\"\nsamples = 4\nseed = 3\n[sweep.grid]\na = [1, 2, 3]\nb = [4, 5, 6]\n",
        )
        .unwrap();
        let first = plan(&file).unwrap().tasks;
        let again = plan(&file).unwrap().tasks;
        let labels: Vec<String> = first.iter().map(|j| j.label.clone()).collect();
        assert_eq!(labels.len(), 4);
        assert_eq!(
            labels,
            again.iter().map(|j| j.label.clone()).collect::<Vec<_>>()
        );
        let mut unique = labels.clone();
        unique.dedup();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 4);
    }

    #[test]
    fn mistakes_name_the_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "[sweep]\nbase = \"missing.toml\"\n[sweep.grid]\na = [1]\n",
        )
        .unwrap();
        let err = plan(&file).unwrap_err().to_string();
        assert!(
            err.contains("s.toml") && err.contains("sweep.base"),
            "{err}"
        );
        std::fs::write(dir.path().join("b.toml"), "").unwrap();
        std::fs::write(&file, "[sweep]\nbase = \"b.toml\"\n[sweep.grid]\na = 1\n").unwrap();
        assert!(
            plan(&file)
                .unwrap_err()
                .to_string()
                .contains("non-empty list")
        );
        std::fs::write(
            &file,
            "[sweep]\nbase = \"b.toml\"\nbogus = 1\n[sweep.grid]\na = [1]\n",
        )
        .unwrap();
        assert!(plan(&file).unwrap_err().to_string().contains("bogus"));
        std::fs::write(
            &file,
            "[sweep]\nbase = \"b.toml\"\n[sweep.grid]\na = [1, 2, 1]\n",
        )
        .unwrap();
        assert!(
            plan(&file)
                .unwrap_err()
                .to_string()
                .contains("lists 1 twice")
        );
    }

    /// The sweep's folder is `--logdir/<name>`: a name that leaves it is refused, and run
    /// names made from values are plain folder names whatever the values hold.
    #[test]
    fn names_cannot_leave_the_log_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.toml"), "").unwrap();
        let file = dir.path().join("s.toml");
        for name in ["../../escape", "/an/absolute/path", "", ".hidden"] {
            std::fs::write(
                &file,
                format!("[sweep]\nname = {name:?}\nbase = \"b.toml\"\n[sweep.grid]\na = [1]\n"),
            )
            .unwrap();
            let err = plan(&file).unwrap_err().to_string();
            assert!(
                err.contains("sweep.name") && err.contains("plain folder name"),
                "{err}"
            );
        }
        std::fs::write(
            &file,
            "[sweep]\nbase = \"b.toml\"\n[sweep.grid]\n\"data.dir\" = [\"../../x\", \"/etc\"]\n",
        )
        .unwrap();
        let runs = plan(&file).unwrap().tasks;
        for run in runs {
            assert_eq!(folder_name::problem(&run.label), None, "{}", run.label);
        }
    }
}
