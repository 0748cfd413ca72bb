//! A bounds-checked front for the `gemm` crate (the matrix kernels burn-flex itself uses).

/// A row-major matrix view, or the transpose of one, with its storage's row length.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    /// Read `data` (stored `cols x rows`, row-major) as its transpose.
    pub transposed: bool,
    /// Elements between the starts of two stored rows (at least the stored row's length).
    stored_row: usize,
}

impl<'a> Mat<'a> {
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            transposed: false,
            stored_row: cols,
        }
    }

    /// The `rows x cols` transpose of `data`, which is stored `cols x rows`.
    pub fn t(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            transposed: true,
            stored_row: rows,
        }
    }

    /// Rows `start..end` of this matrix, as a view of the same storage.
    pub fn row_range(&self, start: usize, end: usize) -> Self {
        assert!(start <= end && end <= self.rows, "row_range out of bounds");
        let offset = if self.transposed {
            start
        } else {
            start * self.stored_row
        };
        Mat {
            data: &self.data[offset.min(self.data.len())..],
            rows: end - start,
            ..*self
        }
    }

    /// Columns `start..end` of this matrix, as a view of the same storage.
    pub fn col_range(&self, start: usize, end: usize) -> Self {
        assert!(start <= end && end <= self.cols, "col_range out of bounds");
        let offset = if self.transposed {
            start * self.stored_row
        } else {
            start
        };
        Mat {
            data: &self.data[offset.min(self.data.len())..],
            cols: end - start,
            ..*self
        }
    }

    /// (column stride, row stride) in elements.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (self.stored_row as isize, 1)
        } else {
            (1, self.stored_row as isize)
        }
    }

    /// Whether every element the view names lies inside `data`.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let (cs, rs) = self.strides();
        let last = (self.cols - 1) * cs as usize + (self.rows - 1) * rs as usize;
        last < self.data.len()
    }
}

/// `dst = lhs @ rhs`, or `dst += lhs @ rhs` when `accumulate`; `dst` is row-major
/// `lhs.rows x rhs.cols`. Single-threaded: callers parallelise over images.
pub fn matmul(dst: &mut [f32], accumulate: bool, lhs: Mat, rhs: Mat) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "matmul: inner dimensions differ");
    assert!(dst.len() >= m * n && lhs.in_bounds() && rhs.in_bounds());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: the asserts above bound every index gemm touches: dst is m x n with strides
    // (1, n), lhs and rhs are inside their slices (`in_bounds`); dst is a unique borrow, so
    // it aliases neither input.
    unsafe { gemm_into(dst.as_mut_ptr(), n, accumulate, lhs, rhs) }
}

