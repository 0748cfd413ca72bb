//! What the user sees while training: a progress bar (epoch, step, loss, samples/s) and one
//! summary line per epoch, on stdout. `--quiet` silences both; errors go to stderr elsewhere.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
                println!("{text}");
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
