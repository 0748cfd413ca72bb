//! Networks that are graphs (`name`, `from`, `add`, `concat`, `[model.blocks]`) through the
//! binary as a user runs them: they learn MNIST, their mistakes are exit-2 errors, a chain
//! written with `from`s is the same chain, and PyTorch computes what kiln computes.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::*;

fn run_cmd(scratch: &Path, args: &[&str]) -> Output {
    runner(scratch).args(args).output().unwrap()
}

/// An experiment on the synthetic 28x28 data of `train` examples with `model` (the `[model]`
/// table's body and any `[model.blocks.*]` tables after it).
fn experiment(dir: &Path, epochs: usize, train: usize, model: &str) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    kiln_core::data::synthetic::write_idx(&data, train, 300, false).unwrap();
    let file = dir.join("graph.toml");
    std::fs::write(
        &file,
        format!(
            r#"name = "graph"
seed = 5
[data]
dataset = "idx"
dir = "{}"
normalize = {{ scale = 255.0 }}
[optimizer]
kind = "adam"
lr = 0.003
[train]
epochs = {epochs}
batch_size = 50
[model]
input = [1, 28, 28]
{model}
"#,
            data.display()
        ),
    )
    .unwrap();
    file
}

/// Two branches over the input (a 3x3 conv with BatchNorm, a 5x5 conv) side by side, a conv
/// over both added back to them, pooling and a classifier: every graph feature at once.
const BRANCHES: &str = r#"layers = [
  { type = "conv2d", filters = 4, kernel = 3, padding = 1 },
  { type = "batchnorm", activation = "relu", name = "small" },
  { type = "conv2d", filters = 4, kernel = 5, padding = 2, from = "input", name = "large" },
  { type = "concat", from = ["small", "large"], name = "both" },
  { type = "conv2d", filters = 8, kernel = 3, padding = 1, activation = "tanh", name = "mixed" },
  { type = "add", from = ["both", "mixed"], activation = "relu" },
  { type = "max_pool2d", kernel = 4 },
  { type = "flatten" },
  { type = "linear", units = 10 },
]"#;

