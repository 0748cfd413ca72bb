//! Datasets: reading (IDX, CSV, CIFAR, image folders), fetching and verifying, normalising,
//! limiting, holding out a validation split.
//!
//! The result is a [`Dataset`] in host memory: pictures stay bytes with the per-channel
//! multiply-add that normalises them (a quarter of the memory of floats, and none of the
//! start-up cost of writing 188 MB of fresh float32 MNIST), CSV values are normalised floats.
//! The training loop takes batches from it ([`DeviceSplit`]).

pub mod augment;
mod batches;
pub mod cifar;
pub mod csv;
pub mod download;
mod holdout;
pub mod idx;
pub mod image_folder;
pub mod named;
mod normalise;
pub mod picture;
pub mod synthetic;

use std::path::{Path, PathBuf};

use crate::config::{DataConfig, DatasetKind, Normalize};
use crate::error::{Error, Result};

pub use batches::{Batches, DeviceSplit, MixedLabels, per_epoch as batches_per_epoch};
pub use normalise::{Affine, PixelNorm};

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
    Pixels { values: Vec<u8>, norm: PixelNorm },
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
                norm.extend(out, &values[range.clone()], range.start)
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
    /// Held out of the training set by `[data] validation`.
    pub validation: Option<Split>,
    /// The classes' names by index, where the dataset names them (CIFAR, image folders).
    pub class_names: Vec<String>,
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

/// What a dataset is, known without decoding it.
pub struct Described {
    /// Shape of one example.
    pub shape: Vec<usize>,
    pub classes: usize,
    /// Training examples (before any validation hold-out).
    pub examples: usize,
}

/// The example shape, number of classes and training examples of a dataset whose files need
/// not be read to know them (named datasets; an image folder, by listing it); `None` for CSV
/// and IDX datasets, whose files say.
pub fn describe(config: &DataConfig) -> Result<Option<Described>> {
    let (shape, classes, examples) = match config.dataset {
        DatasetKind::Mnist | DatasetKind::FashionMnist => (vec![1, 28, 28], 10, 60_000),
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => {
            let names = cifar::class_names(config.dataset, config.label_mode.unwrap_or_default());
            (vec![3, 32, 32], names.len(), 50_000)
        }
        DatasetKind::ImageFolder => {
            let (Some(dir), Some([h, w])) = (&config.dir, config.image_size) else {
                return Ok(None);
            };
            let (train, _) = image_folder::list(dir)?;
            (
                vec![config.channels(), h, w],
                train.classes.len(),
                train.files.len(),
            )
        }
        DatasetKind::Csv | DatasetKind::Idx => return Ok(None),
    };
    Ok(Some(Described {
        shape,
        classes,
        examples,
    }))
}

/// What a trained run's dataset was, from its config and the class names its checkpoint
/// kept, where that is all there is to know (an image folder: the pictures need not be
/// there any more); `None` where [`describe`] or reading the data says.
pub fn describe_trained(config: &DataConfig, class_names: &[String]) -> Option<Described> {
    match (config.dataset, config.image_size) {
        (DatasetKind::ImageFolder, Some([h, w])) if !class_names.is_empty() => Some(Described {
            shape: vec![config.channels(), h, w],
            classes: class_names.len(),
            examples: 1,
        }),
        _ => None,
    }
}

/// Loads the dataset `[data]` describes, holding out its validation split with `seed`.
/// `progress` shows download bars.
pub fn load(config: &DataConfig, seed: u64, progress: bool) -> Result<(Dataset, Vec<String>)> {
    let mut warnings = Vec::new();
    let lookup = || {
        let mut lookup =
            named::Lookup::from_env(config.dataset, config.dir.clone(), config.download);
        lookup.progress = progress;
        lookup
    };
    let mut dataset = match config.dataset {
        DatasetKind::Mnist | DatasetKind::FashionMnist | DatasetKind::Idx => from_idx(
            config.dataset,
            named::load_files(config.dataset, &lookup())?,
            &config.normalize,
        )?,
        DatasetKind::Csv => from_csv(config)?,
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => {
            cifar::load(config, &lookup(), &mut warnings)?
        }
        DatasetKind::ImageFolder => image_folder::load(config)?,
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
    if let Some(holdout) = config.validation {
        let train = std::mem::replace(
            &mut dataset.train,
            Split {
                inputs: Inputs::Floats(Vec::new()),
                labels: Vec::new(),
            },
        );
        let (train, validation) = holdout::hold_out(train, holdout, dataset.classes, seed)?;
        dataset.train = train;
        dataset.validation = Some(validation);
    }
    Ok((dataset, warnings))
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
                    norm: PixelNorm::new(norm, 1, x.dims[1] * x.dims[2]),
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
        validation: None,
        class_names: Vec::new(),
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
    let norm = Affine::of(&config.normalize, 0);
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
        validation: None,
        class_names: Vec::new(),
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

    /// The normalised values are `Affine::apply`'s, whether a range is small (one vectorised
    /// loop) or large (pieces on the pool written into reserved memory: handed NaN buffers
    /// first, every value must still be written), and appended after what `out` holds.
    #[test]
    fn small_and_large_ranges_normalise_alike() {
        let n = Normalize {
            mean: crate::config::PerChannel(vec![0.1307]),
            std: crate::config::PerChannel(vec![0.3081]),
            ..Normalize::default()
        };
        let affine = Affine::of(&n, 0);
        let len = (1 << 20) + 12_345;
        let values: Vec<u8> = (0..len).map(|i| (i * 7919 % 256) as u8).collect();
        let want: Vec<f32> = values.iter().map(|&p| affine.apply(p as f32)).collect();
        let inputs = Inputs::Pixels {
            values,
            norm: PixelNorm::new(&n, 1, 784),
        };
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
