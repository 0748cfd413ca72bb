//! What the user sees while training: a progress bar (epoch, step, loss, samples/s) and one
//! summary line per epoch, on stdout. `--quiet` silences both; errors go to stderr elsewhere.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Set once stdout has refused a write (a closed pipe, a full disk): the console is then
/// silent for the rest of the process.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout and flushes it, where `print!` would panic on a closed pipe
/// (`runner exp.toml | head -1`) or a full disk (`> /dev/full`). The console is a view of
/// the run, not its record (the run folder is): when stdout goes away, training goes on and
/// nothing more is printed. Use it, or [`say!`](crate::say), for everything kiln prints.
pub fn print(text: &str) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        STDOUT_GONE.store(true, Ordering::Relaxed);
    }
}

/// `println!` through [`print`]: never panics, silent once stdout is gone.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::log::console::print(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// [`print`] for stderr: warnings and errors, never a panic when stderr is a closed pipe.
pub fn print_err(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// `eprintln!` through [`print_err`].
#[macro_export]
macro_rules! say_err {
    ($($arg:tt)*) => {
        $crate::log::console::print_err(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Console output of one run.
pub struct Console {
    quiet: bool,
    bar: ProgressBar,
    epoch_start: Instant,
    last_draw: Instant,
}

impl Console {
    pub fn new(quiet: bool) -> Self {
        Console {
            quiet,
            bar: ProgressBar::hidden(),
            epoch_start: Instant::now(),
            last_draw: Instant::now(),
        }
    }

    /// A line of text (not shown with `--quiet`).
    pub fn line(&self, text: &str) {
        if !self.quiet {
            if self.bar.is_hidden() {
                print(&format!("{text}\n"));
            } else {
                self.bar.println(text);
            }
        }
    }

    /// Starts the bar for an epoch of `steps` steps.
    pub fn start_epoch(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.epoch_start = Instant::now();
        if self.quiet {
            return;
        }
        // indicatif hides the bar by itself when stdout is not a terminal.
        self.bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stdout());
        let template = format!("epoch {epoch}/{epochs} {{bar:30}} {{pos}}/{{len}} {{msg}}");
        self.bar.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    }

    /// Records one finished step; redraws at most ten times a second.
    pub fn step(&mut self, loss: f32, samples_seen: usize) {
        self.bar.inc(1);
        if self.bar.is_hidden() || self.last_draw.elapsed().as_millis() < 100 {
            return;
        }
        self.last_draw = Instant::now();
        let rate = samples_seen as f64 / self.epoch_start.elapsed().as_secs_f64().max(1e-9);
        self.bar
            .set_message(format!("loss {loss:.4}  {rate:.0} samples/s"));
    }

    /// Clears the bar and prints the epoch's summary line.
    pub fn end_epoch(&mut self, summary: &str) {
        self.bar.finish_and_clear();
        self.bar = ProgressBar::hidden();
        self.line(summary);
    }
}
