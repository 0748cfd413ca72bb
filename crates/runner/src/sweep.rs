//! `runner sweep DIR`: every experiment of a folder; `runner sweep SWEEP.toml`: a base
//! experiment under every combination of a grid of values (or a seeded random sample of them),
//! optionally with a scheduler that ends hopeless runs early (ASHA, the median rule). Runs go
//! to a launcher (child processes here, or one Slurm job array); then one table of all runs
//! sorted by final test accuracy is printed and written as summary.csv and summary.md in the
//! sweep's log folder.
//!
//! Each run is its own `runner sweep-task` process: Burn's RNG seed is process-wide, so runs
//! sharing a process could not be reproducible, and a run that fails cannot take the others
//! with it. What a run and its sweep tell each other goes through files in the sweep's folder
//! ([`manifest`]), so a run on another node is no different from a child here.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use kiln_core::Error;

use crate::signals::{Phase, Signals};

mod children;
mod grid;
mod local;
mod manifest;
mod scheduler;
mod slurm;
mod summary;
pub mod task;
mod watch;

pub use children::interrupt_when_parent_dies;
use manifest::{Manifest, Task};
use scheduler::SchedulerConfig;
pub use slurm::SlurmSettings;

/// Where the runs of a sweep are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Launcher {
    /// Child processes on this machine, --jobs at a time.
    Local,
    /// One Slurm job array (sbatch), waited on with squeue.
    Slurm,
}

/// What `runner sweep` was asked to do.
pub struct SweepArgs<'a> {
    pub path: &'a Path,
    /// Read the experiments of sub-folders too.
    pub recursive: bool,
    pub sets: &'a [String],
    pub logdir: &'a Path,
    pub jobs: Option<usize>,
    pub quiet: bool,
    /// Re-run experiments that already completed with the same config.
    pub force: bool,
    pub launcher: Launcher,
    /// Slurm settings given as flags (over the sweep file's `[sweep.slurm]`).
    pub slurm: &'a SlurmSettings,
    /// Slurm: submit and leave; the same command later collects.
    pub no_wait: bool,
    /// Ctrl-C / SIGTERM: no new run starts, running ones get each signal forwarded.
    pub signals: &'a Signals,
}

/// A sweep as planned from its folder or file.
#[derive(Debug)]
pub struct Plan {
    pub name: String,
    pub tasks: Vec<Task>,
    pub scheduler: Option<SchedulerConfig>,
    pub slurm: SlurmSettings,
}

/// One run's outcome, as its child process reported it.
#[derive(Debug, Clone)]
struct Outcome {
    label: String,
    result: Result<RunResult, String>,
    seconds: f64,
}

/// Written into a run folder when the run completes.
pub const RESULT_FILE: &str = "result.toml";

/// The final-epoch figures a child writes with `--result-file` and into its run folder.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct RunResult {
    pub name: String,
    pub run_dir: PathBuf,
    pub epochs: usize,
    pub train_loss: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// On the held-out split, with `[data] validation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_accuracy: Option<f64>,
    /// The epoch after which `[train] early_stopping` ended the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early_after: Option<usize>,
    /// With `restore_best`: the epoch whose weights (and figures above) the run ended with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_of_epoch: Option<usize>,
    /// The sweep's scheduler ("ASHA") that ended the run after `epochs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    /// Wall time of the process that finished the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// Runs the sweep; `Ok(false)` when some run failed (the others still ran).
