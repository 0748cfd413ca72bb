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
    let mut out = vec![0.0f32; x.len() / (h * w) * oh * ow];
    if oh * ow == 0 {
        return out;
    }
    out.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(h * w))
        .for_each(|(out, x)| {
            for (oy, row) in out.chunks_mut(ow).enumerate() {
                let (top, bottom) = (&x[2 * oy * w..], &x[(2 * oy + 1) * w..]);
                for (ox, o) in row.iter_mut().enumerate() {
                    let i = 2 * ox;
                    *o = top[i].max(top[i + 1]).max(bottom[i].max(bottom[i + 1]));
                }
            }
        });
    out
}

/// Gradient of [`forward`] with respect to `x`: each output's gradient goes to the first
/// maximum of its window (row-major), as PyTorch's and Burn's kernels choose.
pub fn backward(x: &[f32], dy: &[f32], [h, w]: [usize; 2]) -> Vec<f32> {
    let [oh, ow] = output_size([h, w]);
    let mut dx = vec![0.0f32; x.len()];
    if oh * ow == 0 {
        return dx;
    }
    dx.par_chunks_mut(h * w)
        .zip(x.par_chunks(h * w).zip(dy.par_chunks(oh * ow)))
        .for_each(|(dx, (x, dy))| {
            for (oy, dy) in dy.chunks(ow).enumerate() {
                let (top, bottom) = (&x[2 * oy * w..][..2 * ow], &x[(2 * oy + 1) * w..][..2 * ow]);
                let (dtop, dbottom) = dx[2 * oy * w..(2 * oy + 2) * w].split_at_mut(w);
                for (ox, &g) in dy.iter().enumerate() {
                    let i = 2 * ox;
                    let (a, b, c, d) = (top[i], top[i + 1], bottom[i], bottom[i + 1]);
                    let m = a.max(b).max(c.max(d));
                    // Every position of the window is written, the first maximum gets g.
                    let (ta, tb, tc) = (a == m, b == m, c == m);
                    dtop[i] = if ta { g } else { 0.0 };
                    dtop[i + 1] = if tb && !ta { g } else { 0.0 };
                    dbottom[i] = if tc && !ta && !tb { g } else { 0.0 };
                    dbottom[i + 1] = if !(ta || tb || tc) { g } else { 0.0 };
                }
            }
        });
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
}
