//! The sweep parent's side of a scheduler: reads the figures the runs write after each
//! epoch, asks [`Scheduler`] and writes its verdicts back, and renews the lease that tells
//! the runs someone is deciding. Called in a loop while the parent waits, with either
//! launcher.

use std::time::{Duration, Instant};

use super::manifest::{Manifest, Verdict};
use super::scheduler::{Decision, Scheduler};

const LEASE_EVERY: Duration = Duration::from_secs(1);

pub struct Watch<'m> {
    manifest: &'m Manifest,
    scheduler: Option<Scheduler>,
    /// Per task: epochs already fed to the scheduler.
    fed: Vec<usize>,
    /// Per task: the last epoch a verdict exists for (decided by an earlier parent, or
    /// now); a stopped task reports nothing more.
    decided: Vec<usize>,
    stopped: Vec<bool>,
    /// Per task: `epochs.toml`'s size and time when last read (unchanged files are skipped).
    seen: Vec<Option<(u64, std::time::SystemTime)>>,
    lease: Option<Instant>,
}

impl<'m> Watch<'m> {
    /// Picks up the verdicts already written (an earlier parent's, before a Ctrl-C or
    /// `--no-wait`): those decisions stand.
    pub fn new(manifest: &'m Manifest) -> Self {
        let n = manifest.tasks.len();
        let verdicts: Vec<Option<Verdict>> = (0..n).map(|i| manifest.verdict(i)).collect();
        Watch {
            manifest,
            scheduler: manifest.scheduler.clone().map(Scheduler::new),
            fed: vec![0; n],
            decided: verdicts
                .iter()
                .map(|v| v.as_ref().map_or(0, |v| v.epoch))
                .collect(),
            stopped: verdicts
                .iter()
                .map(|v| v.as_ref().is_some_and(|v| v.stop.is_some()))
                .collect(),
            seen: vec![None; n],
            lease: None,
        }
    }

    /// Reads what the runs wrote since the last call and answers each decision due. Cheap
    /// when nothing changed (one `stat` per task); does nothing without a scheduler.
    pub fn poll(&mut self) {
        let Some(scheduler) = &mut self.scheduler else {
            return;
        };
        if self.lease.is_none_or(|t| t.elapsed() >= LEASE_EVERY) {
            if let Err(e) = self.manifest.renew_lease() {
                kiln_core::say_err!("warning: {e}; runs will not wait for the scheduler");
            }
            self.lease = Some(Instant::now());
        }
        for (i, task) in self.manifest.tasks.iter().enumerate() {
            let stamp = self.manifest.epochs_stamp(i);
            if stamp.is_none() || stamp == self.seen[i] {
                continue;
            }
            self.seen[i] = stamp;
            let epochs = self.manifest.epochs(i);
            let metric = scheduler.config().metric();
            for m in &epochs {
                if self.stopped[i] {
                    break;
                }
                if m.epoch <= self.fed[i] {
                    continue;
                }
                self.fed[i] = m.epoch;
                let decision = scheduler.report(i, m.epoch, task.epochs, m.get(metric));
                // A decision already written stands; one for an epoch the run has since
                // passed (no parent was watching then) would come too late to matter.
                let newest = epochs.last().is_some_and(|l| l.epoch == m.epoch);
                let Some(decision) = decision.filter(|_| m.epoch > self.decided[i] && newest)
                else {
                    continue;
                };
                let stop = match decision {
                    Decision::Continue => None,
                    Decision::Stop(why) => Some(why),
                };
                self.stopped[i] = stop.is_some();
                self.decided[i] = m.epoch;
                let verdict = Verdict {
                    epoch: m.epoch,
                    by: scheduler.config().title().to_string(),
                    stop,
                };
                if let Err(e) = self.manifest.write_verdict(i, &verdict) {
                    kiln_core::say_err!("warning: cannot tell run {} its verdict: {e}", task.label);
                }
            }
        }
    }
}
