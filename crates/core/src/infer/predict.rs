//! `runner predict`: classify a user's pictures with a trained network. A network that takes
//! 28x28 grey inputs gets them framed as MNIST digits were ([`preprocess`]); any other
//! picture-shaped network gets them fitted to its input size and channels as an image folder's
//! pictures are ([`crate::data::picture::fit`]).

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
    /// The class's name, where the training data named its classes.
    pub name: Option<String>,
    /// The picture was dark on light and was inverted.
    pub inverted: bool,
}

/// How a picture becomes the network's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A digit framed as MNIST's were, 1x28x28.
    Mnist,
    /// Fitted to `channels` x `size` (height, width).
    Fit { channels: usize, size: [usize; 2] },
}

impl Framing {
    /// `[channels, height, width]` of what the network sees.
    pub fn shape(self) -> [usize; 3] {
        match self {
            Framing::Mnist => [1, SIDE, SIDE],
            Framing::Fit { channels, size } => [channels, size[0], size[1]],
        }
    }
}

/// How pictures are brought to `trained`'s input; `Err` for a network that does not take
/// pictures.
pub fn framing(trained: &Trained) -> Result<Framing> {
    match trained.input.as_slice() {
        [1, SIDE, SIDE] | [784] => Ok(Framing::Mnist),
        &[channels @ (1 | 3), height, width] => Ok(Framing::Fit {
            channels,
            size: [height, width],
        }),
        other => Err(Error::Config(format!(
            "runner predict takes pictures, for networks whose input is [channels, height, width] with 1 or 3 channels (or MNIST's 784 values); this run's network takes {other:?}"
        ))),
    }
}

/// Reads and frames one picture of at most `max_pixels` pixels; the error names the file.
pub fn load_picture(path: &Path, max_pixels: u64, framing: Framing) -> Result<Framed> {
    let picture = crate::data::picture::read(path, max_pixels)?;
    match framing {
        Framing::Mnist => preprocess::frame(&picture).ok_or_else(|| {
            Error::Data(format!(
                "the image {} is blank: no digit found in it",
                path.display()
            ))
        }),
        Framing::Fit { channels, size } => Ok(Framed {
            pixels: crate::data::picture::fit(&picture, channels, size)
                .into_iter()
                .map(f32::from)
                .collect(),
            inverted: false,
        }),
    }
}

/// Classifies framed pictures, normalised as the network's training data were.
pub fn predict(
    trained: &Trained,
    images: &[PathBuf],
    framed: &[Framed],
    framing: Framing,
) -> Vec<Prediction> {
    let _mode = FlushDenormals::apply(trained.config.train.flush_denormals);
    let [channels, height, width] = framing.shape();
    let norm =
        crate::data::PixelNorm::new(&trained.config.data.normalize, channels, height * width);
    let values: Vec<f32> = framed
        .iter()
        .flat_map(|f| {
            f.pixels
                .iter()
                .enumerate()
                .map(|(i, &p)| norm.at(i).apply(p))
        })
        .collect();
    let n = framed.len();
    let x = Tensor::<2>::from_data(
        burn::tensor::TensorData::new(values, [n, channels * height * width]),
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
            let class = ranked.first().map_or(0, |r| r.0);
            Prediction {
                image: image.clone(),
                class,
                top3: ranked,
                name: trained.class_names.get(class).cloned(),
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
    framing: Framing,
) -> Result<PathBuf> {
    let [channels, height, width] = framing.shape();
    let plane = height * width;
    let mut writer = EventWriter::create(&run_dir.join("predict"))?;
    for (i, (f, p)) in framed.iter().zip(predictions).enumerate() {
        let name = p
            .image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Planes to interleaved pixels, as PNG holds them.
        let pixels: Vec<u8> = (0..plane * channels)
            .map(|k| f.pixels[(k % channels) * plane + k / channels])
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect();
        let class = p.name.clone().unwrap_or_else(|| p.class.to_string());
        let tag = format!("predict/{i:03}_{name}_as_{class}");
        writer.summary(
            media::image(&tag, &pixels, width as u32, height as u32, channels as u8)?,
            step,
        )?;
    }
    writer.flush()?;
    Ok(writer.path().to_path_buf())
}
