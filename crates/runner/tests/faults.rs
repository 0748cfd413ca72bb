//! Damaged data and faults during a run: each ends in one clear line and the documented exit
//! code, never a panic, and nothing already trained or logged is lost.

use std::path::Path;
use std::process::Output;

mod common;
use common::*;

/// Exit code `code`, one `error:` line on stderr naming each of `expect`, no panic.
fn assert_one_error(out: &Output, code: i32, expect: &[&str]) {
    let err = stderr(out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    for e in expect {
        assert!(errors[0].contains(e), "expected {e:?} in: {err}");
    }
}

fn train(dir: &Path, file: &Path, sets: &[&str]) -> Output {
    let mut cmd = runner(dir);
    cmd.arg(file)
        .arg("-q")
        .arg("--logdir")
        .arg(dir.join("logs"));
    for s in sets {
        cmd.args(["--set", s]);
    }
    cmd.output().unwrap()
}

#[test]
fn damaged_data_files_exit_2_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = synthetic_experiment(dir.path(), 1, 200);
    let data = dir.path().join("data");
    let images = data.join("train-images-idx3-ubyte");
    let original = std::fs::read(&images).unwrap();

    let mut magic = original.clone();
    magic[2] = 0x0d;
    std::fs::write(&images, &magic).unwrap();
    assert_one_error(
        &train(dir.path(), &file, &[]),
        2,
        &["train-images-idx3-ubyte", "magic number"],
    );

    std::fs::write(&images, &original[..original.len() - 1000]).unwrap();
    assert_one_error(
        &train(dir.path(), &file, &[]),
        2,
        &["train-images-idx3-ubyte", "truncated"],
    );

    std::fs::write(&images, &original[..10]).unwrap();
    assert_one_error(
        &train(dir.path(), &file, &[]),
        2,
        &["train-images-idx3-ubyte", "header"],
    );
    std::fs::write(&images, &original).unwrap();

    // A gzip file cut short.
    let gz = dir.path().join("gz");
    std::fs::create_dir_all(&gz).unwrap();
    kiln_core::data::synthetic::write_idx(&gz, 200, 100, true).unwrap();
    let gz_images = gz.join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&gz_images).unwrap();
    std::fs::write(&gz_images, &bytes[..bytes.len() / 2]).unwrap();
    let out = train(dir.path(), &file, &[&format!("data.dir={}", gz.display())]);
    assert_one_error(&out, 2, &["train-images-idx3-ubyte.gz", "gzip"]);

    // More labels than [data] classes allows.
    let out = train(dir.path(), &file, &["data.classes=5"]);
    assert_one_error(&out, 2, &["classes = 5", "labels must be 0 to 4"]);

    // CSV: a short row, a cell that is not a number, a label that is not a class number.
    let csv = dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    let experiment = dir.path().join("csv.toml");
    std::fs::write(
        &experiment,
        format!(
            "name = \"csv\"\n[data]\ndataset = \"csv\"\ndir = \"{}\"\ntrain_file = \"train.csv\"\ntest_file = \"test.csv\"\n[model]\nlayers = [{{ type = \"linear\", units = 2 }}]\n[optimizer]\nkind = \"sgd\"\n",
            csv.display()
        ),
    )
    .unwrap();
    let good = "label,a,b\n0,1,2\n1,3,4\n";
    std::fs::write(csv.join("test.csv"), good).unwrap();
    for (body, expect) in [
        (
            "label,a,b\n0,1,2\n1,3\n",
            vec!["train.csv line 3", "2 columns, expected 3"],
        ),
        (
            "label,a,b\n0,1,2\n1,3,x4\n",
            vec!["train.csv line 3, column 3", "\"x4\" is not a number"],
        ),
        (
            "label,a,b\n0,1,2\n-1,3,4\n",
            vec!["train.csv line 3", "label \"-1\""],
        ),
    ] {
        std::fs::write(csv.join("train.csv"), body).unwrap();
        assert_one_error(&train(dir.path(), &experiment, &[]), 2, &expect);
    }
    assert!(
        !dir.path().join("logs").exists(),
        "no run folder for bad data"
    );

    // The real MNIST with one byte changed fails its checksum.
    if let Some(mnist) = real_mnist() {
        let copy = dir.path().join("mnist");
        std::fs::create_dir_all(&copy).unwrap();
        for entry in std::fs::read_dir(&mnist).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
        let labels = std::fs::read_dir(&copy)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains("t10k-labels"))
            .unwrap();
        let mut raw = vec![];
        let bytes = std::fs::read(&labels).unwrap();
        if labels.extension().is_some_and(|e| e == "gz") {
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut raw)
                .unwrap();
        } else {
            raw = bytes;
        }
        raw[100] = (raw[100] + 1) % 10;
        std::fs::remove_file(&labels).unwrap();
        std::fs::write(copy.join("t10k-labels-idx1-ubyte"), &raw).unwrap();
        let mut cmd = runner(dir.path());
        cmd.env("KILN_DATA_DIR", &copy)
            .args([FC_ADAM_L2, "-q", "--logdir"])
            .arg(dir.path().join("logs"));
        assert_one_error(
            &cmd.output().unwrap(),
            2,
            &["t10k-labels-idx1-ubyte", "checksum"],
        );
    }
}

#[test]
fn a_diverging_run_stops_at_the_step_exits_1_and_keeps_its_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let file = synthetic_experiment(dir.path(), 3, 500);
    // lr 0.1 in epoch 1, then 1e34: the weights and the loss overflow in epoch 2.
    let out = train(
        dir.path(),
        &file,
        &[
            "schedule.kind=step",
            "schedule.step_size=1",
            "schedule.gamma=1e35",
        ],
    );
    assert_one_error(
        &out,
        1,
        &["epoch 2", "step", "optimizer.lr", "learning rate"],
    );
    let run = single_run(&dir.path().join("logs/syn"));
    let eval = runner(dir.path())
        .args(["eval", &run.display().to_string(), "--checkpoint", "last"])
        .output()
        .unwrap();
    assert_eq!(eval.status.code(), Some(0), "{}", stderr(&eval));
    assert!(stdout(&eval).contains("after epoch 1"), "{}", stdout(&eval));
    assert!(
        event_file_len(&run.join("test")) > 100,
        "epoch 1's logs were flushed"
    );
}

/// A disk that fills during training (simulated by a file size limit, which makes writes
/// fail with EFBIG as ENOSPC would): reported as a run failure, no panic.
#[test]
fn a_disk_that_fills_during_training_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = synthetic_experiment(dir.path(), 50, 2000);
    let runner_path = env!("CARGO_BIN_EXE_runner");
    // 40 KiB: the config and the first events fit; the checkpoints (or later events) do not.
    let script = format!(
        "trap '' XFSZ; ulimit -f 40; exec {runner_path} {} -q --logdir {}",
        file.display(),
        dir.path().join("logs").display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env("KILN_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    assert_one_error(&out, 1, &["cannot write", "File too large"]);
}
