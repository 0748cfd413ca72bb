//! 2-D convolution (groups 1, dilation 1, any stride and symmetric padding) as im2col + gemm,
//! one image per task, forward and both backward products. Burn's flex backend computes
//! the weight gradient as a convolution with an image-sized kernel, through NHWC copies;
//! at cnn_bn's shapes that was 14 ms of a ~30 ms step.

use rayon::prelude::*;

use super::gemm::{Mat, matmul};

/// Shapes of one convolution: input `[batch, c_in, h, w]`, weight `[c_out, c_in, kh, kw]`.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    pub batch: usize,
    pub c_in: usize,
    pub input: [usize; 2],
    pub c_out: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Geometry {
    pub fn output(&self) -> [usize; 2] {
        [0, 1].map(|d| (self.input[d] + 2 * self.padding[d] - self.kernel[d]) / self.stride[d] + 1)
    }

    fn out_plane(&self) -> usize {
        let [oh, ow] = self.output();
        oh * ow
    }

    fn in_image(&self) -> usize {
        self.c_in * self.input[0] * self.input[1]
    }

    /// Rows of the im2col matrix: one per (input channel, kernel row, kernel column).
    fn patch(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }

    /// For kernel offset `k` along dimension `d`: the input index read by output `o`, if
    /// inside the image.
    fn source(&self, d: usize, o: usize, k: usize) -> Option<usize> {
        (o * self.stride[d] + k)
            .checked_sub(self.padding[d])
            .filter(|&i| i < self.input[d])
    }

    /// For kernel column `kx`: the outputs `lo..hi` of a row that read inside the image
    /// (the rest read padding), and the input column output `lo` reads.
    fn inside(&self, kx: usize) -> (usize, usize, usize) {
        let (s, p, w, ow) = (
            self.stride[1],
            self.padding[1],
            self.input[1],
            self.output()[1],
        );
        let lo = p.saturating_sub(kx).div_ceil(s).min(ow);
        let hi = if w + p > kx {
            ((w + p - kx - 1) / s + 1).min(ow)
        } else {
            0
        }
        .max(lo);
        (lo, hi, lo * s + kx - p.min(lo * s + kx))
    }

    /// `col[(c, ky, kx), (oy, ox)] = x[c, oy*s + ky - p, ox*s + kx - p]` (0 outside).
    fn im2col(&self, x: &[f32], col: &mut [f32]) {
        let [oh, ow] = self.output();
        let [h, w] = self.input;
        let [kh, kw] = self.kernel;
        let s = self.stride[1];
        for (row, col) in col.chunks_mut(oh * ow).enumerate() {
            let (c, ky, kx) = (row / (kh * kw), row / kw % kh, row % kw);
            let plane = &x[c * h * w..(c + 1) * h * w];
            let (lo, hi, first) = self.inside(kx);
            for (oy, out) in col.chunks_mut(ow).enumerate() {
                let Some(iy) = self.source(0, oy, ky) else {
                    out.fill(0.0);
                    continue;
                };
                let line = &plane[iy * w..(iy + 1) * w];
                out[..lo].fill(0.0);
                out[hi..].fill(0.0);
                if lo == hi {
                    // This kernel column reads only padding on every output of the row.
                } else if s == 1 {
                    out[lo..hi].copy_from_slice(&line[first..first + hi - lo]);
                } else {
                    for (o, v) in out[lo..hi].iter_mut().zip(line[first..].iter().step_by(s)) {
                        *o = *v;
                    }
                }
            }
        }
    }

    /// Adds `col` back into image gradient `dx` (the transpose of [`Self::im2col`]).
    fn col2im(&self, col: &[f32], dx: &mut [f32]) {
        let [oh, ow] = self.output();
        let [h, w] = self.input;
        let [kh, kw] = self.kernel;
        let s = self.stride[1];
        for (row, col) in col.chunks(oh * ow).enumerate() {
            let (c, ky, kx) = (row / (kh * kw), row / kw % kh, row % kw);
            let plane = &mut dx[c * h * w..(c + 1) * h * w];
            let (lo, hi, first) = self.inside(kx);
            for (oy, vals) in col.chunks(ow).enumerate() {
                let Some(iy) = self.source(0, oy, ky) else {
                    continue;
                };
                if lo == hi {
                    continue;
                }
                let line = &mut plane[iy * w..(iy + 1) * w];
                if s == 1 {
                    // Contiguous: a plain zip, which the compiler vectorises (step_by(1) is not).
                    let line = &mut line[first..first + hi - lo];
                    for (d, v) in line.iter_mut().zip(&vals[lo..hi]) {
                        *d += v;
                    }
                } else {
                    for (d, v) in line[first..].iter_mut().step_by(s).zip(&vals[lo..hi]) {
                        *d += v;
                    }
                }
            }
        }
    }
}