#[test]
fn a_residual_mlp_of_blocks_and_a_concat_cnn_learn_real_mnist() {
    let Some(mnist) = real_mnist() else {
        eprintln!("skipped: set KILN_DATA_DIR to the real MNIST folder to run this test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let common = r#"seed = 1
[data]
dataset = "mnist"
[optimizer]
kind = "adam"
lr = 0.002
[train]
epochs = 2
batch_size = 64
"#;
    let residual = r#"[model]
layers = [
  { type = "flatten" },
  { type = "linear", units = 64, activation = "relu" },
  { type = "block", block = "residual", repeat = 2 },
  { type = "linear", units = 10 },
]
[model.blocks.residual]
args = { units = 64 }
layers = [
  { type = "linear", units = "${units}", activation = "relu" },
  { type = "linear", units = "${units}", name = "out" },
  { type = "add", from = ["input", "out"], activation = "relu" },
]
"#;
    let concat = r#"[model]
layers = [
  { type = "conv2d", filters = 8, kernel = 3, padding = 1, activation = "relu", name = "fine" },
  { type = "conv2d", filters = 8, kernel = 7, padding = 3, activation = "relu", from = "input", name = "coarse" },
  { type = "concat", from = ["fine", "coarse"] },
  { type = "max_pool2d", kernel = 4 },
  { type = "flatten" },
  { type = "linear", units = 10 },
]
"#;
    // (name, layers, more epochs and data where the network needs them, accuracy to reach)
    let cases = [
        (
            "residual",
            residual,
            ["data.limit_train=60000", "train.epochs=3"],
            0.95,
        ),
        (
            "concat",
            concat,
            ["data.limit_train=12000", "train.epochs=2"],
            0.93,
        ),
    ];
    for (name, text, sets, least) in cases {
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, format!("name = \"{name}\"\n{common}{text}")).unwrap();
        let out = runner(dir.path())
            .env("KILN_DATA_DIR", std::path::absolute(&mnist).unwrap())
            .args([&s(&file), "--logdir", &s(&dir.path().join("logs")), "-q"])
            .args(["--set", sets[0], "--set", sets[1]])
            .output()
            .unwrap();
        ok(&out);
        let run = single_run(&dir.path().join("logs").join(name));
        let result = std::fs::read_to_string(run.join("result.toml")).unwrap();
        let accuracy: f64 = result
            .lines()
            .find_map(|l| l.strip_prefix("test_accuracy = "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(accuracy > least, "{name}: {accuracy}\n{result}");
        // The resolved config lists the expanded layers, and runs as it is.
        let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
        assert!(!resolved.contains("block"), "{resolved}");
        let again = run_cmd(dir.path(), &["inspect", &s(&run.join("config.toml"))]);
        ok(&again);
    }
}

#[test]
fn graph_mistakes_are_exit_2_before_anything_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(dir.path(), 1, 200, BRANCHES);
    let logs = dir.path().join("logs");
    let cases: &[(&str, &[&str])] = &[
        (
            "model.layers[3].from=[\"smal\", \"large\"]",
            &["model.layers[3].from", "\"smal\"", "did you mean `small`?"],
        ),
        (
            "model.layers[3].from=[\"small\", \"mixed\"]",
            &[
                "model.layers[3].from",
                "\"mixed\" is layer [4], which comes later",
            ],
        ),
        (
            "model.layers[2].name=small",
            &["model.layers[2].name", "\"small\" already names layer [1]"],
        ),
        (
            "model.layers[5].from=[\"small\", \"mixed\"]",
            &[
                "model.layers[5] (add)",
                "[4, 28, 28] and [8, 28, 28]",
                "differ",
            ],
        ),
        (
            "model.layers[3].from=\"small\"",
            &["model.layers[3].from", "concat merges two layers or more"],
        ),
    ];
    for (set, expect) in cases {
        let out = runner(dir.path())
            .args([&s(&file), "--logdir", &s(&logs), "--set", set])
            .output()
            .unwrap();
        assert_user_error(&out, expect);
        assert!(!logs.exists(), "{set}: a run folder was made");
    }
    // A layer nobody reads is a warning, and the run goes on.
    let out = run_cmd(
        dir.path(),
        &[
            "inspect",
            &s(&file),
            "--set",
            "model.layers[5].from=[\"both\", \"both\"]",
        ],
    );
    ok(&out);
    assert!(
        stderr(&out).contains("warning:")
            && stderr(&out)
                .contains("model.layers[4] (\"mixed\", conv2d) is computed but no layer reads it"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_chain_written_with_names_and_froms_trains_to_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let chain = r#"layers = [
  { type = "conv2d", filters = 4, kernel = 3, padding = 1 },
  { type = "batchnorm", activation = "relu" },
  { type = "max_pool2d", kernel = 2 },
  { type = "flatten" },
  { type = "dropout", p = 0.2 },
  { type = "linear", units = 16, activation = "tanh" },
  { type = "linear", units = 10 },
]"#;
    let wired = r#"layers = [
  { type = "conv2d", filters = 4, kernel = 3, padding = 1, name = "c", from = "input" },
  { type = "batchnorm", activation = "relu", name = "n", from = "c" },
  { type = "max_pool2d", kernel = 2, name = "p", from = "n" },
  { type = "flatten", name = "f", from = "p" },
  { type = "dropout", p = 0.2, name = "d", from = "f" },
  { type = "linear", units = 16, activation = "tanh", name = "h", from = "d" },
  { type = "linear", units = 10, from = "h" },
]"#;
    let mut exported = vec![];
    for (name, layers) in [("chain", chain), ("wired", wired)] {
        let sub = dir.path().join(name);
        let file = experiment(&sub, 2, 600, layers);
        let logs = sub.join("logs");
        ok(&run_cmd(&sub, &[&s(&file), "--logdir", &s(&logs), "-q"]));
        let run = single_run(&logs.join("graph"));
        let to = sub.join("model.safetensors");
        ok(&run_cmd(&sub, &["export", &s(&run), "-o", &s(&to)]));
        exported.push(std::fs::read(&to).unwrap());
    }
    assert!(exported[0] == exported[1], "the weights differ");
}

/// `runner export`'s model.py follows the graph: PyTorch's outputs on the test pictures are
/// kiln's within 1e-4.
#[test]
fn a_graph_exports_to_a_pytorch_module_that_computes_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(dir.path(), 2, 900, BRANCHES);
    let logs = dir.path().join("logs");
    let histograms = ["--set", "log.histograms_every=1"];
    ok(&run_cmd(
        dir.path(),
        &[
            &s(&file),
            "--logdir",
            &s(&logs),
            "-q",
            histograms[0],
            histograms[1],
        ],
    ));
    let run = single_run(&logs.join("graph"));
    // Histograms follow the graph: the add's sum, before and after its ReLU, over the 300
    // test pictures' 8x28x28 values, as TensorBoard's reader finds them.
    if let Some(python) = std::env::var_os("KILN_TB_PYTHON") {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_histograms.py");
        let out = std::process::Command::new(python)
            .arg(script)
            .arg(&run)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let tags: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        for tag in [
            "activations/05_add_relu/pre",
            "activations/05_add_relu/post",
        ] {
            let rows = tags[tag]
                .as_array()
                .unwrap_or_else(|| panic!("no {tag}: {tags}"));
            assert_eq!(rows.len(), 3, "epochs 0, 1, 2: {tag}");
            assert_eq!(rows[2]["num"], 300.0 * 8.0 * 28.0 * 28.0, "{tag}");
        }
        assert!(tags["activations/05_add_relu/post"][2]["min"] == 0.0);
    }
    // eval, with the Projector's embeddings: what the classifier reads, here a pooled image.
    let eval = run_cmd(dir.path(), &["eval", &s(&run), "--embeddings", "50"]);
    ok(&eval);
    let projector = std::fs::read_to_string(run.join("eval/projector_config.pbtxt")).unwrap();
    assert!(projector.contains("07_flatten"), "{projector}");
    let tensors = std::fs::read_to_string(run.join("eval/embeddings/tensors.tsv")).unwrap();
    assert_eq!(tensors.lines().count(), 50);
    assert_eq!(
        tensors.lines().next().unwrap().split('\t').count(),
        8 * 7 * 7
    );
    ok(&run_cmd(dir.path(), &["export", &s(&run)]));
    let script = std::fs::read_to_string(run.join("export/model.py")).unwrap();
    assert!(
        script.contains("class Graph(nn.Sequential)") && script.contains("torch.cat(["),
        "{script}"
    );

    // kiln's outputs on the first 64 test pictures, as the run normalises them.
    let (trained, _) =
        kiln_core::infer::Trained::load(&run, &kiln_core::checkpoint::Which::Last, false).unwrap();
    let images = std::fs::read(dir.path().join("data/t10k-images-idx3-ubyte")).unwrap();
    let count = 64;
    let pixels: Vec<f32> = images[16..16 + count * 784]
        .iter()
        .map(|&b| b as f32 / 255.0)
        .collect();
    let x = burn::tensor::Tensor::<2>::from_data(
        burn::tensor::TensorData::new(pixels.clone(), [count, 784]),
        &trained.device,
    );
    let kiln: Vec<f32> = trained
        .network
        .forward(x)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();

    let Some(python) = std::env::var_os("KILN_TORCH_PYTHON") else {
        eprintln!(
            "skipped the PyTorch check: set KILN_TORCH_PYTHON to a python with torch and safetensors (.ci/run does)"
        );
        return;
    };
    let inputs = dir.path().join("inputs.f32");
    std::fs::write(
        &inputs,
        pixels
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torch_outputs.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(run.join("export/model.py"))
        .arg(&inputs)
        .arg("1,28,28")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let torch: Vec<f32> = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(torch.len(), kiln.len());
    let worst = kiln
        .iter()
        .zip(&torch)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "largest difference {worst}");
}

const RESNET20: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../experiments/cifar10_resnet20.toml"
);

