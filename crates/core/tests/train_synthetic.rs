//! The whole engine on a small synthetic IDX dataset written by the test: config -> data ->
//! network -> training -> run folder with config and event files.

mod common;

use std::path::Path;

use kiln_core::config::{self, ExperimentConfig};
use kiln_core::train::{self, RunOptions};

fn experiment(dir: &Path, extra: &str) -> ExperimentConfig {
    let text = format!(
        r#"
name = "synthetic"
seed = 3
[data]
dataset = "idx"
dir = "{}"
[model]
layers = [
  {{ type = "flatten" }},
  {{ type = "linear", units = 32, activation = "relu" }},
  {{ type = "linear", units = 10 }},
]
[optimizer]
kind = "adam"
lr = 0.01
[train]
epochs = 3
batch_size = 32
{extra}
"#,
        dir.display()
    );
    let file = dir.join("exp.toml");
    std::fs::write(&file, text).unwrap();
    config::load(&file, &[]).unwrap()
}

trait WithBatch {
    fn with_batch(self, size: usize) -> Self;
}

impl WithBatch for ExperimentConfig {
    fn with_batch(mut self, size: usize) -> Self {
        self.train.batch_size = config::BatchSize::Size(size);
        self
    }
}

/// Burn's RNG seed is process-wide: runs in parallel test threads would draw from one stream
/// and lose their reproducibility, so the tests of this file train one at a time.
static TRAINING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(config: &ExperimentConfig, logs: &Path) -> train::RunSummary {
    run_supervised(config, logs, None)
}

fn run_supervised(
    config: &ExperimentConfig,
    logs: &Path,
    supervisor: Option<train::Supervisor>,
) -> train::RunSummary {
    let _one_at_a_time = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let prepared = train::prepare(config, false).unwrap();
    let options = RunOptions {
        log_root: logs.to_path_buf(),
        quiet: true,
        interrupt: None,
        hparams: Vec::new(),
        command: None,
        supervisor,
    };
    train::train(prepared, &options, None).unwrap()
}

#[test]
fn trains_to_high_accuracy_and_writes_the_run_folder() {
    let data = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(data.path(), 600, 200, true);
    let logs = tempfile::tempdir().unwrap();
    let config = experiment(data.path(), "");
    let summary = run(&config, logs.path());

    assert_eq!(summary.epochs.len(), 3);
    let last = summary.epochs.last().unwrap();
    assert!(last.test_accuracy > 0.9, "{last:?}");
    assert!(summary.epochs[0].train_loss > last.train_loss);
    let dir = &summary.run_dir;
    assert!(dir.starts_with(logs.path().join("synthetic")));
    assert!(dir.join("config.toml").is_file());
    for split in ["train", "test"] {
        let events: Vec<_> = std::fs::read_dir(dir.join(split)).unwrap().collect();
        assert_eq!(events.len(), 1, "one event file in {split}/");
    }
}

#[test]
fn the_resolved_config_reproduces_the_run() {
    let data = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(data.path(), 300, 100, false);
    let logs = tempfile::tempdir().unwrap();
    let config = experiment(data.path(), "");
    let first = run(&config, logs.path());

    // Re-load the written config.toml exactly as a user would re-run it.
    let written = first.run_dir.join("config.toml");
    let again = config::load(&written, &[]).unwrap();
    assert_eq!(again, config, "config.toml must hold every resolved value");
    let second = run(&again, logs.path());
    assert_ne!(first.run_dir, second.run_dir);
    for (a, b) in first.epochs.iter().zip(&second.epochs) {
        assert_eq!(a.train_loss, b.train_loss);
        assert_eq!(a.test_accuracy, b.test_accuracy);
    }
}

#[test]
fn resolving_fills_pytorch_defaults_and_a_seed() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("min.toml");
    std::fs::write(
        &file,
        "name = \"m\"\n[data]\ndataset = \"mnist\"\n[model]\nlayers = [{ type = \"flatten\" }, { type = \"linear\", units = 10 }]\n[optimizer]\nkind = \"adam\"\n",
    )
    .unwrap();
    let config = config::load(&file, &[]).unwrap();
    assert!(config.seed.is_some());
    let written: toml::Table = toml::from_str(&config::to_toml(&config)).unwrap();
    let optimizer = written["optimizer"].as_table().unwrap();
    assert_eq!(optimizer["eps"].as_float(), Some(1e-8));
    assert_eq!(optimizer["lr"].as_float(), Some(1e-3));
    assert_eq!(written["train"]["batch_size"].as_integer(), Some(64));
    assert_eq!(written["train"]["drop_last"].as_bool(), Some(false));
    assert_eq!(written["init"]["weight"]["kind"].as_str(), Some("default"));
}

#[test]
fn set_flags_override_the_file_and_the_last_one_wins() {
    let data = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(data.path(), 10, 10, false);
    let base = experiment(data.path(), "");
    let file = data.path().join("exp.toml");
    let sets = vec![
        "optimizer.lr=0.5".to_string(),
        "train.batch_size=\"full\"".to_string(),
        "optimizer.lr=0.25".to_string(),
    ];
    let config = config::load(&file, &sets).unwrap();
    assert_eq!(config.optimizer.lr(), 0.25);
    assert_eq!(config.train.batch_size, config::BatchSize::Full);
    assert_eq!(config.train.epochs, base.train.epochs);
}