/// `dst = lhs @ rhs` (or `+=`) where `dst` points at an `lhs.rows x rhs.cols` block with
/// column stride 1 and row stride `dst_row`, single-threaded.
///
/// # Safety
/// Every element of that block must be writable and touched by no one else during the call;
/// `lhs` and `rhs` must be `in_bounds`.
unsafe fn gemm_into(dst: *mut f32, dst_row: usize, accumulate: bool, lhs: Mat, rhs: Mat) {
    let (lhs_cs, lhs_rs) = lhs.strides();
    let (rhs_cs, rhs_rs) = rhs.strides();
    // SAFETY: the caller's contract, passed on to gemm.
    unsafe {
        gemm::gemm(
            lhs.rows,
            rhs.cols,
            lhs.cols,
            dst,
            1,
            dst_row as isize,
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

/// A pointer that tasks writing disjoint parts of one buffer may share.
#[derive(Clone, Copy)]
struct SharedDst(*mut f32);
// SAFETY: only used by `parallel_gemm`, whose tasks write disjoint blocks.
unsafe impl Send for SharedDst {}
// SAFETY: as for `Send`: the tasks sharing it write disjoint blocks, and none reads.
unsafe impl Sync for SharedDst {}

impl SharedDst {
    /// The pointer (a method, so that closures capture the `Send` wrapper, not the field).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Multiply-adds below which a product runs on one thread: a rayon split costs a few
/// microseconds, about 100k multiply-adds on one core.
const MIN_PARALLEL_WORK: usize = 1 << 18;

/// [`matmul`] on rayon's pool: `dst` is cut into one block per thread along its longer side,
/// each block a single-threaded gemm. Each task packs its share of the split operand and all
/// of the other, so splitting the longer side packs the least (at batch 64, a layer's weight
/// is split, not copied whole by both cores). The blocks depend only on the shapes and the
/// thread count, so results are reproducible.
///
/// Burn's flex asks `gemm` to parallelise products above 192^3 multiply-adds; at fc_adam_l2's
/// shapes that ran 30% slower than this (`cargo run --release -p kiln-core --example
/// dense_bench`).
pub fn parallel_matmul(dst: &mut [f32], accumulate: bool, lhs: Mat, rhs: Mat) {
    assert_eq!(rhs.rows, lhs.cols, "matmul: inner dimensions differ");
    assert!(dst.len() >= lhs.rows * rhs.cols && lhs.in_bounds() && rhs.in_bounds());
    // SAFETY: dst is a unique borrow of at least rows x cols elements (asserted), so it can
    // be written and aliases neither input; the inputs are in bounds (asserted).
    unsafe { parallel_gemm(dst.as_mut_ptr(), accumulate, lhs, rhs) }
}

/// `lhs @ rhs` as a new row-major `lhs.rows x rhs.cols` matrix, split as
/// [`parallel_matmul`] splits it. The buffer is not zeroed first: gemm told not to read
/// its destination writes every element of it once (a weight gradient is up to a few MB a
/// step, and zeroing it was a few percent of an fc_adam_l2 step).
pub fn parallel_product(lhs: Mat, rhs: Mat) -> Vec<f32> {
    assert_eq!(rhs.rows, lhs.cols, "matmul: inner dimensions differ");
    assert!(lhs.in_bounds() && rhs.in_bounds());
    let len = lhs.rows * rhs.cols;
    let mut out = Vec::with_capacity(len);
    // SAFETY: `out` owns capacity for rows x cols elements and nothing else refers to it;
    // with `accumulate` false gemm never reads the destination and writes each of its
    // elements (including zeros when the inner dimension is 0), so all `len` are
    // initialised when `set_len` runs.
    unsafe {
        parallel_gemm(out.as_mut_ptr(), false, lhs, rhs);
        out.set_len(len);
    }
    out
}

/// The parallel product behind [`parallel_matmul`] and [`parallel_product`]: `dst` is a
/// row-major `lhs.rows x rhs.cols` block with row stride `rhs.cols`.
///
/// # Safety
/// `dst` must be valid for writes (and for reads when `accumulate`) of `lhs.rows x
/// rhs.cols` elements that nothing else accesses during the call; `lhs` and `rhs` must be
/// `in_bounds` with `rhs.rows == lhs.cols`.
unsafe fn parallel_gemm(dst: *mut f32, accumulate: bool, lhs: Mat, rhs: Mat) {
    use rayon::prelude::*;
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    if m == 0 || n == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    if threads <= 1 || m * k * n < MIN_PARALLEL_WORK {
        // SAFETY: the caller's contract, for the whole block.
        return unsafe { gemm_into(dst, n, accumulate, lhs, rhs) };
    }
    let by_columns = n > m;
    let block = if by_columns {
        n.div_ceil(threads)
    } else {
        m.div_ceil(threads)
    };
    let ptr = SharedDst(dst);
    let starts: Vec<usize> = (0..if by_columns { n } else { m }).step_by(block).collect();
    starts.into_par_iter().for_each(|start| {
        // SAFETY: each task writes a block no other task touches: columns
        // start..start+block of every row (offset `start`), or rows start..start+block
        // (offset `start * n`), both with row stride n inside the caller's m x n block;
        // the views stay inside their slices (col_range / row_range keep them in bounds).
        unsafe {
            if by_columns {
                let end = (start + block).min(n);
                gemm_into(
                    ptr.get().add(start),
                    n,
                    accumulate,
                    lhs,
                    rhs.col_range(start, end),
                );
            } else {
                let end = (start + block).min(m);
                let lhs = lhs.row_range(start, end);
                gemm_into(ptr.get().add(start * n), n, accumulate, lhs, rhs);
            }
        }
    });
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

    /// `parallel_product` writes into uninitialised memory: after the allocator has been
    /// handed NaN buffers of the same size, every value must still be the product, for row
    /// and column splits, uneven blocks, a transposed operand and an empty inner dimension.
    #[test]
    fn a_new_product_writes_every_value() {
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for (m, k, n) in [(130, 70, 41), (41, 70, 130), (64, 100, 64), (9, 0, 5)] {
                let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
                let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
                let want = naive(&a, &b, m, k, n);
                // b^T stored n x k, read as k x n.
                let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
                for rhs in [Mat::new(&b, k, n), Mat::t(&bt, k, n)] {
                    drop(vec![f32::NAN; m * n]);
                    let got = pool.install(|| parallel_product(Mat::new(&a, m, k), rhs));
                    assert_eq!(got.len(), m * n);
                    assert!(
                        got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-4),
                        "{m}x{k}x{n} on {threads} threads"
                    );
                }
            }
        }
    }
}
