//! `runner eval`'s embeddings for TensorBoard's Projector tab: what the network's classifier
//! (its last layer with parameters) reads, for the first test examples, with their labels,
//! the network's predictions and a sprite of their pictures, written beside eval's event file.

use std::path::{Path, PathBuf};

use super::Trained;
use crate::checkpoint::write_atomic;
use crate::data::{DeviceSplit, Inputs, Split};
use crate::error::{Error, Result};
use crate::layers::wiring::Source;
use crate::log::projector::{self, Pictures, Projection};
use kiln_kernels::denormals::FlushDenormals;

/// How many test examples `runner eval` projects unless told.
pub const DEFAULT_COUNT: usize = 1000;

/// The layer whose input is embedded: the last one with parameters (the classifier), or the
/// end of a network without any.
pub fn classifier(trained: &Trained) -> usize {
    trained
        .plans
        .iter()
        .rposition(|p| p.params > 0)
        .unwrap_or(trained.plans.len())
}

/// Writes the Projector's files for the first `count` examples of `test` (the split `split`
/// was uploaded from) into `folder`; returns the config's path, `None` when `count` is 0.
pub fn write(
    trained: &Trained,
    test: &Split,
    split: &DeviceSplit,
    shape: &[usize],
    count: usize,
    folder: &Path,
) -> Result<Option<PathBuf>> {
    let count = count.min(split.len);
    if count == 0 {
        return Ok(None);
    }
    let pictures = pictures(test, shape, count)?;
    let _mode = FlushDenormals::apply(trained.config.train.flush_denormals);
    let layer = classifier(trained);
    let batch = trained.config.train.eval_batch_size.max(1);
    let (mut values, mut predicted) = (Vec::new(), Vec::new());
    for start in (0..count).step_by(batch) {
        let (x, _) = split.range(start, (start + batch).min(count));
        let features = trained.network.forward_into(x.clone(), layer);
        values.extend(features.into_data().try_to_vec::<f32>().unwrap_or_default());
        let classes = trained.network.forward(x).argmax(1).into_data();
        predicted.extend(
            classes
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap_or_default(),
        );
    }
    // What the classifier reads: the layer before it in a chain, any layer in a graph.
    let read = match trained.plans.get(layer) {
        Some(plan) => plan.from.first().copied(),
        None => trained.plans.len().checked_sub(1).map(Source::Layer),
    };
    let name = match read {
        Some(Source::Layer(j)) => trained.plans[j].tag(j),
        Some(Source::Input) | None => crate::layers::INPUT.to_string(),
    };
    let projection = Projection {
        name: format!("{name} (epoch {})", trained.epochs_done),
        dims: values.len() / count,
        values: &values,
        columns: vec![
            (
                "label",
                test.labels[..count].iter().map(u32::to_string).collect(),
            ),
            ("predicted", predicted.iter().map(i64::to_string).collect()),
        ],
        pictures,
    };
    let mut config = None;
    for (relative, bytes) in projection.files()? {
        let path = folder.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("cannot create the folder", parent, e))?;
        }
        write_atomic(&path, &bytes)?;
        if relative == projector::CONFIG_FILE {
            config = Some(path);
        }
    }
    Ok(config)
}

/// Whether `count` pictures of examples of `shape` fit in one sprite the Projector loads (to
/// check before evaluating).
pub fn check(shape: &[usize], count: usize) -> Result<()> {
    let &[1 | 3, height, width] = shape else {
        return Ok(());
    };
    let side = projector::grid_side(count) * height.max(width);
    if side > projector::MAX_SPRITE_SIDE {
        let most = (projector::MAX_SPRITE_SIDE / height.max(width)).pow(2);
        return Err(Error::Config(format!(
            "--embeddings {count}: a sprite of {count} pictures of {height}x{width} would be {side} pixels wide, more than the Projector loads ({}); ask for at most {most}",
            projector::MAX_SPRITE_SIDE
        )));
    }
    Ok(())
}

/// The first `count` examples as 8-bit pictures, when the examples are pictures (`[c, h, w]`
/// with 1 or 3 channels); values that are not pixels are stretched over 0..=255.
fn pictures<'a>(test: &'a Split, shape: &[usize], count: usize) -> Result<Option<Pictures<'a>>> {
    check(shape, count)?;
    let &[channels @ (1 | 3), height, width] = shape else {
        return Ok(None);
    };
    let per = channels * height * width;
    let pixels = match &test.inputs {
        Inputs::Pixels { values, .. } => std::borrow::Cow::Borrowed(&values[..count * per]),
        Inputs::Floats(v) => {
            let v = &v[..count * per];
            let (lo, hi) = v
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| {
                    (l.min(x), h.max(x))
                });
            let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
            std::borrow::Cow::Owned(v.iter().map(|&x| ((x - lo) * scale) as u8).collect())
        }
    };
    Ok(Some(Pictures {
        pixels,
        channels,
        height,
        width,
    }))
}
