//! The learning rate of every optimizer step: `[schedule]`'s kind (Burn's step, exponential
//! and cosine schedulers stepped once per epoch; kiln's plateau rule, stepped on each epoch's
//! figures; one-cycle, a function of the step) times the warmup factor of the first steps.
//!
//! Everything here is a function of the epochs' figures and the global step, so a resumed
//! run replays the finished epochs (`next_epoch` and `observe` on the checkpoint's history)
//! and lands on the rate the uninterrupted run had.

use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::exponential::ExponentialLrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::lr_scheduler::step::StepLrSchedulerConfig;

use crate::checkpoint::EpochMetrics;
use crate::config::{OneCycle, Plateau, ScheduleConfig, ScheduleKind};
use crate::error::{Error, Result};

/// The rate of each step of a run.
pub struct Schedule {
    rule: Rule,
    warmup: Option<Warmup>,
    /// The epoch's rate before any warmup (the rule's, for the epoch kinds).
    epoch_lr: f64,
    /// The rate of the last step asked for.
    current: f64,
}

enum Rule {
    Constant,
    /// Burn's scheduler, stepped once per epoch.
    Epochs(ModuleLrScheduler),
    Plateau(PlateauState),
    OneCycle(OneCycleCurve),
}

/// torch's `LinearLR` factor: from `start` to 1 over `steps` steps.
#[derive(Clone, Copy)]
struct Warmup {
    steps: usize,
    start: f64,
}

impl Schedule {
    /// The schedule of a run of `epochs` epochs of `steps_per_epoch` optimizer steps, from the
    /// optimizer's `lr`. `Err` when Burn refuses the kind's values, or a warmup is longer than
    /// the run.
    pub fn new(
        config: &ScheduleConfig,
        lr: f64,
        epochs: usize,
        steps_per_epoch: usize,
    ) -> Result<Self> {
        let total = epochs * steps_per_epoch;
        let refused = |why: String| {
            Error::Config(format!(
                "[schedule] kind = {:?} with optimizer.lr = {lr} is refused by Burn's scheduler: {why}",
                config.kind.name()
            ))
        };
        let burn = |built: std::result::Result<ModuleLrScheduler, String>| {
            built.map(Rule::Epochs).map_err(refused)
        };
        let rule = match config.kind {
            ScheduleKind::Constant {} => Rule::Constant,
            ScheduleKind::Step { step_size, gamma } => burn(
                StepLrSchedulerConfig::new(lr, step_size)
                    .with_gamma(gamma)
                    .init(),
            )?,
            ScheduleKind::Exponential { gamma } => {
                burn(ExponentialLrSchedulerConfig::new(lr, gamma).init())?
            }
            ScheduleKind::Cosine { t_max, eta_min } => burn(
                CosineAnnealingLrSchedulerConfig::new(lr, t_max.unwrap_or(epochs))
                    .with_min_lr(eta_min)
                    .init(),
            )?,
            ScheduleKind::Plateau(p) => Rule::Plateau(PlateauState::new(p, lr)),
            ScheduleKind::Onecycle(c) => Rule::OneCycle(OneCycleCurve::new(c, lr, total)),
        };
        let warmup_steps = config
            .warmup_steps
            .or(config.warmup_epochs.map(|e| e * steps_per_epoch));
        if let Some(steps) = warmup_steps.filter(|&s| s > total) {
            let key = if config.warmup_steps.is_some() {
                "schedule.warmup_steps"
            } else {
                "schedule.warmup_epochs"
            };
            return Err(Error::Config(format!(
                "key `{key}`: a warmup of {steps} steps is longer than the run's {total} optimizer steps ({epochs} epochs of {steps_per_epoch}); shorten it or train longer"
            )));
        }
        Ok(Schedule {
            rule,
            warmup: warmup_steps.map(|steps| Warmup {
                steps,
                start: config.warmup_start.unwrap_or(0.0),
            }),
            epoch_lr: lr,
            current: lr,
        })
    }

