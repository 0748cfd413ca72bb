//! One training step's forward and backward pass, and evaluation on a whole split.

use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor};

use super::Objective;
use crate::data::DeviceSplit;
use crate::layers::Yields;
use crate::log::pr_curve::PrCounts;
use crate::model::Network;

/// The seed of Burn's generator (dropout) for one step: a function of the run's seed and the
/// step alone, so a resumed run draws what the uninterrupted one did.
pub fn step_seed(seed: u64, global_step: usize) -> u64 {
    seed ^ (global_step as u64 + 1).wrapping_mul(0xd1b5_4a32_d192_ed03)
}

/// One forward and backward pass over a batch.
pub struct Pass {
    pub grads: GradientsParams,
    /// The batch's mean loss, left on the device (read with others: [`super::pending`]).
    pub loss: Tensor<1>,
    /// Rows whose largest output is the label, left on the device.
    pub correct: Tensor<1, Int>,
}

/// The gradients of the mean loss of `network` on `(x, y)`, times `weight` (a batch's share
/// of an accumulated step; the loss returned is not weighted).
pub fn forward_backward(
    network: &Network,
    loss_fn: &Objective,
    x: Tensor<2>,
    y: Tensor<1, Int>,
    mixed: Option<crate::data::MixedLabels>,
    weight: f32,
) -> Pass {
    // An autodiff input puts BatchNorm and Dropout in training mode even when they come
    // first (Burn decides by the input's device).
    let logits = network.forward(x.autodiff());
    let loss = match mixed {
        None => loss_fn.forward(logits.clone(), y.clone()),
        // Mixup and cutmix: each loss weighted by its label's share of the picture (for
        // cross-entropy, the loss on the mixed soft target).
        Some((y_b, lambda)) => loss_fn
            .forward(logits.clone(), y.clone())
            .mul_scalar(lambda)
            .add(
                loss_fn
                    .forward(logits.clone(), y_b)
                    .mul_scalar(1.0 - lambda),
            ),
    };
    let correct = count_correct(logits.inner(), y);
    let value = loss.clone().inner();
    // Unweighted (the usual step), the graph is exactly the one without accumulation.
    let weighted = if weight == 1.0 {
        loss
    } else {
        loss.mul_scalar(weight)
    };
    let grads = GradientsParams::from_grads(weighted.backward(), network);
    Pass {
        grads,
        loss: value,
        correct,
    }
}

/// Mean loss and accuracy of `network` on a whole split, and, given what the network's
/// output is (`pr`), the counts of each class's precision–recall curve from the same pass.
pub fn evaluate(
    network: &Network,
    split: &DeviceSplit,
    loss_fn: &Objective,
    batch: usize,
    pr: Option<Yields>,
) -> (f64, f64, Option<PrCounts>) {
    // Each batch's loss and the rows it got right stay on the device until the end: one read
    // for the whole split, not two per batch (each a wait for a GPU).
    let mut losses: Vec<(Tensor<1>, usize)> = Vec::new();
    let mut correct: Option<Tensor<1, Int>> = None;
    let mut counts: Option<PrCounts> = None;
    for start in (0..split.len).step_by(batch) {
        let end = (start + batch).min(split.len);
        let (x, y) = split.range(start, end);
        let logits = network.forward(x);
        losses.push((loss_fn.forward(logits.clone(), y.clone()), end - start));
        if let Some(yields) = pr {
            let classes = logits.dims()[1];
            let probabilities = yields.probabilities(logits.clone()).into_data();
            let labels: Vec<u32> = (y.clone().into_data().convert::<i64>())
                .try_to_vec::<i64>()
                .unwrap_or_default()
                .into_iter()
                .map(|l| u32::try_from(l).unwrap_or(u32::MAX))
                .collect();
            counts.get_or_insert_with(|| PrCounts::new(classes)).add(
                &probabilities.try_to_vec::<f32>().unwrap_or_default(),
                &labels,
            );
        }
        let right = count_correct(logits, y);
        correct = Some(match correct {
            Some(sum) => sum + right,
            None => right,
        });
    }
    let loss_sum = match losses.is_empty() {
        true => 0.0,
        false => {
            let values = Tensor::cat(losses.iter().map(|(l, _)| l.clone()).collect(), 0);
            let values = values.into_data().iter::<f32>().collect::<Vec<_>>();
            (values.iter().zip(&losses))
                .fold(0.0f64, |sum, (&v, (_, n))| sum + v as f64 * *n as f64)
        }
    };
    let correct = correct.map_or(0, |c| c.into_scalar::<i64>());
    let n = split.len.max(1) as f64;
    (loss_sum / n, correct as f64 / n, counts)
}

/// How many rows of `output` have their largest value at the label, as a one-element tensor
/// (left on the device so the training loop reads it once per epoch).
fn count_correct(output: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1, Int> {
    output
        .argmax(1)
        .flatten::<1>(0, 1)
        .equal(labels)
        .int()
        .sum()
}
