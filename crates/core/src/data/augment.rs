//! `[data.augment]`: random transforms of training batches, made as the batch is gathered.
//!
//! Per picture, on its raw bytes: random crop (zero padding), horizontal flip, rotation and
//! translation (one nearest-pixel affine map, zero fill); then normalisation; then cutout (a
//! square set to 0 in normalised values, the dataset's mean, as in DeVries & Taylor). Per
//! batch, on the normalised values: mixup or cutmix (one of the two, even odds, when both are
//! set) with a shuffled copy of the batch. Every draw comes from one generator seeded by
//! (seed, global step), so a resumed run draws exactly what the uninterrupted one did.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution};

use super::PixelNorm;
use crate::config::Augment;
use crate::error::{Error, Result};

/// The second labels of a mixed batch and the weight of the first: the loss is
/// `lambda * loss(y) + (1 - lambda) * loss(y_b)`, for cross-entropy the loss on the soft target
/// `lambda * one_hot(y) + (1 - lambda) * one_hot(y_b)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// Row `i` was mixed with row `partner[i]` of the batch.
    pub partner: Vec<usize>,
    pub lambda: f64,
}

/// `[data.augment]` for pictures of one shape, checked against it.
#[derive(Debug, Clone)]
pub struct Augmenter {
    spec: Augment,
    channels: usize,
    height: usize,
    width: usize,
    seed: u64,
}

impl Augmenter {
    /// `Err` (a config error) when the transforms cannot apply to pictures of `shape`.
    pub fn new(spec: &Augment, shape: &[usize], seed: u64) -> Result<Self> {
        let &[channels, height, width] = shape else {
            return Err(Error::Config(format!(
                "[data.augment] applies to pictures [channels, height, width]; this dataset's examples are {shape:?}"
            )));
        };
        if let Some(crop) = spec.random_crop {
            let [h, w] = crop.size.0;
            let p = crop.padding;
            if h > height + 2 * p || w > width + 2 * p {
                return Err(Error::Config(format!(
                    "key `data.augment.random_crop.size` = [{h}, {w}] is larger than the padded pictures ([{}, {}] with padding {p}); lower size or raise padding",
                    height + 2 * p,
                    width + 2 * p
                )));
            }
            if [h, w] != [height, width] {
                return Err(Error::Config(format!(
                    "key `data.augment.random_crop.size` = [{h}, {w}] must be the pictures' size [{height}, {width}]: kiln keeps training and test pictures one shape (use [data] image_size to make pictures smaller)"
                )));
            }
        }
        if let Some(cutout) = spec.cutout.filter(|c| c.size > height.max(width)) {
            return Err(Error::Config(format!(
                "key `data.augment.cutout.size` = {} is larger than the pictures ({height}x{width})",
                cutout.size
            )));
        }
        Ok(Augmenter {
            spec: spec.clone(),
            channels,
            height,
            width,
            seed,
        })
    }

    /// The generator of the batch of `global_step`.
    fn generator(&self, global_step: usize) -> SmallRng {
        let stream =
            self.seed ^ 0x0a06_3e47 ^ (global_step as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        SmallRng::seed_from_u64(stream)
    }

    /// Appends the normalised, transformed `rows` (each one picture's raw bytes) to `out`;
    /// the batch-level mix, when one was drawn.
    pub fn batch<'a>(
        &self,
        rows: impl ExactSizeIterator<Item = &'a [u8]>,
        norm: &PixelNorm,
        global_step: usize,
        out: &mut Vec<f32>,
    ) -> Option<Mix> {
        let mut rng = self.generator(global_step);
        let count = rows.len();
        let per = self.channels * self.height * self.width;
        let mut scratch = vec![0u8; per];
        let mut moved = vec![0u8; per];
        let start = out.len();
        for row in rows {
            scratch.copy_from_slice(row);
            self.geometric(&mut rng, &mut scratch, &mut moved);
            let at = out.len();
            norm.extend(out, &scratch, 0);
            if let Some(cutout) = self.spec.cutout {
                self.cut(&mut rng, &mut out[at..], cutout.size);
            }
        }
        self.mix(&mut rng, &mut out[start..], count)
    }