    /// Whether the rate changes within an epoch (one-cycle, warmup): it is then logged per step.
    pub fn per_step(&self) -> bool {
        self.warmup.is_some() || matches!(self.rule, Rule::OneCycle(_))
    }

    /// Moves to the next epoch (the first call starts the first).
    pub fn next_epoch(&mut self) {
        match &mut self.rule {
            Rule::Epochs(s) => self.epoch_lr = s.step().base(),
            Rule::Constant | Rule::Plateau(_) | Rule::OneCycle(_) => {}
        }
    }

    /// An epoch's figures, for the rules that watch them (plateau).
    pub fn observe(&mut self, metrics: &EpochMetrics) {
        if let Rule::Plateau(p) = &mut self.rule {
            self.epoch_lr = p.observe(metrics.get(p.config.metric));
        }
    }

    /// The rate of optimizer step `global_step` (from 0).
    pub fn at_step(&mut self, global_step: usize) -> f64 {
        let base = match &self.rule {
            Rule::OneCycle(c) => c.at(global_step),
            Rule::Constant | Rule::Epochs(_) | Rule::Plateau(_) => self.epoch_lr,
        };
        let factor = match self.warmup {
            Some(w) if global_step < w.steps => {
                w.start + (1.0 - w.start) * global_step as f64 / w.steps as f64
            }
            _ => 1.0,
        };
        self.current = base * factor;
        self.current
    }

    /// The rate of the last step asked for (the epoch's rate before its first step).
    pub fn current(&self) -> f64 {
        self.current
    }
}

/// torch's `ReduceLROnPlateau` with `threshold_mode = "rel"`.
struct PlateauState {
    config: Plateau,
    lr: f64,
    best: Option<f64>,
    bad_epochs: usize,
    cooldown_left: usize,
}

impl PlateauState {
    fn new(config: Plateau, lr: f64) -> Self {
        PlateauState {
            config,
            lr,
            best: None,
            bad_epochs: 0,
            cooldown_left: 0,
        }
    }

    /// The rate after an epoch that measured `value`.
    fn observe(&mut self, value: f64) -> f64 {
        let c = self.config;
        let better = |best: f64| {
            if c.metric.higher_is_better() {
                value > best * (1.0 + c.threshold)
            } else {
                value < best * (1.0 - c.threshold)
            }
        };
        if value.is_finite() && self.best.is_none_or(better) {
            self.best = Some(value);
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > c.patience {
            let lower = (self.lr * c.factor).max(c.min_lr);
            // torch's eps: a reduction smaller than this is not made.
            if self.lr - lower > 1e-8 {
                self.lr = lower;
            }
            self.cooldown_left = c.cooldown;
            self.bad_epochs = 0;
        }
        self.lr
    }
}

/// torch's `OneCycleLR` (two phases, cosine annealing) over `total` steps.
struct OneCycleCurve {
    initial: f64,
    peak: f64,
    last: f64,
    /// The step at which the rate peaks (torch: `pct_start * total - 1`, fractional).
    peak_step: f64,
    total: usize,
}

impl OneCycleCurve {
    fn new(c: OneCycle, peak: f64, total: usize) -> Self {
        let initial = peak / c.div_factor;
        OneCycleCurve {
            initial,
            peak,
            last: initial / c.final_div_factor,
            peak_step: c.pct_start * total as f64 - 1.0,
            total,
        }
    }

