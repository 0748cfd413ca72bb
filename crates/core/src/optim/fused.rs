//! Adam, AdamW and SGD as one pass over each parameter, for backends whose tensors live in host
//! memory (flex).
//!
//! Burn's optimizers compose tensor operations: Adam with L2 makes about fifteen passes over
//! every parameter per step, each allocating a new tensor (a large share of a small network's
//! step: bench/NOTES.md has the profiles). Here the parameter and
//! its gradient are read out once, the moments stay in kiln's own buffers, and one loop updates
//! everything. The arithmetic is PyTorch's (`torch.optim.Adam`, `AdamW`, `SGD`, non-foreach),
//! and a test checks it against Burn's optimizers step by step.

use std::collections::HashMap;

use burn::module::{ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};

use super::clip::Clip;
use super::ema::Ema;

use crate::config::OptimizerConfig;

/// What one update rule needs, read from `[optimizer]`.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Adam {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        /// AdamW: decay the weights directly instead of adding L2 to the gradient.
        decoupled: bool,
        amsgrad: bool,
    },
    Sgd {
        momentum: f32,
        dampening: f32,
        nesterov: bool,
        weight_decay: f32,
    },
}

/// Per-parameter state, as torch keeps it.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    step: i32,
    /// Adam's first moment, or SGD's momentum buffer.
    m: Vec<f32>,
    /// Adam's second moment.
    v: Vec<f32>,
    /// AMSGrad's running maximum of `v`.
    v_max: Vec<f32>,
}

/// A fused optimizer; `None` from [`FusedOptimizer::new`] for kinds it does not cover.
#[derive(Debug)]
pub struct FusedOptimizer {
    rule: Rule,
    states: HashMap<ParamId, State>,
}

impl FusedOptimizer {
    pub fn new(config: &OptimizerConfig) -> Option<Self> {
        let rule = match *config {
            OptimizerConfig::Adam {
                betas,
                eps,
                weight_decay,
                amsgrad,
                ..
            }
            | OptimizerConfig::Adamw {
                betas,
                eps,
                weight_decay,
                amsgrad,
                ..
            } => Rule::Adam {
                beta1: betas[0] as f32,
                beta2: betas[1] as f32,
                eps: eps as f32,
                weight_decay: weight_decay as f32,
                decoupled: matches!(config, OptimizerConfig::Adamw { .. }),
                amsgrad,
            },
            OptimizerConfig::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
                ..
            } => Rule::Sgd {
                momentum: momentum as f32,
                dampening: dampening as f32,
                nesterov,
                weight_decay: weight_decay as f32,
            },
            OptimizerConfig::Rmsprop { .. } => return None,
        };
        Some(FusedOptimizer {
            rule,
            states: HashMap::new(),
        })
    }

    /// The per-parameter state, by parameter id (which checkpoints keep with the weights),
    /// in id order so that the same state always serialises to the same bytes.
    pub fn state(&self) -> Vec<(u64, State)> {
        let mut states: Vec<(u64, State)> = self
            .states
            .iter()
            .map(|(id, s)| (id.val(), s.clone()))
            .collect();
        states.sort_by_key(|(id, _)| *id);
        states
    }

    /// Replaces the state with one [`Self::state`] returned.
    pub fn load_state(&mut self, states: Vec<(u64, State)>) {
        self.states = states
            .into_iter()
            .map(|(id, s)| (ParamId::from(id), s))
            .collect();
    }

    /// One step on every parameter of `module` that has a gradient in `grads`, the gradients
    /// clipped as `clip` says and the step folded into `ema`, all on host slices.
    pub fn step<M: burn::module::Module>(
        &mut self,
        lr: f64,
        module: M,
        mut grads: GradientsParams,
        clip: Clip,
        ema: Option<&mut Ema>,
    ) -> M {
        // The gradients come out first, so that a global norm is known before any update.
        let mut host = HostGrads {
            grads: &mut grads,
            out: HashMap::new(),
            clip,
            squares: 0.0,
        };
        module.visit(&mut host);
        let (grads, factor) = (host.out, clip.factor(host.squares));
        let mut mapper = Mapper {
            optimizer: self,
            grads,
            factor,
            ema,
            lr: lr as f32,
        };
        module.map(&mut mapper)
    }
}

