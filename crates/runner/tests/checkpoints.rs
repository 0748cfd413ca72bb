//! The trained model outlives the run: checkpoints, resume after Ctrl-C, damaged files,
//! `runner eval`, `predict` and `export`, each through the binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

mod common;
use common::*;

/// A small CNN with BatchNorm and dropout (both draw on or keep state a resume must restore)
/// on the synthetic 28x28 data, trained by Adam (kiln's fused optimizer on flex).
fn cnn_experiment(dir: &Path, epochs: usize, train: usize) -> PathBuf {
    cnn_experiment_with(dir, epochs, train, "")
}

/// [`cnn_experiment`] with more `[data]` lines (they may open `[data.augment]`).
fn cnn_experiment_with(dir: &Path, epochs: usize, train: usize, data_lines: &str) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    kiln_core::data::synthetic::write_idx(&data, train, 300, false).unwrap();
    let file = dir.join("cnn.toml");
    std::fs::write(
        &file,
        format!(
            r#"name = "cnn"
seed = 3
[data]
dataset = "idx"
dir = "{}"
normalize = {{ scale = 255.0 }}
{data_lines}
[model]
input = [1, 28, 28]
layers = [
  {{ type = "conv2d", filters = 4, kernel = 3, padding = 1 }},
  {{ type = "batchnorm", activation = "relu" }},
  {{ type = "max_pool2d", kernel = 2 }},
  {{ type = "flatten" }},
  {{ type = "dropout", p = 0.3 }},
  {{ type = "linear", units = 16, activation = "tanh" }},
  {{ type = "linear", units = 10 }},
]
[optimizer]
kind = "adam"
lr = 0.003
[train]
epochs = {epochs}
batch_size = 50
"#,
            data.display()
        ),
    )
    .unwrap();
    file
}

fn run(cmd: &mut std::process::Command) -> Output {
    cmd.output().unwrap()
}

/// The lines `runner` printed for each epoch, without the timing at the end.
fn epoch_lines(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("epoch "))
        .map(|l| l.split("  lr ").next().unwrap().to_string())
        .collect()
}

fn export(scratch: &Path, run: &Path, to: &Path) -> Vec<u8> {
    let out = run_cmd(
        scratch,
        &["export", &s(run), "--checkpoint", "last", "-o", &s(to)],
    );
    ok(&out);
    std::fs::read(to).unwrap()
}

fn run_cmd(scratch: &Path, args: &[&str]) -> Output {
    run(runner(scratch).args(args))
}

fn tb_python() -> Option<std::ffi::OsString> {
    let python = std::env::var_os("KILN_TB_PYTHON");
    if python.is_none() {
        eprintln!("skipped the TensorBoard reader check: set KILN_TB_PYTHON (.ci/run does)");
    }
    python
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

#[test]
fn a_run_stopped_by_ctrl_c_and_resumed_matches_one_never_stopped() {
    let dir = tempfile::tempdir().unwrap();
    // A validation split and every augmentation: their draws must resume exactly too.
    let file = cnn_experiment_with(
        dir.path(),
        10_000,
        3000,
        "validation = 300
[data.augment]
random_crop = { size = 28, padding = 2 }
horizontal_flip = true
rotation = 10
translate = 0.1
cutout = { size = 6 }
mixup = 0.2
cutmix = 1.0",
    );
    stopped_and_resumed_matches_never_stopped(dir.path(), &file);
}

/// A graph (two branches concatenated, a residual add) resumes as exactly as a chain: each
/// layer's output is kept for its readers, and nothing of that is state.
#[test]
fn a_graph_network_stopped_by_ctrl_c_and_resumed_matches_one_never_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let file = cnn_experiment(dir.path(), 10_000, 3000);
    let graph = r#"layers = [
  { type = "conv2d", filters = 4, kernel = 3, padding = 1 },
  { type = "batchnorm", activation = "relu", name = "small" },
  { type = "conv2d", filters = 4, kernel = 5, padding = 2, from = "input", name = "large" },
  { type = "concat", from = ["small", "large"], name = "both" },
  { type = "conv2d", filters = 8, kernel = 3, padding = 1, name = "mixed" },
  { type = "add", from = ["both", "mixed"], activation = "relu" },
  { type = "max_pool2d", kernel = 4 },
  { type = "flatten" },
  { type = "dropout", p = 0.3 },
  { type = "linear", units = 10 },
]
"#;
    std::fs::write(&file, replace_layers(&file, graph)).unwrap();
    stopped_and_resumed_matches_never_stopped(dir.path(), &file);
}

