//! `runner` as a user runs it: exit codes, one-line errors, layering of config sources, the
//! end-to-end MNIST run read back by the real TensorBoard, Ctrl-C.

use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::*;

#[test]
fn bad_input_exits_2_with_one_line_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let base = synthetic_experiment(dir.path(), 1, 100);
    let base_text = std::fs::read_to_string(&base).unwrap();
    // (what to do to the file, --set flags, words the message must contain)
    let cases: Vec<(String, Vec<&str>, Vec<&str>)> = vec![
        (
            "name = \"x\"\n[data\n".into(),
            vec![],
            vec!["bad.toml", "line 2"],
        ),
        (
            base_text.replace("lr = 0.1", "lr = 0.1\nlrr = 2"),
            vec![],
            vec!["bad.toml:11:1:", "optimizer.lrr", "did you mean `lr`"],
        ),
        (
            base_text.replace(
                "{ type = \"flatten\" }",
                "{ type = \"flatten\" }, { type = \"dropout\", p = 1.5 }",
            ),
            vec![],
            vec!["bad.toml:7:", "model.layers[1].p", "1.5"],
        ),
        (
            format!("{base_text}[init]\nweight = {{ kind = \"normal\", std = -0.5 }}\n"),
            vec![],
            vec!["bad.toml:15:29:", "init.weight.std", "-0.5"],
        ),
        (
            base_text.replace("units = 16,", "units = -16,"),
            vec![],
            vec!["bad.toml:7:", "model.layers[1].units", "-16", "a whole number"],
        ),
        (
            base_text.replace("lr = 0.1", "lr = \"fast\""),
            vec![],
            vec!["bad.toml:10:", "optimizer.lr", "fast"],
        ),
        (
            base_text.clone(),
            vec!["name=/tmp/abs"],
            vec!["name", "plain folder name"],
        ),
        (
            base_text.clone(),
            vec!["train.epochs=-3"],
            vec!["train.epochs"],
        ),
        (
            base_text.clone(),
            vec!["train.epochs=many"],
            vec!["train.epochs"],
        ),
        (
            base_text.clone(),
            vec!["optimizer.lr=0"],
            vec!["--set optimizer.lr=0", "optimizer.lr", "greater than 0"],
        ),
        (
            base_text.clone(),
            vec!["train.batch_size=0"],
            vec!["train.batch_size"],
        ),
        (
            base_text.replace("\"flatten\"", "\"conv9\""),
            vec![],
            vec!["conv9", "did you mean `conv2d`", "flatten"],
        ),
        (
            base_text.replace("\"relu\"", "\"swish\""),
            vec![],
            vec!["swish", "relu"],
        ),
        (
            base_text.clone(),
            vec!["optimizer.kind=adamm"],
            vec!["adamm", "did you mean `adam`"],
        ),
        (
            base_text.clone(),
            vec!["schedule.kind=warm"],
            vec!["warm", "cosine"],
        ),
        (
            base_text.replace("\"idx\"", "\"cifar\""),
            vec![],
            vec!["cifar", "mnist"],
        ),
        (base_text.clone(), vec!["backend=gpu"], vec!["gpu", "flex"]),
        (
            base_text.clone(),
            vec!["backend=cuda"],
            vec!["cuda", "feature"],
        ),
        (
            base_text.clone(),
            vec!["name=../escape"],
            vec!["name", "plain folder name"],
        ),
        (
            base_text.replace("units = 16,", "units = 16, in_features = 700,"),
            vec![],
            vec!["model.layers[1]", "700", "784"],
        ),
        (
            base_text.replace("units = 10 }", "units = 7 }"),
            vec![],
            vec!["[7]", "10 classes"],
        ),
        (
            base_text.clone(),
            vec!["novalue"],
            vec!["--set", "dotted.key=value"],
        ),
        (
            base_text.replace(
                "{ type = \"flatten\" }",
                "{ type = \"reshape\", shape = [1, 28, 28] }, { type = \"max_pool2d\", kernel = 2, padding = 3 }, { type = \"flatten\" }",
            ),
            vec![],
            vec!["model.layers[1].padding", "half the kernel"],
        ),
        (
            base_text.clone(),
            vec!["optimizer.lr=2", "schedule.kind=cosine"],
            vec!["cosine", "optimizer.lr = 2"],
        ),
        (
            base_text.clone(),
            vec!["train.batch_size=500", "train.drop_last=true"],
            vec!["drop_last", "leaving none"],
        ),
        (
            base_text.replace("dir = ", "dir = \"/nonexistent\"\n#"),
            vec![],
            vec!["/nonexistent", "train-images-idx3-ubyte"],
        ),
        (
            base_text.replace("kind = \"sgd\"", "kind = \"sgd\"\nnesterov = true"),
            vec![],
            vec!["nesterov", "momentum"],
        ),
    ];
    for (i, (text, sets, expect)) in cases.iter().enumerate() {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).unwrap();
        let mut cmd = runner(dir.path());
        cmd.arg(&file)
            .arg("--quiet")
            .arg("--logdir")
            .arg(dir.path().join("logs"));
        for s in sets {
            cmd.arg("--set").arg(s);
        }
        let out = cmd.output().unwrap();
        eprintln!("case {i}: {}", stderr(&out).trim());
        assert_user_error(&out, expect);
    }
    assert!(
        !dir.path().join("logs").exists(),
        "no bad input may leave a run folder behind"
    );
    let out = runner(dir.path()).arg("missing.toml").output().unwrap();
    assert_user_error(&out, &["missing.toml", "not found"]);
    // A usage error from clap itself is also exit 2.
    let out = runner(dir.path()).arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn env_overrides_the_file_and_set_overrides_env() {
    let dir = tempfile::tempdir().unwrap();
    let file = synthetic_experiment(dir.path(), 1, 100);
    let logs = dir.path().join("logs");
    let out = runner(dir.path())
        .arg(&file)
        .args(["--quiet", "--set", "train.epochs=2", "--logdir"])
        .arg(&logs)
        .env("KILN_OPTIMIZER__LR", "0.05")
        .env("KILN_TRAIN__EPOCHS", "3")
        // Variables that name no config section (KILN_DATA_DIR and friends) are not config.
        .env("KILN_SOMETHING_ELSE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).is_empty() && stderr(&out).is_empty(),
        "--quiet prints nothing"
    );
    let run = single_run(&logs.join("syn"));
    let written: toml::Table =
        toml::from_str(&std::fs::read_to_string(run.join("config.toml")).unwrap()).unwrap();
    assert_eq!(
        written["optimizer"]["lr"].as_float(),
        Some(0.05),
        "env beats the file"
    );
    assert_eq!(
        written["train"]["epochs"].as_integer(),
        Some(2),
        "--set beats env"
    );
}