/// experiments/cifar10_resnet20.toml writes ResNet-20 with blocks; the zoo's `resnet` builds
/// it in code. Both are the paper's network: the same layers, shapes, parameters and graph.
#[test]
fn resnet20_written_with_blocks_is_the_zoos_resnet20() {
    let zoo = &kiln_model_zoo::expand;
    let blocks = kiln_core::config::load_with_zoo(Path::new(RESNET20), &[], zoo).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zoo_file = dir.path().join("zoo.toml");
    let text = std::fs::read_to_string(RESNET20).unwrap();
    let model_start = text.find("\n[model]\n").unwrap() + 1;
    let model_end = text.find("\n[optimizer]\n").unwrap() + 1;
    std::fs::write(
        &zoo_file,
        format!(
            "{}[model]\ninput = [3, 32, 32]\nzoo = \"resnet\"\nparams = {{ depth = 20 }}\n\n{}",
            &text[..model_start],
            &text[model_end..]
        ),
    )
    .unwrap();
    let zooed = kiln_core::config::load_with_zoo(&zoo_file, &[], zoo).unwrap();
    let plan = |c: &kiln_core::config::ExperimentConfig| {
        kiln_core::model::plan(&c.model, &[3, 32, 32], 10)
            .unwrap()
            .into_iter()
            .map(|p| (p.label, p.output, p.params, p.frozen, p.from))
            .collect::<Vec<_>>()
    };
    let (a, b) = (plan(&blocks), plan(&zooed));
    assert_eq!(a, b);
    assert_eq!(a.iter().map(|p| p.2).sum::<usize>(), 272_474);
    // The resolved config lists the expanded layers and loads to the same network.
    let resolved = dir.path().join("config.toml");
    std::fs::write(&resolved, kiln_core::config::to_toml(&blocks)).unwrap();
    let reloaded = kiln_core::config::load_with_zoo(&resolved, &[], zoo).unwrap();
    assert_eq!(reloaded.model.layers, blocks.model.layers);
    assert!(reloaded.model.blocks.is_empty());
    // `runner inspect` says the count, and where each layer reads from.
    let out = run_cmd(dir.path(), &["inspect", RESNET20]);
    ok(&out);
    let table = stdout(&out);
    assert!(
        table.contains("trainable 272,474") && table.contains("reads"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("add + relu (stage1.0.output)") && l.ends_with("5, 1")),
        "{table}"
    );
}

