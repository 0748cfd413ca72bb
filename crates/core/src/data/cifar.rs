//! CIFAR-10 and CIFAR-100, binary version: where kiln finds them (a folder, an archive, the
//! cache), how they are fetched and verified, and how their records are read.
//!
//! A record is the label byte(s) then 3072 pixel bytes: the red, green and blue 32x32 planes,
//! which is the `[3, 32, 32]` layout the network takes, so pixels are copied as they are.
//! Archives (downloaded or given) are checked by the SHA-256 of the publisher's file;
//! extracted folders by their exact sizes and label ranges.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::named::Lookup;
use super::normalise::PixelNorm;
use super::{Inputs, Split, download};
use crate::config::{DataConfig, DatasetKind, LabelMode};
use crate::error::{Error, Result};

/// Pixel bytes of one 32x32 RGB picture.
const PIXELS: usize = 3 * 32 * 32;

/// Where the publisher serves the archives.
pub const MIRRORS: &[&str] = &["https://www.cs.toronto.edu/~kriz/"];

/// One of the two datasets' files.
#[derive(Debug)]
pub struct Layout {
    /// The folder the archive extracts to.
    pub folder: &'static str,
    pub archive: &'static str,
    /// SHA-256 of the archive (as TensorFlow Datasets records it) and its size.
    sha256: &'static str,
    archive_len: u64,
    train: &'static [&'static str],
    test: &'static str,
    train_records: usize,
    test_records: usize,
    /// Label bytes before each picture: 1 (CIFAR-10), 2 (CIFAR-100: coarse, then fine).
    label_bytes: usize,
}

const CIFAR10: Layout = Layout {
    folder: "cifar-10-batches-bin",
    archive: "cifar-10-binary.tar.gz",
    sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    archive_len: 170_052_171,
    train: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ],
    test: "test_batch.bin",
    train_records: 10_000,
    test_records: 10_000,
    label_bytes: 1,
};

const CIFAR100: Layout = Layout {
    folder: "cifar-100-binary",
    archive: "cifar-100-binary.tar.gz",
    sha256: "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
    archive_len: 168_513_733,
    train: &["train.bin"],
    test: "test.bin",
    train_records: 50_000,
    test_records: 10_000,
    label_bytes: 2,
};

impl Layout {
    pub fn of(kind: DatasetKind) -> Option<&'static Layout> {
        match kind {
            DatasetKind::Cifar10 => Some(&CIFAR10),
            DatasetKind::Cifar100 => Some(&CIFAR100),
            DatasetKind::Mnist
            | DatasetKind::FashionMnist
            | DatasetKind::Csv
            | DatasetKind::Idx
            | DatasetKind::ImageFolder => None,
        }
    }

    /// Every file name, training files first, and its exact size.
    fn files(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let record = (self.label_bytes + PIXELS) as u64;
        self.train
            .iter()
            .map(move |&f| (f, self.train_records as u64 * record))
            .chain([(self.test, self.test_records as u64 * record)])
    }

    /// The extracted files are in `dir` itself.
    fn holds_files(&self, dir: &Path) -> bool {
        self.files().all(|(name, _)| dir.join(name).is_file())
    }
}

/// The class names of `kind` with `mode`'s labels, by class index.
pub fn class_names(kind: DatasetKind, mode: LabelMode) -> &'static [&'static str] {
    match (kind, mode) {
        (DatasetKind::Cifar100, LabelMode::Fine) => &FINE,
        (DatasetKind::Cifar100, LabelMode::Coarse) => &COARSE,
        _ => &CIFAR10_NAMES,
    }
}

