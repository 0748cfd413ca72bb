//! A user's picture of a digit -> the 28x28 input an MNIST network expects, made the way
//! MNIST itself was: the digit's bounding box scaled to fit 20x20 (aspect kept, anti-aliased),
//! placed in a 28x28 field so that its centre of mass is at the centre. The MNIST training
//! images' mean centre of mass, measured, is (14.0, 14.0) in pixel indices, so that is where
//! it goes.

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Luma};

/// MNIST's side and the box its digits were scaled into.
pub const SIDE: usize = 28;
const BOX: f32 = 20.0;
/// Values above this share of the stroke's range count as ink for the bounding box.
const INK: f32 = 0.1;

type Gray = ImageBuffer<Luma<f32>, Vec<f32>>;

/// What preprocessing did to one picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Framed {
    /// `SIDE * SIDE` values in [0, 255]: ink bright on black, as MNIST's pixels.
    pub pixels: Vec<f32>,
    /// The picture was dark ink on a light background and was inverted.
    pub inverted: bool,
}

/// The largest picture `runner predict` decodes unless told otherwise (`--max-pixels`).
pub use crate::data::picture::MAX_PIXELS;

/// Frames `picture` as an MNIST digit; `None` when it holds no ink at all (a blank image).
pub fn frame(picture: &DynamicImage) -> Option<Framed> {
    // Transparent pixels are paper: composite over white before reading the grey level.
    let rgba = picture.to_luma_alpha32f();
    let (w, h) = rgba.dimensions();
    let mut gray: Gray = ImageBuffer::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        Luma([p[0] * p[1] + (1.0 - p[1])])
    });
    // The background is what the border mostly is; a light one means dark ink: invert.
    let background = median(border(&gray));
    let inverted = background > 0.5;
    if inverted {
        gray.pixels_mut().for_each(|p| p.0[0] = 1.0 - p.0[0]);
    }
    // Stretch so the background is 0 and the strongest ink 1 (grey paper, faint pencil).
    let floor = if inverted {
        1.0 - background
    } else {
        background
    };
    let peak = gray.pixels().map(|p| p.0[0]).fold(0.0f32, f32::max);
    if peak - floor < 1e-3 {
        return None;
    }
    gray.pixels_mut()
        .for_each(|p| p.0[0] = ((p.0[0] - floor) / (peak - floor)).clamp(0.0, 1.0));

    let (x0, y0, x1, y1) = bounding_box(&gray)?;
    let crop = imageops::crop_imm(&gray, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image();
    let (cw, ch) = crop.dimensions();
    let scale = BOX / cw.max(ch) as f32;
    let (nw, nh) = (
        ((cw as f32 * scale).round() as u32).clamp(1, BOX as u32),
        ((ch as f32 * scale).round() as u32).clamp(1, BOX as u32),
    );
    let digit = imageops::resize(&crop, nw, nh, FilterType::Triangle);

    // Centre of mass of the scaled digit, then the offset that puts it at (14, 14).
    let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y, p) in digit.enumerate_pixels() {
        let v = p.0[0].max(0.0) as f64;
        mass += v;
        mx += v * x as f64;
        my += v * y as f64;
    }
    if mass <= 0.0 {
        return None;
    }
    let centre = SIDE as f64 / 2.0;
    let left = (centre - mx / mass).round() as i64;
    let top = (centre - my / mass).round() as i64;
    let mut pixels = vec![0.0f32; SIDE * SIDE];
    for (x, y, p) in digit.enumerate_pixels() {
        let (tx, ty) = (x as i64 + left, y as i64 + top);
        if (0..SIDE as i64).contains(&tx) && (0..SIDE as i64).contains(&ty) {
            pixels[ty as usize * SIDE + tx as usize] = p.0[0].clamp(0.0, 1.0) * 255.0;
        }
    }
    Some(Framed { pixels, inverted })
}

fn border(gray: &Gray) -> Vec<f32> {
    let (w, h) = gray.dimensions();
    let mut out = Vec::with_capacity(2 * (w + h) as usize);
    for x in 0..w {
        out.push(gray.get_pixel(x, 0).0[0]);
        out.push(gray.get_pixel(x, h - 1).0[0]);
    }
    for y in 0..h {
        out.push(gray.get_pixel(0, y).0[0]);
        out.push(gray.get_pixel(w - 1, y).0[0]);
    }
    out
}

fn median(mut values: Vec<f32>) -> f32 {
    values.sort_by(f32::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The smallest box (inclusive corners) holding every value above [`INK`].
fn bounding_box(gray: &Gray) -> Option<(u32, u32, u32, u32)> {
    let mut found: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in gray.enumerate_pixels() {
        if p.0[0] > INK {
            found = Some(match found {
                None => (x, y, x, y),
                Some((a, b, c, d)) => (a.min(x), b.min(y), c.max(x), d.max(y)),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A thick dark "1" on white paper, off-centre in a large RGB picture.
    fn dark_bar_on_paper() -> DynamicImage {
        let img = RgbImage::from_fn(300, 200, |x, y| {
            if (40..60).contains(&x) && (30..170).contains(&y) {
                Rgb([10, 10, 10])
            } else {
                Rgb([245, 245, 240])
            }
        });
        DynamicImage::ImageRgb8(img)
    }

    #[test]
    fn a_dark_digit_on_paper_is_inverted_scaled_to_20_and_centred_by_mass() {
        let framed = frame(&dark_bar_on_paper()).unwrap();
        assert!(framed.inverted);
        let p = &framed.pixels;
        let rows: Vec<usize> = (0..SIDE)
            .filter(|&y| (0..SIDE).any(|x| p[y * SIDE + x] > 25.0))
            .collect();
        assert_eq!(
            rows.len(),
            20,
            "the tall side is scaled to 20 rows: {rows:?}"
        );
        let (mut m, mut mx, mut my) = (0.0, 0.0, 0.0);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let v = p[y * SIDE + x] as f64;
                m += v;
                mx += v * x as f64;
                my += v * y as f64;
            }
        }
        assert!((mx / m - 14.0).abs() <= 0.5 && (my / m - 14.0).abs() <= 0.5);
        assert!(p.iter().all(|v| (0.0..=255.0).contains(v)));
        assert_eq!(p[0], 0.0, "the background becomes black");
    }

    #[test]
    fn a_blank_picture_has_no_digit() {
        let blank = DynamicImage::ImageRgb8(RgbImage::from_pixel(50, 50, Rgb([255, 255, 255])));
        assert_eq!(frame(&blank), None);
    }
}