    fn at(&self, step: usize) -> f64 {
        let anneal = |from: f64, to: f64, pct: f64| {
            to + (from - to) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
        };
        let step = step as f64;
        if step <= self.peak_step {
            anneal(self.initial, self.peak, step / self.peak_step)
        } else {
            let end = self.total as f64 - 1.0;
            let pct = ((step - self.peak_step) / (end - self.peak_step)).min(1.0);
            anneal(self.peak, self.last, pct)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BestMetric;

    fn per_epoch(kind: ScheduleKind, lr: f64, n: usize) -> Vec<f64> {
        let mut s = Schedule::new(&ScheduleConfig::of(kind), lr, n, 1).unwrap();
        (0..n)
            .map(|e| {
                s.next_epoch();
                s.at_step(e)
            })
            .collect()
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-12)
    }

    #[test]
    fn step_schedule_matches_torch_step_lr() {
        let kind = ScheduleKind::Step {
            step_size: 2,
            gamma: 0.5,
        };
        let r = per_epoch(kind, 0.1, 5);
        assert!(close(&r, &[0.1, 0.1, 0.05, 0.05, 0.025]), "{r:?}");
    }

    #[test]
    fn cosine_reaches_eta_min_at_t_max() {
        let kind = ScheduleKind::Cosine {
            t_max: Some(4),
            eta_min: 0.0,
        };
        let r = per_epoch(kind, 0.1, 5);
        assert!(
            (r[0] - 0.1).abs() < 1e-12 && (r[2] - 0.05).abs() < 1e-9 && r[4].abs() < 1e-9,
            "{r:?}"
        );
    }

    #[test]
    fn constant_stays() {
        assert_eq!(per_epoch(ScheduleKind::Constant {}, 0.3, 3), vec![0.3; 3]);
    }

    #[test]
    fn onecycle_matches_torch() {
        // torch 2.9: OneCycleLR(SGD(lr=0.1), max_lr=0.1, total_steps=10, cycle_momentum=False),
        // the rate of each of the 10 steps.
        let torch = [
            0.0040000000000000036,
            0.052000000000000005,
            0.1,
            0.09504846320134738,
            0.0811745653949763,
            0.06112620219362893,
            0.03887419780637107,
            0.0188258346050237,
            0.004951936798652629,
            4e-07,
        ];
        let kind = ScheduleKind::Onecycle(OneCycle {
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
        });
        let mut s = Schedule::new(&ScheduleConfig::of(kind), 0.1, 2, 5).unwrap();
        let r: Vec<f64> = (0..10).map(|i| s.at_step(i)).collect();
        assert!(close(&r, &torch), "{r:?}");
    }

    #[test]
    fn plateau_matches_torch() {
        // torch 2.9: ReduceLROnPlateau(SGD(lr=1), factor=0.5, patience=1, threshold=0.1,
        // cooldown=1, min_lr=0.1) stepped on these losses; the rate after each.
        let losses = [1.0, 0.95, 0.95, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
        let torch = [
            1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125, 0.1,
        ];
        let mut p = PlateauState::new(
            Plateau {
                metric: BestMetric::TestLoss,
                factor: 0.5,
                patience: 1,
                threshold: 0.1,
                cooldown: 1,
                min_lr: 0.1,
            },
            1.0,
        );
        let r: Vec<f64> = losses.iter().map(|&l| p.observe(l)).collect();
        assert!(close(&r, &torch), "{r:?}");
    }

    #[test]
    fn warmup_is_torch_linear_lr_in_front_of_the_kind() {
        // torch 2.9: LinearLR(SGD(lr=1), start_factor=0.25, total_iters=3): 0.25, 0.5, 0.75, 1, 1.
        let config = ScheduleConfig {
            warmup_steps: Some(3),
            warmup_start: Some(0.25),
            ..ScheduleConfig::default()
        };
        let mut s = Schedule::new(&config, 1.0, 5, 1).unwrap();
        assert!(s.per_step());
        let r: Vec<f64> = (0..5).map(|i| s.at_step(i)).collect();
        assert!(close(&r, &[0.25, 0.5, 0.75, 1.0, 1.0]), "{r:?}");
    }

    #[test]
    fn a_warmup_longer_than_the_run_is_refused_with_the_key() {
        let config = ScheduleConfig {
            warmup_epochs: Some(2),
            ..ScheduleConfig::default()
        };
        let e = Schedule::new(&config, 1.0, 1, 10)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("schedule.warmup_epochs") && e.contains("10 optimizer steps"),
            "{e}"
        );
    }
}
