//! `runner eval`, `predict` and `export`: what is done with a trained run.

use std::path::{Path, PathBuf};

use kiln_core::Error;
use kiln_core::checkpoint::Which;
use kiln_core::infer::{Trained, eval, export, predict};
use kiln_core::train::DeviceSplit;

fn load(run_dir: &Path, which: &Which) -> Result<Trained, Error> {
    let (trained, warnings) = Trained::load(run_dir, which)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok(trained)
}

pub fn eval(run_dir: &Path, which: &Which, json: bool) -> Result<(), Error> {
    let trained = load(run_dir, which)?;
    let dataset = kiln_core::data::load(&trained.config.data, !json)?;
    let split = DeviceSplit::upload(dataset.test.clone(), dataset.features(), &trained.device);
    let result = eval::evaluate(
        &trained,
        &split,
        &dataset.test.labels,
        trained.config.train.eval_batch_size,
    );
    let events = eval::write_tensorboard(run_dir, &result, trained.epochs_done)?;
    if json {
        let value = serde_json::json!({
            "checkpoint": trained.checkpoint,
            "epoch": trained.epochs_done,
            "examples": result.examples,
            "loss": result.loss,
            "accuracy": result.accuracy,
            "per_class_accuracy": result.per_class(),
            "confusion_matrix": result.confusion,
        });
        println!("{value}");
        return Ok(());
    }
    println!(
        "{} after epoch {} ({}): {} test examples",
        trained.config.name,
        trained.epochs_done,
        trained.checkpoint.display(),
        result.examples
    );
    println!("loss {:.4}  accuracy {:.4}", result.loss, result.accuracy);
    println!("\nconfusion matrix (rows: true class, columns: predicted)");
    print!("{}", result.confusion_text());
    println!("\nwritten to TensorBoard: {}", events.display());
    Ok(())
}

pub fn predict(run_dir: &Path, images: &[PathBuf], which: &Which, json: bool) -> Result<(), Error> {
    let trained = load(run_dir, which)?;
    let framed = predict::load_pictures(&trained, images)?;
    let predictions = predict::predict(&trained, images, &framed);
    let events = predict::write_tensorboard(run_dir, &framed, &predictions, trained.epochs_done)?;
    if json {
        let value: Vec<serde_json::Value> = predictions
            .iter()
            .map(|p| {
                serde_json::json!({
                    "image": p.image,
                    "class": p.class,
                    "top3": p.top3.iter().map(|(c, prob)| serde_json::json!({"class": c, "probability": prob})).collect::<Vec<_>>(),
                    "inverted": p.inverted,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(value));
        return Ok(());
    }
    for p in &predictions {
        let top: Vec<String> = p
            .top3
            .iter()
            .map(|(c, prob)| format!("{c} {:.1}%", prob * 100.0))
            .collect();
        println!(
            "{}: {}   (top 3: {})",
            p.image.display(),
            p.class,
            top.join(", ")
        );
    }
    println!(
        "what the network saw, in TensorBoard's Images tab: {}",
        events.display()
    );
    Ok(())
}

pub fn export(run_dir: &Path, which: &Which, output: Option<&Path>) -> Result<(), Error> {
    let trained = load(run_dir, which)?;
    let path = match output {
        Some(p) => p.to_path_buf(),
        None => {
            let dir = run_dir.join("export");
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io("cannot create the export folder", &dir, e))?;
            dir.join("model.safetensors")
        }
    };
    let names = export::write_safetensors(&trained, &path)?;
    let python = path.with_extension("py");
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let source = export::python_source(&trained, &file_name);
    kiln_core::checkpoint::write_atomic(&python, source.as_bytes())?;
    println!(
        "wrote {} ({} tensors: {}) and {}, the equivalent torch.nn.Sequential that loads it",
        path.display(),
        names.len(),
        names.join(", "),
        python.display()
    );
    Ok(())
}
