//! What Ctrl-C and SIGTERM mean, by what the runner is doing when they come.
//!
//! - Before training begins (reading data, downloading, `eval`, `predict`, `export`): leave at
//!   once with exit 130; nothing of a run exists yet to save.
//! - Training, first signal: finish the step, write a checkpoint, flush the logs, exit 130
//!   (the loop polls [`Signals::requested`]).
//! - Training, second signal ("I mean it"): give that checkpoint one more second, then leave
//!   saying what is lost.
//! - Sweeping: never leave from here. Each signal is forwarded to the running runs (the sweep
//!   counts them, [`Signals::count`]), and the sweep prints its summary and interrupted line
//!   once they have ended, however many signals come.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

/// What the process is doing, for the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Training = 1,
    Sweeping = 2,
}

/// The state the signal handler shares with the rest of the runner.
pub struct Signals {
    /// Set by the first signal; the training loop and the sweep poll it.
    pub requested: Arc<AtomicBool>,
    count: AtomicUsize,
    phase: AtomicU8,
}

impl Signals {
    /// Installs the handler (SIGINT, SIGTERM); a failure to install is a warning.
    pub fn install() -> Arc<Signals> {
        let signals = Arc::new(Signals {
            requested: Arc::new(AtomicBool::new(false)),
            count: AtomicUsize::new(0),
            phase: AtomicU8::new(Phase::Starting as u8),
        });
        let shared = signals.clone();
        if let Err(e) = ctrlc::set_handler(move || shared.on_signal()) {
            kiln_core::say_err!(
                "warning: cannot catch Ctrl-C ({e}); an interrupted run may lose its last epoch's logs"
            );
        }
        signals
    }

    pub fn enter(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// Signals received so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Runs on ctrlc's own thread, so it may wait.
    fn on_signal(&self) {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        self.requested.store(true, Ordering::SeqCst);
        let phase = match self.phase.load(Ordering::SeqCst) {
            1 => Phase::Training,
            2 => Phase::Sweeping,
            _ => Phase::Starting,
        };
        match phase {
            Phase::Starting => {
                kiln_core::say_err!(
                    "error: interrupted before training began; nothing was written"
                );
                std::process::exit(130);
            }
            Phase::Training if n >= 2 => {
                // The main thread ends the process if its checkpoint is done within this.
                std::thread::sleep(Duration::from_secs(1));
                kiln_core::say_err!(
                    "error: interrupted twice; left without the checkpoint of the step in progress: --resume continues from the newest checkpoint in the run's checkpoints/ folder (the steps after it are lost)"
                );
                std::process::exit(130);
            }
            Phase::Training | Phase::Sweeping => {}
        }
    }
}
