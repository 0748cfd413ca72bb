//! Whether a run goes on after an epoch: early stopping (`[train] early_stopping`, Keras'
//! rule) and the time budget (`[train] max_time`).

use std::time::{Duration, Instant};

use crate::checkpoint::EpochMetrics;
use crate::config::EarlyStopping;

/// Why a run ended before its last epoch.
#[derive(Debug, Clone, PartialEq)]
pub enum Stopped {
    /// Early stopping ended the run after `epoch`; with `restored`, its final weights are
    /// those of `best_epoch` (`best.ckpt`).
    Early {
        epoch: usize,
        best_epoch: Option<usize>,
        restored: bool,
    },
    /// Another epoch would have run past `[train] max_time`; the run can be resumed.
    OutOfTime { epoch: usize, budget: String },
    /// The run's [`Supervisor`](super::Supervisor) (a sweep's scheduler) ended it after
    /// `epoch`; a complete run, its checkpoint kept.
    Supervised { epoch: usize, stop: SupervisorStop },
}

/// Why a supervisor ends a run: who decided (`"ASHA"`), and the reason in words.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorStop {
    pub by: String,
    pub reason: String,
}

/// Keras' `EarlyStopping`: counts the epochs since `metric` last improved by more than
/// `min_delta`, and says stop when they reach `patience`. A function of the epochs' figures,
/// so a resumed run replays its history into it.
pub struct EarlyStopper {
    config: EarlyStopping,
    best: Option<f64>,
    waited: usize,
}

impl EarlyStopper {
    pub fn new(config: &EarlyStopping) -> Self {
        EarlyStopper {
            config: config.clone(),
            best: None,
            waited: 0,
        }
    }

    /// After an epoch: whether to stop now.
    pub fn observe(&mut self, metrics: &EpochMetrics) -> bool {
        let (value, delta) = (metrics.get(self.config.metric), self.config.min_delta);
        let improved = value.is_finite()
            && self.best.is_none_or(|best| {
                if self.config.metric.higher_is_better() {
                    value - delta > best
                } else {
                    value + delta < best
                }
            });
        if improved {
            self.best = Some(value);
            self.waited = 0;
            return false;
        }
        self.waited += 1;
        self.waited >= self.config.patience
    }

    pub fn restores_best(&self) -> bool {
        self.config.restore_best
    }

    /// "validation_loss has not improved by more than 0 for 5 epochs".
    pub fn reason(&self) -> String {
        format!(
            "{} has not improved by more than {} for {} epoch(s)",
            self.config.metric.name(),
            self.config.min_delta,
            self.config.patience.max(1)
        )
    }
}

/// Whether another epoch as long as `last_epoch` would end past `budget`, counted from
/// `started`.
pub fn out_of_time(started: Instant, last_epoch: Duration, budget: Duration) -> bool {
    started.elapsed() + last_epoch > budget
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BestMetric;

    fn epoch(epoch: usize, validation_loss: f64) -> EpochMetrics {
        EpochMetrics {
            validation_loss: Some(validation_loss),
            ..EpochMetrics::example(epoch)
        }
    }

    fn stops(patience: usize, min_delta: f64, losses: &[f64]) -> Option<usize> {
        let mut s = EarlyStopper::new(&EarlyStopping {
            metric: BestMetric::ValidationLoss,
            patience,
            min_delta,
            restore_best: true,
        });
        losses
            .iter()
            .enumerate()
            .find(|(i, l)| s.observe(&epoch(i + 1, **l)))
            .map(|(i, _)| i + 1)
    }

    #[test]
    fn stops_after_patience_epochs_without_improvement() {
        assert_eq!(stops(2, 0.0, &[1.0, 0.9, 0.95, 0.91, 0.8]), Some(4));
        assert_eq!(stops(2, 0.0, &[1.0, 0.9, 0.95, 0.8, 0.85]), None);
        // Improvements smaller than min_delta do not count.
        assert_eq!(stops(2, 0.05, &[1.0, 0.97, 0.96, 0.5]), Some(3));
        // Patience 0: the first epoch that does not improve stops the run.
        assert_eq!(stops(0, 0.0, &[1.0, 0.9, 0.9]), Some(3));
    }

    #[test]
    fn a_loss_that_is_not_a_number_never_improves() {
        assert_eq!(stops(1, 0.0, &[1.0, f64::NAN]), Some(2));
    }

    #[test]
    fn the_budget_counts_the_next_epoch() {
        let started = Instant::now();
        assert!(out_of_time(
            started,
            Duration::from_secs(60),
            Duration::from_secs(30)
        ));
        assert!(!out_of_time(
            started,
            Duration::from_secs(1),
            Duration::from_secs(30)
        ));
    }
}
