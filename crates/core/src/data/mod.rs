//! Datasets: reading (IDX, CSV), fetching and verifying, normalising, limiting.
//!
//! The result is a [`Dataset`] in host memory: IDX images stay bytes with the table that
//! normalises them (a quarter of the memory of floats, and none of the start-up cost of
//! writing 188 MB of fresh float32 MNIST), CSV values are normalised floats. The training loop
//! takes batches from it ([`DeviceSplit`]).

mod batches;
pub mod csv;
pub mod download;
pub mod idx;
pub mod named;
pub mod synthetic;

use std::path::{Path, PathBuf};

use crate::config::{DataConfig, DatasetKind, Normalize};
use crate::error::{Error, Result};

pub use batches::{Batches, DeviceSplit};

/// One split (train or test).
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Row-major `[len, features]`.
    pub inputs: Inputs,
    pub labels: Vec<u32>,
}

/// A split's inputs, row-major `[len, features]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// Raw pixel values and the normalisation that maps them to the network's inputs, applied
    /// as each batch is gathered.
    Pixels { values: Vec<u8>, norm: Affine },
    /// Values already normalised.
    Floats(Vec<f32>),
}

impl Inputs {
    /// Number of values (examples x features).
    pub fn len(&self) -> usize {
        match self {
            Inputs::Pixels { values, .. } => values.len(),
            Inputs::Floats(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn truncate(&mut self, len: usize) {
        match self {
            Inputs::Pixels { values, .. } => values.truncate(len),
            Inputs::Floats(v) => v.truncate(len),
        }
    }

    /// Appends the normalised values `range` to `out`.
    pub fn extend_normalised(&self, range: std::ops::Range<usize>, out: &mut Vec<f32>) {
        match self {
            Inputs::Pixels { values, norm } => {
                kiln_kernels::gather::extend_affine(out, &values[range], norm.scale, norm.offset)
            }
            Inputs::Floats(v) => out.extend_from_slice(&v[range]),
        }
    }

    /// Asks the CPU to start loading the values `range` into its caches.
    pub fn prefetch(&self, range: std::ops::Range<usize>) {
        match self {
            Inputs::Pixels { values, .. } => kiln_kernels::gather::prefetch(values, range),
            Inputs::Floats(v) => kiln_kernels::gather::prefetch(v, range),
        }
    }
}

/// `x * scale + offset` in float32: `[data] normalize` folded into one multiply-add, the
/// same arithmetic wherever a raw value is normalised (batches, CSV, `predict`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub scale: f32,
    pub offset: f32,
}

impl Affine {
    /// `((x - center) / scale - mean) / std` = `x / (scale std) - (center / scale + mean) / std`,
    /// its two constants computed in float64.
    pub fn of(n: &Normalize) -> Self {
        Affine {
            scale: (1.0 / (n.scale * n.std)) as f32,
            offset: (-(n.center / n.scale + n.mean) / n.std) as f32,
        }
    }

    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        x * self.scale + self.offset
    }
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// A dataset ready for training.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Shape of one example (`[1, 28, 28]` for MNIST, `[features]` for CSV).
    pub shape: Vec<usize>,
    /// Number of classes; every label is below it.
    pub classes: usize,
    /// `classes` is the largest label plus one (no `[data] classes`, no known dataset).
    pub classes_counted: bool,
    pub train: Split,
    pub test: Split,
    /// Where the files were read from (shown to the user).
    pub source: PathBuf,
}

impl Dataset {
    /// Values per example.
    pub fn features(&self) -> usize {
        self.shape.iter().product()
    }

