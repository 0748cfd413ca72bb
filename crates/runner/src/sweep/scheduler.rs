//! Early termination of a sweep's runs: ASHA (Li et al., "A System for Massively Parallel
//! Hyperparameter Tuning", 2020, as Ray Tune's `AsyncHyperBandScheduler`) and the median
//! stopping rule (Golovin et al., "Google Vizier", 2017, as Ray Tune's `MedianStoppingRule`).
//!
//! Pure decisions over the figures the runs report epoch by epoch: the sweep parent feeds them
//! in the order it reads them ([`super::watch`]), whichever launcher runs the tasks.

use std::collections::HashMap;

use kiln_core::config::BestMetric;
use serde::{Deserialize, Serialize};

/// `[sweep] scheduler = { kind = "asha" | "median", ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SchedulerConfig {
    /// Rungs at `grace_epochs * reduction^k` epochs (below the runs' `train.epochs`); a run
    /// reaching a rung goes on only if it is in the top `1/reduction` of the runs that reached
    /// that rung before it. Asynchronous: no run waits for a rung to fill.
    Asha {
        metric: BestMetric,
        #[serde(default = "one")]
        grace_epochs: usize,
        #[serde(default = "three")]
        reduction: usize,
    },
    /// From `grace_epochs` on, a run whose best figure so far is worse than the median of the
    /// other runs' running averages at the same epoch stops (once `min_runs` others got there).
    Median {
        metric: BestMetric,
        #[serde(default = "one")]
        grace_epochs: usize,
        #[serde(default = "three")]
        min_runs: usize,
    },
}

fn one() -> usize {
    1
}

fn three() -> usize {
    3
}

impl SchedulerConfig {
    /// How the console and summaries name it.
    pub fn title(&self) -> &'static str {
        match self {
            SchedulerConfig::Asha { .. } => "ASHA",
            SchedulerConfig::Median { .. } => "the median stopping rule",
        }
    }

    pub fn metric(&self) -> BestMetric {
        match self {
            SchedulerConfig::Asha { metric, .. } | SchedulerConfig::Median { metric, .. } => {
                *metric
            }
        }
    }

    /// A value out of range, as "key `sweep.scheduler.KEY` ...".
    pub fn problem(&self) -> Option<String> {
        let (grace, (key, value, least, why)) = match *self {
            SchedulerConfig::Asha {
                grace_epochs,
                reduction,
                ..
            } => (
                grace_epochs,
                (
                    "reduction",
                    reduction,
                    2,
                    "3 keeps the top third at each rung",
                ),
            ),
            SchedulerConfig::Median {
                grace_epochs,
                min_runs,
                ..
            } => (
                grace_epochs,
                (
                    "min_runs",
                    min_runs,
                    1,
                    "the median of fewer runs says little",
                ),
            ),
        };
        if grace == 0 {
            return Some("key `sweep.scheduler.grace_epochs` is 0; give at least 1 epoch".into());
        }
        (value < least).then(|| {
            format!("key `sweep.scheduler.{key}` is {value}; give at least {least} ({why})")
        })
    }

    /// Whether a run of `epochs` epochs waits for a decision after `epoch`: never after its
    /// last, which ends it anyway.
    pub fn decides_at(&self, epoch: usize, epochs: usize) -> bool {
        if epoch >= epochs {
            return false;
        }
        match *self {
            SchedulerConfig::Asha {
                grace_epochs,
                reduction,
                ..
            } => rungs(grace_epochs, reduction, epochs).contains(&epoch),
            SchedulerConfig::Median { grace_epochs, .. } => epoch >= grace_epochs,
        }
    }
}

/// ASHA's rungs for runs of `epochs` epochs: grace, grace * reduction, ... below `epochs`.
fn rungs(grace: usize, reduction: usize, epochs: usize) -> Vec<usize> {
    std::iter::successors(Some(grace), |r| r.checked_mul(reduction))
        .take_while(|&r| r < epochs)
        .collect()
}

/// A scheduler's answer for one run after one epoch.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Continue,
    Stop(String),
}

/// The scheduler's memory: what each run reported.
pub struct Scheduler {
    config: SchedulerConfig,
    /// ASHA: per rung, the runs recorded there and their scores, in arrival order.
    rungs: HashMap<usize, Vec<(usize, f64)>>,
    /// Median rule: each run's scores by epoch (index 0 = epoch 1).
    scores: HashMap<usize, Vec<f64>>,
}

