//! 2x2 max-pooling with stride 2 over `[planes, height, width]` f32 data (odd edges dropped,
//! as with Burn's and PyTorch's default floor mode). Burn's flex pooling goes through a
//! general 3-D kernel with i64 indices; this is the shape nearly every MNIST CNN uses.

use rayon::prelude::*;

/// Output plane size for an input plane `[h, w]`.
pub fn output_size([h, w]: [usize; 2]) -> [usize; 2] {
    [h / 2, w / 2]
}

pub fn forward(x: &[f32], [h, w]: [usize; 2]) -> Vec<f32> {
    let [oh, ow] = output_size([h, w]);
    let len = x.len() / (h * w) * oh * ow;
    // Written once, not zeroed first: every output is a window's maximum.
    let mut out = Vec::with_capacity(len);
    if oh * ow > 0 {
        out.spare_capacity_mut()[..len]
            .par_chunks_mut(oh * ow)
            .zip(x.par_chunks(h * w))
            .for_each(|(out, x)| {
                for (oy, row) in out.chunks_mut(ow).enumerate() {
                    let (top, bottom) = (&x[2 * oy * w..], &x[(2 * oy + 1) * w..]);
                    for (ox, o) in row.iter_mut().enumerate() {
                        let i = 2 * ox;
                        o.write(top[i].max(top[i + 1]).max(bottom[i].max(bottom[i + 1])));
                    }
                }
            });
    }
    // SAFETY: each output plane is `oh` rows of `ow` values and the loop wrote every one
    // (or `len` is 0).
    unsafe { out.set_len(len) };
    out
}

/// Gradient of [`forward`] with respect to `x`: each output's gradient goes to the first
/// maximum of its window (row-major), as PyTorch's and Burn's kernels choose.
pub fn backward(x: &[f32], dy: &[f32], [h, w]: [usize; 2]) -> Vec<f32> {
    let [oh, ow] = output_size([h, w]);
    // Written once, not zeroed first (the buffer is as large as the layer's input): each
    // window's four positions, then the odd last column and row that no window covers.
    if oh * ow == 0 {
        return vec![0.0; x.len()]; // no window: no gradient reaches the input
    }
    // Checked, not assumed: the writes below cover `x` only if `dy` has one value per window.
    assert!(
        x.len().is_multiple_of(h * w) && dy.len() == x.len() / (h * w) * oh * ow,
        "max_pool::backward: {} inputs and {} gradients do not fit {h}x{w} planes",
        x.len(),
        dy.len()
    );
    let mut dx = Vec::with_capacity(x.len());
    dx.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(h * w)
        .zip(x.par_chunks(h * w).zip(dy.par_chunks(oh * ow)))
        .for_each(|(dx, (x, dy))| {
            for oy in 0..oh {
                let dy = &dy[oy * ow..][..ow];
                let (top, bottom) = (&x[2 * oy * w..][..2 * ow], &x[(2 * oy + 1) * w..][..2 * ow]);
                let (dtop, dbottom) = dx[2 * oy * w..(2 * oy + 2) * w].split_at_mut(w);
                for (ox, &g) in dy.iter().enumerate() {
                    let i = 2 * ox;
                    let (a, b, c, d) = (top[i], top[i + 1], bottom[i], bottom[i + 1]);
                    let m = a.max(b).max(c.max(d));
                    // The first maximum of the window gets g, the other positions 0.
                    let (ta, tb, tc) = (a == m, b == m, c == m);
                    dtop[i].write(if ta { g } else { 0.0 });
                    dtop[i + 1].write(if tb && !ta { g } else { 0.0 });
                    dbottom[i].write(if tc && !ta && !tb { g } else { 0.0 });
                    dbottom[i + 1].write(if !(ta || tb || tc) { g } else { 0.0 });
                }
                for edge in dtop[2 * ow..].iter_mut().chain(&mut dbottom[2 * ow..]) {
                    edge.write(0.0);
                }
            }
            for edge in &mut dx[2 * oh * w..] {
                edge.write(0.0);
            }
        });
    // SAFETY: every plane's rows 0..2*oh were written window by window plus their columns
    // from 2*ow, and rows from 2*oh whole: all `h * w` values of each of the planes.
    unsafe { dx.set_len(x.len()) };
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_windows_drops_odd_edges_and_routes_gradients_to_the_first_maximum() {
        // One 3x5 plane: the last row and column are outside every window.
        #[rustfmt::skip]
        let x = [
            1.0, 5.0, 2.0, 2.0, 9.0,
            3.0, 4.0, 2.0, 0.0, 9.0,
            9.0, 9.0, 9.0, 9.0, 9.0,
        ];
        assert_eq!(forward(&x, [3, 5]), vec![5.0, 2.0]);
        // The second window ties (2, 2, 2, 0): its gradient goes to the first 2.
        #[rustfmt::skip]
        let want = [
            0.0, 10.0, 20.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(backward(&x, &[10.0, 20.0], [3, 5]), want);
    }

    /// Outputs are written into uninitialised memory: after the allocator has been handed
    /// buffers of NaN to reuse, every value must still be the zero-initialised reference's.
    #[test]
    fn every_value_is_written_for_odd_and_even_planes() {
        for [h, w] in [[5, 7], [4, 4], [1, 3], [6, 3]] {
            let planes = 3;
            let x: Vec<f32> = (0..planes * h * w)
                .map(|i| ((i * 7919) % 13) as f32)
                .collect();
            let [oh, ow] = output_size([h, w]);
            let dy: Vec<f32> = (0..planes * oh * ow).map(|i| i as f32 + 1.0).collect();
            let mut want = vec![0.0f32; x.len()];
            let mut pooled = Vec::new();
            for p in 0..planes {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let at = |dy_, dx_| p * h * w + (2 * oy + dy_) * w + 2 * ox + dx_;
                        let window = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                        let m = window.iter().map(|&i| x[i]).fold(f32::MIN, f32::max);
                        let first = window.into_iter().find(|&i| x[i] == m).unwrap();
                        want[first] = dy[(p * oh + oy) * ow + ox];
                        pooled.push(m);
                    }
                }
            }
            for _ in 0..2 {
                drop(vec![f32::NAN; x.len()]);
                drop(vec![f32::NAN; pooled.len()]);
                assert_eq!(forward(&x, [h, w]), pooled, "{h}x{w}");
                drop(vec![f32::NAN; x.len()]);
                assert_eq!(backward(&x, &dy, [h, w]), want, "{h}x{w}");
            }
        }
    }
}
