//! `[train] ema = decay`: an exponential moving average of the weights, updated after every
//! optimizer step as torch's `AveragedModel` with `get_ema_multi_avg_fn(decay)` does (the
//! first update copies the weights; then `avg += (1 - decay) * (weights - avg)`).
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
    values: HashMap<ParamId, Vec<f32>>,
}

/// What a checkpoint keeps of an [`Ema`]: per parameter id, the averaged values.
pub type EmaState = Vec<(u64, Vec<f32>)>;

impl Ema {
    pub fn new(decay: f64) -> Self {
        Ema {
            decay: decay as f32,
            values: HashMap::new(),
        }
    }

    /// Folds parameter `id`'s new values in.
    pub fn update(&mut self, id: ParamId, weights: &[f32]) {
        let share = 1.0 - self.decay;
        match self.values.get_mut(&id) {
            Some(avg) => super::host::lerp(avg, weights, share),
            None => {
                self.values.insert(id, weights.to_vec());
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
            .map(|(id, v)| (id.val(), v.clone()))
            .collect();
        state.sort_by_key(|(id, _)| *id);
        state
    }

    /// This average's decay with the values [`Self::state`] saved.
    pub fn with_state(self, state: EmaState) -> Self {
        Ema {
            decay: self.decay,
            values: state
                .into_iter()
                .map(|(id, v)| (ParamId::from(id), v))
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
        let Some(avg) = self.ema.values.get(&id) else {
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
    fn the_first_update_copies_then_the_average_moves_by_one_minus_decay() {
        let mut ema = Ema::new(0.9);
        let id = ParamId::from(7);
        ema.update(id, &[1.0, 2.0]);
        ema.update(id, &[2.0, 2.0]);
        let state = ema.state();
        assert_eq!(state[0].0, 7);
        assert!((state[0].1[0] - 1.1).abs() < 1e-6 && state[0].1[1] == 2.0);
        let back = Ema::new(0.9).with_state(state.clone());
        assert_eq!(back.state(), state);
    }
}
