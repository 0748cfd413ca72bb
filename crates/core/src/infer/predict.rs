//! `runner predict`: classify a user's pictures with a trained MNIST-shaped network.

use std::path::{Path, PathBuf};

use burn::tensor::Tensor;
use serde::Serialize;

use super::Trained;
use super::preprocess::{self, Framed, SIDE};
use crate::error::{Error, Result};
use crate::log::{EventWriter, media};
use kiln_kernels::denormals::FlushDenormals;

/// One picture's result.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub image: PathBuf,
    pub class: usize,
    /// The three most probable classes with their probabilities, most probable first.
    pub top3: Vec<(usize, f64)>,
    /// The picture was dark on light and was inverted.
    pub inverted: bool,
}

/// Checks that `trained` takes MNIST-shaped pictures.
pub fn check_network(trained: &Trained) -> Result<()> {
    let features: usize = trained.input.iter().product();
    if features != SIDE * SIDE {
        return Err(Error::Config(format!(
            "runner predict takes 28x28 grayscale inputs (MNIST-shaped networks); this run's network takes {:?}",
            trained.input
        )));
    }
    Ok(())
}

/// Reads and frames one picture of at most `max_pixels` pixels; the error names the file.
pub fn load_picture(path: &Path, max_pixels: u64) -> Result<Framed> {
    let (file, _) = crate::files::open_regular(path)
        .map_err(|e| Error::Data(format!("cannot open the image {} ({e})", path.display())))?;
    let picture = preprocess::decode(std::io::BufReader::new(file), max_pixels)
        .map_err(|why| Error::Data(format!("the image {} {why}", path.display())))?;
    preprocess::frame(&picture).ok_or_else(|| {
        Error::Data(format!(
            "the image {} is blank: no digit found in it",
            path.display()
        ))
    })
}

/// Classifies framed pictures, normalised as the network's training data were.
pub fn predict(trained: &Trained, images: &[PathBuf], framed: &[Framed]) -> Vec<Prediction> {
    let _mode = FlushDenormals::apply(trained.config.train.flush_denormals);
    let norm = crate::data::Affine::of(&trained.config.data.normalize);
    let values: Vec<f32> = framed
        .iter()
        .flat_map(|f| f.pixels.iter().map(|&p| norm.apply(p)))
        .collect();
    let n = framed.len();
    let x = Tensor::<2>::from_data(
        burn::tensor::TensorData::new(values, [n, SIDE * SIDE]),
        &trained.device,
    );
    let logits = trained.network.forward(x);
    // The network's last layer may already be a softmax (or log-softmax with an NLL loss).
    let probabilities = trained.config.model.yields().probabilities(logits);
    let rows: Vec<f32> = probabilities
        .into_data()
        .try_into_vec::<f32>()
        .unwrap_or_default();
    let k = rows.len() / n.max(1);
    images
        .iter()
        .zip(framed)
        .zip(rows.chunks(k.max(1)))
        .map(|((image, f), p)| {
            let mut ranked: Vec<(usize, f64)> = p.iter().map(|&v| v as f64).enumerate().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            ranked.truncate(3);
            Prediction {
                image: image.clone(),
                class: ranked.first().map_or(0, |r| r.0),
                top3: ranked,
                inverted: f.inverted,
            }
        })
        .collect()
}

/// Writes what the network saw, one image per picture (tagged by its file name and the
/// prediction), to a new event file in `run_dir/predict/`.
pub fn write_tensorboard(
    run_dir: &Path,
    framed: &[Framed],
    predictions: &[Prediction],
    step: usize,
) -> Result<PathBuf> {
    let mut writer = EventWriter::create(&run_dir.join("predict"))?;
    for (i, (f, p)) in framed.iter().zip(predictions).enumerate() {
        let name = p
            .image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let pixels: Vec<u8> = f
            .pixels
            .iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect();
        let tag = format!("predict/{i:03}_{name}_as_{}", p.class);
        writer.summary(
            media::image(&tag, &pixels, SIDE as u32, SIDE as u32, 1)?,
            step,
        )?;
    }
    writer.flush()?;
    Ok(writer.path().to_path_buf())
}
