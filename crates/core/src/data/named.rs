//! MNIST and Fashion-MNIST: their four files, where kiln looks for them, how they are fetched
//! and verified; [`Lookup`], where any named dataset is looked for (CIFAR's files: `cifar.rs`).
//!
//! Lookup order: `[data] dir`, then `KILN_DATA_DIR`, then the cache folder. A folder the user
//! named is final: if it lacks the files, that is an error rather than a reason to look elsewhere.
//! Only the cache is ever downloaded into.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::download;
use super::idx::{self, Idx};
use crate::config::DatasetKind;
use crate::error::{Error, Result};

/// The four IDX files of an MNIST-format dataset, in the order train images, train labels,
/// test images, test labels.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The decompressed size of each of [`FILES`] in MNIST and Fashion-MNIST (60,000 and 10,000
/// 28x28 images): reading stops there, whatever a damaged or hostile file claims.
const MNIST_LEN: [u64; 4] = [47_040_016, 60_008, 7_840_016, 10_008];

fn expected_len(kind: DatasetKind, i: usize) -> Option<u64> {
    match kind {
        DatasetKind::Mnist | DatasetKind::FashionMnist => Some(MNIST_LEN[i]),
        DatasetKind::Idx
        | DatasetKind::Csv
        | DatasetKind::Cifar10
        | DatasetKind::Cifar100
        | DatasetKind::ImageFolder => None,
    }
}

/// SHA-256 of MNIST's decompressed files, in [`FILES`] order.
const MNIST_SHA256: [&str; 4] = [
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
];

/// MD5 of Fashion-MNIST's `.gz` files as its publishers list them (no SHA-256 is published).
const FASHION_GZ_MD5: [&str; 4] = [
    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "25c81989df183df01b3e8a0aad5dffbe",
    "bef4ecab320f06d8554ea6380940ec79",
    "bb300cfdad3c16e7a12a480ee83cd310",
];

const MNIST_MIRRORS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
];

const FASHION_MIRRORS: &[&str] = &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

/// The four decompressed files of a named dataset.
pub struct RawFiles {
    /// The folder they came from (for messages).
    pub dir: PathBuf,
    /// Parsed IDX contents in [`FILES`] order.
    pub idx: [Idx; 4],
}

/// Where to look and whether to download; filled from config and environment by the caller.
pub struct Lookup {
    /// `[data] dir`.
    pub config_dir: Option<PathBuf>,
    /// `KILN_DATA_DIR`.
    pub env_dir: Option<PathBuf>,
    /// The cache folder for this dataset.
    pub cache_dir: PathBuf,
    /// `[data] download`.
    pub download: bool,
    /// Base URLs to try in order (`KILN_MIRRORS` or the dataset's public mirrors).
    pub mirrors: Vec<String>,
    /// Show a progress bar while downloading.
    pub progress: bool,
    /// How long a mirror may send nothing before the next one is tried.
    pub stall: std::time::Duration,
}

impl Lookup {
    /// Lookup from the environment: `KILN_DATA_DIR`, `KILN_CACHE_DIR` (else `$XDG_CACHE_HOME/kiln`,
    /// else `~/.cache/kiln`) and `KILN_MIRRORS` (comma-separated base URLs).
    pub fn from_env(kind: DatasetKind, config_dir: Option<PathBuf>, download: bool) -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let cache_root = var("KILN_CACHE_DIR")
            .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("kiln")))
            .or_else(|| var("HOME").map(|p| p.join(".cache").join("kiln")))
            .unwrap_or_else(|| PathBuf::from(".kiln-cache"));
        let mirrors = match std::env::var("KILN_MIRRORS") {
            Ok(list) if !list.trim().is_empty() => list
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            _ => default_mirrors(kind)
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        Lookup {
            config_dir,
            env_dir: var("KILN_DATA_DIR"),
            cache_dir: cache_root.join(kind.name()),
            download,
            mirrors,
            progress: true,
            stall: download::STALL,
        }
    }
}

