//! Training-mode BatchNorm over `[batch, channels, plane]` f32 data, forward and backward,
//! in two passes each. Burn's generic version (swap_dims + reductions + broadcasts) copies
//! the activation several times; at cnn_bn's shapes it was the largest cost of a step.
//!
//! The per-channel sums run in [`LANES`] independent f32 accumulators within a plane (a
//! single running sum is a chain of dependent additions the compiler may not reorder, so it
//! ran at one addition per four cycles), then in f64 across planes.
//!
//! Same arithmetic as Burn's `batch_norm_train`: batch mean and biased variance, which the
//! caller folds into the running statistics.

use rayon::prelude::*;

/// The shape of the data: `batch` images of `channels` planes of `plane` values each.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl Dims {
    fn per_channel(&self) -> f64 {
        (self.batch * self.plane) as f64
    }

    /// Sum of `f(values)` over every plane of channel `ch`, in f64 across planes.
    fn channel_sum(&self, ch: usize, f: impl Fn(usize) -> f32) -> f64 {
        (0..self.batch)
            .map(|b| f((b * self.channels + ch) * self.plane) as f64)
            .sum()
    }

    /// [`Self::channel_sum`] of two quantities at once.
    fn channel_sum2(&self, ch: usize, f: impl Fn(usize) -> (f32, f32)) -> (f64, f64) {
        (0..self.batch)
            .map(|b| f((b * self.channels + ch) * self.plane))
            .fold((0.0, 0.0), |(s, t), (a, b)| (s + a as f64, t + b as f64))
    }
}

/// Independent accumulators per sum: one AVX-512 register, or four SSE ones.
const LANES: usize = 16;

/// `sum(f(x))` over `x` in [`LANES`] interleaved partial sums.
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// `(sum(f(a, b).0), sum(f(a, b).1))` over two equal-length slices, as [`lane_sum`].
#[inline(always)]
fn lane_sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f32, f32) {
    let (mut s, mut t) = ([0.0f32; LANES], [0.0f32; LANES]);
    let n = a.len() / LANES * LANES;
    for (a, b) in a[..n].chunks_exact(LANES).zip(b[..n].chunks_exact(LANES)) {
        for i in 0..LANES {
            let (u, v) = f(a[i], b[i]);
            s[i] += u;
            t[i] += v;
        }
    }
    let (mut rs, mut rt) = (0.0f32, 0.0f32);
    for i in n..a.len() {
        let (u, v) = f(a[i], b[i]);
        rs += u;
        rt += v;
    }
    (s.iter().sum::<f32>() + rs, t.iter().sum::<f32>() + rt)
}

/// Returns (output, batch mean, biased batch variance); with `relu` the output is
/// `max(0, BatchNorm(x))`, saving the separate activation's pass and buffer.
pub fn forward(
    x: &[f32],
    dims: Dims,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let plane = dims.plane;
    let n = dims.per_channel();
    let stats: Vec<(f32, f32)> = (0..dims.channels)
        .into_par_iter()
        .map(|ch| {
            let mean = dims.channel_sum(ch, |at| lane_sum(&x[at..at + plane], |v| v)) / n;
            let m = mean as f32;
            let var =
                dims.channel_sum(ch, |at| lane_sum(&x[at..at + plane], |v| (v - m) * (v - m))) / n;
            (m, var as f32)
        })
        .collect();
    let (mean, var): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
    let maps = affine(gamma, beta, &mean, &var, epsilon);
    // Written once, not zeroed first. One task per image: planes can be as small as one
    // value (BatchNorm1d).
    let mut out = Vec::with_capacity(x.len());
    let image = (dims.channels * plane).max(1);
    out.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(image)
        .zip(x.par_chunks(image))
        .for_each(|(out, x)| {
            for (ch, (out, x)) in out.chunks_mut(plane).zip(x.chunks(plane)).enumerate() {
                let (s, shift) = maps[ch];
                let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
                for (o, v) in out.iter_mut().zip(x) {
                    o.write((v * s + shift).max(floor));
                }
            }
        });
    // SAFETY: `x.len()` is `batch` images of `channels` planes; the loop wrote each value
    // of each plane of each image (`x` and the output are split alike).
    unsafe { out.set_len(x.len()) };
    (out, mean, var)
}

