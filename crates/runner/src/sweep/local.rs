//! `runner sweep` on this machine (the default launcher): each run is a child process
//! (`runner sweep-task MANIFEST INDEX`), `--jobs` at a time, each given its share of the
//! cores. Ctrl-C is forwarded to the children ([`Children`]); the scheduler's verdicts are
//! answered from the thread that watches them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kiln_core::Error;

use super::children::Children;
use super::manifest::Manifest;
use super::watch::Watch;
use super::{Outcome, summary};
use crate::signals::Signals;

pub struct LocalRun<'a> {
    pub manifest: &'a Manifest,
    /// The tasks to run, by index.
    pub pending: &'a [usize],
    /// Runs at a time; default one per core.
    pub jobs: Option<usize>,
    pub quiet: bool,
    pub signals: &'a Signals,
}

pub fn run(l: &LocalRun) -> Result<Vec<Outcome>, Error> {
    let manifest = l.manifest;
    manifest.install(l.pending)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = l.jobs.unwrap_or(cores).clamp(1, l.pending.len().max(1));
    // Each child gets its share of the cores, so `jobs` runs never oversubscribe them.
    let threads = (cores / jobs).max(1);
    if !l.quiet {
        kiln_core::say!(
            "sweep {}: {} runs to do, {jobs} at a time ({threads} thread(s) each); logs in {}",
            manifest.name,
            l.pending.len(),
            manifest.root.display()
        );
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("cannot find the runner executable", "runner", e))?;
    let queue = Mutex::new(l.pending.iter().enumerate());
    let outcomes = Mutex::new(Vec::new());
    let children = Children::default();
    let mut watch = Watch::new(manifest);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    // The lock is taken and released inside `next`, never held during a run.
                    let next = || {
                        let stop = l.signals.requested.load(Ordering::SeqCst);
                        queue
                            .lock()
                            .ok()
                            .filter(|_| !stop)
                            .and_then(|mut q| q.next())
                    };
                    while let Some((n, &index)) = next() {
                        let outcome = run_one(&exe, manifest, index, threads, &children);
                        if !l.quiet {
                            kiln_core::say!(
                                "[{}/{}] {}",
                                n + 1,
                                l.pending.len(),
                                summary::describe(&outcome)
                            );
                        }
                        if let Ok(mut all) = outcomes.lock() {
                            all.push(outcome);
                        }
                    }
                })
            })
            .collect();
        // This thread watches for Ctrl-C and answers the scheduler while the workers wait on
        // their children.
        while workers.iter().any(|w| !w.is_finished()) {
            children.interrupt(l.signals.count());
            watch.poll();
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    Ok(outcomes.into_inner().unwrap_or_default())
}

fn run_one(
    exe: &Path,
    manifest: &Manifest,
    index: usize,
    threads: usize,
    children: &Children,
) -> Outcome {
    let started = Instant::now();
    let mut cmd = Command::new(exe);
    cmd.arg("sweep-task")
        .arg(manifest.path())
        .arg(index.to_string())
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
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
        Ok(_) => manifest.result(index),
    };
    Outcome {
        label: manifest.tasks[index].label.clone(),
        result,
        seconds: started.elapsed().as_secs_f64(),
    }
}
