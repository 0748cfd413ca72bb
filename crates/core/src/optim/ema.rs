//! `[train] ema = decay`: an exponential moving average of the weights, updated after every
//! optimizer step: the first update copies the weights, the n-th after it moves the average by
//! `avg += (1 - d) * (weights - avg)` with `d = min(decay, (1 + n) / (10 + n))`, the warmup of
//! TensorFlow's `ExponentialMovingAverage(num_updates=...)`. Without it a decay of 0.999 still
//! weighs the first few hundred steps' weights heavily after an epoch (an MLP with BatchNorm
//! evaluated at 10% accuracy after its first epoch of 430 steps).
//!
//! Kept in host memory by parameter id, the key checkpoints keep with the weights. The fused
//! optimizer updates it from the slice it has just written; Burn's optimizers read each
//! parameter after their step. BatchNorm's running statistics are not parameters: an averaged
//! network takes them from the trained one (`AveragedModel`'s `use_buffers = False`).

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};

/// The moving average of a network's parameters.
#[derive(Debug, Clone)]
pub struct Ema {
    decay: f32,
    /// Per parameter: how many updates it has had, and its average.
    values: HashMap<ParamId, (u64, Vec<f32>)>,
}

/// What a checkpoint keeps of an [`Ema`]: per parameter id, its updates and averaged values.
pub type EmaState = Vec<(u64, u64, Vec<f32>)>;

impl Ema {
    pub fn new(decay: f64) -> Self {
        Ema {
            decay: decay as f32,
            values: HashMap::new(),
        }
    }

    /// Folds parameter `id`'s new values in.
    pub fn update(&mut self, id: ParamId, weights: &[f32]) {
        match self.values.get_mut(&id) {
            Some((updates, avg)) => {
                let n = *updates as f32;
                let decay = self.decay.min((1.0 + n) / (10.0 + n));
                super::host::lerp(avg, weights, 1.0 - decay);
                *updates += 1;
            }
            None => {
                self.values.insert(id, (1, weights.to_vec()));
            }
        }
    }

    /// Folds in every parameter of `module` (read back from its tensors).
    pub fn update_from<M: Module>(&mut self, module: &M) {
        module.visit(&mut Reader { ema: self });
    }

    /// `module` with each averaged parameter replaced by its average.
    pub fn apply<M: Module>(&self, module: M) -> M {
        module.map(&mut Writer { ema: self })
    }

    /// For a checkpoint, in id order so that the same average always saves to the same bytes.
    pub fn state(&self) -> EmaState {
        let mut state: EmaState = self
            .values
            .iter()
            .map(|(id, (n, v))| (id.val(), *n, v.clone()))
            .collect();
        state.sort_by_key(|(id, _, _)| *id);
        state
    }

    /// This average's decay with the values [`Self::state`] saved.
    pub fn with_state(self, state: EmaState) -> Self {
        Ema {
            decay: self.decay,
            values: state
                .into_iter()
                .map(|(id, n, v)| (ParamId::from(id), (n, v)))
                .collect(),
        }
    }
}

struct Reader<'a> {
    ema: &'a mut Ema,
}

impl ModuleVisitor for Reader<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let data = param.val().into_data();
        // kiln creates every parameter in float32.
        if let Ok(values) = data.as_slice::<f32>() {
            self.ema.update(param.id, values);
        }
    }
}

struct Writer<'a> {
    ema: &'a Ema,
}

impl ModuleMapper for Writer<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some((_, avg)) = self.ema.values.get(&id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let shape = tensor.shape();
        let data = TensorData::new(avg.clone(), shape);
        let replaced = Tensor::<D>::from_data(data, &tensor.device());
        let replaced = if tensor.is_require_grad() {
            replaced.require_grad()
        } else {
            replaced
        };
        Param::from_mapped_value(id, replaced, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_update_copies_then_the_decay_warms_up_to_its_value() {
        let mut ema = Ema::new(0.9);
        let id = ParamId::from(7);
        ema.update(id, &[1.0, 2.0]);
        // After one update the decay is min(0.9, 2/11): the average moves 9/11 of the way.
        ema.update(id, &[2.0, 2.0]);
        let state = ema.state();
        assert_eq!((state[0].0, state[0].1), (7, 2));
        assert!((state[0].2[0] - (1.0 + 9.0 / 11.0)).abs() < 1e-6 && state[0].2[1] == 2.0);
        // Late enough, the decay is the one asked for.
        for _ in 0..200 {
            ema.update(id, &[2.0, 2.0]);
        }
        ema.update(id, &[12.0, 2.0]);
        assert!(
            (ema.state()[0].2[0] - 3.0).abs() < 1e-4,
            "{:?}",
            ema.state()
        );
        let back = Ema::new(0.9).with_state(ema.state());
        assert_eq!(back.state(), ema.state());
    }
}