    /// Crop, flip, rotation and translation of one picture's bytes, in place.
    fn geometric(&self, rng: &mut SmallRng, picture: &mut [u8], moved: &mut [u8]) {
        let (h, w) = (self.height as i64, self.width as i64);
        // Where output pixel (y, x) comes from: (y + dy, x + dx) after an optional flip.
        let (mut dy, mut dx) = (0i64, 0i64);
        if let Some(crop) = self.spec.random_crop {
            let p = crop.padding as i64;
            dy = rng.random_range(0..=2 * p) - p;
            dx = rng.random_range(0..=2 * p) - p;
        }
        let flip = self
            .spec
            .horizontal_flip
            .is_some_and(|c| rng.random_bool(c.probability().clamp(0.0, 1.0)));
        let angle = self
            .spec
            .rotation
            .filter(|&d| d > 0.0)
            .map_or(0.0, |d| rng.random_range(-d..=d).to_radians());
        let (ty, tx) = match self.spec.translate.filter(|&t| t > 0.0) {
            Some(t) => {
                let (my, mx) = ((t * h as f64).round(), (t * w as f64).round());
                (
                    rng.random_range(-my..=my).round(),
                    rng.random_range(-mx..=mx).round(),
                )
            }
            None => (0.0, 0.0),
        };
        if (dy, dx, flip, angle, ty, tx) == (0, 0, false, 0.0, 0.0, 0.0) {
            return;
        }
        let (sin, cos) = angle.sin_cos();
        let (cy, cx) = ((h - 1) as f64 / 2.0, (w - 1) as f64 / 2.0);
        let plane = (h * w) as usize;
        for y in 0..h {
            for x in 0..w {
                // The inverse of rotate-then-translate about the centre, nearest pixel.
                let (fy, fx) = (y as f64 - cy - ty, x as f64 - cx - tx);
                let sy = (cos * fy - sin * fx + cy).round() as i64 + dy;
                let mut sx = (sin * fy + cos * fx + cx).round() as i64 + dx;
                if flip {
                    sx = w - 1 - sx;
                }
                let inside = (0..h).contains(&sy) && (0..w).contains(&sx);
                let to = (y * w + x) as usize;
                let from = (sy * w + sx) as usize;
                for c in 0..self.channels {
                    moved[c * plane + to] = if inside { picture[c * plane + from] } else { 0 };
                }
            }
        }
        picture.copy_from_slice(moved);
    }

    /// Sets a `size` square at a random centre (clipped at the edges) to 0 in every channel.
    fn cut(&self, rng: &mut SmallRng, values: &mut [f32], size: usize) {
        let (h, w) = (self.height, self.width);
        let (cy, cx) = (rng.random_range(0..h), rng.random_range(0..w));
        let (y0, x0) = (cy.saturating_sub(size / 2), cx.saturating_sub(size / 2));
        let (y1, x1) = (
            (cy + size.div_ceil(2)).min(h),
            (cx + size.div_ceil(2)).min(w),
        );
        for c in 0..self.channels {
            for y in y0..y1 {
                let row = c * h * w + y * w;
                values[row + x0..row + x1].fill(0.0);
            }
        }
    }

    /// Mixup or cutmix of the normalised batch `values` (`count` pictures) with a shuffled
    /// copy of itself, when either is set.
    fn mix(&self, rng: &mut SmallRng, values: &mut [f32], count: usize) -> Option<Mix> {
        let (mixup, cutmix) = (self.spec.mixup, self.spec.cutmix);
        let (alpha, cut) = match (mixup, cutmix) {
            (None, None) => return None,
            (Some(a), None) => (a, false),
            (None, Some(a)) => (a, true),
            (Some(a), Some(b)) => match rng.random_bool(0.5) {
                true => (b, true),
                false => (a, false),
            },
        };
        let mut lambda = Beta::new(alpha, alpha).map_or(1.0, |b| b.sample(rng));
        let mut partner: Vec<usize> = (0..count).collect();
        partner.shuffle(rng);
        let original = values.to_vec();
        let per = values.len() / count.max(1);
        if cut {
            let (h, w) = (self.height, self.width);
            let r = (1.0 - lambda).sqrt();
            let (bh, bw) = ((h as f64 * r) as usize, (w as f64 * r) as usize);
            let (cy, cx) = (rng.random_range(0..h), rng.random_range(0..w));
            let (y0, x0) = (cy.saturating_sub(bh / 2), cx.saturating_sub(bw / 2));
            let (y1, x1) = ((cy + bh.div_ceil(2)).min(h), (cx + bw.div_ceil(2)).min(w));
            for (i, &j) in partner.iter().enumerate() {
                for c in 0..self.channels {
                    for y in y0..y1 {
                        let row = c * h * w + y * w;
                        let (to, from) = (i * per + row, j * per + row);
                        values[to + x0..to + x1].copy_from_slice(&original[from + x0..from + x1]);
                    }
                }
            }
            // The weight is the share of the picture that stayed, after clipping.
            lambda = 1.0 - ((y1 - y0) * (x1 - x0)) as f64 / (h * w) as f64;
        } else {
            let (a, b) = (lambda as f32, (1.0 - lambda) as f32);
            for (i, &j) in partner.iter().enumerate() {
                let mine = &mut values[i * per..(i + 1) * per];
                for (v, &o) in mine.iter_mut().zip(&original[j * per..(j + 1) * per]) {
                    *v = a * *v + b * o;
                }
            }
        }
        Some(Mix { partner, lambda })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Chance, Cutout, Normalize, RandomCrop};
    use crate::layers::Size2;

