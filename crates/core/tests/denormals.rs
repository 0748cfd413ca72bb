//! `[train] flush_denormals`: subnormal floats become zeros on the threads that train a run,
//! including rayon's workers, and stay subnormal when the key is off.
//!
//! A file of its own: the mode is set on every worker of the process's rayon pool, so a run
//! that keeps subnormals must not overlap another test's run.

mod common;

use std::path::Path;

use kiln_core::checkpoint::Which;
use kiln_core::config;
use kiln_core::infer::Trained;
use kiln_core::train::{self, RunOptions};
use kiln_kernels::denormals;

/// A first layer that can never fire (weights -1e-30, bias -1 under ReLU: its gradients are
/// exact zeros) trained by AdamW with lr 0.5 and weight decay 1: each step halves its weights
/// (decoupled decay), which become subnormal after 27 steps and would reach zero after 51.
/// 32 steps later, its 200,704 weights are subnormal, or zeros where subnormals are flushed.
/// The update runs in parallel chunks of 16,384 on rayon's pool, so most of the weights are
/// written on a worker other than the one that runs the training loop.
fn run_dead_layer(data: &Path, logs: &Path, flush: bool) -> Vec<f32> {
    let text = format!(
        r#"
name = "dead_layer"
seed = 1
[data]
dataset = "idx"
dir = "{}"
[model]
layers = [
  {{ type = "flatten" }},
  {{ type = "linear", units = 256, activation = "relu", init = {{ weight = {{ kind = "constant", value = -1e-30 }}, bias = {{ kind = "constant", value = -1.0 }} }} }},
  {{ type = "linear", units = 10 }},
]
[optimizer]
kind = "adamw"
lr = 0.5
weight_decay = 1.0
[train]
epochs = 1
batch_size = 32
shuffle = false
flush_denormals = {flush}
"#,
        data.display()
    );
    let file = data.join(format!("flush_{flush}.toml"));
    std::fs::write(&file, text).unwrap();
    let config = config::load(&file, &[]).unwrap();
    assert_eq!(config.train.flush_denormals, flush);
    let options = RunOptions {
        log_root: logs.to_path_buf(),
        quiet: true,
        ..RunOptions::default()
    };
    let summary = train::train(train::prepare(&config, false).unwrap(), &options, None).unwrap();
    assert_eq!(summary.epochs[0].steps, 32);
    let resolved = std::fs::read_to_string(summary.run_dir.join("config.toml")).unwrap();
    assert!(
        resolved.contains(&format!("flush_denormals = {flush}")),
        "the resolved config states the mode:\n{resolved}"
    );
    let (trained, _) = Trained::load(&summary.run_dir, &Which::Last, false).unwrap();
    let (index, name, weights) = trained.network.parameters().remove(0);
    assert_eq!(
        (index, name),
        (1, "weight"),
        "the first linear layer follows flatten"
    );
    weights.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn subnormal_weights_are_flushed_on_every_worker_unless_turned_off() {
    if !denormals::SUPPORTED {
        eprintln!("skipped: this target cannot flush subnormals");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(data.path(), 1024, 64, false);
    let logs = tempfile::tempdir().unwrap();

    let kept = run_dead_layer(data.path(), logs.path(), false);
    assert_eq!(kept.len(), 784 * 256);
    let subnormal = kept.iter().filter(|w| w.is_subnormal()).count();
    assert_eq!(
        subnormal,
        kept.len(),
        "without flushing, every weight is subnormal"
    );

    let flushed = run_dead_layer(data.path(), logs.path(), true);
    let not_zero: Vec<usize> = (0..flushed.len()).filter(|&i| flushed[i] != 0.0).collect();
    assert!(
        not_zero.is_empty(),
        "{} of {} weights not flushed, the first at index {:?} (value {:e})",
        not_zero.len(),
        flushed.len(),
        not_zero.first(),
        not_zero.first().map_or(0.0, |&i| flushed[i])
    );
    // The caller's thread has its own mode back.
    assert!(!denormals::this_thread());
}