impl Scheduler {
    pub fn new(config: SchedulerConfig) -> Self {
        Scheduler {
            config,
            rungs: HashMap::new(),
            scores: HashMap::new(),
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Run `task` (of `epochs` epochs) reports `value` of the metric after `epoch`; reports
    /// of one run come in epoch order. `None` where no decision is due.
    pub fn report(
        &mut self,
        task: usize,
        epoch: usize,
        epochs: usize,
        value: f64,
    ) -> Option<Decision> {
        let metric = self.config.metric();
        let score = score(metric, value);
        let history = self.scores.entry(task).or_default();
        if history.len() + 1 == epoch {
            history.push(score);
        }
        if !self.config.decides_at(epoch, epochs) {
            return None;
        }
        Some(match self.config {
            SchedulerConfig::Asha { reduction, .. } => {
                self.asha(task, epoch, score, value, reduction)
            }
            SchedulerConfig::Median { min_runs, .. } => self.median(task, epoch, min_runs),
        })
    }

    /// Ray Tune's rule: the cutoff is the `1 - 1/reduction` quantile of the scores recorded at
    /// this rung before this run (the first run at a rung always goes on); below it, stop.
    fn asha(
        &mut self,
        task: usize,
        epoch: usize,
        score: f64,
        value: f64,
        reduction: usize,
    ) -> Decision {
        let recorded = self.rungs.entry(epoch).or_default();
        if recorded.iter().any(|(t, _)| *t == task) {
            // Reported again (a requeued run): decided the first time.
            return Decision::Continue;
        }
        let before: Vec<f64> = recorded.iter().map(|(_, s)| *s).collect();
        recorded.push((task, score));
        let Some(cutoff) = quantile(&before, 1.0 - 1.0 / reduction as f64) else {
            return Decision::Continue;
        };
        if score >= cutoff {
            return Decision::Continue;
        }
        let metric = self.config.metric();
        Decision::Stop(format!(
            "{} {value:.4} after epoch {epoch} is {} the cutoff {:.4} of the top 1/{reduction} of the {} run(s) at this rung before it",
            metric.name(),
            if metric.higher_is_better() {
                "below"
            } else {
                "above"
            },
            unscore(metric, cutoff),
            before.len()
        ))
    }

    /// The median stopping rule: this run's best score so far against the median of the
    /// other runs' mean scores over their first `epoch` epochs.
    fn median(&self, task: usize, epoch: usize, min_runs: usize) -> Decision {
        let Some(mine) = self.scores.get(&task).filter(|s| s.len() >= epoch) else {
            return Decision::Continue;
        };
        let best = mine[..epoch].iter().copied().fold(f64::MIN, f64::max);
        let means: Vec<f64> = self
            .scores
            .iter()
            .filter(|(t, s)| **t != task && s.len() >= epoch)
            .map(|(_, s)| s[..epoch].iter().sum::<f64>() / epoch as f64)
            .collect();
        if means.len() < min_runs {
            return Decision::Continue;
        }
        let Some(median) = quantile(&means, 0.5) else {
            return Decision::Continue;
        };
        if best >= median {
            return Decision::Continue;
        }
        let metric = self.config.metric();
        Decision::Stop(format!(
            "its best {} in {epoch} epoch(s), {:.4}, is worse than the median {:.4} of the other {} runs' averages over as many epochs",
            metric.name(),
            unscore(metric, best),
            unscore(metric, median),
            means.len()
        ))
    }
}

/// Higher is better for every score; a figure that is not a number (a diverged loss) is the
/// worst, kept finite so that quantiles stay numbers.
fn score(metric: BestMetric, value: f64) -> f64 {
    const WORST: f64 = -1e300;
    match (value.is_finite(), metric.higher_is_better()) {
        (false, _) => WORST,
        (true, true) => value,
        (true, false) => -value,
    }
}

fn unscore(metric: BestMetric, score: f64) -> f64 {
    if metric.higher_is_better() {
        score
    } else {
        -score
    }
}

/// The `q` quantile with linear interpolation (numpy's default), `None` for no values.
fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let last = sorted.len().checked_sub(1)?;
    let at = q * last as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asha(grace: usize, reduction: usize) -> Scheduler {
        Scheduler::new(SchedulerConfig::Asha {
            metric: BestMetric::TestAccuracy,
            grace_epochs: grace,
            reduction,
        })
    }

    #[test]
    fn rungs_are_grace_times_powers_of_the_reduction_below_the_last_epoch() {
        assert_eq!(rungs(1, 3, 9), [1, 3]);
        assert_eq!(rungs(1, 3, 10), [1, 3, 9]);
        assert_eq!(rungs(2, 2, 20), [2, 4, 8, 16]);
        assert_eq!(rungs(5, 3, 5), Vec::<usize>::new());
        assert_eq!(rungs(1, usize::MAX, usize::MAX), [1]);
    }

    #[test]
    fn quantiles_interpolate_as_numpy() {
        // numpy.quantile([1, 2, 3, 4], 2/3) == 3.0; ([0.5, 0.9], 0.5) == 0.7
        assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 2.0 / 3.0), Some(3.0));
        assert!((quantile(&[0.5, 0.9], 0.5).unwrap() - 0.7).abs() < 1e-12);
        assert_eq!(quantile(&[], 0.5), None);
    }

    /// Asynchronous promotion: each run is judged against the runs that reached the rung
    /// before it, the first always goes on.
    #[test]
    fn asha_stops_a_run_below_the_top_third_of_those_before_it() {
        let mut s = asha(1, 3);
        let at_rung_1 = |s: &mut Scheduler, task, value| s.report(task, 1, 9, value);
        assert_eq!(at_rung_1(&mut s, 0, 0.5), Some(Decision::Continue));
        assert!(matches!(at_rung_1(&mut s, 1, 0.4), Some(Decision::Stop(_))));
        // Cutoff of [0.4, 0.5] at 2/3: 0.4667; 0.47 is above it.
        assert_eq!(at_rung_1(&mut s, 2, 0.47), Some(Decision::Continue));
        // Cutoff of [0.4, 0.47, 0.5] at 2/3: 0.48.
        assert!(matches!(
            at_rung_1(&mut s, 3, 0.475),
            Some(Decision::Stop(_))
        ));
        // Epoch 2 is no rung; epoch 3 is, and run 0 is the first there.
        assert_eq!(s.report(0, 2, 9, 0.6), None);
        assert_eq!(s.report(0, 3, 9, 0.7), Some(Decision::Continue));
        // A requeued run reporting a rung again keeps its first decision.
        assert_eq!(at_rung_1(&mut s, 1, 0.4), Some(Decision::Continue));
    }

    #[test]
    fn for_a_loss_lower_is_better_and_a_diverged_run_is_the_worst() {
        let mut s = Scheduler::new(SchedulerConfig::Asha {
            metric: BestMetric::ValidationLoss,
            grace_epochs: 1,
            reduction: 2,
        });
        assert_eq!(s.report(0, 1, 4, 0.3), Some(Decision::Continue));
        let Some(Decision::Stop(why)) = s.report(1, 1, 4, 0.4) else {
            panic!("a higher loss than the one before stops")
        };
        assert!(
            why.contains("validation_loss 0.4000") && why.contains("above the cutoff 0.3000"),
            "{why}"
        );
        assert_eq!(s.report(2, 1, 4, 0.2), Some(Decision::Continue));
        assert!(matches!(
            s.report(3, 1, 4, f64::NAN),
            Some(Decision::Stop(_))
        ));
    }

    #[test]
    fn the_median_rule_waits_for_min_runs_then_compares_best_with_averages() {
        let mut s = Scheduler::new(SchedulerConfig::Median {
            metric: BestMetric::TestAccuracy,
            grace_epochs: 2,
            min_runs: 2,
        });
        // Two runs trained to the end: averages over 2 epochs 0.6 and 0.7.
        for (task, curve) in [(0, [0.5, 0.7, 0.8]), (1, [0.6, 0.8, 0.9])] {
            for (i, v) in curve.iter().enumerate() {
                s.report(task, i + 1, 3, *v);
            }
        }
        // Before grace: no decision.
        assert_eq!(s.report(2, 1, 3, 0.1), None);
        // Best 0.64 < median(0.6, 0.7) = 0.65: stop.
        let Some(Decision::Stop(why)) = s.report(2, 2, 3, 0.64) else {
            panic!("below the median")
        };
        assert!(why.contains("0.6400") && why.contains("0.6500"), "{why}");
        s.report(3, 1, 3, 0.66);
        assert_eq!(s.report(3, 2, 3, 0.2), Some(Decision::Continue));
        // Only one other run: too few to judge.
        let mut few = Scheduler::new(SchedulerConfig::Median {
            metric: BestMetric::TestAccuracy,
            grace_epochs: 1,
            min_runs: 2,
        });
        few.report(0, 1, 3, 0.9);
        assert_eq!(few.report(1, 1, 3, 0.1), Some(Decision::Continue));
    }

    #[test]
    fn the_table_is_read_with_defaults_and_checked() {
        let c: SchedulerConfig =
            toml::from_str("kind = \"asha\"\nmetric = \"validation_accuracy\"").unwrap();
        assert_eq!(
            c,
            SchedulerConfig::Asha {
                metric: BestMetric::ValidationAccuracy,
                grace_epochs: 1,
                reduction: 3
            }
        );
        assert!(!c.decides_at(9, 9) && c.decides_at(3, 9) && !c.decides_at(2, 9));
        let bad: SchedulerConfig =
            toml::from_str("kind = \"asha\"\nmetric = \"test_loss\"\nreduction = 1").unwrap();
        assert!(bad.problem().unwrap().contains("at least 2"));
        assert!(
            toml::from_str::<SchedulerConfig>("kind = \"asha\"\nmetric = \"test_loss\"\nrate = 1")
                .is_err()
        );
    }
}
