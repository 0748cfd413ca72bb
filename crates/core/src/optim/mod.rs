//! `[optimizer]` and `[schedule]` -> Burn's own optimizers and learning-rate schedulers, or
//! on the flex backend kiln's fused Adam/AdamW/SGD ([`fused`]), which compute the same update
//! in one pass.

mod clip;
pub mod ema;
pub mod fused;
mod host;
mod schedule;

pub use clip::Clip;
pub use ema::Ema;
pub use schedule::Schedule;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, RmsPropConfig, SgdConfig,
};

use crate::model::Network;

use crate::config::{OptimizerConfig, TrainConfig};
use crate::error::{Error, Result};

/// The optimizer of a run, with what happens around its step: gradient clipping before it,
/// the weights' moving average after it.
pub struct Optimizer {
    engine: Engine,
    clip: Clip,
    ema: Option<Ema>,
}

/// kiln's fused optimizer where it covers the kind and the parameters live in host memory,
/// Burn's otherwise.
enum Engine {
    Fused(fused::FusedOptimizer),
    Burn(ModuleOptimizer),
}

impl Optimizer {
    /// `host_memory`: the backend's tensors are host memory (flex), so reading a parameter out
    /// and back costs a copy, not a device transfer.
    pub fn new(config: &OptimizerConfig, train: &TrainConfig, host_memory: bool) -> Self {
        let engine = match fused::FusedOptimizer::new(config).filter(|_| host_memory) {
            Some(fused) => Engine::Fused(fused),
            None => Engine::Burn(optimizer(config)),
        };
        Optimizer {
            engine,
            clip: Clip::new(train),
            ema: train.ema.map(Ema::new),
        }
    }

    /// Everything the optimizer carries from step to step (moments, step counts), for a
    /// checkpoint.
    pub fn state(&self) -> Result<OptimizerState> {
        Ok(match &self.engine {
            Engine::Fused(o) => OptimizerState::Fused(o.state()),
            Engine::Burn(o) => OptimizerState::Burn(
                o.into_bytes()
                    .map_err(|e| Error::Run(format!("cannot save the optimizer's state: {e}")))?
                    .to_vec(),
            ),
        })
    }

    /// The moving average of the weights, with `[train] ema`.
    pub fn ema(&self) -> Option<&Ema> {
        self.ema.as_ref()
    }

    /// Restores a state [`Self::state`] returned, and the moving average; refuses a state of
    /// the other kind (a checkpoint written by another backend or optimizer).
    pub fn load_state(self, state: OptimizerState, ema: Option<ema::EmaState>) -> Result<Self> {
        let Optimizer {
            engine,
            clip,
            ema: average,
        } = self;
        let engine = match (engine, state) {
            (Engine::Fused(mut o), OptimizerState::Fused(states)) => {
                o.load_state(states);
                Engine::Fused(o)
            }
            (Engine::Burn(o), OptimizerState::Burn(bytes)) => o
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
                .map(Engine::Burn)
                .map_err(|e| Error::Data(format!("the checkpoint's optimizer state cannot be read: {e}")))?,
            _ => return Err(Error::Config(
                "the checkpoint's optimizer state was written by another backend or optimizer kind; resume with the experiment's original backend and [optimizer]".into(),
            )),
        };
        let mut restored = Optimizer {
            engine,
            clip,
            ema: average,
        };
        if let Some(state) = ema {
            restored.set_ema(state);
        }
        Ok(restored)
    }

    /// Replaces the moving average with one a checkpoint saved (restoring the best epoch).
    pub fn set_ema(&mut self, state: ema::EmaState) {
        if let Some(average) = self.ema.take() {
            self.ema = Some(average.with_state(state));
        }
    }

    /// One step at rate `lr`.
    pub fn step(&mut self, lr: f64, network: Network, grads: GradientsParams) -> Network {
        match &mut self.engine {
            Engine::Fused(o) => o.step(lr, network, grads, self.clip, self.ema.as_mut()),
            Engine::Burn(o) => {
                let grads = self.clip.tensors(&network, grads);
                let network = o.step(ModuleLearningRate::from(lr), network, grads);
                if let Some(ema) = &mut self.ema {
                    ema.update_from(&network);
                }
                network
            }
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