#[test]
fn block_mistakes_are_exit_2_naming_the_block_and_the_use() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "model.layers[2].block=basik",
            &["model.layers[2].block", "did you mean `basic`?", "down"],
        ),
        (
            "model.layers[2].args={ filter = 8 }",
            &["model.layers[2].args.filter", "did you mean `filters`?"],
        ),
        (
            "model.blocks.basic.layers[0].filters=${width}",
            &[
                "model.blocks.basic.layers[0]",
                "\"${width}\"",
                "add it to the block's args",
            ],
        ),
        (
            "model.blocks.basic.layers[4].from=[\"mian\", \"input\"]",
            &[
                "model.blocks.basic.layers[4].from",
                "did you mean `main`?",
                "the block's input",
            ],
        ),
        (
            "model.blocks.basic.layers[0].kernal=3",
            &[
                "model.blocks.basic.layers[0]",
                "kernal",
                "used at model.layers[2]",
            ],
        ),
        (
            "model.layers[2].repeat=0",
            &["model.layers[2].repeat", "at least 1"],
        ),
        (
            "model.layers[2].repeat=1000000000",
            &["model.layers[2].repeat", "more than the 10000 layers"],
        ),
    ];
    for (set, expect) in cases {
        let out = run_cmd(dir.path(), &["inspect", RESNET20, "--set", set]);
        assert_user_error(&out, expect);
    }
}
