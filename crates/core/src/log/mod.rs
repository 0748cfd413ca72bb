//! Where results go: TensorBoard event files ([`events`]), the run folder ([`run_dir`]) and the
//! console ([`console`]).

pub mod console;
pub mod events;
pub mod histogram;
pub mod hparams;
pub mod run_dir;

use std::path::{Path, PathBuf};

use crate::error::Result;
pub use console::Console;
pub use events::EventWriter;

/// The event files of one run, Keras-style: `train/` and `test/` side by side so that their
/// curves of the same tag overlay in one TensorBoard chart.
/// The run folder itself holds the HParams session (see [`hparams`]).
pub struct RunLog {
    pub dir: PathBuf,
    pub train: EventWriter,
    pub test: EventWriter,
    pub session: EventWriter,
}

impl RunLog {
    pub fn create(dir: &Path) -> Result<Self> {
        Ok(RunLog {
            dir: dir.to_path_buf(),
            train: EventWriter::create(&dir.join("train"))?,
            test: EventWriter::create(&dir.join("test"))?,
            session: EventWriter::create(dir)?,
        })
    }

    pub fn flush(&mut self) -> Result<()> {
        self.train.flush()?;
        self.test.flush()?;
        self.session.flush()
    }

    /// Marks how the HParams session ended and flushes everything.
    pub fn finish(&mut self, end: hparams::RunEnd) -> Result<()> {
        let now = events::wall_time();
        self.session.summary(hparams::session_end(end, now), 0)?;
        self.flush()
    }
}