/// The raw files of a dataset, by name, wherever they were found.
struct Found {
    files: Vec<(&'static str, Vec<u8>)>,
    /// The folder or archive they came from (for messages).
    source: PathBuf,
}

/// Finds (or fetches), verifies and reads CIFAR-10 or CIFAR-100. `warnings` receives what
/// `[data] verify = false` let through.
pub fn load(
    config: &DataConfig,
    lookup: &Lookup,
    warnings: &mut Vec<String>,
) -> Result<super::Dataset> {
    let layout = Layout::of(config.dataset)
        .ok_or_else(|| Error::Data(format!("internal: {} is not CIFAR", config.dataset.name())))?;
    let found = find(layout, config, lookup, warnings)?;
    let mode = config.label_mode.unwrap_or_default();
    let names = class_names(config.dataset, mode);
    let label_at = match (config.dataset, mode) {
        (DatasetKind::Cifar100, LabelMode::Fine) => 1,
        _ => 0,
    };
    let split = |files: &[(&str, Vec<u8>)]| -> Result<Split> {
        records(files, layout, label_at, names.len(), &found.source, config)
    };
    let count = layout.train.len();
    let train = split(&found.files[..count])?;
    let test = split(&found.files[count..])?;
    Ok(super::Dataset {
        shape: vec![3, 32, 32],
        classes: names.len(),
        classes_counted: false,
        class_names: names.iter().map(|n| n.to_string()).collect(),
        train,
        test,
        validation: None,
        source: found.source,
    })
}

/// Splits files of records into pictures and labels, checking every label.
fn records(
    files: &[(&str, Vec<u8>)],
    layout: &Layout,
    label_at: usize,
    classes: usize,
    source: &Path,
    config: &DataConfig,
) -> Result<Split> {
    let record = layout.label_bytes + PIXELS;
    let count: usize = files.iter().map(|(_, b)| b.len() / record).sum();
    let mut pixels = Vec::with_capacity(count * PIXELS);
    let mut labels = Vec::with_capacity(count);
    for (name, bytes) in files {
        for (i, r) in bytes.chunks_exact(record).enumerate() {
            let label = r[label_at];
            if label as usize >= classes {
                return Err(Error::Data(format!(
                    "{name} in {} has label {label} in record {}, but the dataset has {classes} classes: the file is damaged; delete it so that kiln fetches it again",
                    source.display(),
                    i + 1
                )));
            }
            labels.push(label as u32);
            pixels.extend_from_slice(&r[layout.label_bytes..]);
        }
    }
    Ok(Split {
        inputs: Inputs::Pixels {
            values: pixels,
            norm: PixelNorm::new(&config.normalize, 3, 32 * 32),
        },
        labels,
    })
}

/// `[data] dir` (final: a folder holding the files or their folder or the archive, or the
/// archive itself), else `KILN_DATA_DIR` (searched the same way, but passed over when the
/// dataset is not there: it may be a shared data folder), else the cache (downloaded into).
fn find(
    layout: &Layout,
    config: &DataConfig,
    lookup: &Lookup,
    warnings: &mut Vec<String>,
) -> Result<Found> {
    if let Some(dir) = &lookup.config_dir {
        return match locate(layout, dir) {
            Some(place) => read_place(layout, place, config.verify, warnings),
            None => Err(Error::Data(format!(
                "[data] dir names {}, which holds neither {}'s files ({}), nor their folder {}, nor the archive {}; point it at one of them, or remove it to use the cache",
                dir.display(),
                config.dataset.name(),
                layout
                    .files()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>()
                    .join(", "),
                layout.folder,
                layout.archive
            ))),
        };
    }
    if let Some(place) = lookup.env_dir.as_deref().and_then(|d| locate(layout, d)) {
        return read_place(layout, place, config.verify, warnings);
    }
    let cached = lookup.cache_dir.join(layout.folder);
    if layout.holds_files(&cached) {
        return read_folder(layout, &cached);
    }
    if !lookup.download {
        return Err(Error::Data(format!(
            "{} is not in the cache ({}) and [data] download = false; set [data] dir to its extracted folder or to {}",
            config.dataset.name(),
            cached.display(),
            layout.archive
        )));
    }
    let archive = fetch(layout, lookup, config.verify, warnings)?;
    let files = extract(layout, &archive, Path::new(layout.archive))?;
    std::fs::create_dir_all(&cached)
        .map_err(|e| Error::io("cannot create the cache folder", &cached, e))?;
    for (name, bytes) in &files {
        download::write_atomic(&cached.join(name), bytes)?;
    }
    Ok(Found {
        files,
        source: cached,
    })
}

/// A place that holds the dataset.
enum Place {
    Folder(PathBuf),
    Archive(PathBuf),
}

fn locate(layout: &Layout, path: &Path) -> Option<Place> {
    if path.is_file() {
        return Some(Place::Archive(path.to_path_buf()));
    }
    let inner = path.join(layout.folder);
    let archive = path.join(layout.archive);
    if layout.holds_files(path) {
        Some(Place::Folder(path.to_path_buf()))
    } else if layout.holds_files(&inner) {
        Some(Place::Folder(inner))
    } else if archive.is_file() {
        Some(Place::Archive(archive))
    } else {
        None
    }
}

fn read_place(
    layout: &Layout,
    place: Place,
    verify: bool,
    warnings: &mut Vec<String>,
) -> Result<Found> {
    match place {
        Place::Folder(dir) => read_folder(layout, &dir),
        Place::Archive(path) => {
            let bytes = crate::files::read_at_most(&path, layout.archive_len * 2)
                .map_err(|e| Error::io("cannot read", &path, e))?;
            if let Err(why) = check_archive(layout, &bytes) {
                refuse_or_warn(format!("{} {why}", path.display()), verify, warnings)?;
            }
            Ok(Found {
                files: extract(layout, &bytes, &path)?,
                source: path,
            })
        }
    }
}

/// Reads the extracted files in `dir`, each of exactly its size.
fn read_folder(layout: &Layout, dir: &Path) -> Result<Found> {
    let files = layout
        .files()
        .map(|(name, len)| {
            let path = dir.join(name);
            let bytes = crate::files::read_at_most(&path, len)
                .map_err(|e| Error::io("cannot read", &path, e))?;
            if bytes.len() as u64 != len {
                return Err(Error::Data(format!(
                    "{} is {} bytes, but the file holds {len} (truncated or not CIFAR's); delete it so that kiln fetches it again, or replace it with the original",
                    path.display(),
                    bytes.len()
                )));
            }
            Ok((name, bytes))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Found {
        files,
        source: dir.to_path_buf(),
    })
}

/// `Err` completes "the archive X ...".
fn check_archive(layout: &Layout, bytes: &[u8]) -> std::result::Result<(), String> {
    let digest: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if digest == layout.sha256 {
        Ok(())
    } else {
        Err(format!(
            "does not match the checksum of the publisher's {} (SHA-256 {digest}, expected {})",
            layout.archive, layout.sha256
        ))
    }
}

/// A failed check is an error, or with `[data] verify = false` a warning.
fn refuse_or_warn(what: String, verify: bool, warnings: &mut Vec<String>) -> Result<()> {
    if verify {
        return Err(Error::Data(format!(
            "{what}: it is damaged or not the original; replace it, or set [data] verify = false to use it anyway"
        )));
    }
    warnings.push(format!(
        "{what}; used anyway, as [data] verify = false says"
    ));
    Ok(())
}

/// Downloads the archive from the first mirror that serves one that checks out.
fn fetch(
    layout: &Layout,
    lookup: &Lookup,
    verify: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>> {
    let mut failures = Vec::new();
    for base in &lookup.mirrors {
        let url = format!("{}/{}", base.trim_end_matches('/'), layout.archive);
        match download::get(&url, lookup.progress, lookup.stall) {
            Ok(bytes) => match check_archive(layout, &bytes) {
                Ok(()) => return Ok(bytes),
                Err(why) if !verify => {
                    warnings.push(format!(
                        "the download {url} {why}; used anyway, as [data] verify = false says"
                    ));
                    return Ok(bytes);
                }
                Err(why) => failures.push(format!("{url} {why}")),
            },
            Err(e) => failures.push(e),
        }
    }
    Err(Error::Data(format!(
        "could not download {} ({}); without internet access, put the archive or its extracted folder {} somewhere and set [data] dir to it",
        layout.archive,
        failures.join("; "),
        layout.folder
    )))
}

/// The files of `kind` (CIFAR-10 or CIFAR-100) read out of the archive `gz`: what `[data] dir`
/// naming an archive reads (the fuzz target's entry).
pub fn extract_archive(kind: DatasetKind, gz: &[u8]) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let layout = Layout::of(kind)
        .ok_or_else(|| Error::Data(format!("internal: {} is not CIFAR", kind.name())))?;
    extract(layout, gz, Path::new("the archive"))
}

/// The dataset's files from the archive's bytes (`path` names it in errors), each of exactly
/// its size: nothing else in the archive is read or written anywhere.
fn extract(layout: &Layout, gz: &[u8], path: &Path) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let bad = |why: String| {
        Error::Data(format!(
            "the archive {} {why}; delete it so that kiln fetches it again, or replace it with the original",
            path.display()
        ))
    };
    let mut wanted: Vec<(&'static str, u64, Option<Vec<u8>>)> =
        layout.files().map(|(n, len)| (n, len, None)).collect();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("cannot be read as .tar.gz ({e})")))?;
    for entry in entries {
        let entry = entry.map_err(|e| bad(format!("cannot be read as .tar.gz ({e})")))?;
        let name = entry.path().ok().and_then(|p| {
            let parent = p.parent()?.file_name()?.to_str()? == layout.folder;
            parent.then(|| p.file_name()?.to_str().map(str::to_string))?
        });
        let Some(slot) = name.and_then(|n| wanted.iter_mut().find(|w| w.0 == n)) else {
            continue;
        };
        if entry.size() != slot.1 {
            return Err(bad(format!(
                "holds {}/{} of {} bytes, expected {}",
                layout.folder,
                slot.0,
                entry.size(),
                slot.1
            )));
        }
        let mut bytes = Vec::with_capacity(slot.1 as usize);
        entry
            .take(slot.1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("is cut short in {} ({e})", slot.0)))?;
        if bytes.len() as u64 != slot.1 {
            return Err(bad(format!("is cut short in {}", slot.0)));
        }
        slot.2 = Some(bytes);
    }
    wanted
        .into_iter()
        .map(|(name, _, bytes)| {
            bytes
                .map(|b| (name, b))
                .ok_or_else(|| bad(format!("lacks {}/{name}", layout.folder)))
        })
        .collect()
}

