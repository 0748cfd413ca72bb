//! When a checkpoint is written, as a function of where the run is and what it measured
//! (burn-train's checkpoint strategies work alike): the loop asks, then does what it is told.

use crate::config::CheckpointConfig;

use super::EpochMetrics;

/// What to write after an epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actions {
    /// The epoch scored best so far: write `best.ckpt`.
    pub best: bool,
    /// Write `epoch-NNNN.ckpt` (periodic, or the last epoch).
    pub numbered: bool,
}

impl Actions {
    pub fn any(self) -> bool {
        self.best || self.numbered
    }
}

/// The best score so far, `(value, epoch)`, updated with `metrics`; and what to write.
pub fn after_epoch(
    policy: &CheckpointConfig,
    best: Option<(f64, usize)>,
    metrics: &EpochMetrics,
    last_epoch: usize,
) -> (Option<(f64, usize)>, Actions) {
    let which = policy.best_metric(metrics.validation_loss.is_some());
    let value = metrics.get(which);
    let improved = best.is_none_or(|(b, _)| {
        if which.higher_is_better() {
            value > b
        } else {
            value < b
        }
    });
    let epoch = metrics.epoch;
    let best = if improved && value.is_finite() {
        Some((value, epoch))
    } else {
        best
    };
    let periodic = policy.every > 0 && epoch.is_multiple_of(policy.every);
    let actions = Actions {
        best: improved,
        numbered: periodic || epoch == last_epoch,
    };
    (best, actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, test_accuracy: f64) -> EpochMetrics {
        EpochMetrics {
            test_accuracy,
            ..EpochMetrics::example(epoch)
        }
    }

    #[test]
    fn best_on_improvement_numbered_every_n_and_at_the_end() {
        let policy = CheckpointConfig {
            every: 2,
            ..CheckpointConfig::default()
        };
        let (best, a) = after_epoch(&policy, None, &epoch(1, 0.5), 5);
        assert_eq!(
            (best, a),
            (
                Some((0.5, 1)),
                Actions {
                    best: true,
                    numbered: false
                }
            )
        );
        let (best, a) = after_epoch(&policy, best, &epoch(2, 0.4), 5);
        assert_eq!(
            (best, a),
            (
                Some((0.5, 1)),
                Actions {
                    best: false,
                    numbered: true
                }
            )
        );
        let (best, a) = after_epoch(&policy, best, &epoch(3, 0.4), 5);
        assert!(!a.any());
        let (best, a) = after_epoch(&policy, best, &epoch(5, 0.6), 5);
        assert_eq!(
            (best, a),
            (
                Some((0.6, 5)),
                Actions {
                    best: true,
                    numbered: true
                }
            )
        );
    }

    #[test]
    fn a_score_that_is_not_a_number_is_never_best() {
        let policy = CheckpointConfig::default();
        let (best, a) = after_epoch(&policy, None, &epoch(1, f64::NAN), 3);
        assert_eq!(best, None);
        assert!(a.best, "the first epoch's checkpoint is still written");
    }
}
