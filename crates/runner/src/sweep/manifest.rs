//! The sweep as its tasks read it: `manifest.toml` in the sweep's log folder lists every run
//! (`[[task]]`, numbered from 0 in order), and `tasks/<index>/` is each run's mailbox with
//! the sweep parent. Whatever launches a task (a local child process, a Slurm array task)
//! runs `runner sweep-task MANIFEST INDEX`; the folder is on the filesystem both sides see.
//!
//! In `tasks/<index>/`: `epochs.toml` (the run's figures so far, written after every epoch),
//! `verdict.toml` (the scheduler's latest decision, written by the parent), `result.toml` (the
//! final figures), `clock` (written to read the filesystem's time) and, under Slurm, the
//! task's log `slurm-<job>_<index>.out`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kiln_core::Error;
use kiln_core::train::EpochMetrics;
use serde::{Deserialize, Serialize};

use super::scheduler::SchedulerConfig;

pub const FILE: &str = "manifest.toml";
const EPOCHS: &str = "epochs.toml";
const VERDICT: &str = "verdict.toml";
const RESULT: &str = "result.toml";
/// Touched by a sweep parent while it watches its runs: a run waits for a verdict only while
/// it is fresh ([`lease_is_fresh`]).
const LEASE: &str = "scheduler.lease";
/// A lease older than this (against the clock of the filesystem that holds it) means nobody
/// is deciding: runs go on without verdicts.
const LEASE_LIFE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The sweep's name: its folder under `--logdir`.
    pub name: String,
    /// The sweep's log folder, absolute: runs go in `<root>/<run name>/`.
    pub root: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerConfig>,
    #[serde(rename = "task")]
    pub tasks: Vec<Task>,
}

/// One run of a sweep: an experiment file and the `--set`s that make it this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// How the run is named in messages and tables.
    pub label: String,
    pub file: PathBuf,
    /// The sweep's values, then the user's `--set`s (which win).
    pub sets: Vec<String>,
    /// The config keys this sweep varies, recorded as HParams.
    pub hparams: Vec<String>,
    /// The experiment's `name` (its folder under the sweep's), and its `train.epochs`; a file
    /// that does not load keeps its label and 0.
    pub name: String,
    pub epochs: usize,
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("cannot read the sweep manifest", path, e))?;
        toml::from_str(&text).map_err(|e| {
            Error::Config(format!(
                "{}: {}; it is written by `runner sweep`, run that again",
                path.display(),
                e.message()
            ))
        })
    }

    pub fn path(&self) -> PathBuf {
        self.root.join(FILE)
    }

    /// The manifest as it stands on disk, if any.
    pub fn on_disk(&self) -> Option<Manifest> {
        Manifest::read(&self.path()).ok()
    }

    /// Writes the manifest for a launch of the `pending` tasks. A manifest that differs from
    /// the one on disk renumbers the runs, so every mailbox is emptied; a pending task that
    /// will start from nothing (not resume) gets an empty one too, or an earlier attempt's
    /// verdict would stand for it.
    pub fn install(&self, pending: &[usize]) -> Result<(), Error> {
        let changed = self.on_disk().as_ref() != Some(self);
        self.write()?;
        for i in 0..self.tasks.len() {
            let fresh = pending.contains(&i) && super::task::unfinished_run(self, i).is_none();
            if changed || fresh {
                self.clear_task(i)?;
            }
        }
        Ok(())
    }

    fn write(&self) -> Result<(), Error> {
        let text = toml::to_string(self)
            .map_err(|e| Error::Run(format!("cannot write the sweep manifest: {e}")))?;
        kiln_core::checkpoint::write_atomic(&self.path(), text.as_bytes())
    }

    pub fn task_dir(&self, index: usize) -> PathBuf {
        self.root.join("tasks").join(index.to_string())
    }

    pub fn result_file(&self, index: usize) -> PathBuf {
        self.task_dir(index).join(RESULT)
    }

    /// Empties a task's mailbox for a run that starts from nothing (a Slurm log stays).
    pub fn clear_task(&self, index: usize) -> Result<(), Error> {
        let dir = self.task_dir(index);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("cannot create the task folder", &dir, e))?;
        for file in [EPOCHS, VERDICT, RESULT] {
            match std::fs::remove_file(dir.join(file)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("cannot clear the task folder", dir.join(file), e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The run's final figures, as its task wrote them when it completed.
    pub fn result(&self, index: usize) -> Result<super::RunResult, String> {
        std::fs::read_to_string(self.result_file(index))
            .map_err(|e| format!("finished but left no result ({e})"))
            .and_then(|text| toml::from_str(&text).map_err(|e| format!("unreadable result: {e}")))
    }

    /// `epochs.toml`'s size and modification time, to tell whether it changed.
    pub fn epochs_stamp(&self, index: usize) -> Option<(u64, SystemTime)> {
        let meta = std::fs::metadata(self.task_dir(index).join(EPOCHS)).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    }

    pub fn epochs(&self, index: usize) -> Vec<EpochMetrics> {
        read_epochs(&self.task_dir(index))
    }

    pub fn verdict(&self, index: usize) -> Option<Verdict> {
        read_verdict(&self.task_dir(index))
    }

    pub fn write_verdict(&self, index: usize, verdict: &Verdict) -> Result<(), Error> {
        let text = toml::to_string(verdict).unwrap_or_default();
        kiln_core::checkpoint::write_atomic(&self.task_dir(index).join(VERDICT), text.as_bytes())
    }

    /// Says "a parent is deciding": rewritten every second or so while it watches.
    pub fn renew_lease(&self) -> Result<(), Error> {
        kiln_core::checkpoint::write_atomic(
            &self.root.join(LEASE),
            format!("pid {}\n", std::process::id()).as_bytes(),
        )
    }

    /// Whether a parent renewed the lease lately, judged by the clock of the filesystem
    /// that holds it (whichever node asks): the task's `clock` file is written now, and its
    /// time compared with the lease's.
    pub fn lease_is_fresh(&self, index: usize) -> bool {
        let clock = self.task_dir(index).join("clock");
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let now = std::fs::write(&clock, std::process::id().to_string())
            .ok()
            .and_then(|()| modified(&clock))
            .unwrap_or_else(SystemTime::now);
        modified(&self.root.join(LEASE))
            .is_some_and(|lease| now.duration_since(lease).unwrap_or_default() < LEASE_LIFE)
    }
}

/// The scheduler's latest decision for a run: after `epoch`, go on, or stop for `stop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub epoch: usize,
    /// Who decided ("ASHA").
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct EpochsFile {
    #[serde(default)]
    epoch: Vec<EpochMetrics>,
}

fn read_epochs(dir: &Path) -> Vec<EpochMetrics> {
    std::fs::read_to_string(dir.join(EPOCHS))
        .ok()
        .and_then(|text| toml::from_str::<EpochsFile>(&text).ok())
        .map_or_else(Vec::new, |f| f.epoch)
}

/// The run's figures so far, rewritten whole (atomically) after every epoch.
pub fn write_epochs(dir: &Path, epochs: &[EpochMetrics]) -> Result<(), Error> {
    let text = toml::to_string(&EpochsFile {
        epoch: epochs.to_vec(),
    })
    .unwrap_or_default();
    kiln_core::checkpoint::write_atomic(&dir.join(EPOCHS), text.as_bytes())
}

fn read_verdict(dir: &Path) -> Option<Verdict> {
    toml::from_str(&std::fs::read_to_string(dir.join(VERDICT)).ok()?).ok()
}
