//! `[optimizer]` and `[schedule]` -> Burn's own optimizers and learning-rate schedulers, or
//! on the flex backend kiln's fused Adam/AdamW/SGD ([`fused`]), which compute the same update
//! in one pass.

pub mod fused;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::exponential::ExponentialLrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::optim::lr_scheduler::step::StepLrSchedulerConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, RmsPropConfig, SgdConfig,
};

use crate::model::Network;

use crate::config::{OptimizerConfig, ScheduleConfig};
use crate::error::{Error, Result};

/// The optimizer of a run: kiln's fused one where it covers the kind and the parameters live in
/// host memory, Burn's otherwise.
pub enum Optimizer {
    Fused(fused::FusedOptimizer),
    Burn(ModuleOptimizer),
}

impl Optimizer {
    /// `host_memory`: the backend's tensors are host memory (flex), so reading a parameter out
    /// and back costs a copy, not a device transfer.
    pub fn new(config: &OptimizerConfig, host_memory: bool) -> Self {
        match fused::FusedOptimizer::new(config).filter(|_| host_memory) {
            Some(fused) => Optimizer::Fused(fused),
            None => Optimizer::Burn(optimizer(config)),
        }
    }

    /// Everything the optimizer carries from step to step (moments, step counts), for a
    /// checkpoint.
    pub fn state(&self) -> Result<OptimizerState> {
        Ok(match self {
            Optimizer::Fused(o) => OptimizerState::Fused(o.state()),
            Optimizer::Burn(o) => OptimizerState::Burn(
                o.into_bytes()
                    .map_err(|e| Error::Run(format!("cannot save the optimizer's state: {e}")))?
                    .to_vec(),
            ),
        })
    }

    /// Restores a state [`Self::state`] returned; refuses one of the other kind (a checkpoint
    /// written by another backend or optimizer).
    pub fn load_state(self, state: OptimizerState) -> Result<Self> {
        match (self, state) {
            (Optimizer::Fused(mut o), OptimizerState::Fused(states)) => {
                o.load_state(states);
                Ok(Optimizer::Fused(o))
            }
            (Optimizer::Burn(o), OptimizerState::Burn(bytes)) => o
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
                .map(Optimizer::Burn)
                .map_err(|e| Error::Data(format!("the checkpoint's optimizer state cannot be read: {e}"))),
            _ => Err(Error::Config(
                "the checkpoint's optimizer state was written by another backend or optimizer kind; resume with the experiment's original backend and [optimizer]".into(),
            )),
        }
    }

    pub fn step(
        &mut self,
        lr: &ModuleLearningRate,
        network: Network,
        grads: GradientsParams,
    ) -> Network {
        match self {
            Optimizer::Fused(o) => o.step(lr.base(), network, grads),
            Optimizer::Burn(o) => o.step(lr.clone(), network, grads),
        }
    }
}