/// Every training control at once resumes exactly: the warmup and the plateau schedule's
/// state (a relative threshold of 0.5 lowers the rate after almost every epoch), early stopping's count, the moving average, the accumulation of two batches per
/// step and the clipping of each step's gradients.
#[test]
fn a_run_with_every_training_control_stopped_by_ctrl_c_and_resumed_matches_one_never_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let file = cnn_experiment_with(dir.path(), 10_000, 3000, "validation = 300");
    let text = std::fs::read_to_string(&file).unwrap();
    let controls = r#"accumulate = 2
clip_grad_norm = 0.5
clip_grad_value = 0.05
ema = 0.9
max_time = "10h"
early_stopping = { patience = 1000, min_delta = 0.001 }
[schedule]
kind = "plateau"
patience = 0
factor = 0.7
threshold = 0.5
warmup_steps = 40
"#;
    std::fs::write(&file, format!("{text}{controls}")).unwrap();
    stopped_and_resumed_matches_never_stopped(dir.path(), &file);
}

/// The text of experiment `file` with its `layers = [...]` replaced by `layers`.
fn replace_layers(file: &Path, layers: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let start = text.find("layers = [").unwrap();
    let end = text[start..].find("]\n[optimizer]").unwrap() + start + 2;
    format!("{}{layers}{}", &text[..start], &text[end..])
}