#[test]
fn full_batch_with_a_step_schedule_takes_one_step_per_epoch_and_halves_the_rate() {
    let data = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(data.path(), 100, 20, false);
    let logs = tempfile::tempdir().unwrap();
    experiment(data.path(), "");
    let sets: Vec<String> = [
        "train.batch_size=\"full\"",
        "schedule.kind=step",
        "schedule.step_size=1",
        "schedule.gamma=0.5",
    ]
    .map(String::from)
    .to_vec();
    let config = config::load(&data.path().join("exp.toml"), &sets).unwrap();
    let summary = run(&config, logs.path());
    let steps: Vec<usize> = summary.epochs.iter().map(|m| m.steps).collect();
    assert_eq!(steps, vec![1, 1, 1]);
    let rates: Vec<f64> = summary.epochs.iter().map(|m| m.learning_rate).collect();
    assert_eq!(rates, vec![0.01, 0.005, 0.0025]);
}

#[test]
fn a_cnn_with_batchnorm_pooling_and_dropout_trains_and_keeps_running_statistics() {
    let data = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(data.path(), 400, 100, false);
    let logs = tempfile::tempdir().unwrap();
    experiment(data.path(), "");
    let layers = r#"model.layers=[
        { type = "conv2d", filters = 4, kernel = 5, padding = 2 },
        { type = "batchnorm", activation = "relu" },
        { type = "max_pool2d", kernel = 2 },
        { type = "dropout", p = 0.2 },
        { type = "flatten" },
        { type = "linear", units = 16, activation = "tanh" },
        { type = "linear", units = 10, activation = "log_softmax" },
    ]"#;
    let sets = vec![layers.replace('\n', " "), "train.loss=nll".to_string()];
    let config = config::load(&data.path().join("exp.toml"), &sets).unwrap();
    let prepared = train::prepare(&config, false).unwrap();
    assert!(prepared.warnings.is_empty(), "{:?}", prepared.warnings);
    assert_eq!(prepared.plans[2].output, vec![4, 14, 14]);
    let summary = run(&config, logs.path());
    let last = summary.epochs.last().unwrap();
    // Evaluation runs BatchNorm in inference mode, on its running statistics.
    assert!(last.test_accuracy > 0.9, "{last:?}");
}

#[test]
fn softmax_before_a_logits_loss_is_a_warning() {
    let data = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(data.path(), 10, 10, false);
    experiment(data.path(), "");
    let sets = vec![
        r#"model.layers=[{ type = "flatten" }, { type = "linear", units = 10, activation = "softmax" }]"#.to_string(),
    ];
    let config = config::load(&data.path().join("exp.toml"), &sets).unwrap();
    let prepared = train::prepare(&config, false).unwrap();
    assert_eq!(prepared.warnings.len(), 1);
    assert!(
        prepared.warnings[0].contains("categorical_crossentropy"),
        "{:?}",
        prepared.warnings
    );
}

/// `[train] accumulate = 2` with batches of 32 takes the steps batches of 64 take: the same
/// examples in the same order, each step's gradient the mean over its 64 (the partial last
/// batch weighted by its size), so the figures agree to float rounding.
#[test]
fn two_accumulated_batches_of_32_train_like_one_batch_of_64() {
    let data = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(data.path(), 600, 200, false);
    let logs = tempfile::tempdir().unwrap();
    let small = run(&experiment(data.path(), "accumulate = 2"), logs.path());
    let large = run(&experiment(data.path(), "").with_batch(64), logs.path());
    for (a, b) in small.epochs.iter().zip(&large.epochs) {
        assert_eq!(a.steps, 10, "600 examples in steps of 64: 10 steps");
        assert_eq!(a.steps, b.steps);
        for (x, y) in [
            (a.train_loss, b.train_loss),
            (a.test_loss, b.test_loss),
            (a.test_accuracy, b.test_accuracy),
        ] {
            assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{a:?}\n{b:?}");
        }
    }
    // Without accumulation, batches of 32 train differently: the comparison can fail.
    let unaccumulated = run(&experiment(data.path(), ""), logs.path());
    assert!((unaccumulated.epochs[2].test_loss - large.epochs[2].test_loss).abs() > 1e-3);
}