/// What [`Optimizer::state`] saves.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum OptimizerState {
    /// Per parameter id: step count and moments.
    Fused(Vec<(u64, fused::State)>),
    /// Burn's own record, as its bytes.
    Burn(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// Burn's optimizer for `config`, with PyTorch's semantics for every option kiln exposes.
pub fn optimizer(config: &OptimizerConfig) -> ModuleOptimizer {
    // Burn adds `penalty * param` to the gradient, as torch's `weight_decay` does (L2).
    let l2 = |wd: f64| (wd > 0.0).then(|| WeightDecayConfig::new(wd as f32));
    match *config {
        OptimizerConfig::Sgd {
            momentum,
            dampening,
            nesterov,
            weight_decay,
            ..
        } => SgdConfig::new()
            .with_weight_decay(l2(weight_decay))
            .with_momentum((momentum > 0.0).then_some(MomentumConfig {
                momentum,
                // Burn's default dampening is 0.1; torch's is 0, and the config always says.
                dampening,
                nesterov,
            }))
            .init(),
        OptimizerConfig::Adam {
            betas,
            eps,
            weight_decay,
            amsgrad,
            ..
        } => AdamConfig::new()
            .with_beta_1(betas[0] as f32)
            .with_beta_2(betas[1] as f32)
            .with_epsilon(eps as f32)
            .with_amsgrad(amsgrad)
            .with_weight_decay(l2(weight_decay))
            .init(),
        OptimizerConfig::Adamw {
            betas,
            eps,
            weight_decay,
            amsgrad,
            ..
        } => AdamWConfig::new()
            .with_beta_1(betas[0] as f32)
            .with_beta_2(betas[1] as f32)
            .with_epsilon(eps as f32)
            .with_amsgrad(amsgrad)
            .with_weight_decay(weight_decay as f32)
            .init(),
        OptimizerConfig::Rmsprop {
            alpha,
            eps,
            momentum,
            centered,
            weight_decay,
            ..
        } => RmsPropConfig::new()
            .with_alpha(alpha as f32)
            .with_epsilon(eps as f32)
            .with_momentum(momentum as f32)
            .with_centered(centered)
            .with_weight_decay(l2(weight_decay))
            .init(),
    }
}

/// The learning rate of each epoch, stepped once per epoch.
pub struct Schedule {
    /// `None` for a constant rate: nothing to step.
    scheduler: Option<ModuleLrScheduler>,
    lr: f64,
}

impl Schedule {
    /// Builds Burn's scheduler for `config`, starting from the optimizer's `lr`.
    pub fn new(config: &ScheduleConfig, lr: f64, epochs: usize) -> Result<Self> {
        let built = match *config {
            ScheduleConfig::Constant {} => None,
            ScheduleConfig::Step { step_size, gamma } => Some(
                StepLrSchedulerConfig::new(lr, step_size)
                    .with_gamma(gamma)
                    .init(),
            ),
            ScheduleConfig::Exponential { gamma } => {
                Some(ExponentialLrSchedulerConfig::new(lr, gamma).init())
            }
            ScheduleConfig::Cosine { t_max, eta_min } => Some(
                CosineAnnealingLrSchedulerConfig::new(lr, t_max.unwrap_or(epochs))
                    .with_min_lr(eta_min)
                    .init(),
            ),
        };
        let scheduler = built
            .transpose()
            .map_err(|why| {
                Error::Config(format!(
                    "[schedule] kind = {:?} with optimizer.lr = {lr} is refused by Burn's scheduler: {why}",
                    kind_name(config)
                ))
            })?;
        Ok(Schedule { scheduler, lr })
    }

    /// The learning rate for the next epoch (the first call gives the initial rate).
    pub fn next_epoch(&mut self) -> ModuleLearningRate {
        match &mut self.scheduler {
            Some(s) => {
                let lr = s.step();
                self.lr = lr.base();
                lr
            }
            None => self.lr.into(),
        }
    }

    /// The rate the last [`Self::next_epoch`] returned.
    pub fn current(&self) -> f64 {
        self.lr
    }
}

fn kind_name(config: &ScheduleConfig) -> &'static str {
    match config {
        ScheduleConfig::Constant {} => "constant",
        ScheduleConfig::Step { .. } => "step",
        ScheduleConfig::Exponential { .. } => "exponential",
        ScheduleConfig::Cosine { .. } => "cosine",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(config: ScheduleConfig, lr: f64, n: usize) -> Vec<f64> {
        let mut s = Schedule::new(&config, lr, n).unwrap();
        (0..n).map(|_| s.next_epoch().base()).collect()
    }

    #[test]
    fn step_schedule_matches_torch_step_lr() {
        let r = rates(
            ScheduleConfig::Step {
                step_size: 2,
                gamma: 0.5,
            },
            0.1,
            5,
        );
        let expected = [0.1, 0.1, 0.05, 0.05, 0.025];
        for (a, b) in r.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{r:?}");
        }
    }

    #[test]
    fn cosine_reaches_eta_min_at_t_max() {
        let r = rates(
            ScheduleConfig::Cosine {
                t_max: Some(4),
                eta_min: 0.0,
            },
            0.1,
            5,
        );
        assert!(
            (r[0] - 0.1).abs() < 1e-12 && (r[2] - 0.05).abs() < 1e-9 && r[4].abs() < 1e-9,
            "{r:?}"
        );
    }

    #[test]
    fn constant_stays() {
        assert_eq!(rates(ScheduleConfig::Constant {}, 0.3, 3), vec![0.3; 3]);
    }
}
