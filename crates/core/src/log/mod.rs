//! Where results go: TensorBoard event files ([`events`]), the run folder ([`run_dir`]) and the
//! console ([`console`]).

pub mod console;
pub mod events;
pub mod graph;
pub mod histogram;
pub mod hparams;
pub mod media;
pub mod plugin;
pub mod pr_curve;
pub mod projector;
pub mod run_dir;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
pub use console::Console;
pub use events::EventWriter;

/// The event files of one run, Keras-style: `train/` and `test/` side by side so that their
/// curves of the same tag overlay in one TensorBoard chart.
/// The run folder itself holds the HParams session (see [`hparams`]).
pub struct RunLog {
    pub dir: PathBuf,
    pub train: EventWriter,
    pub test: EventWriter,
    /// The held-out part of the training set (`[data] validation`), if any.
    pub validation: Option<EventWriter>,
    pub session: EventWriter,
}

impl RunLog {
    /// A new run's event files; `validation/` too when the run holds a validation split.
    pub fn create(dir: &Path, validation: bool) -> Result<Self> {
        Ok(RunLog {
            dir: dir.to_path_buf(),
            train: EventWriter::create(&dir.join("train"))?,
            test: EventWriter::create(&dir.join("test"))?,
            validation: match validation {
                true => Some(EventWriter::create(&dir.join("validation"))?),
                false => None,
            },
            session: EventWriter::create(dir)?,
        })
    }

    /// Reopens the event files of a run folder at the lengths a checkpoint recorded
    /// ([`Self::lengths`]).
    pub fn resume(dir: &Path, lengths: &[(PathBuf, u64)], validation: bool) -> Result<Self> {
        let writer = |sub: &str| -> Result<EventWriter> {
            let (file, length) = lengths
                .iter()
                .find(|(f, _)| f.parent() == Some(Path::new(sub)))
                .ok_or_else(|| {
                    Error::Data(format!(
                        "the checkpoint names no event file in {}",
                        dir.join(sub).display()
                    ))
                })?;
            EventWriter::resume(&dir.join(file), *length)
        };
        Ok(RunLog {
            dir: dir.to_path_buf(),
            train: writer("train")?,
            test: writer("test")?,
            validation: match validation {
                true => Some(writer("validation")?),
                false => None,
            },
            session: writer("")?,
        })
    }

    fn writers(&mut self) -> impl Iterator<Item = &mut EventWriter> {
        [
            Some(&mut self.train),
            Some(&mut self.test),
            self.validation.as_mut(),
            Some(&mut self.session),
        ]
        .into_iter()
        .flatten()
    }

    /// Each event file, relative to the run folder, with its length once flushed.
    pub fn lengths(&mut self) -> Result<Vec<(PathBuf, u64)>> {
        let dir = self.dir.clone();
        let mut out = vec![];
        for writer in self.writers() {
            let length = writer.flushed_len()?;
            let relative = writer.path().strip_prefix(&dir).unwrap_or(writer.path());
            out.push((relative.to_path_buf(), length));
        }
        Ok(out)
    }

    pub fn flush(&mut self) -> Result<()> {
        self.writers().try_for_each(|w| w.flush())
    }

    /// Marks how the HParams session ended and flushes everything.
    pub fn finish(&mut self, end: hparams::RunEnd) -> Result<()> {
        let now = events::wall_time();
        self.session.summary(hparams::session_end(end, now), 0)?;
        self.flush()
    }
}
