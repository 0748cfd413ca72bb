//! What a user sees in TensorBoard, judged by the real server: one cnn_bn run with
//! histograms, precision–recall curves, `runner eval` and `runner predict`, then every kind of
//! summary kiln writes asked for through the server's HTTP data API, with its default loader.

use std::collections::BTreeMap;

mod common;
use common::tensorboard::{TensorBoard, enc};
use common::*;
use serde_json::{Value, json};

const EPOCHS: usize = 2;
const PROJECTED: usize = 300;

#[test]
fn the_tensorboard_server_shows_every_kind_of_summary_kiln_writes() {
    let (Some(data), Some(python)) = (real_mnist(), std::env::var_os("KILN_TB_PYTHON")) else {
        eprintln!(
            "skipped: needs KILN_DATA_DIR (real MNIST) and KILN_TB_PYTHON (a python with tensorboard; .ci/run sets both)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let data = std::path::absolute(&data).unwrap();
    let run_cmd = |args: &[&str]| {
        let out = runner(dir.path())
            .args(args)
            .env("KILN_DATA_DIR", &data)
            .output()
            .unwrap();
        ok(&out);
    };
    let experiment = concat!(env!("CARGO_MANIFEST_DIR"), "/../../experiments/cnn_bn.toml");
    let logdir = logs.to_str().unwrap();
    run_cmd(&[
        experiment,
        "-q",
        "--logdir",
        logdir,
        "--set",
        &format!("train.epochs={EPOCHS}"),
        "--set",
        "data.limit_train=1000",
        "--set",
        "data.validation=100",
        "--set",
        "log.histograms_every=1",
        "--set",
        "log.histogram_examples=100",
        "--set",
        "log.pr_curves_every=1",
    ]);
    let run_dir = single_run(&logs.join("cnn_bn"));
    let run_path = run_dir.to_str().unwrap();
    run_cmd(&["eval", run_path, "--embeddings", &PROJECTED.to_string()]);
    let digit = dir.path().join("digit.png");
    let mut img = image::GrayImage::new(28, 28);
    for y in 8..20 {
        img.put_pixel(14, y, image::Luma([255]));
    }
    img.save(&digit).unwrap();
    run_cmd(&["predict", run_path, digit.to_str().unwrap()]);

    let tb = TensorBoard::start(&python, &logs);
    let run = format!("cnn_bn/{}", run_dir.file_name().unwrap().to_string_lossy());
    let runs: Vec<String> = ["", "/train", "/validation", "/test", "/eval", "/predict"]
        .iter()
        .map(|s| format!("{run}{s}"))
        .collect();
    let listed = tb.wait_for("/data/runs", |v| {
        runs.iter()
            .all(|r| v.as_array().unwrap().contains(&json!(r)))
    });
    for r in &runs {
        assert!(
            listed.as_array().unwrap().contains(&json!(r)),
            "{r} in {listed}"
        );
    }
    let report = Report::new(&tb, &run);

    // Every tab kiln feeds is active (the Projector finds out in the background, so the
    // listing is asked again until it says so, as the page does).
    let tabs = [
        "scalars",
        "histograms",
        "distributions",
        "images",
        "text",
        "graphs",
        "pr_curves",
        "projector",
        "hparams",
    ];
    let plugins = tb.wait_for("/data/plugins_listing", |p| {
        tabs.iter().all(|t| p[t]["enabled"] == json!(true))
    });
    for tab in tabs {
        assert_eq!(plugins[tab]["enabled"], json!(true), "{tab}: {plugins}");
    }

    scalars(&tb, &report, &run);
    histograms(&tb, &report, &run);
    images_and_text(&tb, &report, &run);
    graph(&tb, &run);
    pr_curves(&tb, &report, &run);
    let projected = projector(&tb, &run);
    let keys = hparams(&tb);
    eprintln!(
        "what the server shows, by tab, run and tag:\n{}    graphs  train    run graph\n projector  eval     {projected}\n   hparams  .        {}",
        report.text(),
        keys.join(", ")
    );
}

/// The tags of every tag-listing plugin, by run suffix (`train`, `eval`, ... or `.`).
struct Report {
    tags: BTreeMap<&'static str, BTreeMap<String, Vec<String>>>,
}

impl Report {
    fn new(tb: &TensorBoard, run: &str) -> Report {
        let mut tags = BTreeMap::new();
        for plugin in ["scalars", "histograms", "images", "text", "pr_curves"] {
            let listing = tb.get(&format!("/data/plugin/{plugin}/tags"));
            let mut by_run = BTreeMap::new();
            for (r, t) in listing.as_object().unwrap() {
                let suffix = r.strip_prefix(run).unwrap_or(r).trim_start_matches('/');
                let mut names: Vec<String> = match t {
                    Value::Object(o) => o.keys().cloned().collect(),
                    Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().into()).collect(),
                    other => panic!("{plugin} tags: {other}"),
                };
                names.sort();
                let key = if suffix.is_empty() { "." } else { suffix };
                by_run.insert(key.to_string(), names);
            }
            tags.insert(plugin, by_run);
        }
        Report { tags }
    }

    fn tags(&self, plugin: &str, run: &str) -> &[String] {
        self.tags
            .get(plugin)
            .and_then(|r| r.get(run))
            .map_or(&[], |v| v.as_slice())
    }

    fn has(&self, plugin: &str, run: &str, tag: &str) {
        assert!(
            self.tags(plugin, run).iter().any(|t| t == tag),
            "{plugin} lists no {tag} in {run}:\n{}",
            self.text()
        );
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for (plugin, runs) in &self.tags {
            for (run, tags) in runs {
                out.push_str(&format!("{plugin:>10}  {run:<8} {}\n", tags.join(", ")));
            }
        }
        out
    }
}

fn query(run: &str, tag: &str) -> String {
    format!("run={}&tag={}", enc(run), enc(tag))
}

fn scalars(tb: &TensorBoard, report: &Report, run: &str) {
    for tag in [
        "epoch_loss",
        "epoch_accuracy",
        "learning_rate",
        "batch_loss",
    ] {
        report.has("scalars", "train", tag);
    }
    for tag in ["epoch_loss", "epoch_accuracy"] {
        report.has("scalars", "test", tag);
        report.has("scalars", "validation", tag);
    }
    report.has("scalars", "eval", "eval/loss");
    report.has("scalars", "eval", "eval/accuracy");
    for k in 0..10 {
        report.has("scalars", "eval", &format!("eval/class_accuracy/{k}"));
    }
    let test = format!("{run}/test");
    let steps = series_steps(tb, "scalars/scalars", &test, "epoch_accuracy");
    assert_eq!(steps, (1..=EPOCHS as i64).collect::<Vec<_>>());
    let validation = format!("{run}/validation");
    let steps = series_steps(tb, "scalars/scalars", &validation, "epoch_accuracy");
    assert_eq!(steps, (1..=EPOCHS as i64).collect::<Vec<_>>());
    // Every step's batch_loss, though only the first value of a tag carries its metadata:
    // 1000 examples less 100 held out, in batches of 64, are 15 steps an epoch.
    let train = format!("{run}/train");
    let steps = series_steps(tb, "scalars/scalars", &train, "batch_loss");
    assert_eq!(steps, (1..=15 * EPOCHS as i64).collect::<Vec<_>>());
}

/// The steps of a series whose points are `[wall time, step, ...]` (scalars, histograms).
fn series_steps(tb: &TensorBoard, route: &str, run: &str, tag: &str) -> Vec<i64> {
    let series = tb.get(&format!("/data/plugin/{route}?{}", query(run, tag)));
    series
        .as_array()
        .unwrap_or_else(|| panic!("{route} {tag}: {series}"))
        .iter()
        .map(|p| p[1].as_i64().unwrap())
        .collect()
}

fn histograms(tb: &TensorBoard, report: &Report, run: &str) {
    for tag in [
        "weights/00_conv2d/weight",
        "weights/01_batchnorm2d_relu/bias",
        "activations/01_batchnorm2d_relu/post",
        "activations/06_linear/pre",
    ] {
        report.has("histograms", "train", tag);
    }
    // The Distributions tab draws the same series.
    let distributions = tb.get("/data/plugin/distributions/tags");
    assert!(
        distributions
            .to_string()
            .contains("weights/00_conv2d/weight")
    );
    let train = format!("{run}/train");
    let steps = series_steps(
        tb,
        "histograms/histograms",
        &train,
        "weights/00_conv2d/weight",
    );
    assert_eq!(steps, (0..=EPOCHS as i64).collect::<Vec<_>>());
}

fn images_and_text(tb: &TensorBoard, report: &Report, run: &str) {
    report.has("images", "eval", "eval/confusion_matrix/image");
    report.has("text", "eval", "eval/confusion_matrix/table");
    report.has("text", ".", "config");
    let predicted = report.tags("images", "predict");
    assert_eq!(predicted.len(), 1, "{predicted:?}");
    assert!(predicted[0].starts_with("predict/000_digit.png_as_"));
    for (r, tag) in [
        ("eval", "eval/confusion_matrix/image"),
        ("predict", predicted[0].as_str()),
    ] {
        let list = tb.get(&format!(
            "/data/plugin/images/images?{}",
            query(&format!("{run}/{r}"), tag)
        ));
        let entry = &list[0];
        let png = tb.get_bytes(&format!(
            "/data/plugin/images/individualImage?{}",
            entry["query"].as_str().unwrap()
        ));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{tag}: not a PNG");
    }
    let table = tb.get(&format!(
        "/data/plugin/text/text?{}",
        query(&format!("{run}/eval"), "eval/confusion_matrix/table")
    ));
    assert!(
        table[0]["text"].as_str().unwrap().contains("<table>"),
        "{table}"
    );
    let config = tb.get(&format!("/data/plugin/text/text?{}", query(run, "config")));
    let html = config[0]["text"].as_str().unwrap();
    // Rendered as a code block, the TOML intact.
    assert!(html.contains("<pre><code"), "{html}");
    assert!(html.contains("name = &quot;cnn_bn&quot;"), "{html}");
    assert!(html.contains("filters = 32"), "{html}");
    assert!(html.contains(&format!("epochs = {EPOCHS}")), "{html}");
}

fn graph(tb: &TensorBoard, run: &str) {
    let info = tb.get("/data/plugin/graphs/info");
    let train = format!("{run}/train");
    assert_eq!(info[&train]["run_graph"], json!(true), "{info}");
    let (status, pbtxt) = tb.get_text(&format!(
        "/data/plugin/graphs/graph?run={}&conceptual=false",
        enc(&train)
    ));
    assert_eq!(status, 200, "{pbtxt}");
    // One node per layer, each reading the one before.
    let names: Vec<&str> = pbtxt
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name: "))
        .map(|n| n.trim_matches('"'))
        .collect();
    assert_eq!(
        names,
        [
            "input",
            "00_conv2d",
            "01_batchnorm2d_relu",
            "02_max_pool2d",
            "03_flatten",
            "04_linear_tanh",
            "05_linear_tanh",
            "06_linear"
        ],
        "{pbtxt}"
    );
    let inputs: Vec<&str> = pbtxt
        .lines()
        .filter_map(|l| l.trim().strip_prefix("input: "))
        .map(|n| n.trim_matches('"'))
        .collect();
    assert_eq!(inputs, names[..names.len() - 1], "{pbtxt}");
    // conv2d 1->32, 5x5: 832 parameters.
    assert!(pbtxt.contains("i: 832"), "{pbtxt}");
}

fn pr_curves(tb: &TensorBoard, report: &Report, run: &str) {
    for r in ["test", "eval"] {
        for k in 0..10 {
            report.has("pr_curves", r, &format!("pr_curve/{k}"));
        }
    }
    let curves = tb.get(&format!(
        "/data/plugin/pr_curves/pr_curves?{}",
        query(&format!("{run}/test"), "pr_curve/3")
    ));
    let entries = curves[format!("{run}/test")].as_array().unwrap();
    let steps: Vec<i64> = entries
        .iter()
        .map(|e| e["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, (1..=EPOCHS as i64).collect::<Vec<_>>(), "{curves}");
    let last = entries.last().unwrap();
    let recall = last["recall"].as_array().unwrap();
    let precision = last["precision"].as_array().unwrap();
    // 101 thresholds; the plugin drops the top ones where nothing is predicted positive.
    assert!((2..=101).contains(&recall.len()), "{last}");
    // Threshold 0 takes every example: all of class 3 found, precision its share (~10%).
    assert_eq!(recall[0], json!(1.0));
    let p0 = precision[0].as_f64().unwrap();
    assert!((0.05..0.2).contains(&p0), "{p0}");
}

/// Checks the Projector's files; returns the embedding's name and shape.
fn projector(tb: &TensorBoard, run: &str) -> String {
    let eval = format!("{run}/eval");
    let runs = tb.get("/data/plugin/projector/runs");
    assert_eq!(runs, json!([eval]), "{runs}");
    let info = tb.get(&format!("/data/plugin/projector/info?run={}", enc(&eval)));
    let embedding = &info["embeddings"][0];
    // cnn_bn's classifier reads 30 tanh units.
    assert_eq!(embedding["tensorShape"], json!([PROJECTED, 30]), "{info}");
    assert_eq!(
        embedding["sprite"]["singleImageDim"],
        json!([28, 28]),
        "{info}"
    );
    let name = enc(embedding["tensorName"].as_str().unwrap());
    let at = format!("run={}&name={name}", enc(&eval));
    let tensor = tb.get_bytes(&format!("/data/plugin/projector/tensor?{at}"));
    assert_eq!(tensor.len(), PROJECTED * 30 * 4);
    let (status, metadata) = tb.get_text(&format!("/data/plugin/projector/metadata?{at}"));
    assert_eq!(status, 200, "{metadata}");
    assert_eq!(metadata.lines().next(), Some("label\tpredicted"));
    assert_eq!(metadata.lines().count(), PROJECTED + 1);
    // The first MNIST test digit is a 7.
    assert!(
        metadata.lines().nth(1).unwrap().starts_with("7\t"),
        "{metadata}"
    );
    let sprite = tb.get_bytes(&format!("/data/plugin/projector/sprite_image?{at}"));
    let sprite = image::load_from_memory(&sprite).unwrap();
    let side = (PROJECTED as f64).sqrt().ceil() as u32 * 28;
    assert_eq!((sprite.width(), sprite.height()), (side, side));
    format!("{} {}", embedding["tensorName"], embedding["tensorShape"])
}

/// Checks the HParams experiment; returns its hyperparameters.
fn hparams(tb: &TensorBoard) -> Vec<String> {
    let experiment = tb.post(
        "/data/plugin/hparams/experiment",
        &json!({"experimentName": ""}),
    );
    let names: Vec<&str> = experiment["hparamInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    for key in ["optimizer.kind", "optimizer.lr", "train.batch_size", "seed"] {
        assert!(names.contains(&key), "{key} in {names:?}");
    }
    names.iter().map(|n| n.to_string()).collect()
}
