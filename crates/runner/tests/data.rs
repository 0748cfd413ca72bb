//! Data beyond MNIST's IDX files, through the binary as a user runs it: image folders (built
//! from real MNIST digits), CIFAR's binary layout, validation splits, and every bad folder
//! refused with one line before a run folder exists.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_user_error, ok, real_mnist, runner, single_run, stdout};
use kiln_core::data::Inputs;

/// An MLP on 1x28x28 inputs; `data` is the `[data]` table's body.
fn mlp_experiment(dir: &Path, name: &str, data: &str) -> PathBuf {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            r#"name = "{name}"
seed = 3
[data]
{data}
[model]
input = [1, 28, 28]
layers = [{{ type = "flatten" }}, {{ type = "linear", units = 128, activation = "relu" }}, {{ type = "linear", units = 10 }}]
[optimizer]
kind = "adam"
lr = 1e-3
[train]
epochs = 2
batch_size = 64
"#
        ),
    )
    .unwrap();
    file
}

/// The test accuracy a finished run recorded in its `result.toml`.
fn test_accuracy(run_dir: &Path) -> f64 {
    let text = std::fs::read_to_string(run_dir.join("result.toml")).unwrap();
    let value: toml::Table = toml::from_str(&text).unwrap();
    value["test_accuracy"].as_float().unwrap()
}

/// Writes MNIST digit `i` of `pixels` (28x28 grey bytes) under `dir/<split>/digit_<label>/`,
/// in one of the forms a user's folder holds: most as grey PNG, every tenth from 3 as JPEG,
/// from 5 as RGB PNG, from 7 enlarged to 56x56.
fn write_digit(dir: &Path, split: &str, i: usize, label: u32, pixels: &[u8]) {
    let folder = dir.join(split).join(format!("digit_{label}"));
    std::fs::create_dir_all(&folder).unwrap();
    let grey = image::GrayImage::from_raw(28, 28, pixels.to_vec()).unwrap();
    let name = folder.join(format!("{i:05}"));
    match i % 10 {
        3 => {
            let file = std::fs::File::create(name.with_extension("jpg")).unwrap();
            let mut jpeg = image::codecs::jpeg::JpegEncoder::new_with_quality(file, 95);
            jpeg.encode_image(&grey).unwrap();
        }
        5 => image::DynamicImage::ImageLuma8(grey)
            .to_rgb8()
            .save(name.with_extension("png"))
            .unwrap(),
        7 => image::imageops::resize(&grey, 56, 56, image::imageops::FilterType::Triangle)
            .save(name.with_extension("png"))
            .unwrap(),
        _ => grey.save(name.with_extension("png")).unwrap(),
    }
}

