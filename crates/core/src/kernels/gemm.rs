//! A bounds-checked front for the `gemm` crate (the matrix kernels burn-flex itself uses).

/// A row-major matrix view, or the transpose of one.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    /// Read `data` (stored `cols x rows`, row-major) as its transpose.
    pub transposed: bool,
}

impl<'a> Mat<'a> {
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The `rows x cols` transpose of `data`, which is stored `cols x rows`.
    pub fn t(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            transposed: true,
        }
    }

    /// (column stride, row stride) in elements.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (self.rows as isize, 1)
        } else {
            (1, self.cols as isize)
        }
    }
}

/// `dst = lhs @ rhs`, or `dst += lhs @ rhs` when `accumulate`; `dst` is row-major
/// `lhs.rows x rhs.cols`. Single-threaded: callers parallelise over images.
pub fn matmul(dst: &mut [f32], accumulate: bool, lhs: Mat, rhs: Mat) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "matmul: inner dimensions differ");
    assert!(dst.len() >= m * n && lhs.data.len() >= m * k && rhs.data.len() >= k * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let (lhs_cs, lhs_rs) = lhs.strides();
    let (rhs_cs, rhs_rs) = rhs.strides();
    // SAFETY: the asserts above bound every index gemm touches: dst is m x n with strides
    // (1, n), lhs m x k and rhs k x n with the strides of their (possibly transposed)
    // row-major storage, all inside their slices. dst is a unique borrow, so it aliases
    // neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.data.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn matches_a_naive_product_plain_transposed_and_accumulated() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut got = vec![0.0; m * n];
        matmul(&mut got, false, Mat::new(&a, m, k), Mat::new(&b, k, n));
        assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-5));

        // a^T stored k x m, read as m x k.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let mut again = vec![1.0; m * n];
        matmul(&mut again, true, Mat::t(&at, m, k), Mat::new(&b, k, n));
        assert!(
            again
                .iter()
                .zip(&want)
                .all(|(g, w)| (g - (w + 1.0)).abs() < 1e-5)
        );
    }
}
