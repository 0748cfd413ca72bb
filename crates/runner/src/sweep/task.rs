//! `runner sweep-task MANIFEST INDEX`: one run of a sweep, as a local child process or a
//! Slurm array task starts it. It resumes the run's unfinished folder when there is one (a
//! requeued or interrupted task goes on from its checkpoint, bit-exact), writes its figures
//! after every epoch for the sweep's scheduler, and at the scheduler's decision epochs waits
//! for its verdict while a sweep parent is watching.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_core::Error;
use kiln_core::train::{EpochMetrics, Supervisor, SupervisorStop};

use super::manifest::{self, Manifest};
use crate::signals::Signals;

/// Runs task `index`; `progress` prints the epoch lines (a Slurm task's log keeps them).
pub fn run(
    manifest_path: &Path,
    index: usize,
    progress: bool,
    signals: &Signals,
) -> Result<(), Error> {
    let manifest = Manifest::read(manifest_path)?;
    let task = manifest.tasks.get(index).cloned().ok_or_else(|| {
        Error::Config(format!(
            "{} has {} tasks (0 to {}); there is no task {index}",
            manifest_path.display(),
            manifest.tasks.len(),
            manifest.tasks.len().saturating_sub(1)
        ))
    })?;
    let resume = unfinished_run(&manifest, index);
    if resume.is_none() {
        manifest.clear_task(index)?;
    }
    let history = if resume.is_some() {
        manifest.epochs(index)
    } else {
        Vec::new()
    };
    let args = crate::TrainArgs {
        experiment: Some(task.file.clone()),
        sets: task.sets.clone(),
        logdir: manifest.root.clone(),
        quiet: !progress,
        resume,
        result_file: Some(manifest.result_file(index)),
        hparams: task.hparams.clone(),
    };
    let mailbox = Mailbox {
        manifest,
        index,
        history: Mutex::new(history),
        interrupt: signals.requested.clone(),
        warned: AtomicBool::new(false),
    };
    let supervisor = Supervisor(Arc::new(move |m: &EpochMetrics| mailbox.after_epoch(m)));
    crate::run(&args, signals, Some(supervisor))
}

/// The newest run folder of task `index` if it has a checkpoint, no result (not complete)
/// and the config the task would run now: where it goes on.
pub fn unfinished_run(manifest: &Manifest, index: usize) -> Option<PathBuf> {
    let task = manifest.tasks.get(index)?;
    let run = kiln_core::checkpoint::latest_run(&manifest.root, &task.name).ok()?;
    if run.join(super::RESULT_FILE).exists() || !super::same_config(task, &run) {
        return None;
    }
    // A run whose result was removed (to run it again) has nothing left to train.
    let last = kiln_core::checkpoint::find(&run, &kiln_core::checkpoint::Which::Last).ok()?;
    (last.checkpoint.epochs_done < task.epochs).then_some(run)
}

/// The run's side of `tasks/<index>/`.
struct Mailbox {
    manifest: Manifest,
    index: usize,
    /// The figures written so far (an earlier attempt's too, when resumed).
    history: Mutex<Vec<EpochMetrics>>,
    interrupt: Arc<AtomicBool>,
    /// "Nobody is deciding" said once.
    warned: AtomicBool,
}

impl Mailbox {
    fn after_epoch(&self, m: &EpochMetrics) -> Option<SupervisorStop> {
        let dir = self.manifest.task_dir(self.index);
        if let Ok(mut history) = self.history.lock() {
            // A resumed run trains again the epoch it was stopped in.
            history.retain(|h| h.epoch < m.epoch);
            history.push(*m);
            if let Err(e) = manifest::write_epochs(&dir, &history) {
                kiln_core::say_err!("warning: the sweep's scheduler will not see this run: {e}");
            }
        }
        let scheduler = self.manifest.scheduler.as_ref()?;
        let epochs = self.manifest.tasks[self.index].epochs;
        let waits = scheduler.decides_at(m.epoch, epochs);
        let mut lease_checked: Option<Instant> = None;
        loop {
            match self.manifest.verdict(self.index) {
                Some(v) if v.stop.is_some() && v.epoch <= m.epoch => {
                    return Some(SupervisorStop {
                        by: v.by,
                        reason: v.stop.unwrap_or_default(),
                    });
                }
                Some(v) if v.epoch >= m.epoch => return None,
                _ if !waits || self.interrupt.load(Ordering::SeqCst) => return None,
                _ => {}
            }
            // The lease is renewed every second: look at it about as often.
            if lease_checked.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            lease_checked = Some(Instant::now());
            if !self.manifest.lease_is_fresh(self.index) {
                if !self.warned.swap(true, Ordering::SeqCst) {
                    kiln_core::say_err!(
                        "warning: no sweep is watching {} (its lease is stale); this run goes on without {}'s verdicts",
                        self.manifest.root.display(),
                        scheduler.title()
                    );
                }
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