/// The first 10,000 training digits and all 10,000 test digits of the real MNIST as an image
/// folder (PNG and JPEG, some RGB, some larger) train the same network to the accuracy the
/// IDX files give it, within a point; the run names its classes and `predict` prints them,
/// without the folder.
#[test]
fn an_image_folder_of_real_mnist_digits_trains_like_the_idx_files() {
    let Some(mnist) = real_mnist() else {
        eprintln!("skipped: no MNIST here (set KILN_DATA_DIR)");
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let config: kiln_core::config::DataConfig = toml::from_str(&format!(
        "dataset = \"mnist\"\ndir = {:?}",
        mnist.display().to_string()
    ))
    .unwrap();
    let (mnist_data, _) = kiln_core::data::load(&config, 0, false).unwrap();
    let folder = dir.join("digits");
    for (split, data, count) in [
        ("train", &mnist_data.train, 10_000),
        ("test", &mnist_data.test, 10_000),
    ] {
        let Inputs::Pixels { values, .. } = &data.inputs else {
            panic!("MNIST is pixels")
        };
        for i in 0..count {
            write_digit(
                &folder,
                split,
                i,
                data.labels[i],
                &values[i * 784..(i + 1) * 784],
            );
        }
    }
    let from_idx = mlp_experiment(
        dir,
        "idx",
        &format!(
            "dataset = \"mnist\"\ndir = {:?}\nlimit_train = 10000",
            mnist.display().to_string()
        ),
    );
    let from_folder = mlp_experiment(
        dir,
        "folder",
        &format!(
            "dataset = \"image_folder\"\ndir = {:?}\nimage_size = [28, 28]\nchannels = 1",
            folder.display().to_string()
        ),
    );
    let run = |file: &Path| {
        let out = runner(dir).arg(file).output().unwrap();
        ok(&out);
        stdout(&out)
    };
    run(&from_idx);
    let printed = run(&from_folder);
    assert!(
        printed.contains("classes: 0 digit_0, 1 digit_1,") && printed.contains("9 digit_9"),
        "{printed}"
    );
    let (idx, folder_acc) = (
        test_accuracy(&single_run(&dir.join("logs/idx"))),
        test_accuracy(&single_run(&dir.join("logs/folder"))),
    );
    eprintln!("test accuracy: IDX files {idx:.4}, image folder {folder_acc:.4}");
    assert!(idx > 0.9, "{idx}");
    assert!(
        (idx - folder_acc).abs() <= 0.01,
        "IDX {idx} vs folder {folder_acc}"
    );

    // The run needs its pictures no more: predict works with the folder moved away.
    let run_dir = single_run(&dir.join("logs/folder"));
    let moved = dir.join("moved");
    std::fs::rename(&folder, &moved).unwrap();
    let picture = moved.join("test/digit_7/00000.png");
    let out = runner(dir)
        .args([
            "predict",
            run_dir.to_str().unwrap(),
            picture.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    ok(&out);
    assert!(stdout(&out).contains(": 7 digit_7"), "{}", stdout(&out));
}

/// Each broken folder is refused with exit 2 and one line naming the path, and no run
/// folder is made.
#[test]
fn bad_image_folders_are_refused_before_any_run_folder() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let png = |path: &Path| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::new(8, 8).save(path).unwrap();
    };
    type Case<'a> = (&'a str, Box<dyn Fn(&Path) + 'a>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "no_test",
            Box::new(|d: &Path| png(&d.join("train/a/1.png"))),
            vec!["has no test/ folder"],
        ),
        (
            "no_classes",
            Box::new(|d: &Path| {
                std::fs::create_dir_all(d.join("train")).unwrap();
                std::fs::create_dir_all(d.join("test")).unwrap();
            }),
            vec!["train", "holds no class folders"],
        ),
        (
            "empty_class",
            Box::new(|d: &Path| {
                png(&d.join("train/a/1.png"));
                std::fs::create_dir_all(d.join("train/b")).unwrap();
                std::fs::write(d.join("train/b/readme.txt"), "not a picture").unwrap();
                png(&d.join("test/a/1.png"));
            }),
            vec!["train/b", "holds no pictures"],
        ),
        (
            "mismatch",
            Box::new(|d: &Path| {
                png(&d.join("train/a/1.png"));
                png(&d.join("train/b/1.png"));
                png(&d.join("test/a/1.png"));
                png(&d.join("test/c/1.png"));
            }),
            vec!["only in train: [\"b\"]", "only in test: [\"c\"]"],
        ),
        (
            "undecodable",
            Box::new(|d: &Path| {
                png(&d.join("train/a/1.png"));
                png(&d.join("train/b/1.png"));
                std::fs::write(d.join("train/b/2.png"), "not a picture at all").unwrap();
                png(&d.join("test/a/1.png"));
                png(&d.join("test/b/1.png"));
            }),
            vec!["train/b/2.png"],
        ),
    ];
    for (name, make, expect) in cases {
        let folder = dir.join(name);
        make(&folder);
        let file = mlp_experiment(
            dir,
            name,
            &format!(
                "dataset = \"image_folder\"\ndir = {:?}\nimage_size = [28, 28]\nchannels = 1",
                folder.display().to_string()
            ),
        );
        let out = runner(dir).arg(&file).output().unwrap();
        assert_user_error(&out, &expect);
        assert!(
            !dir.join("logs").join(name).exists(),
            "{name}: a run folder was made"
        );
    }
}

