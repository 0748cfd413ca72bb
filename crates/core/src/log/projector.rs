//! The files of TensorBoard's Projector tab (embeddings seen in 3-D): `projector_config.pbtxt`
//! in a run folder, naming a tensor (TSV, one example per row), its metadata (TSV with a
//! header row, one column per field) and a sprite (a PNG grid of the examples' pictures, row
//! by row, as many columns as rows). The layout `torch.utils.tensorboard`'s `add_embedding`
//! writes; the plugin finds the config in any folder that holds event files.

use std::fmt::Write;

use image::{ImageEncoder, codecs::png::PngEncoder};

use crate::error::{Error, Result};

/// The config's name; the plugin looks for exactly this file.
pub const CONFIG_FILE: &str = "projector_config.pbtxt";
/// The folder, beside the config, that holds the tensor, metadata and sprite.
pub const FOLDER: &str = "embeddings";
/// The largest sprite side the Projector loads, in pixels.
pub const MAX_SPRITE_SIDE: usize = 8192;

/// Pictures of the examples, row-major planar (`[count, channels, height, width]`, 8 bits).
pub struct Pictures<'a> {
    pub pixels: std::borrow::Cow<'a, [u8]>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// One embedding: `values` row-major `[rows, dims]` with per-row metadata columns.
pub struct Projection<'a> {
    /// Shown in the Projector's tensor menu.
    pub name: String,
    pub values: &'a [f32],
    pub dims: usize,
    /// `(header, one value per row)`.
    pub columns: Vec<(&'static str, Vec<String>)>,
    pub pictures: Option<Pictures<'a>>,
}

impl Projection<'_> {
    pub fn rows(&self) -> usize {
        self.values.len() / self.dims.max(1)
    }

    /// Every file to write, by its path relative to the run folder.
    pub fn files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut config = format!(
            "embeddings {{\n  tensor_name: {:?}\n  tensor_path: \"{FOLDER}/tensors.tsv\"\n  metadata_path: \"{FOLDER}/metadata.tsv\"\n",
            self.name
        );
        let mut files = vec![
            (
                format!("{FOLDER}/tensors.tsv"),
                self.tensor_tsv().into_bytes(),
            ),
            (
                format!("{FOLDER}/metadata.tsv"),
                self.metadata_tsv().into_bytes(),
            ),
        ];
        if let Some(p) = &self.pictures {
            files.push((format!("{FOLDER}/sprite.png"), sprite(p, self.rows())?));
            let _ = write!(
                config,
                "  sprite {{\n    image_path: \"{FOLDER}/sprite.png\"\n    single_image_dim: {}\n    single_image_dim: {}\n  }}\n",
                p.width, p.height
            );
        }
        config.push_str("}\n");
        files.push((CONFIG_FILE.to_string(), config.into_bytes()));
        Ok(files)
    }

    fn tensor_tsv(&self) -> String {
        let mut out = String::with_capacity(self.values.len() * 11);
        for row in self.values.chunks(self.dims.max(1)) {
            for (i, v) in row.iter().enumerate() {
                let sep = if i == 0 { "" } else { "\t" };
                let _ = write!(out, "{sep}{v}");
            }
            out.push('\n');
        }
        out
    }

    fn metadata_tsv(&self) -> String {
        let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
        let headers: Vec<&str> = self.columns.iter().map(|(h, _)| *h).collect();
        let mut out = headers.join("\t");
        out.push('\n');
        for row in 0..self.rows() {
            let cells: Vec<String> = self
                .columns
                .iter()
                .map(|(_, v)| clean(v.get(row).map_or("", |s| s.as_str())))
                .collect();
            out.push_str(&cells.join("\t"));
            out.push('\n');
        }
        out
    }
}

/// The side, in pictures, of the square grid that holds `count` of them.
pub fn grid_side(count: usize) -> usize {
    (count as f64).sqrt().ceil() as usize
}

/// The sprite PNG of the first `count` pictures; unused cells are black, as TensorFlow's.
fn sprite(p: &Pictures, count: usize) -> Result<Vec<u8>> {
    let side = grid_side(count);
    let (w, h, c) = (side * p.width, side * p.height, p.channels);
    let mut out = vec![0u8; w * h * c];
    let per = p.channels * p.height * p.width;
    for (i, picture) in p.pixels.chunks_exact(per).take(count).enumerate() {
        let (top, left) = ((i / side) * p.height, (i % side) * p.width);
        for y in 0..p.height {
            for x in 0..p.width {
                for ch in 0..c {
                    out[((top + y) * w + left + x) * c + ch] =
                        picture[(ch * p.height + y) * p.width + x];
                }
            }
        }
    }
    let colour = match c {
        1 => image::ExtendedColorType::L8,
        _ => image::ExtendedColorType::Rgb8,
    };
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&out, w as u32, h as u32, colour)
        .map_err(|e| Error::Run(format!("cannot encode the projector's sprite as PNG: {e}")))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_follow_the_projector_layout() {
        let values = [1.0, 2.5, -3.0, 0.25, 5.0, 6.0, 7.0, 8.0, 9.0];
        // Three 2x2 grayscale pictures -> a 2x2 grid of them.
        let pixels: Vec<u8> = (0..12).collect();
        let projection = Projection {
            name: "05_linear_tanh".into(),
            values: &values,
            dims: 3,
            columns: vec![
                ("label", vec!["7".into(), "2".into(), "1".into()]),
                ("predicted", vec!["7".into(), "2\t".into(), "4".into()]),
            ],
            pictures: Some(Pictures {
                pixels: pixels.as_slice().into(),
                channels: 1,
                height: 2,
                width: 2,
            }),
        };
        let files: std::collections::HashMap<String, Vec<u8>> =
            projection.files().unwrap().into_iter().collect();
        let text = |name: &str| String::from_utf8(files[name].clone()).unwrap();
        assert_eq!(
            text("embeddings/tensors.tsv"),
            "1\t2.5\t-3\n0.25\t5\t6\n7\t8\t9\n"
        );
        assert_eq!(
            text("embeddings/metadata.tsv"),
            "label\tpredicted\n7\t7\n2\t2 \n1\t4\n"
        );
        let config = text(CONFIG_FILE);
        assert!(
            config.contains("tensor_name: \"05_linear_tanh\""),
            "{config}"
        );
        assert!(config.contains("single_image_dim: 2"), "{config}");
        let sprite = image::load_from_memory(&files["embeddings/sprite.png"])
            .unwrap()
            .to_luma8();
        assert_eq!(sprite.dimensions(), (4, 4));
        // Picture 1 (pixels 4..8) sits top right, picture 2 bottom left, the fourth cell black.
        assert_eq!(sprite.get_pixel(2, 0).0, [4]);
        assert_eq!(sprite.get_pixel(3, 1).0, [7]);
        assert_eq!(sprite.get_pixel(0, 2).0, [8]);
        assert_eq!(sprite.get_pixel(3, 3).0, [0]);
    }
}