/// Each parameter's gradient as host data, clamped by value, and the sum of their squares.
struct HostGrads<'a> {
    grads: &'a mut GradientsParams,
    out: HashMap<ParamId, TensorData>,
    clip: Clip,
    squares: f64,
}

impl ModuleVisitor for HostGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return;
        };
        let mut data = grad.into_data();
        if self.clip.any()
            && let Ok(g) = data.as_mut_slice::<f32>()
        {
            self.squares += self.clip.clamp(g);
        }
        self.out.insert(param.id, data);
    }
}

struct Mapper<'a> {
    optimizer: &'a mut FusedOptimizer,
    grads: HashMap<ParamId, TensorData>,
    /// Norm clipping's factor, when the global norm is over the limit.
    factor: Option<f32>,
    ema: Option<&'a mut Ema>,
    lr: f32,
}

impl ModuleMapper for Mapper<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(mut grad) = self.grads.remove(&id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let strategy = tensor.gradient_checkpointing_strategy();
        let inner = tensor.inner();
        let device = inner.device();
        let mut values = inner.into_data();
        let state = self.optimizer.states.entry(id).or_default();
        // kiln creates every parameter in float32 (data, init and Burn's layers), so both
        // slices are f32; nothing else reaches this optimizer.
        if let (Ok(p), Ok(g)) = (values.as_mut_slice::<f32>(), grad.as_mut_slice::<f32>()) {
            if let Some(factor) = self.factor {
                super::host::scale(g, factor);
            }
            update(self.optimizer.rule, state, self.lr, p, g);
            if let Some(ema) = self.ema.as_deref_mut() {
                ema.update(id, p);
            }
        }
        let mut updated = Tensor::<D>::from_data(values, &device).autodiff();
        if let Some(strategy) = strategy {
            updated = updated.with_gradient_checkpointing_strategy(strategy);
        }
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// torch's update of `p` given its gradient `g`.
fn update(rule: Rule, state: &mut State, lr: f32, p: &mut [f32], g: &[f32]) {
    state.step += 1;
    let n = p.len();
    match rule {
        Rule::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
            decoupled,
            amsgrad,
        } => {
            if state.m.is_empty() {
                state.m = vec![0.0; n];
                state.v = vec![0.0; n];
                if amsgrad {
                    state.v_max = vec![0.0; n];
                }
            }
            let t = state.step;
            let c = AdamStep {
                beta1,
                beta2,
                eps,
                step_size: lr / (1.0 - beta1.powi(t)),
                inv_bias2_sqrt: 1.0 / (1.0 - beta2.powi(t)).sqrt(),
                l2: if decoupled { 0.0 } else { weight_decay },
                shrink: if decoupled {
                    1.0 - lr * weight_decay
                } else {
                    1.0
                },
            };
            let (m, v) = (&mut state.m, &mut state.v);
            if amsgrad {
                c.apply_amsgrad(p, g, m, v, &mut state.v_max);
            } else {
                c.apply_parallel(p, g, m, v);
            }
        }
        Rule::Sgd {
            momentum,
            dampening,
            nesterov,
            weight_decay,
        } => {
            if momentum == 0.0 {
                for (p, g) in p.iter_mut().zip(g) {
                    *p -= lr * (g + weight_decay * *p);
                }
                return;
            }
            let first = state.m.is_empty();
            if first {
                state.m = vec![0.0; n];
            }
            for ((p, g), buf) in p.iter_mut().zip(g).zip(state.m.iter_mut()) {
                let d = g + weight_decay * *p;
                // torch: the buffer starts as the first gradient, undamped.
                *buf = if first {
                    d
                } else {
                    momentum * *buf + (1.0 - dampening) * d
                };
                *p -= lr * if nesterov { d + momentum * *buf } else { *buf };
            }
        }
    }
}