/// The real layout of CIFAR-10's binary version (files the test writes: the real ones are not
/// in any package registry): a conv net trains on it, augmented, with a validation split, which picks
/// best.ckpt and has its own TensorBoard run folder; predict fits an RGB picture of another
/// size to 3x32x32 and names the class.
#[test]
fn cifar10_trains_with_a_validation_split_and_predict_names_its_classes() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let data = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&data).unwrap();
    let files = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for name in files {
        // Class k pictures are brightest in channel k % 3: learnable.
        let mut bytes = Vec::with_capacity(10_000 * 3073);
        for i in 0..10_000usize {
            let label = (i * 7 % 10) as u8;
            bytes.push(label);
            for c in 0..3 {
                let level = if c == label as usize % 3 { 200 } else { 30 };
                bytes.extend((0..1024).map(|p| (level + (p + i) % 40) as u8));
            }
        }
        std::fs::write(data.join(name), bytes).unwrap();
    }
    let file = dir.join("cifar.toml");
    std::fs::write(
        &file,
        format!(
            r#"name = "cifar"
seed = 5
[data]
dataset = "cifar10"
dir = {:?}
limit_train = 2000
limit_test = 500
validation = 0.1
normalize = {{ mean = [0.49, 0.48, 0.45], std = [0.25, 0.24, 0.26] }}
[data.augment]
random_crop = {{ size = 32, padding = 4 }}
horizontal_flip = true
[model]
layers = [
  {{ type = "conv2d", filters = 8, kernel = 3, activation = "relu" }},
  {{ type = "max_pool2d", kernel = 2 }},
  {{ type = "flatten" }},
  {{ type = "linear", units = 10 }},
]
[optimizer]
kind = "adam"
lr = 1e-3
[train]
epochs = 2
batch_size = 50
"#,
            dir.display().to_string()
        ),
    )
    .unwrap();
    let out = runner(dir).arg(&file).output().unwrap();
    ok(&out);
    let printed = stdout(&out);
    assert!(
        printed.contains("1800 training / 200 validation / 500 test examples"),
        "{printed}"
    );
    assert!(
        printed.contains("classes: 0 airplane, 1 automobile,"),
        "{printed}"
    );
    assert!(printed.contains("val_acc"), "{printed}");
    let run_dir = single_run(&dir.join("logs/cifar"));
    let config = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(
        config.contains("best = \"validation_accuracy\""),
        "{config}"
    );
    assert!(run_dir.join("validation").read_dir().unwrap().count() == 1);
    assert!(run_dir.join("checkpoints/best.ckpt").is_file());

    let picture = dir.join("red.png");
    image::RgbImage::from_pixel(50, 40, image::Rgb([220, 40, 40]))
        .save(&picture)
        .unwrap();
    let out = runner(dir)
        .args([
            "predict",
            run_dir.to_str().unwrap(),
            picture.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    ok(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names = kiln_core::data::cifar::class_names(
        kiln_core::config::DatasetKind::Cifar10,
        kiln_core::config::LabelMode::Fine,
    );
    let class = json[0]["class"].as_u64().unwrap() as usize;
    assert_eq!(json[0]["name"], names[class], "{json}");

    // A normalisation with two values for three channels: exit 2 naming the key.
    let out = runner(dir)
        .args([
            file.to_str().unwrap(),
            "--set",
            "data.normalize.std=[0.2, 0.3]",
        ])
        .output()
        .unwrap();
    assert_user_error(&out, &["data.normalize.std", "3 channels"]);
}

/// experiments/cifar10_cnn.toml is a valid experiment, planned without its data (which only
/// the publisher's site serves).
#[test]
fn the_cifar10_experiment_plans_without_its_data() {
    let scratch = tempfile::tempdir().unwrap();
    let experiment = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../experiments/cifar10_cnn.toml"
    );
    let out = runner(scratch.path())
        .args(["inspect", experiment])
        .output()
        .unwrap();
    ok(&out);
    assert!(
        stdout(&out).contains("total params: 1,117,738"),
        "{}",
        stdout(&out)
    );
}
