//! Gathering a batch: raw pixel bytes normalised into float32 as they are copied, and cache
//! prefetches of the rows a gather will read next.

use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

/// Appends `x * scale + offset` (float32) for each byte of `values` to `out`, written once
/// into reserved capacity; large inputs (a full batch) in pieces on rayon's pool.
pub fn extend_affine(out: &mut Vec<f32>, values: &[u8], scale: f32, offset: f32) {
    const PARALLEL_FROM: usize = 1 << 20;
    const PIECE: usize = 1 << 16;
    let len = out.len();
    out.reserve(values.len());
    let spare = &mut out.spare_capacity_mut()[..values.len()];
    let write = |values: &[u8], out: &mut [MaybeUninit<f32>]| {
        pulp::Arch::new().dispatch(Affine {
            scale,
            offset,
            values,
            out,
        })
    };
    if values.len() >= PARALLEL_FROM {
        spare
            .par_chunks_mut(PIECE)
            .zip(values.par_chunks(PIECE))
            .for_each(|(piece, values)| write(values, piece));
    } else {
        write(values, spare);
    }
    // SAFETY: `Affine::with_simd` writes every slot of the slice it is given (it zips its
    // `out` with `values`, of equal lengths: `spare` was cut to `values.len()`, and the
    // parallel pieces of both are cut at the same boundaries), and those slices tile the
    // first `values.len()` slots of the spare capacity.
    unsafe { out.set_len(len + values.len()) };
}

/// One run of [`extend_affine`], vectorised with the widest instructions this CPU has (the
/// default build targets SSE2; AVX-512 does a 784-pixel row in a few dozen instructions).
struct Affine<'a> {
    scale: f32,
    offset: f32,
    values: &'a [u8],
    out: &'a mut [MaybeUninit<f32>],
}

impl pulp::WithSimd for Affine<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        assert_eq!(self.values.len(), self.out.len());
        for (o, &p) in self.out.iter_mut().zip(self.values) {
            o.write(p as f32 * self.scale + self.offset);
        }
    }
}

/// Asks the CPU to start loading `values[range]` into its caches (a batch gathers rows from
/// all over a split that does not fit in them); a no-op elsewhere than x86-64.
pub fn prefetch<T>(values: &[T], range: Range<usize>) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        const LINE: usize = 64;
        let size = std::mem::size_of::<T>();
        let bytes = values.as_ptr().cast::<i8>();
        let end = range.end.min(values.len()) * size;
        for at in (range.start * size..end).step_by(LINE) {
            // SAFETY: SSE, which the intrinsic requires, is part of every x86-64 CPU; a
            // prefetch only hints the cache (it never faults or reads into the program), and
            // `at` is inside the buffer anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(bytes.wrapping_add(at)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (values, range);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_every_value_mapped_small_and_large() {
        for n in [0, 5, (1 << 20) + 3] {
            let values: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let mut out = vec![-1.0f32];
            extend_affine(&mut out, &values, 0.5, 1.0);
            assert_eq!(out.len(), n + 1);
            assert_eq!(out[0], -1.0);
            assert!(
                out[1..]
                    .iter()
                    .zip(&values)
                    .all(|(&o, &v)| o == v as f32 * 0.5 + 1.0)
            );
        }
    }

    #[test]
    fn prefetch_accepts_any_range() {
        let values = vec![1u8; 1000];
        prefetch(&values, 0..1000);
        prefetch(&values, 900..5000);
        prefetch(&[0f32; 3], 2..3);
    }
}
