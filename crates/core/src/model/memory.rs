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

/// The memory a network may use: `KILN_MEMORY_LIMIT` (bytes, or with a K/M/G/T suffix, powers
/// of 1024) if set, else this machine's physical memory (Linux's `MemTotal`); `None` when
/// neither is known. `Err` says what is wrong with the variable.
pub fn limit() -> Result<Option<u128>, String> {
    if let Some(text) = std::env::var_os("KILN_MEMORY_LIMIT") {
        let text = text.to_string_lossy();
        return parse_size(&text).map(Some).ok_or_else(|| {
            format!(
                "environment variable KILN_MEMORY_LIMIT = {text:?} is not a size; give bytes or a number with K, M, G or T, e.g. 16G"
            )
        });
    }
    Ok(machine_memory())
}

fn machine_memory() -> Option<u128> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `123`, `16G`, `1.5T`, `512m` -> bytes.
fn parse_size(text: &str) -> Option<u128> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let scale: u128 = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches(['B', 'I'])
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value > 0.0).then_some((value * scale as f64) as u128)
}

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

/// Bytes as GiB with one decimal.
pub fn gib(bytes: u128) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u128 << 30) as f64)
}

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

    #[test]
    fn sizes_read_with_suffixes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("16G"), Some(16 << 30));
        assert_eq!(parse_size("512 MiB"), Some(512 << 20));
        assert_eq!(parse_size("1.5t"), Some(3 << 39));
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("lots"), None);
        assert!(machine_memory().is_some_and(|m| m > 1 << 28));
    }
}
