//! `[data] normalize` as arithmetic: one float32 multiply-add per channel, applied wherever a
//! raw value becomes a network input (batches, CSV, `predict`), so all three agree exactly.

use crate::config::Normalize;

/// `x * scale + offset` in float32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub scale: f32,
    pub offset: f32,
}

impl Affine {
    /// Channel `c` of `((x - center) / scale - mean) / std`
    /// = `x / (scale std) - (center / scale + mean) / std`, its two constants computed in
    /// float64.
    pub fn of(n: &Normalize, c: usize) -> Self {
        let (mean, std) = (n.mean.get(c), n.std.get(c));
        Affine {
            scale: (1.0 / (n.scale * std)) as f32,
            offset: (-(n.center / n.scale + mean) / std) as f32,
        }
    }

    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        x * self.scale + self.offset
    }
}

/// The normalisation of examples laid out `[channels, plane]` (planes of `height x width`
/// values, as CIFAR and kiln's image folders hold them), one [`Affine`] per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelNorm {
    channels: Vec<Affine>,
    /// Values per channel of one example.
    plane: usize,
}

impl PixelNorm {
    /// `n` for examples of `channels` planes of `plane` values.
    pub fn new(n: &Normalize, channels: usize, plane: usize) -> Self {
        PixelNorm {
            channels: (0..channels.max(1)).map(|c| Affine::of(n, c)).collect(),
            plane: plane.max(1),
        }
    }

    /// The map of the value at `index` of the flattened examples.
    pub fn at(&self, index: usize) -> Affine {
        self.channels[(index / self.plane) % self.channels.len()]
    }

    /// Appends the normalised `values` to `out`; `values` starts at `first`, an index into
    /// the flattened examples (which decides the channel of each value).
    pub fn extend(&self, out: &mut Vec<f32>, values: &[u8], first: usize) {
        use kiln_kernels::gather::extend_affine;
        if let [one] = self.channels.as_slice() {
            return extend_affine(out, values, one.scale, one.offset);
        }
        let mut done = 0;
        while done < values.len() {
            let index = first + done;
            let plane_end = (index / self.plane + 1) * self.plane;
            let take = (plane_end - index).min(values.len() - done);
            let a = self.at(index);
            extend_affine(out, &values[done..done + take], a.scale, a.offset);
            done += take;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PerChannel;

    #[test]
    fn normalisations_match_their_torch_forms() {
        let scale = Normalize::default();
        assert_eq!(Affine::of(&scale, 0).apply(255.0), 1.0);
        let centred = Normalize {
            center: 127.5,
            ..Normalize::default()
        };
        assert_eq!(Affine::of(&centred, 0).apply(0.0), -0.5);
        let standard = Normalize {
            mean: PerChannel(vec![0.1307]),
            std: PerChannel(vec![0.3081]),
            ..Normalize::default()
        };
        let expected = ((51.0 / 255.0) - 0.1307) / 0.3081;
        assert!((Affine::of(&standard, 0).apply(51.0) as f64 - expected).abs() < 1e-6);
    }

    /// torchvision's `Normalize(mean, std)` per channel, for a range that starts and ends
    /// inside planes and spans two examples.
    #[test]
    fn each_channel_gets_its_own_mean_and_std() {
        let n = Normalize {
            mean: PerChannel(vec![0.4914, 0.4822, 0.4465]),
            std: PerChannel(vec![0.2470, 0.2435, 0.2616]),
            ..Normalize::default()
        };
        let (channels, plane) = (3, 4);
        let norm = PixelNorm::new(&n, channels, plane);
        let values: Vec<u8> = (0..2 * channels * plane)
            .map(|i| (i * 23 % 256) as u8)
            .collect();
        let mut out = Vec::new();
        norm.extend(&mut out, &values[3..21], 3);
        for (k, &got) in out.iter().enumerate() {
            let i = k + 3;
            let c = (i / plane) % channels;
            let want = (values[i] as f64 / 255.0 - n.mean.0[c]) / n.std.0[c];
            assert!(
                (got as f64 - want).abs() < 1e-5,
                "value {i}: {got} vs {want}"
            );
        }
        assert_eq!(out.len(), 18);
    }
}