/// Interrupts a run of `file` (in `dir`) once two epochs are checkpointed, resumes it to one
/// epoch past where it stopped, and checks it against the same run never stopped: the same
/// printed figures, weights to the bit, and TensorBoard values.
fn stopped_and_resumed_matches_never_stopped(dir: &Path, file: &Path) {
    let (stopped_logs, whole_logs) = (dir.join("stopped"), dir.join("whole"));

    // Interrupt once two epochs are checkpointed, somewhere in the third or later.
    let child = runner(dir)
        .arg(file)
        .args(["--logdir", &s(&stopped_logs)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("no second checkpoint", || {
        std::fs::read_dir(stopped_logs.join("cnn"))
            .ok()
            .and_then(|mut d| d.next())
            .is_some_and(|r| {
                r.unwrap()
                    .path()
                    .join("checkpoints/epoch-0002.ckpt")
                    .is_file()
            })
    });
    std::thread::sleep(std::time::Duration::from_millis(150));
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let run_dir = single_run(&stopped_logs.join("cnn"));
    assert!(
        err.contains("checkpoint saved in")
            && err.contains(&format!("--resume {}", run_dir.display())),
        "the message says how to continue: {err}"
    );
    let words: Vec<&str> = err.split([' ', ',']).collect();
    let at = |key: &str| -> usize {
        let i = words.iter().position(|w| *w == key).unwrap();
        words[i + 1].trim_end_matches(';').parse().unwrap()
    };
    let (epoch, step) = (at("epoch"), at("step"));
    assert!(epoch >= 3, "{err}");

    // Continue it to one epoch past where it stopped; train the same from scratch.
    let epochs = format!("train.epochs={}", epoch + 1);
    let resumed = run_cmd(
        dir,
        &[
            &s(file),
            "--logdir",
            &s(&stopped_logs),
            "--set",
            &epochs,
            "--resume",
            "latest",
        ],
    );
    ok(&resumed);
    assert!(
        stdout(&resumed).contains(&format!("resumed at epoch {epoch} step {}", step + 1)),
        "{}",
        stdout(&resumed)
    );
    let whole = run_cmd(
        dir,
        &[&s(file), "--logdir", &s(&whole_logs), "--set", &epochs],
    );
    ok(&whole);
    let whole_dir = single_run(&whole_logs.join("cnn"));

    // The epochs the resumed process trained print the same figures...
    let (r, w) = (epoch_lines(&stdout(&resumed)), epoch_lines(&stdout(&whole)));
    assert_eq!(r.len(), 2);
    assert_eq!(r[..], w[w.len() - 2..]);
    // ...the weights and BatchNorm statistics are the same to the bit...
    let a = export(dir, &run_dir, &dir.join("a.safetensors"));
    let b = export(dir, &whole_dir, &dir.join("b.safetensors"));
    assert!(
        a == b,
        "the resumed run's weights differ from the uninterrupted run's"
    );
    // ...and TensorBoard reads the same values at the same steps, each once.
    if let Some(python) = tb_python() {
        let out = run(std::process::Command::new(python)
            .arg(script("same_scalars.py"))
            .arg(&run_dir)
            .arg(&whole_dir));
        assert!(
            stdout(&out).starts_with("same "),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn a_damaged_checkpoint_is_refused_and_the_one_before_it_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let file = cnn_experiment(dir.path(), 3, 600);
    let logs = dir.path().join("logs");
    ok(&run_cmd(
        dir.path(),
        &[
            &s(&file),
            "--logdir",
            &s(&logs),
            "-q",
            "--set",
            "checkpoint.keep_last=2",
        ],
    ));
    let run_dir = single_run(&logs.join("cnn"));
    let mut names: Vec<String> = std::fs::read_dir(run_dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["best.ckpt", "epoch-0002.ckpt", "epoch-0003.ckpt"],
        "keep_last = 2"
    );

    // Cut the newest in half, as a crash in the middle of a non-atomic write would.
    let newest = run_dir.join("checkpoints/epoch-0003.ckpt");
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();

    let direct = run_cmd(
        dir.path(),
        &["eval", &s(&run_dir), "--checkpoint", &s(&newest)],
    );
    assert_user_error(&direct, &["epoch-0003.ckpt", "truncated"]);

    let last = run_cmd(dir.path(), &["eval", &s(&run_dir), "--checkpoint", "last"]);
    ok(&last);
    assert!(
        stderr(&last).contains("epoch-0003.ckpt")
            && stderr(&last).contains("using the one before it"),
        "{}",
        stderr(&last)
    );
    assert!(stdout(&last).contains("after epoch 2"), "{}", stdout(&last));

    let resumed = run_cmd(
        dir.path(),
        &[
            &s(&file),
            "--logdir",
            &s(&logs),
            "--resume",
            &s(&run_dir),
            "--set",
            "train.epochs=4",
        ],
    );
    ok(&resumed);
    assert!(
        stdout(&resumed).contains("epoch-0002.ckpt"),
        "{}",
        stdout(&resumed)
    );
    assert_eq!(
        epoch_lines(&stdout(&resumed)).len(),
        2,
        "epochs 3 and 4 again"
    );

    // A changed experiment is refused, naming the key.
    let changed = run_cmd(
        dir.path(),
        &[
            &s(&file),
            "--logdir",
            &s(&logs),
            "--resume",
            &s(&run_dir),
            "--set",
            "train.epochs=6",
            "--set",
            "optimizer.lr=0.1",
        ],
    );
    assert_user_error(
        &changed,
        &["optimizer.lr", "differs from the run being resumed"],
    );
}

#[test]
fn eval_prints_and_logs_accuracy_per_class_and_the_confusion_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let file = cnn_experiment(dir.path(), 2, 600);
    let logs = dir.path().join("logs");
    let train = run_cmd(dir.path(), &[&s(&file), "--logdir", &s(&logs)]);
    ok(&train);
    let run_dir = single_run(&logs.join("cnn"));

    let out = run_cmd(dir.path(), &["eval", &s(&run_dir), "--json"]);
    ok(&out);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let confusion: Vec<Vec<u64>> = serde_json::from_value(v["confusion_matrix"].clone()).unwrap();
    assert_eq!(confusion.len(), 10);
    assert_eq!(confusion.iter().flatten().sum::<u64>(), 300);
    let diagonal: u64 = (0..10).map(|k| confusion[k][k]).sum();
    let accuracy = v["accuracy"].as_f64().unwrap();
    assert!((accuracy - diagonal as f64 / 300.0).abs() < 1e-12);
    // best.ckpt is the epoch of the best test accuracy the run printed.
    let printed: f64 = stdout(&train)
        .lines()
        .filter(|l| l.starts_with("epoch "))
        .map(|l| {
            l.split("test_acc ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        })
        .fold(0.0, f64::max);
    assert!((accuracy - printed).abs() < 1e-4, "{accuracy} vs {printed}");

    let text = run_cmd(dir.path(), &["eval", &s(&run_dir)]);
    ok(&text);
    assert!(stdout(&text).contains("confusion matrix") && stdout(&text).contains("accuracy"));

    if let Some(python) = tb_python() {
        let out = run(std::process::Command::new(python)
            .arg(script("check_media.py"))
            .arg(run_dir.join("eval")));
        assert!(out.status.success(), "{}", stderr(&out));
        let media: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(
            media["images"]["eval/confusion_matrix/image"],
            serde_json::json!([240, 240])
        );
        let table = media["texts"]["eval/confusion_matrix/table"]
            .as_str()
            .unwrap();
        assert!(table.contains("| true \\ predicted |"), "{table}");
        assert_eq!(
            media["scalars"].as_object().unwrap().len(),
            12,
            "loss, accuracy, 10 classes"
        );
    }
}

/// MNIST test digits as people would give them: enlarged to various sizes, dark on white,
/// RGB PNGs with a margin; `predict` must frame them back the way MNIST was made.
#[test]
fn predict_recognises_enlarged_inverted_rgb_digits_and_shows_what_it_saw() {
    let Some(mnist) = real_mnist() else {
        eprintln!("skipped: set KILN_DATA_DIR to the real MNIST to run this test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let mut train = runner(dir.path());
    train.env("KILN_DATA_DIR", &mnist).args([
        FC_ADAM_L2,
        "--logdir",
        &s(&logs),
        "-q",
        "--set",
        "train.epochs=1",
    ]);
    ok(&run(&mut train));
    let run_dir = single_run(&logs.join("fc_adam_l2"));

    let read = |name: &str| {
        let gz = std::fs::read(mnist.join(format!("{name}.gz"))).unwrap();
        let mut raw = vec![];
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        raw
    };
    let (images, labels) = (
        read("t10k-images-idx3-ubyte"),
        read("t10k-labels-idx1-ubyte"),
    );
    let mut paths = vec![];
    for i in 0..100 {
        let digit = image::GrayImage::from_fn(28, 28, |x, y| {
            image::Luma([255 - images[16 + i * 784 + (y * 28 + x) as usize]])
        });
        let side = 50 + (i as u32 * 37) % 250;
        let big =
            image::imageops::resize(&digit, side, side, image::imageops::FilterType::CatmullRom);
        let mut page =
            image::RgbImage::from_pixel(side + 40, side + 20, image::Rgb([250, 250, 245]));
        for (x, y, p) in big.enumerate_pixels() {
            page.put_pixel(x + 30, y + 5, image::Rgb([p.0[0]; 3]));
        }
        let path = dir.path().join(format!("{i:03}_{}.png", labels[8 + i]));
        page.save(&path).unwrap();
        paths.push(path);
    }
    let mut args = vec!["predict".to_string(), s(&run_dir), "--json".into()];
    args.extend(paths.iter().map(|p| s(p)));
    let out = run(runner(dir.path()).args(&args));
    ok(&out);
    let predictions: Vec<serde_json::Value> = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(predictions.len(), 100);
    let right = predictions
        .iter()
        .zip(0..)
        .filter(|(p, i)| p["class"].as_u64() == Some(labels[8 + i] as u64))
        .count();
    assert!(right >= 93, "only {right} of 100 right");
    assert!(
        predictions
            .iter()
            .all(|p| p["inverted"] == true && p["top3"].as_array().unwrap().len() == 3)
    );

    let plain = run(runner(dir.path()).args(["predict", &s(&run_dir), &s(&paths[0])]));
    ok(&plain);
    assert!(stdout(&plain).contains("top 3:"), "{}", stdout(&plain));

    if let Some(python) = tb_python() {
        let out = run(std::process::Command::new(python)
            .arg(script("check_media.py"))
            .arg(run_dir.join("predict")));
        assert!(out.status.success(), "{}", stderr(&out));
        let media: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        let images = media["images"].as_object().unwrap();
        assert!(
            images.len() >= 100 && images.values().all(|wh| wh == &serde_json::json!([28, 28]))
        );
    }

    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(40, 40, image::Rgb([255, 255, 255]))
        .save(&blank)
        .unwrap();
    let out = run(runner(dir.path()).args(["predict", &s(&run_dir), &s(&blank)]));
    assert_user_error(&out, &["blank.png", "no digit"]);
    let out = run(runner(dir.path()).args(["predict", &s(&run_dir), "missing.png"]));
    assert_user_error(&out, &["missing.png"]);
}

/// Trains the experiment `file` and exports it; returns its run folder, `runner eval`'s
/// confusion matrix and what `runner export` printed.
fn train_eval_export(dir: &Path, file: &Path) -> (PathBuf, Vec<Vec<u64>>, String) {
    let logs = dir.join("logs");
    ok(&run_cmd(dir, &[&s(file), "--logdir", &s(&logs), "-q"]));
    let run_dir = single_run(&logs.join("cnn"));
    let eval = run_cmd(dir, &["eval", &s(&run_dir), "--json"]);
    ok(&eval);
    let v: serde_json::Value = serde_json::from_str(stdout(&eval).trim()).unwrap();
    let kiln = serde_json::from_value(v["confusion_matrix"].clone()).unwrap();
    let export = run_cmd(dir, &["export", &s(&run_dir)]);
    ok(&export);
    assert!(run_dir.join("export/model.safetensors").is_file());
    assert!(run_dir.join("export/model.py").is_file());
    (run_dir, kiln, stdout(&export))
}

/// PyTorch classifies the synthetic test set in `dir` with `model` (weights, or the generated
/// module) as kiln did, on a network that learned something rather than one that answers one
/// class. Skipped without `KILN_TORCH_PYTHON`.
fn assert_pytorch_agrees(dir: &Path, model: &Path, kiln: &[Vec<u64>]) {
    let right: u64 = (0..10).map(|i| kiln[i][i]).sum();
    assert!(right > 150, "{right} of 300 right: {kiln:?}");
    let Some(python) = std::env::var_os("KILN_TORCH_PYTHON") else {
        eprintln!(
            "skipped the PyTorch check: set KILN_TORCH_PYTHON to a python with torch and safetensors (.ci/run does)"
        );
        return;
    };
    let out = run(std::process::Command::new(python)
        .arg(script("torch_export.py"))
        .arg(model)
        .arg(dir.join("data")));
    assert!(out.status.success(), "{}", stderr(&out));
    let torch: Vec<Vec<u64>> = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(torch, kiln);
}

/// The exported weights in a torch module written by hand give the predictions kiln gives.
#[test]
fn exported_weights_load_into_pytorch_and_predict_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let file = cnn_experiment(dir.path(), 2, 600);
    // The exported module is the hand-written one in torch_export.py: no dropout there.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("  { type = \"dropout\", p = 0.3 },\n", ""),
    )
    .unwrap();
    let (run_dir, kiln, printed) = train_eval_export(dir.path(), &file);
    assert!(
        printed.contains("1.running_var") && printed.contains("5.weight"),
        "{printed}"
    );
    let weights = run_dir.join("export/model.safetensors");
    assert_pytorch_agrees(dir.path(), &weights, &kiln);
}

/// The PyTorch module `export` generates from the layer list, with every layer kind and
/// activation in it, predicts what kiln predicts.
#[test]
fn every_layer_kind_exports_to_a_pytorch_module_that_predicts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let file = cnn_experiment(dir.path(), 6, 1500);
    let every_kind = r#"layers = [
  { type = "reshape", shape = [1, 28, 28] },
  { type = "conv2d", filters = 8, kernel = 3, padding = 1, activation = "leaky_relu(0.2)" },
  { type = "conv2d", filters = 8, kernel = [3, 2], dilation = 2, groups = 2, bias = false, activation = "elu" },
  { type = "batchnorm", activation = "relu" },
  { type = "max_pool2d", kernel = 2 },
  { type = "avg_pool2d", kernel = 3, stride = 1, padding = 1 },
  { type = "adaptive_avg_pool2d", output = [6, 5] },
  { type = "gelu" },
  { type = "leaky_relu", slope = 0.1 },
  { type = "elu", alpha = 0.5 },
  { type = "identity" },
  { type = "conv2d", filters = 32, kernel = 1, activation = "tanh" },
  { type = "global_avg_pool2d" },
  { type = "dropout", p = 0.1 },
  { type = "linear", units = 32, activation = "relu" },
  { type = "batchnorm" },
  { type = "tanh" },
  { type = "sigmoid" },
  { type = "relu" },
  { type = "flatten" },
  { type = "linear", units = 10, in_features = 32 },
  { type = "softmax" },
]
"#;
    std::fs::write(
        &file,
        replace_layers(&file, every_kind).replace(
            "[train]\n",
            "[train]\nloss = \"categorical_crossentropy\"\n",
        ),
    )
    .unwrap();
    let (run_dir, kiln, _) = train_eval_export(dir.path(), &file);
    assert_pytorch_agrees(dir.path(), &run_dir.join("export/model.py"), &kiln);
}