/// Early stopping ends the run after `patience` epochs without improvement, and with
/// `restore_best` the run's final checkpoint holds the best epoch's weights.
#[test]
fn early_stopping_ends_the_run_with_the_best_epochs_weights() {
    let data = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(data.path(), 600, 200, false);
    let logs = tempfile::tempdir().unwrap();
    // No later epoch improves the test loss by more than 10: the run stops after epoch 2.
    let mut config = experiment(
        data.path(),
        "early_stopping = { metric = \"test_loss\", patience = 1, min_delta = 10.0 }",
    );
    config.train.epochs = 10;
    let summary = run(&config, logs.path());
    assert_eq!(summary.epochs.len(), 2);
    assert_eq!(
        summary.stopped,
        Some(train::Stopped::Early {
            epoch: 2,
            best_epoch: Some(2),
            restored: false
        }),
        "epoch 2 has the lower loss: best.ckpt is already the final weights"
    );
    let mut config = experiment(
        data.path(),
        "early_stopping = { metric = \"test_accuracy\", patience = 1, min_delta = 2.0 }",
    );
    config.train.epochs = 10;
    config.optimizer = toml::from_str("kind = \"sgd\"\nlr = 1e-6").unwrap();
    // A rate this small barely moves the accuracy: epoch 1's stays the best (a later one
    // must beat it strictly), and the weights go back to it.
    let summary = run(&config, logs.path());
    let Some(train::Stopped::Early {
        epoch,
        best_epoch: Some(best),
        restored: true,
    }) = summary.stopped
    else {
        panic!("{:?}", summary.stopped);
    };
    assert!(best < epoch);
    let dir = &summary.run_dir;
    let last = kiln_core::checkpoint::find(dir, &kiln_core::checkpoint::Which::Last).unwrap();
    let best_ckpt = kiln_core::checkpoint::find(dir, &kiln_core::checkpoint::Which::Best).unwrap();
    assert_eq!(last.checkpoint.epochs_done, epoch);
    assert_eq!(best_ckpt.checkpoint.epochs_done, best);
    assert!(
        last.checkpoint.model == best_ckpt.checkpoint.model,
        "the final checkpoint holds epoch {best}'s weights"
    );
    assert_eq!(summary.final_metrics().unwrap().epoch, best);
}

/// `kind = "plateau"` halves the rate after an epoch that did not improve the metric.
#[test]
fn a_plateau_schedule_lowers_the_rate_when_the_metric_stalls() {
    let data = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(data.path(), 300, 100, false);
    let logs = tempfile::tempdir().unwrap();
    // A threshold of 10 (relative) counts nothing after the first epoch as an improvement.
    let config = experiment(
        data.path(),
        "[schedule]\nkind = \"plateau\"\nmetric = \"train_loss\"\nfactor = 0.5\npatience = 0\nthreshold = 10.0",
    );
    let summary = run(&config, logs.path());
    let rates: Vec<f64> = summary.epochs.iter().map(|m| m.learning_rate).collect();
    assert_eq!(rates, vec![0.01, 0.01, 0.005]);
}

/// `[train] ema`: training is the same, evaluation sees the moving average unless
/// `ema_eval = false`.
#[test]
fn the_moving_average_is_what_evaluation_sees() {
    let data = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(data.path(), 300, 100, false);
    let logs = tempfile::tempdir().unwrap();
    let averaged = run(&experiment(data.path(), "ema = 0.9"), logs.path());
    let raw = run(
        &experiment(data.path(), "ema = 0.9\nema_eval = false"),
        logs.path(),
    );
    let plain = run(&experiment(data.path(), ""), logs.path());
    for ((a, r), p) in averaged.epochs.iter().zip(&raw.epochs).zip(&plain.epochs) {
        assert_eq!(
            a.train_loss, p.train_loss,
            "the average does not change training"
        );
        assert_eq!(
            r.test_loss, p.test_loss,
            "ema_eval = false evaluates the trained weights"
        );
        assert_ne!(a.test_loss, p.test_loss, "evaluation sees the average");
    }
}

/// A supervisor (a sweep's scheduler) hears every epoch, the last included, and a stop it
/// asks for ends the run there: a complete run, its checkpoint kept.
#[test]
fn a_supervisor_hears_every_epoch_and_can_end_the_run() {
    use std::sync::{Arc, Mutex};
    let data = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(data.path(), 300, 100, false);
    let logs = tempfile::tempdir().unwrap();
    let config = experiment(data.path(), "");
    let heard = Arc::new(Mutex::new(Vec::new()));
    let listener = {
        let heard = heard.clone();
        train::Supervisor(Arc::new(move |m: &train::EpochMetrics| {
            heard.lock().unwrap().push(m.epoch);
            None
        }))
    };
    let full = run_supervised(&config, logs.path(), Some(listener));
    assert_eq!(*heard.lock().unwrap(), [1, 2, 3]);
    assert_eq!(full.stopped, None);

    let stopper = train::Supervisor(Arc::new(|m: &train::EpochMetrics| {
        (m.epoch == 2).then(|| train::SupervisorStop {
            by: "test".into(),
            reason: "epoch 2".into(),
        })
    }));
    let stopped = run_supervised(&config, logs.path(), Some(stopper));
    assert_eq!(stopped.epochs.len(), 2);
    assert!(matches!(
        stopped.stopped,
        Some(train::Stopped::Supervised { epoch: 2, .. })
    ));
    assert_eq!(stopped.epochs[1].train_loss, full.epochs[1].train_loss);
    let last =
        kiln_core::checkpoint::find(&stopped.run_dir, &kiln_core::checkpoint::Which::Last).unwrap();
    assert_eq!(last.checkpoint.epochs_done, 2);
}
