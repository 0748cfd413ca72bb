//! Pictures from files: decoding within a pixel budget (`runner predict`, image folders) and
//! bringing one to a network's input size and channels.

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Pixel};

/// The largest picture kiln decodes unless told otherwise (`--max-pixels`): a 64-megapixel
/// photo, about 0.8 GB while it is framed.
pub const MAX_PIXELS: u64 = 64_000_000;

/// Decodes a PNG, JPEG, BMP or GIF (its first frame) picture of at most `max_pixels` pixels.
/// The size is read from the header before anything is decoded, so a small file that claims
/// a huge picture costs nothing; `Err` completes "the image X ...".
pub fn decode(
    reader: impl std::io::BufRead + std::io::Seek,
    max_pixels: u64,
) -> Result<DynamicImage, String> {
    const SUPPORTED: &str = "PNG, JPEG, BMP and GIF are supported";
    let reader = image::ImageReader::new(reader)
        .with_guessed_format()
        .map_err(|e| format!("cannot be read ({e})"))?;
    if reader.format().is_none() {
        return Err(format!("is not a picture kiln reads ({SUPPORTED})"));
    }
    let mut limits = image::Limits::default();
    // Beyond the pixels themselves: the decoder's own buffers, and 16 bytes a pixel for
    // the widest layout it may produce (RGBA of 32-bit floats).
    limits.max_alloc = Some(max_pixels.saturating_mul(16).saturating_add(64 << 20));
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("cannot be decoded ({e}); {SUPPORTED}"))?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(format!(
            "is {w}x{h} pixels, more than the {max_pixels} kiln decodes; scale it down, or raise --max-pixels"
        ));
    }
    image::ImageDecoder::set_limits(&mut decoder, limits)
        .map_err(|e| format!("cannot be decoded within its size limit ({e})"))?;
    DynamicImage::from_decoder(decoder).map_err(|e| format!("cannot be decoded ({e}); {SUPPORTED}"))
}

/// The picture in the file at `path` (a regular file), decoded within `max_pixels`; the error
/// names the file. What image folders and `runner predict` read pictures with.
pub fn read(path: &std::path::Path, max_pixels: u64) -> crate::error::Result<DynamicImage> {
    use crate::error::Error;
    let (file, _) = crate::files::open_regular(path)
        .map_err(|e| Error::Data(format!("cannot open the image {} ({e})", path.display())))?;
    decode(std::io::BufReader::new(file), max_pixels)
        .map_err(|why| Error::Data(format!("the image {} {why}", path.display())))
}

/// `picture` as `channels` planes (1: grey, 3: red, green, blue; alpha dropped) of
/// `height x width` bytes: scaled so that it covers that size with its aspect kept (bilinear,
/// anti-aliased when shrinking), then its centre cut out. That is torchvision's
/// `Resize(min(height, width))` + `CenterCrop((height, width))` for a square target.
pub fn fit(picture: &DynamicImage, channels: usize, [height, width]: [usize; 2]) -> Vec<u8> {
    match channels {
        1 => planes(&picture.to_luma8(), height, width),
        _ => planes(&picture.to_rgb8(), height, width),
    }
}

fn planes<P: Pixel<Subpixel = u8> + 'static>(
    image: &ImageBuffer<P, Vec<u8>>,
    height: usize,
    width: usize,
) -> Vec<u8> {
    let (h, w) = (height as u32, width as u32);
    let (iw, ih) = image.dimensions();
    let covered;
    let image = if (iw, ih) == (w, h) {
        image
    } else {
        // The smallest scale at which both sides cover the target.
        let scale = (f64::from(w) / f64::from(iw)).max(f64::from(h) / f64::from(ih));
        let sw = ((f64::from(iw) * scale).round() as u32).max(w);
        let sh = ((f64::from(ih) * scale).round() as u32).max(h);
        let (left, top) = ((sw - w) / 2, (sh - h) / 2);
        covered = if (sw, sh) == (iw, ih) {
            imageops::crop_imm(image, left, top, w, h).to_image()
        } else {
            let scaled = imageops::resize(image, sw, sh, FilterType::Triangle);
            imageops::crop_imm(&scaled, left, top, w, h).to_image()
        };
        &covered
    };
    let channels = P::CHANNEL_COUNT as usize;
    let plane = height * width;
    let mut out = vec![0u8; channels * plane];
    for (i, pixel) in image.pixels().enumerate() {
        for (c, &v) in pixel.channels().iter().enumerate() {
            out[c * plane + i] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A 4x2 picture brought to 2x2 keeps its middle (the left and right columns are cut),
    /// and RGB comes out as three planes.
    #[test]
    fn fit_covers_then_cuts_the_centre_into_planes() {
        let picture = RgbImage::from_fn(4, 2, |x, _| Rgb([x as u8 * 10, 100, 200]));
        let out = fit(&DynamicImage::ImageRgb8(picture.clone()), 3, [2, 2]);
        assert_eq!(
            out,
            vec![10, 20, 10, 20, 100, 100, 100, 100, 200, 200, 200, 200]
        );
        // Same size: the pixels as they are; grey from RGB.
        let grey = fit(&DynamicImage::ImageRgb8(picture), 1, [2, 4]);
        assert_eq!(grey.len(), 8);
        // Upscaling a 2x2 to 6x3 (height 3, width 6) covers, then crops.
        let small = RgbImage::from_pixel(2, 2, Rgb([7, 8, 9]));
        let out = fit(&DynamicImage::ImageRgb8(small), 3, [3, 6]);
        assert_eq!(out.len(), 3 * 18);
        assert!(out[..18].iter().all(|&v| v == 7) && out[36..].iter().all(|&v| v == 9));
    }
}