impl Lookup {
    /// The folder that already holds all four files, without downloading: `[data] dir`,
    /// else `KILN_DATA_DIR`, else the cache.
    pub fn on_disk(&self) -> Option<&Path> {
        [self.config_dir.as_deref(), self.env_dir.as_deref()]
            .into_iter()
            .flatten()
            .chain([self.cache_dir.as_path()])
            .find(|dir| find_all(dir).is_ok())
    }
}

fn default_mirrors(kind: DatasetKind) -> &'static [&'static str] {
    match kind {
        DatasetKind::FashionMnist => FASHION_MIRRORS,
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => super::cifar::MIRRORS,
        DatasetKind::Mnist | DatasetKind::Idx | DatasetKind::Csv | DatasetKind::ImageFolder => {
            MNIST_MIRRORS
        }
    }
}

/// Finds (or fetches), decompresses, verifies and parses the four files of `kind`.
pub fn load_files(kind: DatasetKind, lookup: &Lookup) -> Result<RawFiles> {
    let explicit = [
        (lookup.config_dir.as_ref(), "[data] dir"),
        (lookup.env_dir.as_ref(), "KILN_DATA_DIR"),
    ];
    if let Some((dir, source)) = explicit.into_iter().find_map(|(d, s)| d.map(|d| (d, s))) {
        let files = find_all(dir).map_err(|missing| {
            let or_cache = if kind == DatasetKind::Idx {
                String::new()
            } else {
                format!(", or remove {source} to use the cache")
            };
            Error::Data(format!(
                "{source} names {}, which lacks {missing} (or {missing}.gz); put the four {} IDX files there ({}){or_cache}",
                dir.display(),
                kind.name(),
                FILES.join(", ")
            ))
        })?;
        return read_verified(kind, dir, &files);
    }
    let dir = &lookup.cache_dir;
    if let Ok(files) = find_all(dir) {
        return read_verified(kind, dir, &files);
    }
    if !lookup.download {
        return Err(Error::Data(format!(
            "{} is not in the cache ({}) and [data] download = false; set KILN_DATA_DIR or [data] dir to a folder with its four IDX files",
            kind.name(),
            dir.display()
        )));
    }
    fetch_missing(kind, lookup)?;
    let files = find_all(dir).map_err(|missing| {
        Error::Data(format!(
            "{missing} is still missing from {} after downloading",
            dir.display()
        ))
    })?;
    read_verified(kind, dir, &files)
}

/// The path of each of [`FILES`] in `dir`, raw or `.gz`; `Err(name)` for the first missing.
fn find_all(dir: &Path) -> std::result::Result<[PathBuf; 4], &'static str> {
    let find = |name: &'static str| {
        [dir.join(name), dir.join(format!("{name}.gz"))]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or(name)
    };
    Ok([
        find(FILES[0])?,
        find(FILES[1])?,
        find(FILES[2])?,
        find(FILES[3])?,
    ])
}

fn read_verified(kind: DatasetKind, dir: &Path, files: &[PathBuf; 4]) -> Result<RawFiles> {
    // In parallel: decompressing the training images is most of start-up, and the test
    // images can be read beside it. Results are collected in file order before the first
    // error is taken (rayon's own `Result` collection returns any one of several errors), so
    // that with two bad files the message always names the same one.
    let results: Vec<Result<Idx>> = files
        .par_iter()
        .enumerate()
        .map(|(i, path)| {
            let bytes = idx::read(path, expected_len(kind, i))?;
            verify(kind, i, path, &bytes)?;
            idx::parse(bytes, path)
        })
        .collect();
    let parsed = results.into_iter().collect::<Result<Vec<Idx>>>()?;
    let idx: [Idx; 4] = parsed
        .try_into()
        .map_err(|_| Error::Data("internal: expected four IDX files".into()))?;
    Ok(RawFiles {
        dir: dir.to_path_buf(),
        idx,
    })
}

