//! `runner sweep DIR`: every experiment of a folder; `runner sweep SWEEP.toml`: a base
//! experiment under every combination of a grid of values (or a seeded random sample of them).
//! Runs go in parallel child processes; then one table of all runs sorted by final test
//! accuracy is printed and written as summary.csv and summary.md in the sweep's log folder.
//!
//! Each run is its own `runner` process: Burn's RNG seed is process-wide, so runs sharing a
//! process could not be reproducible, and a run that fails cannot take the others with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kiln_core::Error;

use crate::signals::{Phase, Signals};

mod children;
mod grid;

use children::Children;
pub use children::interrupt_when_parent_dies;

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
    /// Ctrl-C / SIGTERM: no new run starts, running ones get each signal forwarded.
    pub signals: &'a Signals,
}

/// One run of a sweep: an experiment file and the `--set`s that make it this run.
#[derive(Debug, Clone)]
struct Job {
    file: PathBuf,
    sets: Vec<String>,
    /// How the run is named in messages and tables.
    label: String,
    /// The config keys this sweep varies, recorded as HParams.
    hparams: Vec<String>,
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
    let (name, all_jobs) = planned_runs(args)?;
    let root = args.logdir.join(&name);
    std::fs::create_dir_all(&root).map_err(|e| {
        Error::Config(format!(
            "cannot create the sweep folder {} ({e}); choose another --logdir",
            root.display()
        ))
    })?;
    // A run that already completed with the same config is not run again (unless --force):
    // re-running an interrupted sweep completes only what is missing.
    let mut done = Vec::new();
    let mut pending = Vec::new();
    for job in all_jobs {
        match completed(&job, args.sets, &root).filter(|_| !args.force) {
            Some(result) => done.push(Outcome {
                label: job.label.clone(),
                result: Ok(result),
                seconds: 0.0,
            }),
            None => pending.push(job),
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.unwrap_or(cores).clamp(1, pending.len().max(1));
    // Each child gets its share of the cores, so `jobs` runs never oversubscribe them.
    let threads = (cores / jobs).max(1);
    if !args.quiet {
        kiln_core::say!(
            "sweep {name}: {} runs, {} already complete, {jobs} at a time ({threads} thread(s) each); logs in {}",
            pending.len() + done.len(),
            done.len(),
            root.display()
        );
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("cannot find the runner executable", "runner", e))?;
    let total = pending.len() + done.len();
    let queue = Mutex::new(pending.iter().enumerate());
    let outcomes = Mutex::new(done);
    let children = Children::default();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    // The lock is taken and released inside `next`, never held during a run.
                    let next = || {
                        let stop = args.signals.requested.load(Ordering::SeqCst);
                        queue
                            .lock()
                            .ok()
                            .filter(|_| !stop)
                            .and_then(|mut q| q.next())
                    };
                    while let Some((i, job)) = next() {
                        let outcome = run_one(&exe, job, i, &root, args.sets, threads, &children);
                        if !args.quiet {
                            kiln_core::say!("[{}/{}] {}", i + 1, pending.len(), describe(&outcome));
                        }
                        if let Ok(mut all) = outcomes.lock() {
                            all.push(outcome);
                        }
                    }
                })
            })
            .collect();
        // This thread watches for Ctrl-C while the workers wait on their children.
        while workers.iter().any(|w| !w.is_finished()) {
            children.interrupt(args.signals.count());
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap_or_default();
    outcomes.sort_by(|a, b| accuracy(b).total_cmp(&accuracy(a)));
    let table = markdown(&outcomes);
    if !args.quiet {
        kiln_core::log::console::print(&table);
    }
    write(&root.join("summary.md"), &table)?;
    write(&root.join("summary.csv"), &csv(&outcomes))?;
    if args.signals.requested.load(Ordering::SeqCst) {
        return Err(Error::SweepInterrupted {
            complete: outcomes.iter().filter(|o| o.result.is_ok()).count(),
            total,
            dir: root,
        });
    }
    Ok(outcomes.iter().all(|o| o.result.is_ok()))
}

/// The sweep's name and its runs: a folder's experiments, or a sweep file's grid, checked up
/// front ([`check_up_front`]).
fn planned_runs(args: &SweepArgs) -> Result<(String, Vec<Job>), Error> {
    let folder = args.path.is_dir();
    let (name, jobs) = if folder {
        let jobs = experiments(args.path, args.recursive)?
            .into_iter()
            .map(|file| Job {
                label: file.display().to_string(),
                file,
                sets: Vec::new(),
                hparams: Vec::new(),
            })
            .collect();
        (sweep_name(args.path), with_varying_keys(jobs, args.sets))
    } else {
        grid::jobs(args.path)?
    };
    check_up_front(&jobs, args.sets, folder)?;
    Ok((name, jobs))
}