/// The constants of one Adam step, shared by every element.
#[derive(Clone, Copy)]
struct AdamStep {
    beta1: f32,
    beta2: f32,
    eps: f32,
    /// lr / (1 - beta1^t)
    step_size: f32,
    /// 1 / sqrt(1 - beta2^t)
    inv_bias2_sqrt: f32,
    /// Adam's L2 (added to the gradient); 0 for AdamW.
    l2: f32,
    /// AdamW's decoupled decay factor (1 - lr * wd); 1 for Adam.
    shrink: f32,
}

/// Elements per parallel task of the Adam update: large enough that a task outweighs its
/// scheduling, small enough that both cores get several.
const ADAM_CHUNK: usize = 1 << 14;

/// One chunk of the Adam update, run by [`pulp`] under the widest vector instructions the CPU
/// has (the default x86-64 build would use SSE2, four lanes, and the square root and division
/// are the loop's cost).
struct AdamChunk<'a> {
    step: AdamStep,
    p: &'a mut [f32],
    g: &'a [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
}

impl pulp::WithSimd for AdamChunk<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.step.apply(self.p, self.g, self.m, self.v);
    }
}

impl AdamStep {
    /// [`Self::apply`] over chunks on rayon's pool, each vectorised for this CPU.
    fn apply_parallel(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        use rayon::prelude::*;
        let arch = pulp::Arch::new();
        p.par_chunks_mut(ADAM_CHUNK)
            .zip(g.par_chunks(ADAM_CHUNK))
            .zip(m.par_chunks_mut(ADAM_CHUNK))
            .zip(v.par_chunks_mut(ADAM_CHUNK))
            .for_each(|(((p, g), m), v)| {
                arch.dispatch(AdamChunk {
                    step: *self,
                    p,
                    g,
                    m,
                    v,
                })
            });
    }

