//! The training controls through the binary, as a user declares them: bad values refused
//! with the place and the fix, a time budget that stops a run resumably, a per-step rate in
//! TensorBoard, the moving average behind eval and export. (Their arithmetic is tested in
//! kiln-core; resuming a run that uses them all, in checkpoints.rs.)

use std::path::Path;

mod common;
use common::tensorboard::TensorBoard;
use common::*;

/// The synthetic experiment with `lines` added to its `[train]` table (a later `[table]`
/// header in them opens another table).
fn experiment_with(dir: &Path, epochs: usize, lines: &str) -> std::path::PathBuf {
    let file = synthetic_experiment(dir, epochs, 400);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}{lines}\n")).unwrap();
    file
}

/// Trains `file` into `dir/logs`: the log root and the run folder.
fn train(dir: &Path, file: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let logs = dir.join("logs");
    ok(&runner(dir)
        .arg(file)
        .args(["--logdir", &s(&logs)])
        .output()
        .unwrap());
    let run = single_run(&logs.join("syn"));
    (logs, run)
}

#[test]
fn bad_control_values_exit_2_with_the_place_the_key_and_the_fix() {
    let cases: &[(&str, &[&str])] = &[
        (
            "early_stopping = { metric = \"test_loss\", patience = -1 }",
            &["syn.toml:", "patience", "-1"],
        ),
        (
            "early_stopping = { metric = \"val_loss\" }",
            &["syn.toml:", "val_loss", "validation_loss"],
        ),
        (
            "early_stopping = { patience = 3 }",
            &[
                "train.early_stopping.metric",
                "needs a validation split",
                "[data] validation",
            ],
        ),
        (
            "accumulate = 0",
            &["syn.toml:14:", "train.accumulate", "at least 1"],
        ),
        (
            "ema = 1.0",
            &["syn.toml:14:", "train.ema", "between 0 and 1"],
        ),
        (
            "ema_eval = false",
            &["train.ema_eval", "only applies with train.ema"],
        ),
        (
            "clip_grad_norm = 0.0",
            &["syn.toml:14:", "train.clip_grad_norm", "greater than 0"],
        ),
        (
            "clip_grad_value = -1.0",
            &["train.clip_grad_value", "greater than 0"],
        ),
        ("max_time = \"soon\"", &["syn.toml:", "max_time", "1h30m"]),
        (
            "[schedule]\nkind = \"plateau\"\nmetric = \"test_loss\"\nfactor = 1.5",
            &["syn.toml:", "schedule.factor", "between 0 and 1"],
        ),
        (
            "[schedule]\nkind = \"cosine\"\nwarmup_epochs = 5",
            &["schedule.warmup_epochs", "less than train.epochs = 3"],
        ),
        (
            "[schedule]\nkind = \"onecycle\"\nwarmup_steps = 5",
            &["schedule.warmup_steps", "warms up by itself"],
        ),
        (
            "checkpoint_best_conflict",
            &["train.early_stopping.restore_best", "checkpoint.best"],
        ),
    ];
    for (lines, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let lines = if *lines == "checkpoint_best_conflict" {
            "early_stopping = { metric = \"test_loss\" }\n[checkpoint]\nbest = \"test_accuracy\""
        } else {
            lines
        };
        let file = experiment_with(dir.path(), 3, lines);
        let out = runner(dir.path()).arg(&file).output().unwrap();
        assert_user_error(&out, expect);
        assert!(
            !dir.path().join("logs").exists(),
            "nothing is written: {lines}"
        );
    }
    // A warmup longer than the run is known once the data says how many steps an epoch is.
    let dir = tempfile::tempdir().unwrap();
    let file = experiment_with(
        dir.path(),
        2,
        "[schedule]\nkind = \"constant\"\nwarmup_steps = 17",
    );
    let out = runner(dir.path()).arg(&file).output().unwrap();
    assert_user_error(
        &out,
        &[
            "syn.toml",
            "schedule.warmup_steps",
            "longer than the run's 16 optimizer steps",
        ],
    );
}