pub fn run(args: &SweepArgs) -> Result<bool, Error> {
    // From here a signal stops the sweep between runs, never the process outright.
    args.signals.enter(Phase::Sweeping);
    if args.jobs == Some(0) {
        return Err(Error::Config(
            "--jobs 0 runs nothing; give at least 1 (or leave it out for one run per core)".into(),
        ));
    }
    if args.launcher == Launcher::Local && (*args.slurm != SlurmSettings::default() || args.no_wait)
    {
        return Err(Error::Config(
            "Slurm settings (--partition, --time, --no-wait, ...) need --launcher slurm".into(),
        ));
    }
    let plan = planned_runs(args)?;
    let root = std::path::absolute(args.logdir.join(&plan.name))
        .map_err(|e| Error::io("cannot resolve the sweep folder", args.logdir, e))?;
    std::fs::create_dir_all(&root).map_err(|e| {
        Error::Config(format!(
            "cannot create the sweep folder {} ({e}); choose another --logdir",
            root.display()
        ))
    })?;
    let manifest = Manifest {
        name: plan.name,
        root,
        scheduler: plan.scheduler,
        tasks: plan.tasks,
    };
    // A run that already completed with the same config is not run again (unless --force):
    // re-running an interrupted sweep completes only what is missing.
    let mut outcomes = Vec::new();
    let mut pending = Vec::new();
    for (i, task) in manifest.tasks.iter().enumerate() {
        match completed(task, &manifest.root).filter(|_| !args.force) {
            Some(result) => outcomes.push(Outcome {
                label: task.label.clone(),
                result: Ok(result),
                seconds: 0.0,
            }),
            None => pending.push(i),
        }
    }
    let total = manifest.tasks.len();
    if !args.quiet {
        let scheduler = manifest.scheduler.as_ref().map_or(String::new(), |s| {
            format!(", {} ends runs early", s.title())
        });
        kiln_core::say!(
            "sweep {}: {total} runs, {} already complete{scheduler}",
            manifest.name,
            outcomes.len(),
        );
    }
    let ran = match args.launcher {
        Launcher::Local => local::run(&local::LocalRun {
            manifest: &manifest,
            pending: &pending,
            jobs: args.jobs,
            quiet: args.quiet,
            signals: args.signals,
        })?,
        Launcher::Slurm => {
            let ran = slurm::run(&slurm::SlurmRun {
                manifest: &manifest,
                pending: &pending,
                settings: plan.slurm.merged(args.slurm),
                no_wait: args.no_wait,
                quiet: args.quiet,
                again: again(args),
                signals: args.signals,
            })?;
            match ran {
                Some(ran) => ran,
                None => return Ok(true),
            }
        }
    };
    outcomes.extend(ran);
    outcomes.sort_by(|a, b| summary::accuracy(b).total_cmp(&summary::accuracy(a)));
    let table = summary::markdown(&outcomes);
    if !args.quiet {
        kiln_core::log::console::print(&table);
    }
    write(&manifest.root.join("summary.md"), &table)?;
    write(&manifest.root.join("summary.csv"), &summary::csv(&outcomes))?;
    if args.signals.requested.load(Ordering::SeqCst) {
        return Err(Error::SweepInterrupted {
            complete: outcomes.iter().filter(|o| o.result.is_ok()).count(),
            total,
            dir: manifest.root,
        });
    }
    Ok(outcomes.iter().all(|o| o.result.is_ok()))
}

/// The command that runs this sweep again (to collect a `--no-wait` sweep).
fn again(args: &SweepArgs) -> String {
    let mut words = vec![
        "runner sweep".to_string(),
        crate::shell_word(&args.path.to_string_lossy()),
        "--launcher slurm".into(),
    ];
    for set in args.sets {
        words.push(format!("--set {}", crate::shell_word(set)));
    }
    if args.logdir != Path::new("logs") {
        words.push(format!(
            "--logdir {}",
            crate::shell_word(&args.logdir.to_string_lossy())
        ));
    }
    words.join(" ")
}

/// The sweep's runs, each with the user's `--set`s last (they win): a folder's experiments,
/// or a sweep file's grid, checked up front ([`check_up_front`]).
fn planned_runs(args: &SweepArgs) -> Result<Plan, Error> {
    let folder = args.path.is_dir();
    let mut plan = if folder {
        let tasks = experiments(args.path, args.recursive)?
            .into_iter()
            .map(|file| Task {
                label: file.display().to_string(),
                file,
                sets: Vec::new(),
                hparams: Vec::new(),
                name: String::new(),
                epochs: 0,
            })
            .collect();
        Plan {
            name: sweep_name(args.path),
            tasks: with_varying_keys(tasks, args.sets),
            scheduler: None,
            slurm: SlurmSettings::default(),
        }
    } else {
        grid::plan(args.path)?
    };
    for task in &mut plan.tasks {
        task.file = std::path::absolute(&task.file).unwrap_or_else(|_| task.file.clone());
        task.sets.extend(args.sets.iter().cloned());
    }
    check_up_front(&mut plan, folder)?;
    Ok(plan)
}