/// The per-channel affine map forward applies: `y = x * scale + shift` (then the ReLU).
/// Backward recomputes it, with the same float operations, to find where the ReLU passed.
fn affine(gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], epsilon: f64) -> Vec<(f32, f32)> {
    (0..gamma.len())
        .map(|ch| {
            let s = gamma[ch] / (var[ch] as f64 + epsilon).sqrt() as f32;
            (s, beta[ch] - mean[ch] * s)
        })
        .collect()
}

/// Gradients of [`forward`] given the output's gradient, which `grad` holds on entry and
/// the input's gradient on return (it is not needed after: writing over it saves a buffer
/// and a memory stream); returns (gamma's, beta's) gradients. With `relu`, the gradient
/// passes where forward's output was positive, recomputed from `x` rather than read from
/// the output (another stream saved).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    relu: bool,
    grad: &mut [f32],
    dims: Dims,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>) {
    let plane = dims.plane;
    let n = dims.per_channel();
    let maps = affine(gamma, beta, mean, var, epsilon);
    // The activation's gradient, folded into every read of the output's gradient (`move`:
    // read through a reference, `relu` was a load and a branch per element).
    let pass = move |g: f32, v: f32, (s, shift): (f32, f32)| {
        let open = !relu || v * s + shift > 0.0;
        if open { g } else { 0.0 }
    };
    // Per channel: sum(dy) and sum(dy * (x - mean)).
    let dy: &[f32] = grad;
    let sums: Vec<(f64, f64)> = (0..dims.channels)
        .into_par_iter()
        .map(|ch| {
            let (m, map) = (mean[ch], maps[ch]);
            dims.channel_sum2(ch, |a| {
                let r = a..a + plane;
                lane_sum2(&dy[r.clone()], &x[r], |g, v| {
                    let g = pass(g, v, map);
                    (g, g * (v - m))
                })
            })
        })
        .collect();
    let inv_std: Vec<f64> = var
        .iter()
        .map(|v| 1.0 / (*v as f64 + epsilon).sqrt())
        .collect();
    let gamma_grad: Vec<f32> = sums
        .iter()
        .zip(&inv_std)
        .map(|((_, s), i)| (s * i) as f32)
        .collect();
    let beta_grad: Vec<f32> = sums.iter().map(|(s, _)| *s as f32).collect();
    // dx = a*dy + b*x + c per channel, from
    // dx = gamma*inv_std * (dy - mean(dy) - (x-mean) * inv_std^2 * mean(dy*(x-mean))).
    let coefficients: Vec<(f32, f32, f32)> = (0..dims.channels)
        .map(|ch| {
            let a = gamma[ch] as f64 * inv_std[ch];
            let b = -a * inv_std[ch] * inv_std[ch] * sums[ch].1 / n;
            let c = -a * sums[ch].0 / n - b * mean[ch] as f64;
            (a as f32, b as f32, c as f32)
        })
        .collect();
    let image = dims.channels * plane;
    grad.par_chunks_mut(image)
        .zip(x.par_chunks(image))
        .for_each(|(grad, x)| {
            let planes = grad.chunks_mut(plane).zip(x.chunks(plane));
            for (ch, (grad, x)) in planes.enumerate() {
                let ((a, b, c), map) = (coefficients[ch], maps[ch]);
                if relu {
                    dx_plane::<true>(grad, x, (a, b, c), map);
                } else {
                    dx_plane::<false>(grad, x, (a, b, c), map);
                }
            }
        });
    (gamma_grad, beta_grad)
}

