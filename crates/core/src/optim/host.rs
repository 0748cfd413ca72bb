//! The element loops that clipping and the moving average run on host slices, each dispatched
//! by `pulp` to the widest vector instructions this CPU has (the crate itself is compiled for
//! baseline x86-64, as the fused optimizer's loops are): sums in 16 lanes, so that no addition
//! waits on the one before.

use pulp::{Arch, Simd, WithSimd};

/// `g`'s sum of squares (16 float32 lanes, added up in float64).
pub fn sum_of_squares(g: &[f32]) -> f64 {
    Arch::new().dispatch(Squares(g))
}

/// Every element of `g` clamped to [-limit, limit].
pub fn clamp(g: &mut [f32], limit: f32) {
    Arch::new().dispatch(Clamp { g, limit })
}

/// Every element of `g` times `factor`.
pub fn scale(g: &mut [f32], factor: f32) {
    Arch::new().dispatch(Scale { g, factor })
}

/// `avg += share * (w - avg)`, element by element; large slices in chunks on rayon's pool (the
/// loop streams two arrays from memory, and one core cannot draw the bandwidth of two).
pub fn lerp(avg: &mut [f32], w: &[f32], share: f32) {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 14;
    let arch = Arch::new();
    if avg.len() <= CHUNK {
        return arch.dispatch(Lerp { avg, w, share });
    }
    avg.par_chunks_mut(CHUNK)
        .zip(w.par_chunks(CHUNK))
        .for_each(|(avg, w)| arch.dispatch(Lerp { avg, w, share }));
}

struct Squares<'a>(&'a [f32]);

impl WithSimd for Squares<'_> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) -> f64 {
        const LANES: usize = 16;
        let mut lanes = [0.0f32; LANES];
        let chunks = self.0.chunks_exact(LANES);
        let rest: f64 = chunks.remainder().iter().map(|&x| (x * x) as f64).sum();
        for chunk in chunks {
            for (lane, &x) in lanes.iter_mut().zip(chunk) {
                *lane += x * x;
            }
        }
        lanes.iter().map(|&l| l as f64).sum::<f64>() + rest
    }
}

struct Clamp<'a> {
    g: &'a mut [f32],
    limit: f32,
}

impl WithSimd for Clamp<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let limit = self.limit;
        self.g.iter_mut().for_each(|x| *x = x.clamp(-limit, limit));
    }
}

struct Scale<'a> {
    g: &'a mut [f32],
    factor: f32,
}

impl WithSimd for Scale<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let factor = self.factor;
        self.g.iter_mut().for_each(|x| *x *= factor);
    }
}

struct Lerp<'a> {
    avg: &'a mut [f32],
    w: &'a [f32],
    share: f32,
}

impl WithSimd for Lerp<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let share = self.share;
        for (a, &w) in self.avg.iter_mut().zip(self.w) {
            *a += share * (w - *a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loops_do_what_they_say_on_every_element() {
        let g: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 9.0).collect();
        let exact: f64 = g.iter().map(|&x| (x as f64) * (x as f64)).sum();
        assert!((sum_of_squares(&g) - exact).abs() < 1e-9 * exact);
        let mut c = g.clone();
        clamp(&mut c, 2.0);
        assert!(c.iter().zip(&g).all(|(c, g)| *c == g.clamp(-2.0, 2.0)));
        scale(&mut c, 0.5);
        assert!(c.iter().all(|x| x.abs() <= 1.0) && c[0] == -1.0);
        let mut avg = vec![0.0f32; 37];
        lerp(&mut avg, &g, 0.25);
        assert!(avg.iter().zip(&g).all(|(a, g)| *a == 0.25 * g));
        // In chunks on the pool: every element still.
        let big: Vec<f32> = (0..100_003).map(|i| i as f32).collect();
        let mut avg = vec![1.0f32; big.len()];
        lerp(&mut avg, &big, 0.5);
        assert!(avg.iter().zip(&big).all(|(a, w)| *a == 0.5 + 0.5 * w));
    }
}