/// `[batch, c_out, oh, ow]` output of the convolution of `x` by `weight` plus `bias`.
pub fn forward(x: &[f32], weight: &[f32], bias: &[f32], g: Geometry) -> Vec<f32> {
    let (p, k) = (g.out_plane(), g.patch());
    let mut out = vec![0.0f32; g.batch * g.c_out * p];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(g.c_out * p)
        .zip(x.par_chunks(g.in_image().max(1)))
        .for_each_init(
            || vec![0.0f32; k * p],
            |col, (out, x)| {
                g.im2col(x, col);
                matmul(
                    out,
                    false,
                    Mat::new(weight, g.c_out, k),
                    Mat::new(col, k, p),
                );
                for (o, b) in out.chunks_mut(p).zip(bias) {
                    o.iter_mut().for_each(|v| *v += b);
                }
            },
        );
    out
}

/// Images whose weight gradients one task sums before the tasks' sums are added. Fixed, not
/// left to rayon's work stealing, so that the float sums (and so a whole run) come out the
/// same every time, whatever the thread count: resuming a run must reproduce it bit for bit.
const IMAGES_PER_PARTIAL_SUM: usize = 8;

/// Gradients of the weight `[c_out, c_in, kh, kw]` and bias `[c_out]` given the output's
/// gradient `dy`.
pub fn weight_backward(x: &[f32], dy: &[f32], g: Geometry) -> (Vec<f32>, Vec<f32>) {
    let (p, k) = (g.out_plane(), g.patch());
    let (dy_image, x_image) = (g.c_out * p, g.in_image().max(1));
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dy
        .par_chunks((dy_image * IMAGES_PER_PARTIAL_SUM).max(1))
        .zip(x.par_chunks(x_image * IMAGES_PER_PARTIAL_SUM))
        .map_init(
            || vec![0.0f32; k * p],
            |col, (dy, x)| {
                let (mut dw, mut db) = (vec![0.0f32; g.c_out * k], vec![0.0f32; g.c_out]);
                for (dy, x) in dy.chunks(dy_image.max(1)).zip(x.chunks(x_image)) {
                    g.im2col(x, col);
                    matmul(&mut dw, true, Mat::new(dy, g.c_out, p), Mat::t(col, p, k));
                    for (b, d) in db.iter_mut().zip(dy.chunks(p.max(1))) {
                        *b += d.iter().sum::<f32>();
                    }
                }
                (dw, db)
            },
        )
        .collect();
    let (mut dw, mut db) = (vec![0.0f32; g.c_out * k], vec![0.0f32; g.c_out]);
    for (pw, pb) in partials {
        dw.iter_mut().zip(&pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(&pb).for_each(|(a, b)| *a += b);
    }
    (dw, db)
}

/// Gradient of the input `[batch, c_in, h, w]` given the output's gradient `dy`.
pub fn input_backward(weight: &[f32], dy: &[f32], g: Geometry) -> Vec<f32> {
    let (p, k) = (g.out_plane(), g.patch());
    let mut dx = vec![0.0f32; g.batch * g.in_image()];
    if dx.is_empty() {
        return dx;
    }
    dx.par_chunks_mut(g.in_image())
        .zip(dy.par_chunks(g.c_out * p))
        .for_each_init(
            || vec![0.0f32; k * p],
            |col, (dx, dy)| {
                matmul(
                    col,
                    false,
                    Mat::t(weight, k, g.c_out),
                    Mat::new(dy, g.c_out, p),
                );
                g.col2im(col, dx);
            },
        );
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(input: [usize; 2], kernel: [usize; 2], stride: usize, padding: usize) -> Geometry {
        Geometry {
            batch: 2,
            c_in: 2,
            input,
            c_out: 3,
            kernel,
            stride: [stride; 2],
            padding: [padding, padding],
        }
    }

    /// The convolution straight from its definition.
    fn direct(x: &[f32], w: &[f32], b: &[f32], g: Geometry) -> Vec<f32> {
        let [oh, ow] = g.output();
        let [h, wd] = g.input;
        let [kh, kw] = g.kernel;
        let mut out = Vec::new();
        for n in 0..g.batch {
            for co in 0..g.c_out {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut s = b[co];
                        for c in 0..g.c_in {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let (Some(iy), Some(ix)) =
                                        (g.source(0, oy, ky), g.source(1, ox, kx))
                                    else {
                                        continue;
                                    };
                                    s += x[((n * g.c_in + c) * h + iy) * wd + ix]
                                        * w[((co * g.c_in + c) * kh + ky) * kw + kx];
                                }
                            }
                        }
                        out.push(s);
                    }
                }
            }
        }
        out
    }

    fn data(len: usize, phase: f32) -> Vec<f32> {
        (0..len).map(|i| (i as f32 * 0.61 + phase).sin()).collect()
    }

    #[test]
    fn forward_and_gradients_match_the_definition_by_finite_differences() {
        let cases = [
            geometry([5, 6], [3, 2], 1, 0),
            geometry([5, 6], [3, 2], 1, 2),
            geometry([5, 6], [3, 2], 2, 1),
            geometry([6, 7], [3, 3], 3, 1),
            // Kernel columns that see only padding: a 1-wide image, 5x5 kernel, padding 2.
            geometry([3, 1], [5, 5], 1, 2),
        ];
        for g in cases {
            let x = data(g.batch * g.in_image(), 0.0);
            let w = data(g.c_out * g.patch(), 1.0);
            let b = data(g.c_out, 2.0);
            let out = forward(&x, &w, &b, g);
            let want = direct(&x, &w, &b, g);
            assert!(out.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-4));

            // Loss = sum(out * dy): each gradient is linear, so a central difference of
            // step 1 is exact up to rounding.
            let dy = data(out.len(), 3.0);
            let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
                direct(x, w, b, g)
                    .iter()
                    .zip(&dy)
                    .map(|(o, d)| (o * d) as f64)
                    .sum()
            };
            let numeric = |v: &[f32], i: usize, f: &dyn Fn(&[f32]) -> f64| {
                let (mut up, mut down) = (v.to_vec(), v.to_vec());
                up[i] += 1.0;
                down[i] -= 1.0;
                (f(&up) - f(&down)) / 2.0
            };
            let (dw, db) = weight_backward(&x, &dy, g);
            let dx = input_backward(&w, &dy, g);
            assert_eq!((dw.len(), db.len(), dx.len()), (w.len(), b.len(), x.len()));
            for (i, got) in dw.iter().enumerate() {
                let n = numeric(&w, i, &|w| loss(&x, w, &b));
                assert!((*got as f64 - n).abs() < 1e-3, "dw[{i}] {got} vs {n}");
            }
            for (i, got) in db.iter().enumerate() {
                let n = numeric(&b, i, &|b| loss(&x, &w, b));
                assert!((*got as f64 - n).abs() < 1e-3, "db[{i}] {got} vs {n}");
            }
            for (i, got) in dx.iter().enumerate() {
                let n = numeric(&x, i, &|x| loss(x, &w, &b));
                assert!((*got as f64 - n).abs() < 1e-3, "dx[{i}] {got} vs {n}");
            }
        }
    }
}