#[test]
fn an_unwritable_log_root_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = synthetic_experiment(dir.path(), 1, 100);
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "").unwrap();
    let out = runner(dir.path())
        .arg(&file)
        .arg("--logdir")
        .arg(&blocker)
        .output()
        .unwrap();
    assert_user_error(&out, &["not-a-folder", "--logdir"]);
    assert!(
        stdout(&out).is_empty(),
        "no training happened: {}",
        stdout(&out)
    );
}

#[test]
fn ctrl_c_flushes_the_logs_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let file = synthetic_experiment(dir.path(), 100_000, 5000);
    let logs = dir.path().join("logs");
    let child = runner(dir.path())
        .arg(&file)
        .arg("--logdir")
        .arg(&logs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the run folder, let it train a while, then interrupt.
    wait_until("runner never started", || {
        std::fs::read_dir(logs.join("syn")).is_ok_and(|mut d| d.next().is_some())
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted at epoch") && !err.contains("panicked"),
        "{err}"
    );
    let run = single_run(&logs.join("syn"));
    assert!(
        event_file_len(&run.join("train")) > 100,
        "events were flushed"
    );
}

/// The values `runner` printed per epoch: (loss, acc, test_loss, test_acc, lr).
fn printed_epochs(out: &str) -> Vec<[f64; 5]> {
    out.lines()
        .filter(|l| l.starts_with("epoch "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let after = |key: &str| -> f64 {
                let i = words.iter().position(|w| *w == key).unwrap();
                words[i + 1].parse().unwrap()
            };
            [
                after("loss"),
                after("acc"),
                after("test_loss"),
                after("test_acc"),
                after("lr"),
            ]
        })
        .collect()
}

/// The README's first command, shortened to 2 epochs, on the real MNIST; then TensorBoard's
/// own reader checks every file. Skips with a reason when MNIST or the reader is missing.
#[test]
fn fc_adam_l2_reaches_93_percent_in_2_epochs_and_tensorboard_reads_it() {
    let Some(data) = real_mnist() else {
        eprintln!("skipped: set KILN_DATA_DIR to the real MNIST folder to run the end-to-end test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let out = runner(dir.path())
        .arg(FC_ADAM_L2)
        .args(["--set", "train.epochs=2", "--logdir"])
        .arg(&logs)
        .env("KILN_DATA_DIR", std::path::absolute(&data).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).is_empty(),
        "nothing but errors on stderr: {}",
        stderr(&out)
    );
    let epochs = printed_epochs(&stdout(&out));
    assert_eq!(epochs.len(), 2, "{}", stdout(&out));
    let final_accuracy = epochs[1][3];
    assert!(
        final_accuracy > 0.93,
        "test accuracy {final_accuracy} after 2 epochs"
    );

    let run = single_run(&logs.join("fc_adam_l2"));
    let Some(python) = std::env::var_os("KILN_TB_PYTHON") else {
        eprintln!(
            "skipped the TensorBoard reader check: set KILN_TB_PYTHON to a python with the tensorboard package (.ci/run does)"
        );
        return;
    };
    let column = |i: usize| {
        epochs
            .iter()
            .map(|e| e[i].to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let expected = format!(
        r#"{{"epochs": 2, "steps_per_epoch": 937,
            "train": {{"epoch_loss": [{}], "epoch_accuracy": [{}], "learning_rate": [{}]}},
            "test": {{"epoch_loss": [{}], "epoch_accuracy": [{}]}}}}"#,
        column(0),
        column(1),
        column(4),
        column(2),
        column(3)
    );
    let expected_path = dir.path().join("expected.json");
    std::fs::write(&expected_path, expected).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/check_events.py");
    let check = Command::new(python)
        .arg(script)
        .arg(&run)
        .arg(&expected_path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "TensorBoard reader: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn trains_from_csv_files_with_a_header() {
    let dir = tempfile::tempdir().unwrap();
    // Three classes, each lighting its own column (plus a constant one), in the mnist_train.csv form.
    let rows = |n: usize| {
        let mut text = String::from("label,a,b,c,d\n");
        for i in 0..n {
            let class = i % 3;
            let cells: Vec<String> = (0..3)
                .map(|c| if c == class { "250" } else { "5" }.to_string())
                .collect();
            text.push_str(&format!("{class},{},128\n", cells.join(",")));
        }
        text
    };
    std::fs::write(dir.path().join("train.csv"), rows(300)).unwrap();
    std::fs::write(dir.path().join("test.csv"), rows(60)).unwrap();
    let file = dir.path().join("csv.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"csv\"\nseed = 5\n[data]\ndataset = \"csv\"\ndir = \"{}\"\ntrain_file = \"train.csv\"\ntest_file = \"test.csv\"\n[model]\nlayers = [{{ type = \"linear\", units = 3 }}]\n[optimizer]\nkind = \"sgd\"\nlr = 0.5\n[train]\nepochs = 5\nbatch_size = 10\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = runner(dir.path()).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let epochs = printed_epochs(&stdout(&out));
    assert_eq!(epochs.len(), 5);
    assert_eq!(epochs[4][3], 1.0, "separable classes: {}", stdout(&out));

    // A short row is a data error naming the file and line.
    std::fs::write(
        dir.path().join("test.csv"),
        "label,a,b,c,d\n1,2,3,4,5\n2,3\n",
    )
    .unwrap();
    let out = runner(dir.path()).arg(&file).output().unwrap();
    assert_user_error(&out, &["test.csv line 3", "expected 5"]);
}

#[test]
fn fashion_mnist_pointed_at_mnist_files_is_refused() {
    let Some(data) = real_mnist() else {
        eprintln!("skipped: set KILN_DATA_DIR to the real MNIST folder to run this test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = runner(dir.path())
        .arg(FC_ADAM_L2)
        .args(["--set", "data.dataset=fashion-mnist", "--logdir"])
        .arg(dir.path().join("logs"))
        .env("KILN_DATA_DIR", std::path::absolute(&data).unwrap())
        .output()
        .unwrap();
    assert_user_error(&out, &["MNIST's file, not Fashion-MNIST's"]);
    assert!(
        !dir.path().join("logs").exists(),
        "nothing written before the data was checked"
    );
}

#[test]
fn inspect_prints_the_summary_without_data_or_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = runner(dir.path())
        .args(["inspect", FC_ADAM_L2])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("total params: 248,460 (trainable 248,460, non-trainable 0)"),
        "{text}"
    );
    assert!(
        text.contains("linear + relu") && text.contains("[250]") && text.contains("196,250"),
        "{text}"
    );
    assert!(!dir.path().join("logs").exists() && !dir.path().join("cache").exists());

    let cnn = concat!(env!("CARGO_MANIFEST_DIR"), "/../../experiments/cnn_bn.toml");
    let text = stdout(&runner(dir.path()).args(["inspect", cnn]).output().unwrap());
    // conv 32*25+32, BN 2*32 (+2*32 running statistics), 6272*70+70, 70*30+30, 30*10+10
    assert!(
        text.contains("total params: 442,510 (trainable 442,446, non-trainable 64)"),
        "{text}"
    );
    assert!(text.contains("[32, 14, 14]"), "{text}");

    let out = runner(dir.path())
        .args([
            "inspect",
            FC_ADAM_L2,
            "--set",
            "model.layers=[{type=\"linear\",units=10}]",
        ])
        .output()
        .unwrap();
    assert_user_error(&out, &["fc_adam_l2.toml", "model.layers[0]", "flatten"]);
}

#[test]
fn a_zoo_model_builds_the_same_network_as_its_layer_list() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("zoo.toml");
    let text = std::fs::read_to_string(FC_ADAM_L2).unwrap();
    let start = text.find("layers = [").unwrap();
    let end = start + text[start..].find("]\n").unwrap() + 2;
    let zoo = format!(
        "{}zoo = \"mlp\"\nparams = {{ hidden = [250, 200], activation = \"relu\" }}\n{}",
        &text[..start],
        &text[end..]
    );
    std::fs::write(&file, zoo).unwrap();
    let by_zoo = stdout(
        &runner(dir.path())
            .arg("inspect")
            .arg(&file)
            .output()
            .unwrap(),
    );
    let by_hand = stdout(
        &runner(dir.path())
            .args(["inspect", FC_ADAM_L2])
            .output()
            .unwrap(),
    );
    assert!(by_zoo.contains("248,460"), "{by_zoo}");
    assert_eq!(by_zoo, by_hand);

    let out = runner(dir.path())
        .arg("inspect")
        .arg(&file)
        .args(["--set", "model.zoo=resnet50"])
        .output()
        .unwrap();
    assert_user_error(
        &out,
        &[
            "--set model.zoo=resnet50",
            "model.zoo",
            "mlp, cnn_bn, lenet5, ann5, resnet",
        ],
    );
    let out = runner(dir.path())
        .arg("inspect")
        .arg(&file)
        .args(["--set", "model.params.hiden=[3]"])
        .output()
        .unwrap();
    assert_user_error(&out, &["hiden", "model.params"]);
}

/// One epoch of a reference experiment on the real MNIST; its test accuracy.
fn first_epoch_accuracy(experiment: &str) -> Option<f64> {
    let data = real_mnist()?;
    let dir = tempfile::tempdir().unwrap();
    let path = format!(
        "{}/../../experiments/{experiment}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = runner(dir.path())
        .arg(path)
        .args(["--set", "train.epochs=1", "--logdir"])
        .arg(dir.path().join("logs"))
        .env("KILN_DATA_DIR", std::path::absolute(&data).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).is_empty(),
        "no warnings for a reference experiment: {}",
        stderr(&out)
    );
    Some(printed_epochs(&stdout(&out))[0][3])
}

#[test]
fn reference_experiments_reach_their_first_epoch_accuracy_within_a_point() {
    // (experiment, the reference's test accuracy after epoch 1)
    for (experiment, reference) in [("ann5_adam", 0.9542), ("cnn_bn", 0.9729)] {
        let Some(accuracy) = first_epoch_accuracy(experiment) else {
            eprintln!(
                "skipped: set KILN_DATA_DIR to the real MNIST folder to run the reference experiments"
            );
            return;
        };
        assert!(
            accuracy >= reference - 0.01,
            "{experiment}: {accuracy} after one epoch, reference {reference}"
        );
    }
}

#[test]
fn a_sweep_runs_every_experiment_of_a_folder_and_ranks_them() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(synthetic_experiment(dir.path(), 2, 300)).unwrap();
    let study = dir.path().join("study");
    std::fs::create_dir_all(study.join("ignored-subfolder")).unwrap();
    std::fs::write(
        study.join("a_fast.toml"),
        base.replace("name = \"syn\"", "name = \"fast\""),
    )
    .unwrap();
    let slow = base
        .replace("name = \"syn\"", "name = \"slow\"")
        .replace("lr = 0.1", "lr = 0.0001");
    std::fs::write(study.join("b_slow.toml"), slow).unwrap();
    std::fs::write(
        study.join("c_broken.toml"),
        base.replace("\"flatten\"", "\"flattn\""),
    )
    .unwrap();
    std::fs::write(study.join("ignored-subfolder/x.toml"), "not toml at all [").unwrap();
    let logs = dir.path().join("logs");
    let out = runner(dir.path())
        .args(["sweep", "--jobs", "2", "--logdir"])
        .arg(&logs)
        .arg(&study)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one run failed, so the sweep fails: {err}"
    );
    assert!(
        err.contains("some runs of the sweep failed") && !err.contains("panicked"),
        "{err}"
    );

    let csv = std::fs::read_to_string(logs.join("study/summary.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(rows[1].starts_with("\"fast\""), "best first: {csv}");
    assert!(rows[2].starts_with("\"slow\""), "{csv}");
    assert!(
        rows[3].contains("failed") && rows[3].contains("flattn"),
        "{csv}"
    );
    let accuracy = |row: &str| row.split(',').nth(2).unwrap().parse::<f64>().unwrap();
    assert!(accuracy(rows[1]) > accuracy(rows[2]));
    assert!(
        std::fs::read_to_string(logs.join("study/summary.md"))
            .unwrap()
            .contains("| 1 | fast |")
    );
    for name in ["fast", "slow"] {
        let run = single_run(&logs.join("study").join(name));
        assert!(run.join("config.toml").is_file() && run.join("train").is_dir());
    }
}

#[test]
fn a_sweep_file_runs_its_grid_with_runs_named_by_their_values() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_experiment(dir.path(), 3, 300);
    let file = dir.path().join("lr_study.toml");
    std::fs::write(
        &file,
        "[sweep]\nbase = \"syn.toml\"\n[sweep.grid]\n\"optimizer.lr\" = [0.0001, 0.1]\n",
    )
    .unwrap();
    let logs = dir.path().join("logs");
    let out = runner(dir.path())
        .arg("sweep")
        .arg(&file)
        .args(["--set", "train.epochs=2", "--logdir"])
        .arg(&logs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(logs.join("lr_study/summary.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[1].starts_with("\"lr=0.1\"") && rows[2].starts_with("\"lr=0.0001\""),
        "{csv}"
    );
    let run = single_run(&logs.join("lr_study/lr=0.1"));
    let written: toml::Table =
        toml::from_str(&std::fs::read_to_string(run.join("config.toml")).unwrap()).unwrap();
    assert_eq!(written["optimizer"]["lr"].as_float(), Some(0.1));
    assert_eq!(
        written["train"]["epochs"].as_integer(),
        Some(2),
        "--set applies to every run"
    );
    assert_eq!(written["name"].as_str(), Some("lr=0.1"));

    // Re-running skips what completed with the same config; a run without its completion
    // marker (as an interrupted one) is run again, and --force re-runs everything.
    let again = |extra: &[&str]| {
        let out = runner(dir.path())
            .arg("sweep")
            .arg(&file)
            .args(["--set", "train.epochs=2", "--logdir"])
            .arg(&logs)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let runs = |name: &str| {
        std::fs::read_dir(logs.join("lr_study").join(name))
            .unwrap()
            .count()
    };
    let text = again(&[]);
    assert!(text.contains("2 runs, 2 already complete"), "{text}");
    assert_eq!((runs("lr=0.1"), runs("lr=0.0001")), (1, 1));
    std::fs::remove_file(single_run(&logs.join("lr_study/lr=0.0001")).join("result.toml")).unwrap();
    again(&[]);
    assert_eq!((runs("lr=0.1"), runs("lr=0.0001")), (1, 2));
    let csv = std::fs::read_to_string(logs.join("lr_study/summary.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        3,
        "the summary still lists both runs: {csv}"
    );
    again(&["--force"]);
    assert_eq!((runs("lr=0.1"), runs("lr=0.0001")), (2, 3));
    // A changed value is a different experiment: it runs.
    let out = runner(dir.path())
        .arg("sweep")
        .arg(&file)
        .args(["--set", "train.epochs=1", "--logdir"])
        .arg(&logs)
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("0 already complete"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn sweep_runs_record_their_swept_values_for_the_hparams_dashboard() {
    let Some(python) = std::env::var_os("KILN_TB_PYTHON") else {
        eprintln!(
            "skipped: set KILN_TB_PYTHON to a python with the tensorboard package (.ci/run does)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    synthetic_experiment(dir.path(), 1, 100);
    let file = dir.path().join("hp.toml");
    std::fs::write(
        &file,
        "[sweep]\nbase = \"syn.toml\"\n[sweep.grid]\n\"optimizer.lr\" = [0.01, 0.1]\n",
    )
    .unwrap();
    let logs = dir.path().join("logs");
    let out = runner(dir.path())
        .arg("sweep")
        .arg(&file)
        .arg("--logdir")
        .arg(&logs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/check_hparams.py");
    let check = Command::new(python)
        .arg(script)
        .arg(logs.join("hp"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let runs: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(runs.len(), 2, "{text}");
    let mut rates: Vec<f64> = runs
        .values()
        .map(|r| r["optimizer.lr"].as_f64().unwrap())
        .collect();
    rates.sort_by(f64::total_cmp);
    assert_eq!(rates, [0.01, 0.1]);
    for r in runs.values() {
        assert_eq!(r["optimizer.kind"].as_str(), Some("sgd"));
        assert_eq!(r["_status"].as_i64(), Some(1), "STATUS_SUCCESS: {text}");
    }
}

/// Histograms as the sigmoid study needs them: TensorBoard reads every layer's weights and
/// pre/post activations at epoch 0 and 1, and they show std 1.0 saturating the first sigmoid
/// layer where std 0.01 does not.
#[test]
fn histograms_show_sigmoid_saturation_under_a_large_init() {
    let (Some(data), Some(python)) = (real_mnist(), std::env::var_os("KILN_TB_PYTHON")) else {
        eprintln!(
            "skipped: needs KILN_DATA_DIR (real MNIST) and KILN_TB_PYTHON (.ci/run sets both)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study");
    std::fs::create_dir(&study).unwrap();
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../experiments/sigmoid_init"
    );
    for variant in ["std0.01.toml", "std1.0.toml"] {
        std::fs::copy(Path::new(source).join(variant), study.join(variant)).unwrap();
    }
    let logs = dir.path().join("logs");
    let out = runner(dir.path())
        .arg("sweep")
        .arg(&study)
        .arg("--logdir")
        .arg(&logs)
        .args(["--set", "train.epochs=1", "--set", "data.limit_train=2000"])
        .args([
            "--set",
            "log.histograms_every=1",
            "--set",
            "log.histogram_examples=500",
        ])
        .env("KILN_DATA_DIR", std::path::absolute(&data).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let histograms = |variant: &str| -> serde_json::Value {
        let run = single_run(&logs.join("study").join(variant));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/check_histograms.py");
        let check = Command::new(&python)
            .arg(script)
            .arg(&run)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&check.stdout).into_owned();
        assert!(check.status.success(), "{text}{}", stderr(&check));
        serde_json::from_str(&text).unwrap()
    };
    let large = histograms("std1.0");
    let small = histograms("std0.01");
    for h in [&large, &small] {
        let tags = h.as_object().unwrap();
        for (tag, num) in [
            ("weights/00_linear_sigmoid/weight", 78_400.0),
            ("weights/00_linear_sigmoid/bias", 100.0),
            ("weights/02_linear/weight", 300.0),
            ("activations/00_linear_sigmoid/pre", 500.0 * 100.0),
            ("activations/00_linear_sigmoid/post", 500.0 * 100.0),
            ("activations/01_linear_sigmoid/post", 500.0 * 30.0),
            ("activations/02_linear/pre", 500.0 * 10.0),
        ] {
            let rows = tags[tag].as_array().unwrap_or_else(|| panic!("no {tag}"));
            let steps: Vec<i64> = rows.iter().map(|r| r["step"].as_i64().unwrap()).collect();
            assert_eq!(steps, [0, 1], "{tag}");
            assert_eq!(rows[0]["num"].as_f64(), Some(num), "{tag}");
        }
        // The last layer has no activation, so no `post`.
        assert!(!tags.contains_key("activations/03_linear/post"));
    }
    let edges =
        |h: &serde_json::Value| h["activations/00_linear_sigmoid/post"][0]["edges"].as_f64();
    let (large_edges, small_edges) = (edges(&large).unwrap(), edges(&small).unwrap());
    assert!(
        large_edges > 0.5,
        "std 1.0: {large_edges} of the outputs at 0 or 1"
    );
    assert!(
        small_edges < 0.1,
        "std 0.01: {small_edges} of the outputs at the ends"
    );
    let post_max = small["activations/00_linear_sigmoid/post"][0]["max"]
        .as_f64()
        .unwrap();
    assert!(
        post_max < 0.7,
        "std 0.01 keeps sigmoid outputs near 0.5: max {post_max}"
    );
}

/// Ctrl-C stops a sweep: the run in flight is interrupted (logs flushed, no result), no new run
/// starts, exit 130; the same command again runs only what did not complete, resuming the
/// interrupted run from its checkpoint.
#[test]
fn an_interrupted_sweep_resumes_with_only_the_missing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(synthetic_experiment(dir.path(), 1, 2000)).unwrap();
    let study = dir.path().join("study");
    std::fs::create_dir(&study).unwrap();
    let variant = |file: &str, name: &str, epochs: usize| {
        let text = base
            .replace("name = \"syn\"", &format!("name = \"{name}\""))
            .replace("epochs = 1", &format!("epochs = {epochs}"));
        std::fs::write(study.join(file), text).unwrap();
    };
    variant("a.toml", "first", 1);
    variant("b.toml", "long", 150);
    variant("c.toml", "last", 1);
    let logs = dir.path().join("logs");
    let sweep = || {
        let mut cmd = runner(dir.path());
        cmd.args(["sweep", "--jobs", "1", "--logdir"])
            .arg(&logs)
            .arg(&study);
        cmd
    };
    let results = |name: &str| -> usize {
        std::fs::read_dir(logs.join("study").join(name))
            .map(|runs| {
                runs.filter(|r| r.as_ref().unwrap().path().join("result.toml").is_file())
                    .count()
            })
            .unwrap_or(0)
    };

    let child = sweep()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the long run never started", || {
        logs.join("study/long").is_dir()
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("sweep interrupted with 1 of 3 runs complete") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(results("first"), 1);
    assert_eq!(results("long"), 0, "the interrupted run left no result");
    assert!(
        !logs.join("study/last").exists(),
        "no run started after Ctrl-C"
    );

    let out = sweep().output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 runs, 1 already complete"),
        "{}",
        stdout(&out)
    );
    for name in ["first", "long", "last"] {
        assert_eq!(results(name), 1, "{name} completed once");
    }
    assert_eq!(
        std::fs::read_dir(logs.join("study/long")).unwrap().count(),
        1,
        "the interrupted run was resumed, not started again"
    );
    let csv = std::fs::read_to_string(logs.join("study/summary.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        4,
        "all three runs in the summary: {csv}"
    );
}

#[test]
fn sub_folders_of_a_sweep_are_read_only_with_recursive() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(synthetic_experiment(dir.path(), 1, 200)).unwrap();
    let study = dir.path().join("study");
    std::fs::create_dir_all(study.join("deeper")).unwrap();
    std::fs::write(study.join("top.toml"), base.replace("\"syn\"", "\"top\"")).unwrap();
    std::fs::write(
        study.join("deeper/inner.toml"),
        base.replace("\"syn\"", "\"inner\""),
    )
    .unwrap();
    let sweep = |logs: &str, recursive: bool| {
        let mut cmd = runner(dir.path());
        cmd.args(["sweep", "--logdir", logs]).arg(&study);
        if recursive {
            cmd.arg("--recursive");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::read_to_string(dir.path().join(logs).join("study/summary.csv")).unwrap()
    };
    let flat = sweep("flat", false);
    assert_eq!(flat.lines().count(), 2, "{flat}");
    assert!(
        flat.contains("\"top\"") && !flat.contains("inner"),
        "{flat}"
    );
    let all = sweep("all", true);
    assert_eq!(all.lines().count(), 3, "{all}");
    assert!(all.contains("\"inner\""), "{all}");
}