/// `max_time` stops the run after the epoch the budget cannot fit another of, with a
/// checkpoint; resumed, it ends where a run never stopped ends, to the bit.
#[test]
fn a_run_out_of_time_stops_resumably_and_resumed_matches_one_never_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment_with(dir.path(), 3, "max_time = \"1ms\"");
    let (stopped, whole) = (dir.path().join("stopped"), dir.path().join("whole"));
    let out = runner(dir.path())
        .arg(&file)
        .args(["--logdir", &s(&stopped)])
        .output()
        .unwrap();
    ok(&out);
    let text = stdout(&out);
    let run_dir = single_run(&stopped.join("syn"));
    assert!(
        text.contains("stopped after epoch 1 of 3")
            && text.contains("max_time = \"1ms\"")
            && text.contains(&format!("--resume {}", run_dir.display())),
        "{text}"
    );
    assert!(run_dir.join("checkpoints/epoch-0001.ckpt").is_file());
    assert!(
        !run_dir.join("result.toml").exists(),
        "an unfinished run is not marked complete"
    );
    let resumed = runner(dir.path())
        .arg(&file)
        .args(["--logdir", &s(&stopped), "--resume", "latest"])
        .args(["--set", "train.max_time=\"1h\""])
        .output()
        .unwrap();
    ok(&resumed);
    assert!(run_dir.join("result.toml").is_file());
    let never = runner(dir.path())
        .arg(&file)
        .args(["--logdir", &s(&whole), "--set", "train.max_time=\"1h\""])
        .output()
        .unwrap();
    ok(&never);
    // Parameter ids differ from process to process: compare the exported tensors.
    let weights = |run: &Path, to: &str| {
        let path = dir.path().join(to);
        ok(&runner(dir.path())
            .args(["export", &s(run), "--checkpoint", "last", "-o", &s(&path)])
            .output()
            .unwrap());
        std::fs::read(path).unwrap()
    };
    let resumed_weights = weights(&run_dir, "resumed.safetensors");
    assert!(resumed_weights == weights(&single_run(&whole.join("syn")), "whole.safetensors"));
}

/// A warmup changes the rate every step: TensorBoard shows `learning_rate` by global step,
/// rising linearly, then flat at the optimizer's rate.
#[test]
fn a_warmup_is_visible_step_by_step_in_tensorboard() {
    let Some(python) = std::env::var_os("KILN_TB_PYTHON") else {
        eprintln!("skipped: needs KILN_TB_PYTHON (a python with tensorboard; .ci/run sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 400 examples in batches of 50: 8 steps an epoch, 16 in all; the warmup takes 4.
    let file = experiment_with(
        dir.path(),
        2,
        "[schedule]\nkind = \"constant\"\nwarmup_steps = 4\nwarmup_start = 0.2",
    );
    let (logs, run) = train(dir.path(), &file);
    let tb = TensorBoard::start(&python, &logs);
    let name = format!("syn/{}/train", run.file_name().unwrap().to_string_lossy());
    let rates = tb.scalars(&name, "learning_rate", 16);
    let steps: Vec<i64> = rates.iter().map(|r| r.0).collect();
    assert_eq!(steps, (1..=16).collect::<Vec<_>>(), "one point per step");
    let expected = [0.02, 0.04, 0.06, 0.08, 0.1];
    for (i, (_, rate)) in rates.iter().enumerate() {
        let want = expected[i.min(4)];
        assert!(
            (rate - want).abs() < 1e-6,
            "step {}: {rate}, expected {want}",
            i + 1
        );
    }
}

/// With `[train] ema`, eval reports what training's last evaluation reported (the average),
/// and the exported weights are the average's.
#[test]
fn eval_and_export_use_the_moving_average() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment_with(dir.path(), 2, "ema = 0.9");
    let (_, run) = train(dir.path(), &file);
    let result = std::fs::read_to_string(run.join("result.toml")).unwrap();
    let figure = |key: &str| -> f64 {
        let prefix = format!("{key} = ");
        result
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap()
            .parse()
            .unwrap()
    };
    let eval = runner(dir.path())
        .args(["eval", &s(&run), "--checkpoint", "last"])
        .output()
        .unwrap();
    ok(&eval);
    let expected = format!(
        "loss {:.4}  accuracy {:.4}",
        figure("test_loss"),
        figure("test_accuracy")
    );
    assert!(
        stdout(&eval).contains(&expected),
        "eval of the average reports training's figures ({expected}): {}",
        stdout(&eval)
    );
    let export = |to: &str, which: &str| {
        let path = dir.path().join(to);
        ok(&runner(dir.path())
            .args(["export", &s(&run), "--checkpoint", which, "-o", &s(&path)])
            .output()
            .unwrap());
        std::fs::read(path).unwrap()
    };
    // The same checkpoint without its average exports other weights.
    let mut found = kiln_core::checkpoint::find(&run, &kiln_core::checkpoint::Which::Last).unwrap();
    assert!(found.checkpoint.ema.take().is_some());
    let raw = run.join("checkpoints/raw.ckpt");
    std::fs::write(
        &raw,
        kiln_core::checkpoint::encode(&found.checkpoint).unwrap(),
    )
    .unwrap();
    let averaged = export("ema.safetensors", "last");
    assert!(averaged != export("raw.safetensors", &s(&raw)));
}
