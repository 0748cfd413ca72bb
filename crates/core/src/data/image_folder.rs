//! `dataset = "image_folder"`: `dir/train/<class>/…` and `dir/test/<class>/…`, torchvision's
//! ImageFolder layout. Class indices follow the sorted class-folder names; files are found
//! recursively in each class folder, sorted, by extension (other files are passed over, as
//! torchvision does). Every picture is decoded once, in parallel, fitted to `image_size` and
//! `channels` ([`picture::fit`]) and kept as bytes, like MNIST's pixels.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::normalise::PixelNorm;
use super::{Dataset, Inputs, Split, picture};
use crate::config::DataConfig;
use crate::error::{Error, Result};

/// The extensions read as pictures (lower case).
pub const EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "bmp", "gif"];

/// A split's pictures, before decoding: the files of each class, in class order.
#[derive(Debug)]
pub struct Listing {
    pub classes: Vec<String>,
    /// `(file, class index)`, sorted by class then path.
    pub files: Vec<(PathBuf, u32)>,
}

/// The two splits' listings, checked: both exist, have the same non-empty classes.
pub fn list(dir: &Path) -> Result<(Listing, Listing)> {
    let train = list_split(dir, "train")?;
    let test = list_split(dir, "test")?;
    if train.classes != test.classes {
        let only = |a: &Listing, b: &Listing| -> Vec<String> {
            a.classes
                .iter()
                .filter(|c| !b.classes.contains(c))
                .cloned()
                .collect()
        };
        return Err(Error::Data(format!(
            "the classes of {} and {} differ (only in train: {:?}; only in test: {:?}); both need the same class folders",
            dir.join("train").display(),
            dir.join("test").display(),
            only(&train, &test),
            only(&test, &train)
        )));
    }
    Ok((train, test))
}

fn list_split(dir: &Path, split: &str) -> Result<Listing> {
    let root = dir.join(split);
    let layout = "the layout is train/<class>/<picture> and test/<class>/<picture>";
    if !root.is_dir() {
        return Err(Error::Data(format!(
            "the image folder {} has no {split}/ folder; {layout}",
            dir.display()
        )));
    }
    let mut classes = Vec::new();
    for (path, is_dir) in sorted_entries(&root)? {
        if is_dir {
            classes.push(path);
        }
    }
    if classes.is_empty() {
        return Err(Error::Data(format!(
            "{} holds no class folders; {layout}",
            root.display()
        )));
    }
    let mut files = Vec::new();
    for (index, class) in classes.iter().enumerate() {
        let before = files.len();
        walk(class, index as u32, &mut files)?;
        if files.len() == before {
            return Err(Error::Data(format!(
                "the class folder {} holds no pictures ({}); add some or remove the folder",
                class.display(),
                EXTENSIONS.join(", ")
            )));
        }
    }
    let classes = classes
        .iter()
        .map(|c| {
            c.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    Ok(Listing { classes, files })
}

/// A folder's visible entries, sorted by name, and whether each is a folder.
fn sorted_entries(dir: &Path) -> Result<Vec<(PathBuf, bool)>> {
    let read = std::fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?;
    let mut entries = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Error::io("cannot list", dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follows symbolic links, as a user's folder of links to pictures expects.
        entries.push((path.clone(), path.is_dir()));
    }
    entries.sort();
    Ok(entries)
}

fn walk(dir: &Path, class: u32, files: &mut Vec<(PathBuf, u32)>) -> Result<()> {
    for (path, is_dir) in sorted_entries(dir)? {
        if is_dir {
            walk(&path, class, files)?;
        } else if is_picture(&path) {
            files.push((path, class));
        }
    }
    Ok(())
}

fn is_picture(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Reads the image folder `[data]` names: lists it, checks that the decoded pictures fit
/// in memory, decodes them in parallel.
pub fn load(config: &DataConfig) -> Result<Dataset> {
    let (dir, size) = match (&config.dir, config.image_size) {
        (Some(dir), Some(size)) => (dir, size),
        _ => {
            return Err(Error::Config(
                "[data] dir and image_size are required for dataset = \"image_folder\"".into(),
            ));
        }
    };
    let channels = config.channels();
    let (train, test) = list(dir)?;
    let per = channels * size[0] * size[1];
    check_memory(
        dir,
        (train.files.len() + test.files.len()) as u128 * per as u128,
    )?;
    let norm = PixelNorm::new(&config.normalize, channels, size[0] * size[1]);
    let decode = |listing: &Listing| -> Result<Split> {
        Ok(Split {
            inputs: Inputs::Pixels {
                values: decode_all(&listing.files, channels, size)?,
                norm: norm.clone(),
            },
            labels: listing.files.iter().map(|(_, c)| *c).collect(),
        })
    };
    Ok(Dataset {
        shape: vec![channels, size[0], size[1]],
        classes: train.classes.len(),
        classes_counted: false,
        train: decode(&train)?,
        test: decode(&test)?,
        validation: None,
        class_names: train.classes,
        source: dir.clone(),
    })
}

/// Decoded pictures stay in memory: a folder whose pictures would take more than half of it
/// is refused before decoding, with the size (the network and its batches need the rest).
fn check_memory(dir: &Path, bytes: u128) -> Result<()> {
    let limit = crate::memory_limit::limit().map_err(Error::Config)?;
    match limit {
        Some(limit) if bytes > limit / 2 => Err(Error::Data(format!(
            "the pictures of {} take {} decoded at [data] image_size, more than half of the {} kiln may use; lower image_size or channels, use fewer pictures, or raise KILN_MEMORY_LIMIT",
            dir.display(),
            crate::memory_limit::gib(bytes),
            crate::memory_limit::gib(limit)
        ))),
        _ => Ok(()),
    }
}

/// Every file decoded and fitted, in order, into one buffer. With several bad files, the
/// first in order is reported (the same one on every run).
fn decode_all(files: &[(PathBuf, u32)], channels: usize, size: [usize; 2]) -> Result<Vec<u8>> {
    let per = channels * size[0] * size[1];
    let mut values = vec![0u8; files.len() * per];
    let results: Vec<Result<()>> = values
        .par_chunks_mut(per)
        .zip(files.par_iter())
        .map(|(out, (path, _))| {
            let image = picture::read(path, picture::MAX_PIXELS)?;
            out.copy_from_slice(&picture::fit(&image, channels, size));
            Ok(())
        })
        .collect();
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &Path, side: u32, value: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::from_pixel(side, side, image::Luma([value]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn classes_are_sorted_folders_and_files_are_found_recursively() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for split in ["train", "test"] {
            png(&d.join(split).join("zebra/a.png"), 4, 10);
            png(&d.join(split).join("ant/deep/b.PNG"), 6, 200);
            std::fs::write(d.join(split).join("ant/notes.txt"), "x").unwrap();
        }
        let (train, _) = list(d).unwrap();
        assert_eq!(train.classes, vec!["ant", "zebra"]);
        assert_eq!(
            train.files.iter().map(|f| f.1).collect::<Vec<_>>(),
            vec![0, 1]
        );
        std::fs::create_dir_all(d.join("test/cat")).unwrap();
        let err = list(d).unwrap_err().to_string();
        assert!(
            err.contains("cat") && err.contains("holds no pictures"),
            "{err}"
        );
        png(&d.join("test/cat/c.png"), 4, 1);
        let err = list(d).unwrap_err().to_string();
        assert!(err.contains("only in test: [\"cat\"]"), "{err}");
    }
}