const CIFAR10_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// CIFAR-100's `fine_label_names.txt`, in label order.
const FINE: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// CIFAR-100's `coarse_label_names.txt`, in label order.
const COARSE: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// Writes files of CIFAR's layout for tests: `records[i]` = (labels, pixel value) of the
/// i-th picture of every file.
#[cfg(test)]
pub(crate) fn write_fake(kind: DatasetKind, dir: &Path, label: impl Fn(usize) -> Vec<u8>) {
    let layout = Layout::of(kind).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for (name, len) in layout.files() {
        let record = layout.label_bytes + PIXELS;
        let mut bytes = Vec::with_capacity(len as usize);
        for i in 0..len as usize / record {
            bytes.extend(label(i));
            bytes.extend((0..PIXELS).map(|p| ((i + p) % 256) as u8));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_as_many_as_classes_and_unique() {
        for names in [&CIFAR10_NAMES[..], &FINE[..], &COARSE[..]] {
            let mut sorted = names.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), names.len());
        }
        assert_eq!((FINE.len(), COARSE.len()), (100, 20));
        // Fine names are alphabetical in CIFAR-100's meta file.
        assert!(FINE.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn an_archive_is_read_only_for_the_datasets_files_and_their_sizes() {
        let layout = &CIFAR10;
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |path: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, bytes).unwrap();
        };
        add("cifar-10-batches-bin/readme.html", b"hello");
        for (name, len) in layout.files() {
            add(
                &format!("cifar-10-batches-bin/{name}"),
                &vec![1u8; len as usize],
            );
        }
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let gz = gz.finish().unwrap();
        let files = extract(layout, &gz, Path::new("x.tar.gz")).unwrap();
        assert_eq!(files.len(), 6);
        assert!(files.iter().all(|(_, b)| b.len() == 10_000 * 3073));
        let err = extract(layout, &gz[..gz.len() / 2], Path::new("x.tar.gz"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("x.tar.gz"), "{err}");
        let err = check_archive(layout, &gz).unwrap_err();
        assert!(err.contains(layout.sha256), "{err}");
    }

    fn config(kind: DatasetKind, dir: &Path) -> DataConfig {
        toml::from_str::<DataConfig>(&format!(
            "dataset = \"{}\"\ndir = {:?}",
            kind.name(),
            dir.display().to_string()
        ))
        .unwrap()
    }

    fn lookup(config: &DataConfig) -> Lookup {
        let mut lookup = Lookup::from_env(config.dataset, config.dir.clone(), false);
        lookup.env_dir = None;
        lookup.cache_dir = PathBuf::from("/nonexistent-kiln-cache");
        lookup.progress = false;
        lookup
    }

    /// Files of the binary layout, found from the folder above them; labels and planes as
    /// the records hold them; CIFAR-100's two label sets.
    #[test]
    fn the_binary_layout_is_read_record_by_record() {
        let root = tempfile::tempdir().unwrap();
        write_fake(
            DatasetKind::Cifar10,
            &root.path().join(CIFAR10.folder),
            |i| vec![(i % 10) as u8],
        );
        let c = config(DatasetKind::Cifar10, root.path());
        let d = load(&c, &lookup(&c), &mut Vec::new()).unwrap();
        assert_eq!(
            (d.train.len(), d.test.len(), d.classes),
            (50_000, 10_000, 10)
        );
        assert_eq!(d.shape, vec![3, 32, 32]);
        assert_eq!(d.train.labels[..3], [0, 1, 2]);
        // Record 10,001 is the first of data_batch_2: label 0, pixels from 0.
        assert_eq!(d.train.labels[10_000], 0);
        let Inputs::Pixels { values, .. } = &d.train.inputs else {
            panic!()
        };
        assert_eq!(values[PIXELS + 5], 6);
        assert_eq!(d.class_names[9], "truck");

        let root = tempfile::tempdir().unwrap();
        write_fake(DatasetKind::Cifar100, root.path(), |i| {
            vec![(i % 20) as u8, (i % 100) as u8]
        });
        let mut c = config(DatasetKind::Cifar100, root.path());
        let fine = load(&c, &lookup(&c), &mut Vec::new()).unwrap();
        assert_eq!((fine.classes, fine.train.labels[57]), (100, 57));
        c.label_mode = Some(LabelMode::Coarse);
        let coarse = load(&c, &lookup(&c), &mut Vec::new()).unwrap();
        assert_eq!((coarse.classes, coarse.train.labels[57]), (20, 17));
        assert_eq!(coarse.class_names[14], "people");
    }

    #[test]
    fn damaged_files_and_archives_are_named() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(CIFAR10.folder);
        write_fake(DatasetKind::Cifar10, &dir, |i| {
            vec![if i == 42 { 10 } else { 0 }]
        });
        let c = config(DatasetKind::Cifar10, root.path());
        let err = load(&c, &lookup(&c), &mut Vec::new())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("data_batch_1.bin") && err.contains("record 43"),
            "{err}"
        );
        std::fs::write(dir.join("test_batch.bin"), b"short").unwrap();
        let err = load(&c, &lookup(&c), &mut Vec::new())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("test_batch.bin is 5 bytes"), "{err}");
        // An archive that is not the publisher's: refused, or a warning with verify = false.
        let archive = root.path().join("mine.tar.gz");
        std::fs::write(&archive, b"not an archive").unwrap();
        let mut c = config(DatasetKind::Cifar10, &archive);
        let err = load(&c, &lookup(&c), &mut Vec::new())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("mine.tar.gz") && err.contains("verify = false"),
            "{err}"
        );
        c.verify = false;
        let mut warnings = Vec::new();
        let err = load(&c, &lookup(&c), &mut warnings)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("cannot be read as .tar.gz"), "{err}");
        assert!(warnings[0].contains("SHA-256"), "{warnings:?}");
    }
}
