//! TensorBoard event files.
//!
//! tensorboard-rs encodes records (length, masked CRC-32C, payload) and builds `Summary`
//! protos. Its own `SummaryWriter` writes from a thread that panics on any I/O error, so kiln
//! owns the file: writes are buffered, errors come back as [`Error::Io`], and `flush` is called
//! at every epoch end so that TensorBoard sees each epoch as it finishes.
//!
//! One tag, one kind: a writer refuses a value whose plugin differs from the one its tag was
//! first written with (see [`super::plugin`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use protobuf::Message;
use tensorboard_proto::event::Event;
use tensorboard_proto::summary::Summary;
use tensorboard_rs::record_writer::RecordWriter;

use super::plugin::{self, Plugin};
use crate::error::{Error, Result};

/// One `events.out.tfevents.*` file in one folder (a TensorBoard "run").
pub struct EventWriter {
    path: PathBuf,
    records: RecordWriter<BufWriter<File>>,
    /// The plugin each tag written so far belongs to.
    kinds: HashMap<String, String>,
}

impl EventWriter {
    /// Creates `dir` if needed and a new event file in it, named as TensorFlow names them.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("cannot create the log folder", dir, e))?;
        let now = wall_time();
        let host = gethostname::gethostname()
            .to_string_lossy()
            .replace(['/', '\\'], "_");
        let name = format!(
            "events.out.tfevents.{:010}.{host}.{}.0",
            now as u64,
            std::process::id()
        );
        let path = dir.join(name);
        let file = File::create_new(&path)
            .map_err(|e| Error::io("cannot create the event file", &path, e))?;
        let mut writer = EventWriter {
            path,
            records: RecordWriter::new(BufWriter::new(file)),
            kinds: HashMap::new(),
        };
        let mut version = Event::new();
        version.set_wall_time(now);
        version.set_file_version("brain.Event:2".into());
        writer.write(&version)?;
        writer.flush()?;
        Ok(writer)
    }

    /// The event file's path.
    /// Continues the event file `path` after cutting it back to `length` bytes (what it held
    /// at a checkpoint), so a resumed run's events follow the checkpoint's without the ones a
    /// stopped process wrote after it.
    pub fn resume(path: &Path, length: u64) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io("cannot reopen the event file", path, e))?;
        let current = file
            .metadata()
            .map_err(|e| Error::io("cannot read the event file", path, e))?
            .len();
        if current < length {
            return Err(Error::Data(format!(
                "the event file {} is shorter ({current} bytes) than when the checkpoint was written ({length} bytes); it was damaged, so the run cannot continue in it",
                path.display()
            )));
        }
        file.set_len(length)
            .map_err(|e| Error::io("cannot truncate the event file", path, e))?;
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))
            .map_err(|e| Error::io("cannot reopen the event file", path, e))?;
        Ok(EventWriter {
            path: path.to_path_buf(),
            records: RecordWriter::new(BufWriter::new(file)),
            kinds: HashMap::new(),
        })
    }

    /// Bytes written so far, after flushing.
    pub fn flushed_len(&mut self) -> Result<u64> {
        self.flush()?;
        std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|e| Error::io("cannot read the event file", &self.path, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a scalar at `step`.
    pub fn scalar(&mut self, tag: &str, value: f32, step: usize) -> Result<()> {
        let mut v = Plugin::Scalars.value(tag, vec![]);
        // The legacy `simple_value` field: both TensorBoard's server and its legacy
        // `EventAccumulator` read it as a scalar.
        v.set_simple_value(value);
        let mut summary = Summary::new();
        summary.mut_value().push(v);
        self.summary(summary, step)
    }

    /// Appends any summary at `step`. As TensorFlow's writers do, only a tag's first value in
    /// this file keeps its metadata (TensorBoard reads the kind from the first one), which
    /// keeps a `batch_loss` per step small.
    pub fn summary(&mut self, mut summary: Summary, step: usize) -> Result<()> {
        for value in summary.mut_value().iter_mut() {
            let kind = plugin::of(value);
            match self.kinds.get(value.get_tag()) {
                Some(first) if first != kind => {
                    return Err(Error::Run(format!(
                        "bug: the tag {} of {} was written as {first} and now as {kind}; TensorBoard would show neither",
                        value.get_tag(),
                        self.path.display()
                    )));
                }
                // Metadata with content of its own (PR curves' thresholds) is kept whole.
                Some(_)
                    if value
                        .get_metadata()
                        .get_plugin_data()
                        .get_content()
                        .is_empty() =>
                {
                    value.clear_metadata();
                }
                Some(_) => {}
                None => {
                    self.kinds.insert(value.get_tag().into(), kind.into());
                }
            }
        }
        let mut event = Event::new();
        event.set_wall_time(wall_time());
        event.set_step(step as i64);
        event.set_summary(summary);
        self.write(&event)
    }

    /// Appends a network graph (the Graphs tab), as TensorFlow writes one: an event whose
    /// `graph_def` holds a serialised `GraphDef`.
    pub fn graph(&mut self, graph: &tensorboard_proto::graph::GraphDef) -> Result<()> {
        let mut event = Event::new();
        event.set_wall_time(wall_time());
        event.set_graph_def(self.encode(graph)?);
        self.write(&event)
    }

    /// Pushes buffered events to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.records
            .flush()
            .map_err(|e| Error::io("cannot write the event file", &self.path, e))
    }

    fn encode(&self, message: &impl Message) -> Result<Vec<u8>> {
        message.write_to_bytes().map_err(|e| {
            Error::io(
                "cannot encode an event for",
                &self.path,
                std::io::Error::other(e),
            )
        })
    }

    fn write(&mut self, event: &Event) -> Result<()> {
        let bytes = self.encode(event)?;
        self.records
            .write(&bytes)
            .map_err(|e| Error::io("cannot write the event file", &self.path, e))
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        // Best effort: errors were reported by the explicit flushes at each epoch end.
        let _ = self.records.flush();
    }
}

/// Seconds since the Unix epoch, as TensorBoard stamps events.
pub fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_keeps_one_kind_of_summary() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create(dir.path()).unwrap();
        writer.scalar("loss", 1.0, 1).unwrap();
        writer.scalar("loss", 0.5, 2).unwrap();
        writer
            .summary(super::super::media::text("notes", "fine"), 1)
            .unwrap();
        let clash = writer.summary(super::super::media::text("loss", "not a scalar"), 3);
        let message = clash.unwrap_err().to_string();
        assert!(
            message.contains("loss") && message.contains("scalars") && message.contains("text"),
            "{message}"
        );
    }
}
