//! Whether a planned network can fit in memory, decided before anything is allocated: a layer
//! of a trillion units must be a clear error before the run folder exists, not an allocator
//! abort halfway through building it.

use super::summary::grouped;
use crate::layers::LayerPlan;

/// Bytes of one value (kiln trains in float32).
const VALUE: u128 = 4;

/// The least a training step holds: every parameter and its gradient, and every layer's
/// output and its gradient for each example of a batch. Optimizer state, workspace and the
/// dataset come on top, so this is a floor, never an overestimate that refuses a network
/// that would fit.
pub fn training_floor(input: &[usize], plans: &[LayerPlan], batch: usize) -> u128 {
    let values = |shape: &[usize]| shape.iter().map(|&d| d as u128).product::<u128>();
    let per_example: u128 = values(input) + plans.iter().map(|p| values(&p.output)).sum::<u128>();
    let params: u128 = plans.iter().map(|p| (p.params + p.frozen) as u128).sum();
    VALUE * 2 * (params + per_example * batch as u128)
}

/// The layer that weighs most (parameters, or outputs for `batch` examples), as
/// "model.layers[i] (label): N parameters" for messages.
pub fn heaviest(plans: &[LayerPlan], batch: usize) -> String {
    let weight = |p: &LayerPlan| {
        let outputs = p.output.iter().map(|&d| d as u128).product::<u128>() * batch as u128;
        (p.params as u128).max(outputs)
    };
    let Some((i, p)) = plans.iter().enumerate().max_by_key(|(_, p)| weight(p)) else {
        return "the input".into();
    };
    let outputs = p.output.iter().map(|&d| d as u128).product::<u128>();
    if p.params as u128 >= outputs * batch as u128 {
        format!(
            "model.layers[{i}] ({}): {} parameters",
            p.label,
            grouped(p.params as u128)
        )
    } else {
        format!(
            "model.layers[{i}] ({}): {} values per example, output shape {:?}",
            p.label,
            grouped(outputs),
            p.output
        )
    }
}

pub use crate::memory_limit::limit;

/// `Err` when `floor` bytes exceed `limit`, naming the heaviest layer and the fix.
pub fn check(plans: &[LayerPlan], batch: usize, floor: u128, limit: u128) -> Result<(), String> {
    if floor <= limit {
        return Ok(());
    }
    let source = if std::env::var_os("KILN_MEMORY_LIMIT").is_some() {
        "KILN_MEMORY_LIMIT"
    } else {
        "this machine's memory"
    };
    Err(format!(
        "training this network needs at least {} (weights, gradients and {batch} examples' activations), more than the {} of {source}; the largest part is {}: make it smaller or lower train.batch_size (or raise KILN_MEMORY_LIMIT if the machine has more)",
        gib(floor),
        gib(limit),
        heaviest(plans, batch)
    ))
}

pub use crate::memory_limit::gib;

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(output: Vec<usize>, params: usize) -> LayerPlan {
        LayerPlan {
            label: "linear".into(),
            input: vec![],
            output,
            params,
            frozen: 0,
            macs: 0,
            from: Vec::new(),
        }
    }

    #[test]
    fn counts_weights_gradients_and_activations() {
        let plans = [plan(vec![100], 78_500), plan(vec![10], 1_010)];
        // 2 copies x 4 bytes x (79,510 parameters + 64 x (784 + 100 + 10) values).
        assert_eq!(training_floor(&[784], &plans, 64), 8 * (79_510 + 64 * 894));
        let huge = [plan(vec![1_000_000_000_000], 784_000_000_000_000)];
        let floor = training_floor(&[784], &huge, 64);
        let err = check(&huge, 64, floor, 1 << 34).unwrap_err();
        assert!(
            err.contains("model.layers[0] (linear): 784,000,000,000,000 parameters"),
            "{err}"
        );
        assert!(check(&plans, 64, 1000, 1000).is_ok());
    }
}