    /// Where the number of classes came from, when the labels decided it: the largest label
    /// and the first example that has it, so that one stray label can be found.
    pub fn classes_source(&self) -> String {
        let first = |split: &Split| {
            split
                .labels
                .iter()
                .position(|&l| l as usize + 1 == self.classes)
        };
        let (split, index) = match (first(&self.train), first(&self.test)) {
            _ if !self.classes_counted => return String::new(),
            (Some(i), _) => ("training", i),
            (None, Some(i)) => ("test", i),
            (None, None) => return String::new(),
        };
        format!(
            "counted from the labels in {}: the largest, {}, is first in {split} example {} (counting from 1); set [data] classes to say how many there are",
            self.source.display(),
            self.classes - 1,
            index + 1
        )
    }
}

/// The example shape, number of classes and training examples of a named dataset, known
/// without reading it
/// (`None` for CSV and IDX datasets, whose files say).
pub fn known_shape(kind: DatasetKind) -> Option<(Vec<usize>, usize, usize)> {
    match kind {
        DatasetKind::Mnist | DatasetKind::FashionMnist => Some((vec![1, 28, 28], 10, 60_000)),
        DatasetKind::Csv | DatasetKind::Idx => None,
    }
}

/// Loads the dataset `[data]` describes. `progress` shows download bars.
pub fn load(config: &DataConfig, progress: bool) -> Result<Dataset> {
    let mut dataset = match config.dataset {
        DatasetKind::Mnist | DatasetKind::FashionMnist | DatasetKind::Idx => {
            let mut lookup =
                named::Lookup::from_env(config.dataset, config.dir.clone(), config.download);
            lookup.progress = progress;
            from_idx(
                config.dataset,
                named::load_files(config.dataset, &lookup)?,
                &config.normalize,
            )?
        }
        DatasetKind::Csv => from_csv(config)?,
    };
    if let Some(classes) = config.classes {
        for (split, which) in [(&dataset.train, "training"), (&dataset.test, "test")] {
            if let Some((i, label)) = split
                .labels
                .iter()
                .enumerate()
                .find(|(_, l)| **l as usize >= classes)
            {
                return Err(Error::Data(format!(
                    "the {which} labels in {} include {label} (example {}), but [data] classes = {classes}: labels must be 0 to {}; fix the data or raise classes",
                    dataset.source.display(),
                    i + 1,
                    classes - 1
                )));
            }
        }
        dataset.classes = classes;
        dataset.classes_counted = false;
    }
    limit(&mut dataset.train, config.limit_train);
    limit(&mut dataset.test, config.limit_test);
    Ok(dataset)
}

fn from_idx(kind: DatasetKind, files: named::RawFiles, norm: &Normalize) -> Result<Dataset> {
    let named::RawFiles {
        dir,
        idx: [train_x, train_y, test_x, test_y],
    } = files;
    let split = |x: idx::Idx, y: idx::Idx, which: &str| -> Result<(Vec<usize>, Split)> {
        let (n, shape) = match x.dims.as_slice() {
            [n, h, w] => (*n, vec![1, *h, *w]),
            dims => {
                return Err(Error::Data(format!(
                    "the {which} images of {} in {} have dimensions {dims:?}, expected [count, height, width]",
                    kind.name(),
                    dir.display()
                )));
            }
        };
        if y.dims != [n] {
            return Err(Error::Data(format!(
                "the {which} labels of {} in {} have dimensions {:?}, expected [{n}] to match the images",
                kind.name(),
                dir.display(),
                y.dims
            )));
        }
        let labels: Vec<u32> = y.data.iter().map(|&l| l as u32).collect();
        let named = kind != DatasetKind::Idx;
        if let Some(bad) = labels.iter().find(|&&l| l >= 10).filter(|_| named) {
            return Err(Error::Data(format!(
                "the {which} labels of {} in {} contain {bad}; {} has 10 classes (0-9)",
                kind.name(),
                dir.display(),
                kind.name()
            )));
        }
        Ok((
            shape,
            Split {
                inputs: Inputs::Pixels {
                    values: x.data,
                    norm: Affine::of(norm),
                },
                labels,
            },
        ))
    };
    let (shape, train) = split(train_x, train_y, "training")?;
    let (test_shape, test) = split(test_x, test_y, "test")?;
    let classes = match kind {
        DatasetKind::Idx => count_classes(&train, &test, &dir)?,
        _ => 10,
    };
    if shape != test_shape {
        return Err(Error::Data(format!(
            "training images are {shape:?} but test images are {test_shape:?} in {}",
            dir.display()
        )));
    }
    Ok(Dataset {
        shape,
        classes,
        classes_counted: kind == DatasetKind::Idx,
        train,
        test,
        source: dir,
    })
}

fn from_csv(config: &DataConfig) -> Result<Dataset> {
    let resolve = |file: &Option<PathBuf>, key: &str| -> Result<PathBuf> {
        let file = file.as_ref().ok_or_else(|| {
            Error::Config(format!("[data] {key} is required for dataset = \"csv\""))
        })?;
        Ok(match &config.dir {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.clone(),
        })
    };
    let train_path = resolve(&config.train_file, "train_file")?;
    let test_path = resolve(&config.test_file, "test_file")?;
    let train = csv::read(&train_path)?;
    let test = csv::read(&test_path)?;
    if train.features != test.features {
        return Err(Error::Data(format!(
            "{} has {} values per row but {} has {}; both splits must have the same columns",
            train_path.display(),
            train.features,
            test_path.display(),
            test.features
        )));
    }
    let features = train.features;
    let norm = Affine::of(&config.normalize);
    let to_split = |s: csv::CsvSplit| Split {
        inputs: Inputs::Floats(s.values.iter().map(|&v| norm.apply(v)).collect()),
        labels: s.labels,
    };
    let source = train_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let (train, test) = (to_split(train), to_split(test));
    Ok(Dataset {
        shape: vec![features],
        classes: count_classes(&train, &test, &source)?,
        classes_counted: true,
        source,
        train,
        test,
    })
}

/// Classes of a dataset that does not declare them: the largest label plus one.
fn count_classes(train: &Split, test: &Split, source: &Path) -> Result<usize> {
    let classes = train
        .labels
        .iter()
        .chain(&test.labels)
        .max()
        .map_or(0, |&m| m as usize + 1);
    if classes < 2 {
        return Err(Error::Data(format!(
            "the data in {} holds a single class; a classifier needs labels 0..N with N >= 2",
            source.display()
        )));
    }
    Ok(classes)
}

fn limit(split: &mut Split, limit: Option<usize>) {
    if let Some(limit) = limit.filter(|&l| l < split.len()) {
        let features = split.inputs.len() / split.len().max(1);
        split.labels.truncate(limit);
        split.inputs.truncate(limit * features);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisations_match_their_torch_forms() {
        let scale = Normalize::default();
        assert_eq!(Affine::of(&scale).apply(255.0), 1.0);
        let centred = Normalize {
            center: 127.5,
            ..Normalize::default()
        };
        assert_eq!(Affine::of(&centred).apply(0.0), -0.5);
        let standard = Normalize {
            mean: 0.1307,
            std: 0.3081,
            ..Normalize::default()
        };
        let expected = ((51.0 / 255.0) - 0.1307) / 0.3081;
        assert!((Affine::of(&standard).apply(51.0) as f64 - expected).abs() < 1e-6);
    }

    /// The normalised values are `Affine::apply`'s, whether a range is small (one vectorised
    /// loop) or large (pieces on the pool written into reserved memory: handed NaN buffers
    /// first, every value must still be written), and appended after what `out` holds.
    #[test]
    fn small_and_large_ranges_normalise_alike() {
        let norm = Affine::of(&Normalize {
            mean: 0.1307,
            std: 0.3081,
            ..Normalize::default()
        });
        let len = (1 << 20) + 12_345;
        let values: Vec<u8> = (0..len).map(|i| (i * 7919 % 256) as u8).collect();
        let want: Vec<f32> = values.iter().map(|&p| norm.apply(p as f32)).collect();
        let inputs = Inputs::Pixels { values, norm };
        for range in [0..len, 3..len, 100..900] {
            drop(vec![f32::NAN; len + 1]);
            let mut out = vec![-1.0f32];
            inputs.extend_normalised(range.clone(), &mut out);
            assert_eq!(out[0], -1.0);
            assert!(out[1..] == want[range.clone()], "range {range:?}");
        }
    }

    #[test]
    fn limit_keeps_the_first_examples() {
        let mut split = Split {
            inputs: Inputs::Floats(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
            labels: vec![7, 8, 9],
        };
        limit(&mut split, Some(2));
        assert_eq!(split.labels, vec![7, 8]);
        assert_eq!(split.inputs, Inputs::Floats(vec![0.0, 1.0, 2.0, 3.0]));
        limit(&mut split, Some(10));
        assert_eq!(split.len(), 2);
    }
}