/// `grad = a * pass(grad) + b * x + c` over one plane, with the ReLU test compiled in or out
/// so that the loop is straight-line (vectorised).
#[inline(always)]
fn dx_plane<const RELU: bool>(
    grad: &mut [f32],
    x: &[f32],
    (a, b, c): (f32, f32, f32),
    (s, shift): (f32, f32),
) {
    for (d, &v) in grad.iter_mut().zip(x) {
        let g = if !RELU || v * s + shift > 0.0 {
            *d
        } else {
            0.0
        };
        *d = a * g + b * v + c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straight from the definitions, in f64.
    fn reference(
        x: &[f32],
        dy: &[f32],
        dims: Dims,
        gamma: &[f32],
        beta: &[f32],
        relu: bool,
    ) -> [Vec<f64>; 4] {
        let eps = 1e-5;
        let n = dims.per_channel();
        let idx = |b: usize, ch: usize, p: usize| (b * dims.channels + ch) * dims.plane + p;
        let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        let (mut dg, mut db) = (vec![0.0; dims.channels], vec![0.0; dims.channels]);
        for ch in 0..dims.channels {
            let all: Vec<usize> = (0..dims.batch)
                .flat_map(|b| (0..dims.plane).map(move |p| idx(b, ch, p)))
                .collect();
            let mean = all.iter().map(|&i| x[i] as f64).sum::<f64>() / n;
            let var = all
                .iter()
                .map(|&i| (x[i] as f64 - mean).powi(2))
                .sum::<f64>()
                / n;
            let inv = 1.0 / (var + eps).sqrt();
            let xhat = |i: usize| (x[i] as f64 - mean) * inv;
            let bn = |i: usize| xhat(i) * gamma[ch] as f64 + beta[ch] as f64;
            // The gradient reaching BatchNorm's output through the optional ReLU.
            let g = |i: usize| {
                if relu && bn(i) <= 0.0 {
                    0.0
                } else {
                    dy[i] as f64
                }
            };
            db[ch] = all.iter().map(|&i| g(i)).sum();
            dg[ch] = all.iter().map(|&i| g(i) * xhat(i)).sum();
            for &i in &all {
                y[i] = if relu { bn(i).max(0.0) } else { bn(i) };
                dx[i] = gamma[ch] as f64 * inv * (g(i) - db[ch] / n - xhat(i) * dg[ch] / n);
            }
        }
        [y, dx, dg, db]
    }

    fn close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() <= tol * (1.0 + w.abs()), "{g} vs {w}");
        }
    }

    #[test]
    fn forward_and_backward_match_the_definitions() {
        let dims = Dims {
            batch: 3,
            channels: 4,
            plane: 10,
        };
        let len = dims.batch * dims.channels * dims.plane;
        // Offsets per channel make the centring matter.
        let x: Vec<f32> = (0..len)
            .map(|i| (i as f32 * 0.7).sin() * 2.0 + (i / 10 % 4) as f32)
            .collect();
        let dy: Vec<f32> = (0..len).map(|i| (i as f32 * 1.3).cos()).collect();
        let gamma = [0.5, 1.0, 1.5, -2.0];
        let beta = [0.0, 0.1, -0.3, 2.0];
        for relu in [false, true] {
            let [y, dx, dg, db] = reference(&x, &dy, dims, &gamma, &beta, relu);
            // The output is written into uninitialised memory: offer the allocator NaNs.
            drop(vec![f32::NAN; len]);
            let (out, mean, var) = forward(&x, dims, &gamma, &beta, 1e-5, relu);
            close(&out, &y, 1e-5);
            let mut gx = dy.clone();
            let (gg, gb) = backward(&x, relu, &mut gx, dims, &gamma, &beta, &mean, &var, 1e-5);
            close(&gx, &dx, 1e-4);
            close(&gg, &dg, 1e-4);
            close(&gb, &db, 1e-4);
            if relu {
                assert!(out.contains(&0.0) && out.iter().any(|v| *v > 0.0));
            }
        }
    }
}
