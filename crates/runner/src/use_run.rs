//! `runner eval`, `predict` and `export`: what is done with a trained run.

use std::path::{Path, PathBuf};

use kiln_core::Error;
use kiln_core::checkpoint::Which;
use kiln_core::data::DeviceSplit;
use kiln_core::infer::{Trained, eval, export, predict};

/// Which trained run to use, as `eval`, `predict` and `export` are asked.
pub struct UseRun<'a> {
    pub run_dir: &'a Path,
    pub which: &'a Which,
    /// Use a `--checkpoint` file of another run with this run's folders.
    pub force: bool,
}

fn load(run: &UseRun) -> Result<Trained, Error> {
    let (trained, warnings) = Trained::load(run.run_dir, run.which, run.force)?;
    for w in warnings {
        kiln_core::say_err!("warning: {w}");
    }
    Ok(trained)
}

/// The figures are printed even when the run folder cannot take the TensorBoard file
/// (read-only): that is a warning, not a reason to lose them.
fn tensorboard_or_warn<T>(written: Result<T, Error>) -> Option<T> {
    written
        .inspect_err(|e| kiln_core::say_err!("warning: nothing written to TensorBoard: {e}"))
        .ok()
}

pub fn eval(run: &UseRun, embeddings: usize, json: bool) -> Result<(), Error> {
    let trained = load(run)?;
    let seed = trained.config.seed.unwrap_or(0);
    let (dataset, warnings) = kiln_core::data::load(&trained.config.data, seed, !json)?;
    for warning in &warnings {
        kiln_core::say_err!("warning: {warning}");
    }
    kiln_core::infer::embeddings::check(&dataset.shape, embeddings.min(dataset.test.len()))?;
    let resident = kiln_core::backend::on_gpu(trained.config.backend);
    let split = DeviceSplit::upload(
        dataset.test.clone(),
        dataset.features(),
        &trained.device,
        resident,
    );
    let result = eval::evaluate(
        &trained,
        &split,
        &dataset.test.labels,
        trained.config.train.eval_batch_size,
    );
    let events = tensorboard_or_warn(eval::write_tensorboard(
        run.run_dir,
        &result,
        trained.epochs_done,
    ));
    let projector = match events {
        Some(_) => tensorboard_or_warn(kiln_core::infer::embeddings::write(
            &trained,
            &dataset.test,
            &split,
            &dataset.shape,
            embeddings,
            &run.run_dir.join("eval"),
        ))
        .flatten(),
        None => None,
    };
    if json {
        let value = serde_json::json!({
            "checkpoint": trained.checkpoint,
            "epoch": trained.epochs_done,
            "examples": result.examples,
            "loss": result.loss,
            "accuracy": result.accuracy,
            "per_class_accuracy": result.per_class(),
            "confusion_matrix": result.confusion,
            "events": events,
            "projector": projector,
        });
        kiln_core::say!("{value}");
        return Ok(());
    }
    kiln_core::say!(
        "{} after epoch {} ({}): {} test examples",
        trained.config.name,
        trained.epochs_done,
        trained.checkpoint.display(),
        result.examples
    );
    kiln_core::say!("loss {:.4}  accuracy {:.4}", result.loss, result.accuracy);
    kiln_core::say!("\nconfusion matrix (rows: true class, columns: predicted)");
    kiln_core::log::console::print(&result.confusion_text());
    if let Some(events) = events {
        kiln_core::say!("\nwritten to TensorBoard: {}", events.display());
    }
    if let Some(projector) = projector {
        kiln_core::say!(
            "embeddings of the first {} test examples, for the Projector tab: {}",
            embeddings.min(result.examples),
            projector.display()
        );
    }
    Ok(())
}

/// Class `c` as the user knows it: "3", or "3 cat" where the data named its classes.
fn named(trained: &kiln_core::infer::Trained, c: usize) -> String {
    match trained.class_names.get(c) {
        Some(name) => format!("{c} {name}"),
        None => c.to_string(),
    }
}

/// Classifies every picture that can be read; those that cannot are reported one by one
/// (after the others) and make the command fail.
pub fn predict(run: &UseRun, images: &[PathBuf], max_pixels: u64, json: bool) -> Result<(), Error> {
    let trained = load(run)?;
    let framing = predict::framing(&trained)?;
    let mut good: Vec<PathBuf> = Vec::new();
    let mut framed = Vec::new();
    let mut failed: Vec<Error> = Vec::new();
    for path in images {
        match predict::load_picture(path, max_pixels, framing) {
            Ok(f) => {
                good.push(path.clone());
                framed.push(f);
            }
            Err(e) => failed.push(e),
        }
    }
    let predictions = if framed.is_empty() {
        Vec::new()
    } else {
        predict::predict(&trained, &good, &framed, framing)
    };
    let events = (!framed.is_empty())
        .then(|| {
            tensorboard_or_warn(predict::write_tensorboard(
                run.run_dir,
                &framed,
                &predictions,
                trained.epochs_done,
                framing,
            ))
        })
        .flatten();
    if json {
        let value: Vec<serde_json::Value> = predictions
            .iter()
            .map(|p| {
                serde_json::json!({
                    "image": p.image,
                    "class": p.class,
                    "name": p.name,
                    "top3": p.top3.iter().map(|(c, prob)| serde_json::json!({"class": c, "name": trained.class_names.get(*c), "probability": prob})).collect::<Vec<_>>(),
                    "inverted": p.inverted,
                })
            })
            .collect();
        kiln_core::say!("{}", serde_json::Value::Array(value));
    } else {
        for p in &predictions {
            let top: Vec<String> = p
                .top3
                .iter()
                .map(|(c, prob)| format!("{} {:.1}%", named(&trained, *c), prob * 100.0))
                .collect();
            kiln_core::say!(
                "{}: {}   (top 3: {})",
                p.image.display(),
                named(&trained, p.class),
                top.join(", ")
            );
        }
        if let Some(events) = events {
            kiln_core::say!(
                "what the network saw, in TensorBoard's Images tab: {}",
                events.display()
            );
        }
    }
    match failed.len() {
        0 => Ok(()),
        1 => Err(failed.remove(0)),
        n => {
            for e in &failed[..n - 1] {
                kiln_core::say_err!("error: {e}");
            }
            Err(failed.remove(n - 1))
        }
    }
}

pub fn export(run: &UseRun, output: Option<&Path>, overwrite: bool) -> Result<(), Error> {
    let trained = load(run)?;
    let (path, python) = export::output_paths(run.run_dir, output, overwrite)?;
    if let Some(dir) = path.parent().filter(|_| output.is_none()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("cannot create the export folder", dir, e))?;
    }
    let names = export::write_safetensors(&trained, &path)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let source = export::python_source(&trained, &file_name);
    kiln_core::checkpoint::write_atomic(&python, source.as_bytes())?;
    kiln_core::say!(
        "wrote {} ({} tensors: {}) and {}, the equivalent torch.nn.Sequential that loads it",
        path.display(),
        names.len(),
        names.join(", "),
        python.display()
    );
    Ok(())
}