/// Mistakes that would fail every run, or make two runs indistinguishable, stop the sweep
/// before anything runs: a grid whose runs do not load (a typo in a grid key is one mistake,
/// reported once), two runs with one experiment `name` (they would share a log folder and
/// give summary rows that cannot be told apart), a scheduler watching a validation metric of
/// runs without `[data] validation`. A folder's experiments are separate files: one that does
/// not load fails as its own row, the others still run. Fills each task's name and epochs.
fn check_up_front(plan: &mut Plan, folder: bool) -> Result<(), Error> {
    let zoo: kiln_core::config::ZooExpander = &kiln_model_zoo::expand;
    let mut names: Vec<(String, String)> = Vec::new();
    for task in &mut plan.tasks {
        task.name = task.label.clone();
        match kiln_core::config::load_requested(&task.file, &task.sets, zoo) {
            Ok(config) => {
                if let Some((_, first)) = names.iter().find(|(n, _)| *n == config.name) {
                    return Err(Error::Config(format!(
                        "{} and {} both have name = {:?}: their runs would share one log folder; give each its own name",
                        first, task.label, config.name
                    )));
                }
                if let Some(metric) = plan.scheduler.as_ref().map(|s| s.metric())
                    && metric.needs_validation()
                    && config.data.validation.is_none()
                {
                    return Err(Error::Config(format!(
                        "key `sweep.scheduler.metric`: {} is measured on a validation split, and run {} holds none out; add [data] validation = 0.1 to the experiment, or watch test_accuracy",
                        metric.name(),
                        task.label
                    )));
                }
                names.push((config.name.clone(), task.label.clone()));
                task.name = config.name;
                task.epochs = config.train.epochs;
            }
            Err(e) if !folder => {
                return Err(Error::Config(format!(
                    "run {} of the sweep does not load, so no run was started: {e}",
                    task.label
                )));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// Records, in every task, the config keys whose values differ between the tasks (what a
/// folder of experiments compares), for the HParams dashboard.
fn with_varying_keys(mut tasks: Vec<Task>, user_sets: &[String]) -> Vec<Task> {
    let zoo: kiln_core::config::ZooExpander = &kiln_model_zoo::expand;
    let flat: Vec<Vec<(String, toml::Value)>> = tasks
        .iter()
        .filter_map(|j| kiln_core::config::load_requested(&j.file, user_sets, zoo).ok())
        .map(|c| kiln_core::log::hparams::flatten(&c))
        .collect();
    let mut keys: Vec<String> = Vec::new();
    for (key, _) in flat.iter().flatten() {
        let differs = flat.iter().any(|f| {
            f.iter().find(|(k, _)| k == key).map(|(_, v)| v)
                != flat[0].iter().find(|(k, _)| k == key).map(|(_, v)| v)
        });
        if differs && !keys.contains(key) && key != "name" && key != "description" {
            keys.push(key.clone());
        }
    }
    for task in &mut tasks {
        task.hparams = keys.clone();
    }
    tasks
}

/// The experiment files of a sweep folder (and of its sub-folders when `recursive`), sorted.
fn experiments(path: &Path, recursive: bool) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    collect(path, recursive, &mut files).map_err(|e| {
        Error::Config(format!(
            "cannot read the sweep folder {} ({e}); give a folder of .toml experiments",
            path.display()
        ))
    })?;
    files.sort();
    if files.is_empty() {
        return Err(Error::Config(format!(
            "{} holds no .toml experiments{}",
            path.display(),
            if recursive {
                ""
            } else {
                " (add --recursive to read its sub-folders)"
            }
        )));
    }
    Ok(files)
}

fn collect(dir: &Path, recursive: bool, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() && recursive {
            collect(&path, true, files)?;
        } else if path.is_file() && path.extension().is_some_and(|x| x == "toml") {
            files.push(path);
        }
    }
    Ok(())
}

/// A folder sweep's log folder: the experiments folder's own name, made a plain folder name.
fn sweep_name(path: &Path) -> String {
    let name = std::path::absolute(path)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "sweep".into());
    kiln_core::folder_name::from(&name)
}

/// The result of an earlier complete run of `task` under `root`, if its config is the one
/// `task` would run now.
fn completed(task: &Task, root: &Path) -> Option<RunResult> {
    let runs = std::fs::read_dir(root.join(&task.name)).ok()?;
    runs.filter_map(|e| e.ok().map(|e| e.path()))
        .find_map(|run| {
            let result: RunResult =
                toml::from_str(&std::fs::read_to_string(run.join(RESULT_FILE)).ok()?).ok()?;
            same_config(task, &run).then_some(result)
        })
}

/// Whether the run folder `run` holds the config `task` would run now (the seed aside when
/// the task leaves it to chance).
fn same_config(task: &Task, run: &Path) -> bool {
    let zoo: kiln_core::config::ZooExpander = &kiln_model_zoo::expand;
    let (Ok(mut want), Ok(had)) = (
        kiln_core::config::load_requested(&task.file, &task.sets, zoo),
        kiln_core::config::load_requested(&run.join("config.toml"), &[], zoo),
    ) else {
        return false;
    };
    if want.seed.is_none() {
        want.seed = had.seed;
    }
    kiln_core::config::resolve(want) == kiln_core::config::resolve(had)
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    // Atomic, and never over a link or a device someone put in the sweep's folder.
    kiln_core::checkpoint::write_atomic(path, text.as_bytes())
}
