//! `[train] clip_grad_value` and `clip_grad_norm`, as torch's `clip_grad_value_` and
//! `clip_grad_norm_`: elements clamped first, then every gradient scaled by one factor so that
//! their global L2 norm (over all parameters together, not per parameter as Burn's
//! `GradientClipping::Norm`) is at most the limit.
//!
//! Two routes, one rule: host slices for the fused optimizer (no tensor is built), tensor
//! operations for Burn's optimizers on other backends.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::config::TrainConfig;

/// The clipping a run asks for; both `None` when it asks for none.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Clip {
    pub value: Option<f32>,
    pub norm: Option<f32>,
}

impl Clip {
    pub fn new(train: &TrainConfig) -> Self {
        Clip {
            value: train.clip_grad_value.map(|v| v as f32),
            norm: train.clip_grad_norm.map(|v| v as f32),
        }
    }

    pub fn any(self) -> bool {
        self.value.is_some() || self.norm.is_some()
    }

    /// Clamps `g` by value; returns its sum of squares (after clamping) when clipping by norm.
    pub fn clamp(self, g: &mut [f32]) -> f64 {
        if let Some(v) = self.value {
            super::host::clamp(g, v);
        }
        match self.norm {
            Some(_) => super::host::sum_of_squares(g),
            None => 0.0,
        }
    }

    /// The factor every gradient is multiplied by, given the sum of squares of all of them:
    /// `None` when the norm is within the limit (torch's `max_norm / (norm + 1e-6)`, capped at 1).
    pub fn factor(self, sum_of_squares: f64) -> Option<f32> {
        let max = self.norm? as f64;
        let coefficient = max / (sum_of_squares.sqrt() + 1e-6);
        (coefficient < 1.0).then_some(coefficient as f32)
    }

    /// The same on tensors, for Burn's optimizers: `grads` clipped, every parameter of
    /// `module` visited in its fixed order.
    pub fn tensors<M: Module>(self, module: &M, mut grads: GradientsParams) -> GradientsParams {
        if !self.any() {
            return grads;
        }
        let mut clamped = Clamped {
            clip: self,
            grads: &mut grads,
            squares: None,
        };
        module.visit(&mut clamped);
        let Some(squares) = clamped.squares else {
            return grads;
        };
        let sum: f64 = squares.into_scalar::<f32>() as f64;
        if let Some(factor) = self.factor(sum) {
            module.visit(&mut Scaled {
                factor,
                grads: &mut grads,
            });
        }
        grads
    }
}

/// Clamps each gradient by value and sums the squares (on the device, read once).
struct Clamped<'a> {
    clip: Clip,
    grads: &'a mut GradientsParams,
    squares: Option<Tensor<1>>,
}

impl ModuleVisitor for Clamped<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(mut grad) = self.grads.remove::<D>(param.id) else {
            return;
        };
        if let Some(v) = self.clip.value {
            grad = grad.clamp(-v, v);
        }
        if self.clip.norm.is_some() {
            let square = grad.clone().powi_scalar(2).sum();
            self.squares = Some(match self.squares.take() {
                Some(total) => total + square,
                None => square,
            });
        }
        self.grads.register::<D>(param.id, grad);
    }
}

struct Scaled<'a> {
    factor: f32,
    grads: &'a mut GradientsParams,
}

impl ModuleVisitor for Scaled<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads
                .register::<D>(param.id, grad.mul_scalar(self.factor));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_clipping_scales_to_the_limit_and_leaves_small_gradients() {
        let clip = Clip {
            value: None,
            norm: Some(1.0),
        };
        let mut g = [3.0f32, 4.0];
        let factor = clip.factor(clip.clamp(&mut g)).unwrap();
        assert!((factor - 0.2).abs() < 1e-6, "{factor}");
        assert_eq!(clip.factor(0.25), None);
    }

    #[test]
    fn value_clipping_clamps_before_the_norm_is_taken() {
        let clip = Clip {
            value: Some(0.5),
            norm: Some(10.0),
        };
        let mut g = [3.0f32, -4.0, 0.25];
        let squares = clip.clamp(&mut g);
        assert_eq!(g, [0.5, -0.5, 0.25]);
        assert!((squares - 0.5625).abs() < 1e-12);
    }
}