/// Mistakes that would fail every run, or make two runs indistinguishable, stop the sweep
/// before anything runs: a grid whose runs do not load (a typo in a grid key is one mistake,
/// reported once), and two runs with one experiment `name` (they would share a log folder and
/// give summary rows that cannot be told apart). A folder's experiments are separate files:
/// one that does not load fails as its own row, the others still run.
fn check_up_front(jobs: &[Job], user_sets: &[String], folder: bool) -> Result<(), Error> {
    let zoo: kiln_core::config::ZooExpander = &kiln_model_zoo::expand;
    let mut names: Vec<(String, &Job)> = Vec::new();
    for job in jobs {
        let sets: Vec<String> = job.sets.iter().chain(user_sets).cloned().collect();
        match kiln_core::config::load_requested(&job.file, &sets, zoo) {
            Ok(config) => {
                if let Some((_, first)) = names.iter().find(|(n, _)| *n == config.name) {
                    return Err(Error::Config(format!(
                        "{} and {} both have name = {:?}: their runs would share one log folder; give each its own name",
                        first.label, job.label, config.name
                    )));
                }
                names.push((config.name, job));
            }
            Err(e) if !folder => {
                return Err(Error::Config(format!(
                    "run {} of the sweep does not load, so no run was started: {e}",
                    job.label
                )));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// Records, in every job, the config keys whose values differ between the jobs (what a folder
/// of experiments compares), for the HParams dashboard.
fn with_varying_keys(mut jobs: Vec<Job>, user_sets: &[String]) -> Vec<Job> {
    let zoo: kiln_core::config::ZooExpander = &kiln_model_zoo::expand;
    let flat: Vec<Vec<(String, toml::Value)>> = jobs
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
    for job in &mut jobs {
        job.hparams = keys.clone();
    }
    jobs
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

fn run_one(
    exe: &Path,
    job: &Job,
    index: usize,
    root: &Path,
    sets: &[String],
    threads: usize,
    children: &Children,
) -> Outcome {
    let started = Instant::now();
    let file = &job.file;
    let result_file = root.join(format!(".result-{}-{index}.toml", std::process::id()));
    let mut cmd = Command::new(exe);
    cmd.arg(file)
        .arg("--quiet")
        .arg("--logdir")
        .arg(root)
        .arg("--result-file")
        .arg(&result_file)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for key in &job.hparams {
        cmd.arg("--hparam").arg(key);
    }
    // The sweep's own values first, then the user's --set, which win.
    for set in job.sets.iter().chain(sets) {
        cmd.arg("--set").arg(set);
    }
    let result = match children.output(&mut cmd) {
        Err(e) => Err(format!("could not start: {e}")),
        Ok(out) if out.status.code() == Some(130) => Err("interrupted".into()),
        Ok(out) if !out.status.success() => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let line = stderr
                .lines()
                .rfind(|l| l.starts_with("error:"))
                .unwrap_or("failed without a message");
            Err(format!(
                "exit {}: {}",
                out.status.code().unwrap_or(-1),
                line.trim_start_matches("error: ")
            ))
        }
        Ok(_) => std::fs::read_to_string(&result_file)
            .map_err(|e| format!("finished but left no result ({e})"))
            .and_then(|text| toml::from_str(&text).map_err(|e| format!("unreadable result: {e}"))),
    };
    let _ = std::fs::remove_file(&result_file);
    Outcome {
        label: job.label.clone(),
        result,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The result of an earlier complete run of `job` under `root`, if its config is the one `job`
/// would run now (the seed aside when `job` leaves it to chance).
fn completed(job: &Job, user_sets: &[String], root: &Path) -> Option<RunResult> {
    let sets: Vec<String> = job.sets.iter().chain(user_sets).cloned().collect();
    let zoo: kiln_core::config::ZooExpander = &kiln_model_zoo::expand;
    let want = kiln_core::config::load_requested(&job.file, &sets, zoo).ok()?;
    let runs = std::fs::read_dir(root.join(&want.name)).ok()?;
    runs.filter_map(|e| e.ok().map(|e| e.path()))
        .find_map(|run| {
            let result: RunResult =
                toml::from_str(&std::fs::read_to_string(run.join(RESULT_FILE)).ok()?).ok()?;
            let had = kiln_core::config::load_requested(&run.join("config.toml"), &[], zoo).ok()?;
            let mut same = want.clone();
            if same.seed.is_none() {
                same.seed = had.seed;
            }
            (kiln_core::config::resolve(same) == kiln_core::config::resolve(had)).then_some(result)
        })
}

fn accuracy(o: &Outcome) -> f64 {
    o.result
        .as_ref()
        .map_or(f64::NEG_INFINITY, |r| r.test_accuracy)
}

fn describe(o: &Outcome) -> String {
    match &o.result {
        Ok(r) => format!(
            "{}: test accuracy {:.4} after {} epochs ({:.1}s)",
            r.name, r.test_accuracy, r.epochs, o.seconds
        ),
        Err(why) => format!("{}: FAILED, {why}", o.label),
    }
}

fn markdown(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| rank | run | test accuracy | test loss | train loss | epochs | seconds | status |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (i, o) in outcomes.iter().enumerate() {
        out.push_str(&match &o.result {
            Ok(r) => format!(
                "| {} | {} | {:.4} | {:.4} | {:.4} | {} | {:.1} | ok |\n",
                i + 1,
                r.name,
                r.test_accuracy,
                r.test_loss,
                r.train_loss,
                r.epochs,
                o.seconds
            ),
            Err(why) => format!(
                "| {} | {} | | | | | {:.1} | failed: {} |\n",
                i + 1,
                o.label,
                o.seconds,
                why.replace('|', "/")
            ),
        });
    }
    out
}

fn csv(outcomes: &[Outcome]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from(
        "run,source,test_accuracy,test_loss,train_loss,epochs,seconds,status,run_dir\n",
    );
    for o in outcomes {
        let file = quote(&o.label);
        out.push_str(&match &o.result {
            Ok(r) => format!(
                "{},{file},{},{},{},{},{:.3},ok,{}\n",
                quote(&r.name),
                r.test_accuracy,
                r.test_loss,
                r.train_loss,
                r.epochs,
                o.seconds,
                quote(&r.run_dir.display().to_string())
            ),
            Err(why) => format!(
                ",{file},,,,,{:.3},{},\n",
                o.seconds,
                quote(&format!("failed: {why}"))
            ),
        });
    }
    out
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    // Atomic, and never over a link or a device someone put in the sweep's folder.
    kiln_core::checkpoint::write_atomic(path, text.as_bytes())
}
