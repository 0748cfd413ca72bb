//! TensorBoard's HParams plugin data: each run records the values of its chosen config keys
//! (a "session"), so that the HParams dashboard of a sweep's log folder compares its runs.
//!
//! As torch's `SummaryWriter.add_hparams` does, kiln writes `_hparams_/session_start_info` and
//! `_hparams_/session_end_info` summaries; TensorBoard infers the experiment (the hparams and
//! the metrics `train/` and `test/` hold) from them.

use protobuf::Message;
use protobuf::well_known_types::Value;
use tensorboard_proto::api::Status;
use tensorboard_proto::plugin_hparams::{HParamsPluginData, SessionEndInfo, SessionStartInfo};
use tensorboard_proto::summary::Summary;
use tensorboard_proto::tensor::TensorProto;
use tensorboard_proto::tensor_shape::TensorShapeProto_Dim;
use tensorboard_proto::types::DataType;

use super::plugin::Plugin;

use crate::config::ExperimentConfig;

/// Config keys every run records, beside the ones a sweep varies.
pub const BASE_KEYS: &[&str] = &[
    "optimizer.kind",
    "optimizer.lr",
    "train.batch_size",
    "train.epochs",
    "seed",
];

/// Every scalar of `config` by dotted key (`optimizer.lr` -> 0.01); lists become their TOML text.
pub fn flatten(config: &ExperimentConfig) -> Vec<(String, toml::Value)> {
    fn walk(prefix: &str, value: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => out.push((prefix.to_string(), other.clone())),
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = toml::Value::try_from(config) {
        walk("", &value, &mut out);
    }
    out
}

/// The session start summary holding `keys`' values in `config` (missing keys are skipped).
pub fn session_start(config: &ExperimentConfig, keys: &[String], start_secs: f64) -> Summary {
    let values = flatten(config);
    let mut info = SessionStartInfo::new();
    for key in keys {
        if let Some((_, v)) = values.iter().find(|(k, _)| k == key) {
            info.mut_hparams().insert(key.clone(), to_proto(v));
        }
    }
    info.set_start_time_secs(start_secs);
    let mut data = HParamsPluginData::new();
    data.set_session_start_info(info);
    summary("_hparams_/session_start_info", &data)
}

/// The session end summary: the run finished (`ok`) or failed.
/// How a run ended, as the HParams dashboard shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Success,
    /// The run stopped on its own (divergence).
    Failure,
    /// Interrupted (Ctrl-C, SIGTERM); a sweep re-runs it. Shown as "unknown".
    Aborted,
    /// Ended early by a sweep's scheduler (ASHA): neither trained to the end nor failed.
    /// Shown as "unknown" too; the sweep's summary says which.
    Stopped,
}

pub fn session_end(end: RunEnd, end_secs: f64) -> Summary {
    let mut info = SessionEndInfo::new();
    info.set_status(match end {
        RunEnd::Success => Status::STATUS_SUCCESS,
        RunEnd::Failure => Status::STATUS_FAILURE,
        // TensorBoard has no "aborted"; "unknown" at least does not call it a failure.
        RunEnd::Aborted | RunEnd::Stopped => Status::STATUS_UNKNOWN,
    });
    info.set_end_time_secs(end_secs);
    let mut data = HParamsPluginData::new();
    data.set_session_end_info(info);
    summary("_hparams_/session_end_info", &data)
}

fn to_proto(value: &toml::Value) -> Value {
    let mut v = Value::new();
    match value {
        toml::Value::Integer(i) => v.set_number_value(*i as f64),
        toml::Value::Float(f) => v.set_number_value(*f),
        toml::Value::Boolean(b) => v.set_bool_value(*b),
        toml::Value::String(s) => v.set_string_value(s.clone()),
        other => v.set_string_value(other.to_string()),
    }
    v
}

fn summary(tag: &str, data: &HParamsPluginData) -> Summary {
    let content = data.write_to_bytes().unwrap_or_default();
    let mut value = Plugin::HParams.value(tag, content);
    // The plugin reads only the metadata; a tensor-class value still needs a tensor, and
    // TensorBoard's own hparams summaries carry this one (float, shape [0]).
    let mut null = TensorProto::new();
    null.set_dtype(DataType::DT_FLOAT);
    let mut dim = TensorShapeProto_Dim::new();
    dim.set_size(0);
    null.mut_tensor_shape().mut_dim().push(dim);
    value.set_tensor(null);
    let mut summary = Summary::new();
    summary.mut_value().push(value);
    summary
}