    /// What normalisation makes of a byte (the default `[data] normalize`).
    fn scaled(v: &u8) -> f32 {
        super::super::Affine::of(&Normalize::default(), 0).apply(*v as f32)
    }

    fn picture(channels: usize, h: usize, w: usize) -> Vec<u8> {
        (0..channels * h * w).map(|i| (i % 250 + 1) as u8).collect()
    }

    fn run(
        spec: Augment,
        rows: &[Vec<u8>],
        step: usize,
        shape: [usize; 3],
    ) -> (Vec<f32>, Option<Mix>) {
        let a = Augmenter::new(&spec, &shape, 9).unwrap();
        let norm = PixelNorm::new(&Normalize::default(), shape[0], shape[1] * shape[2]);
        let mut out = Vec::new();
        let mix = a.batch(rows.iter().map(|r| r.as_slice()), &norm, step, &mut out);
        (out, mix)
    }

    #[test]
    fn nothing_set_is_plain_normalisation() {
        let rows = vec![picture(3, 4, 5)];
        let (out, mix) = run(Augment::default(), &rows, 1, [3, 4, 5]);
        assert!(mix.is_none());
        let want: Vec<f32> = rows[0].iter().map(scaled).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn a_certain_flip_mirrors_every_row_and_draws_are_seeded_by_step() {
        let rows = vec![picture(2, 3, 4)];
        let spec = Augment {
            horizontal_flip: Some(Chance::Probability(1.0)),
            ..Augment::default()
        };
        let (out, _) = run(spec, &rows, 1, [2, 3, 4]);
        for row in 0..6 {
            let got: Vec<f32> = out[row * 4..row * 4 + 4].to_vec();
            let mut want: Vec<f32> = rows[0][row * 4..row * 4 + 4].iter().map(scaled).collect();
            want.reverse();
            assert_eq!(got, want);
        }
        let spec = Augment {
            random_crop: Some(RandomCrop {
                size: Size2([8, 8]),
                padding: 2,
            }),
            rotation: Some(20.0),
            cutout: Some(Cutout { size: 3 }),
            mixup: Some(0.4),
            cutmix: Some(1.0),
            ..Augment::default()
        };
        let rows: Vec<Vec<u8>> = (0..4)
            .map(|k| picture(1, 8, 8).iter().map(|v| v / 2 + k * 10).collect())
            .collect();
        let a = run(spec.clone(), &rows, 7, [1, 8, 8]);
        assert_eq!(
            a,
            run(spec.clone(), &rows, 7, [1, 8, 8]),
            "same step, same draws"
        );
        assert_ne!(
            a.0,
            run(spec, &rows, 8, [1, 8, 8]).0,
            "another step, other draws"
        );
        let mix = a.1.unwrap();
        assert!((0.0..=1.0).contains(&mix.lambda));
        let mut sorted = mix.partner.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3]);
    }

    /// A crop window shifted by the padding reads zeros beyond the edge: over many draws some
    /// pictures start with a zero column or row, and the values are the picture's otherwise.
    #[test]
    fn a_padded_crop_shifts_the_picture_and_fills_with_zeros() {
        let rows = vec![picture(1, 6, 6); 64];
        let spec = Augment {
            random_crop: Some(RandomCrop {
                size: Size2([6, 6]),
                padding: 2,
            }),
            ..Augment::default()
        };
        let (out, _) = run(spec, &rows, 3, [1, 6, 6]);
        let zeros = out.chunks(36).filter(|p| p[0] == 0.0).count();
        assert!(zeros > 10 && zeros < 64, "{zeros} of 64 start with padding");
        assert!(out.chunks(36).any(|p| p[7] == scaled(&rows[0][7])));
    }

    #[test]
    fn impossible_crops_and_cutouts_are_config_errors() {
        let spec = |size, padding| Augment {
            random_crop: Some(RandomCrop {
                size: Size2([size, size]),
                padding,
            }),
            ..Augment::default()
        };
        let err = Augmenter::new(&spec(40, 2), &[3, 32, 32], 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("larger than the padded pictures ([36, 36]"),
            "{err}"
        );
        let err = Augmenter::new(&spec(24, 2), &[3, 32, 32], 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be the pictures' size [32, 32]"), "{err}");
        let err = Augmenter::new(&Augment::default(), &[784], 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[784]"), "{err}");
    }
}
