//! The training controls a config can declare beyond epochs and batches: early stopping and
//! the time budget (`[train]`), and the schedules that watch a metric or change per step
//! (`[schedule]`). What they do during a run lives in `train::controls` and `optim::schedule`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::schema::BestMetric;

/// `[train] early_stopping = { metric, patience, min_delta, restore_best }`, as Keras'
/// `EarlyStopping`: stop when `metric` has not improved by more than `min_delta` for
/// `patience` evaluations in a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    #[serde(default = "validation_loss")]
    pub metric: BestMetric,
    #[serde(default = "five")]
    pub patience: usize,
    #[serde(default)]
    pub min_delta: f64,
    /// End with the weights of `best.ckpt` (which `checkpoint.best` picks: the same metric).
    #[serde(default = "yes")]
    pub restore_best: bool,
}

/// The `[schedule]` parameters of `kind = "plateau"` (torch's `ReduceLROnPlateau`, relative
/// threshold): multiply the rate by `factor` when `metric` has not improved for `patience`
/// epochs, then wait `cooldown` epochs, never going below `min_lr`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plateau {
    #[serde(default = "validation_loss")]
    pub metric: BestMetric,
    #[serde(default = "tenth")]
    pub factor: f64,
    #[serde(default = "ten")]
    pub patience: usize,
    #[serde(default = "threshold")]
    pub threshold: f64,
    #[serde(default)]
    pub cooldown: usize,
    #[serde(default)]
    pub min_lr: f64,
}

/// The `[schedule]` parameters of `kind = "onecycle"` (torch's `OneCycleLR`, cosine
/// annealing, the rate only): from `lr / div_factor` up to `optimizer.lr` over the first
/// `pct_start` of the run's steps, then down to `lr / div_factor / final_div_factor`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneCycle {
    #[serde(default = "pct_start")]
    pub pct_start: f64,
    #[serde(default = "div_factor")]
    pub div_factor: f64,
    #[serde(default = "final_div_factor")]
    pub final_div_factor: f64,
}

/// `max_time = "1h30m"`: a wall-clock budget in the syntax humantime reads ("90m", "2h",
/// "1h 30m", "45s"), kept as written so the resolved config says it the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeBudget {
    text: String,
    pub duration: Duration,
}

impl TimeBudget {
    pub fn parse(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text.trim())
            .map(|duration| TimeBudget {
                text: text.to_string(),
                duration,
            })
            .map_err(|e| {
                format!("cannot read {text:?} as a duration ({e}); write e.g. \"1h30m\", \"45m\" or \"90s\"")
            })
    }
}

impl fmt::Display for TimeBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for TimeBudget {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for TimeBudget {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TimeBudget::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn validation_loss() -> BestMetric {
    BestMetric::ValidationLoss
}
fn five() -> usize {
    5
}
fn ten() -> usize {
    10
}
fn yes() -> bool {
    true
}
fn tenth() -> f64 {
    0.1
}
fn threshold() -> f64 {
    1e-4
}
fn pct_start() -> f64 {
    0.3
}
fn div_factor() -> f64 {
    25.0
}
fn final_div_factor() -> f64 {
    1e4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_budgets_read_as_people_write_them() {
        let secs = |t: &str| TimeBudget::parse(t).map(|b| b.duration.as_secs());
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("1h 30m"), Ok(5400));
        assert_eq!(secs("45s"), Ok(45));
        assert!(secs("ninety minutes").unwrap_err().contains("1h30m"));
        assert_eq!(TimeBudget::parse("2h").unwrap().to_string(), "2h");
    }
}