    // Written as zipped iterators so that the compiler drops the bounds checks and vectorizes.
    #[inline(always)]
    fn apply(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let grad = g + self.l2 * *p;
            *m = self.beta1 * *m + (1.0 - self.beta1) * grad;
            *v = self.beta2 * *v + (1.0 - self.beta2) * grad * grad;
            let denom = v.sqrt() * self.inv_bias2_sqrt + self.eps;
            *p = *p * self.shrink - self.step_size * *m / denom;
        }
    }

    fn apply_amsgrad(
        &self,
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        vm: &mut [f32],
    ) {
        for ((((p, g), m), v), vm) in p
            .iter_mut()
            .zip(g)
            .zip(m.iter_mut())
            .zip(v.iter_mut())
            .zip(vm.iter_mut())
        {
            let grad = g + self.l2 * *p;
            *m = self.beta1 * *m + (1.0 - self.beta1) * grad;
            *v = self.beta2 * *v + (1.0 - self.beta2) * grad * grad;
            *vm = vm.max(*v);
            let denom = vm.sqrt() * self.inv_bias2_sqrt + self.eps;
            *p = *p * self.shrink - self.step_size * *m / denom;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OptimizerConfig;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
    use burn::tensor::{Device, Distribution};

    fn toml_optimizer(text: &str) -> OptimizerConfig {
        toml::from_str(text).unwrap()
    }

    /// Five steps of the fused optimizer and of Burn's on the same layer and batches: the
    /// weights agree to float rounding.
    fn agrees_with_burn(text: &str) {
        agrees_with_burn_around(text, Clip::default(), None);
    }

    /// The same with gradient clipping before each step and a moving average after it: the
    /// fused route (host slices) and Burn's (tensor operations) agree, averages included.
    fn agrees_with_burn_around(text: &str, clip: Clip, ema: Option<f64>) {
        let config = toml_optimizer(text);
        let device = Device::flex().autodiff();
        device.seed(3);
        let layer: Linear = LinearConfig::new(6, 4).init(&device);
        let mut fused_layer = layer.clone();
        let mut burn_layer = layer;
        let mut fused = FusedOptimizer::new(&config).unwrap();
        let mut burn = crate::optim::optimizer(&config);
        let (mut fused_ema, mut burn_ema) = (ema.map(Ema::new), ema.map(Ema::new));
        for _ in 0..5 {
            let x = Tensor::<2>::random([8, 6], Distribution::Normal(0.0, 1.0), &device);
            let loss = |l: &Linear| l.forward(x.clone()).square().mean();
            let grads = GradientsParams::from_grads(loss(&fused_layer).backward(), &fused_layer);
            fused_layer = fused.step(0.05, fused_layer, grads, clip, fused_ema.as_mut());
            let grads = GradientsParams::from_grads(loss(&burn_layer).backward(), &burn_layer);
            let grads = clip.tensors(&burn_layer, grads);
            burn_layer = burn.step(ModuleLearningRate::from(0.05), burn_layer, grads);
            if let Some(e) = &mut burn_ema {
                e.update_from(&burn_layer);
            }
        }
        if let (Some(a), Some(b)) = (&fused_ema, &burn_ema) {
            let (a, b) = (a.state(), b.state());
            assert_eq!(a.len(), 2, "weight and bias averaged");
            for ((ia, na, va), (ib, nb, vb)) in a.iter().zip(&b) {
                assert_eq!((ia, na), (ib, nb));
                assert!(
                    va.iter().zip(vb).all(|(x, y)| (x - y).abs() < 1e-5),
                    "{va:?} {vb:?}"
                );
            }
        }
        let values = |l: &Linear| {
            l.weight
                .val()
                .inner()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let (a, b) = (values(&fused_layer), values(&burn_layer));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{text}: fused {a:?}\nburn {b:?}");
        }
        // And the step did something: the weights left their initial values.
        let initial: Linear = {
            device.seed(3);
            LinearConfig::new(6, 4).init(&device)
        };
        assert!(
            values(&initial)
                .iter()
                .zip(&a)
                .any(|(x, y)| (x - y).abs() > 1e-3)
        );
    }

    #[test]
    fn clipping_and_the_moving_average_match_on_both_routes() {
        let clip = Clip {
            value: Some(0.3),
            norm: Some(0.2),
        };
        agrees_with_burn_around("kind = \"adam\"\nlr = 0.05", clip, Some(0.9));
        agrees_with_burn_around("kind = \"sgd\"\nlr = 0.05\nmomentum = 0.9", clip, Some(0.5));
    }

    #[test]
    fn a_step_clipped_by_global_norm_moves_the_weights_by_that_norm() {
        let config = toml_optimizer("kind = \"sgd\"\nlr = 1.0");
        let device = Device::flex().autodiff();
        device.seed(5);
        let layer: Linear = LinearConfig::new(6, 4).init(&device);
        let x = Tensor::<2>::random([8, 6], Distribution::Normal(0.0, 1.0), &device);
        let grads =
            GradientsParams::from_grads(layer.forward(x).square().mean().backward(), &layer);
        let flat = |l: &Linear| {
            let mut v = l
                .weight
                .val()
                .inner()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            v.extend(
                l.bias
                    .as_ref()
                    .unwrap()
                    .val()
                    .inner()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap(),
            );
            v
        };
        let before = flat(&layer);
        let clip = Clip {
            value: None,
            norm: Some(0.01),
        };
        let mut fused = FusedOptimizer::new(&config).unwrap();
        let after = flat(&fused.step(1.0, layer, grads, clip, None));
        let moved: f32 = before
            .iter()
            .zip(&after)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt();
        assert!(
            (moved - 0.01).abs() < 1e-5,
            "the step moved the weights by {moved}"
        );
    }

    #[test]
    fn adam_with_l2_matches_burn() {
        agrees_with_burn("kind = \"adam\"\nlr = 0.05\nweight_decay = 0.01");
    }

    #[test]
    fn amsgrad_matches_burn() {
        agrees_with_burn("kind = \"adam\"\nlr = 0.05\namsgrad = true");
    }

    #[test]
    fn adamw_matches_burn() {
        agrees_with_burn("kind = \"adamw\"\nlr = 0.05\nweight_decay = 0.1");
    }

    #[test]
    fn sgd_with_momentum_and_nesterov_matches_burn() {
        agrees_with_burn("kind = \"sgd\"\nlr = 0.05\nmomentum = 0.9\nweight_decay = 0.01");
        agrees_with_burn("kind = \"sgd\"\nlr = 0.05\nmomentum = 0.9\nnesterov = true");
        agrees_with_burn("kind = \"sgd\"\nlr = 0.05");
    }
}