/// Checks decompressed bytes against what the dataset should hold.
fn verify(kind: DatasetKind, i: usize, path: &Path, bytes: &[u8]) -> Result<()> {
    let digest = sha256_hex(bytes);
    match kind {
        DatasetKind::Mnist if digest != MNIST_SHA256[i] => Err(Error::Data(format!(
            "{} does not match MNIST's checksum (SHA-256 of the decompressed file is {digest}, expected {}); it is damaged or not MNIST: delete it so that kiln fetches it again, or replace it with the original",
            path.display(),
            MNIST_SHA256[i]
        ))),
        DatasetKind::FashionMnist if MNIST_SHA256.contains(&digest.as_str()) => {
            Err(Error::Data(format!(
                "{} is MNIST's file, not Fashion-MNIST's; point [data] dir or KILN_DATA_DIR at a Fashion-MNIST folder",
                path.display()
            )))
        }
        _ => Ok(()),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads every file missing from the cache, verifies it, and renames it into place.
fn fetch_missing(kind: DatasetKind, lookup: &Lookup) -> Result<()> {
    let dir = &lookup.cache_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io("cannot create the cache folder", dir, e))?;
    for (i, name) in FILES.iter().enumerate() {
        if has_file(dir, name) {
            continue;
        }
        let file = format!("{name}.gz");
        let mut failures = Vec::new();
        let mut fetched = None;
        for base in &lookup.mirrors {
            let url = format!("{}/{file}", base.trim_end_matches('/'));
            match download::get(&url, lookup.progress, lookup.stall)
                .and_then(|gz| check_download(kind, i, &url, &gz).map(|()| gz))
            {
                Ok(gz) => {
                    fetched = Some(gz);
                    break;
                }
                Err(e) => failures.push(e),
            }
        }
        let Some(gz) = fetched else {
            return Err(Error::Data(format!(
                "could not download {file} of {} ({}); without internet access, put the four IDX files in a folder and set KILN_DATA_DIR to it",
                kind.name(),
                failures.join("; ")
            )));
        };
        download::write_atomic(&dir.join(&file), &gz)?;
    }
    Ok(())
}

fn has_file(dir: &Path, name: &str) -> bool {
    dir.join(name).is_file() || dir.join(format!("{name}.gz")).is_file()
}

/// A downloaded `.gz` must decompress and match the dataset's published checksum.
fn check_download(
    kind: DatasetKind,
    i: usize,
    url: &str,
    gz: &[u8],
) -> std::result::Result<(), String> {
    if kind == DatasetKind::FashionMnist {
        use md5::Md5;
        let digest = hex(&Md5::digest(gz));
        if digest != FASHION_GZ_MD5[i] {
            return Err(format!(
                "{url}: checksum mismatch (MD5 {digest}, expected {})",
                FASHION_GZ_MD5[i]
            ));
        }
    }
    let raw = idx::read_from(
        flate2::read::GzDecoder::new(gz),
        Path::new(url),
        expected_len(kind, i),
    )
    .map_err(|e| e.to_string())?;
    verify(kind, i, Path::new(url), &raw).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// The files are read in parallel, but with two damaged ones the error always names the
    /// first in file order.
    #[test]
    fn of_two_damaged_files_the_first_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let files: [PathBuf; 4] = std::array::from_fn(|i| dir.path().join(FILES[i]));
        for (i, path) in files.iter().enumerate() {
            let good = idx::encode(&[2], &[1, 2]);
            let bytes = if i == 1 || i == 3 {
                b"damaged".to_vec()
            } else {
                good
            };
            std::fs::write(path, bytes).unwrap();
        }
        for _ in 0..20 {
            let err = read_verified(DatasetKind::Idx, dir.path(), &files)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(FILES[1]), "{err}");
        }
    }

    #[test]
    fn explicit_dir_without_files_is_an_error_not_a_fallback() {
        let empty = tempfile::tempdir().unwrap();
        let lookup = Lookup {
            config_dir: Some(empty.path().to_path_buf()),
            env_dir: None,
            cache_dir: PathBuf::from("/nonexistent-cache"),
            download: true,
            mirrors: vec!["http://127.0.0.1:9/".into()],
            progress: false,
            stall: download::STALL,
        };
        let err = load_files(DatasetKind::Mnist, &lookup)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("[data] dir") && err.contains("train-images-idx3-ubyte"),
            "{err}"
        );
    }
}
