//! Sizes in layer specs and the shape arithmetic the kinds share.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// A 2-D size written as one number (`5`, both dimensions) or a pair (`[5, 3]`, height then
/// width), as torch accepts for `kernel_size`, `stride`, `padding`, `dilation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size2(pub [usize; 2]);

impl Size2 {
    /// `(h, w)`, as Python writes a pair.
    pub fn py(self) -> String {
        format!("({}, {})", self.0[0], self.0[1])
    }
}

impl Serialize for Size2 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let [h, w] = self.0;
        if h == w {
            serializer.serialize_u64(h as u64)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Size2 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Size2;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size (5) or a pair [height, width] ([5, 3])")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Size2, E> {
                Ok(Size2([v as usize, v as usize]))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Size2, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("a size cannot be negative (got {v})")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Size2, A::Error> {
                let h: usize = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                let w: usize = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(1, &self))?;
                if seq.next_element::<usize>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(3, &self));
                }
                Ok(Size2([h, w]))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Adds a problem unless every size of `s` is at least 1.
pub fn check_positive(p: &mut Problems, s: &Size2, key: &str, name: &str) {
    p.check(
        s.0.iter().all(|&v| v > 0),
        format!("{key}.{name}"),
        format!("must be at least 1 (got {:?})", s.0),
    )
}

/// Adds a problem unless `v` is at least 1.
pub fn check_at_least_one(p: &mut Problems, v: usize, key: &str, name: &str) {
    p.check(v > 0, format!("{key}.{name}"), "must be at least 1")
}

/// The product of `sizes`; `Err` when it does not fit in 64 bits (no machine holds that).
pub fn product(sizes: &[usize]) -> Result<usize, String> {
    sizes
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            format!("has sizes {sizes:?} whose product overflows 64 bits; make the layer smaller")
        })
}

/// `[c, h, w]`, or the error for a layer that needs an image.
pub fn image(shape: &[usize]) -> Result<[usize; 3], String> {
    match *shape {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(format!(
            "needs an image input [channels, height, width], but it receives {shape:?}; set [model] input = [1, 28, 28] or add {{ type = \"reshape\", shape = [...] }} before it"
        )),
    }
}

/// torch's output size of a convolution or pooling window; `None` when it does not fit.
pub fn conv_out(
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Option<usize> {
    let span = dilation
        .checked_mul(kernel.checked_sub(1)?)?
        .checked_add(1)?;
    let padded = size.checked_add(padding.checked_mul(2)?)?;
    if stride == 0 || padded < span {
        return None;
    }
    Some((padded - span) / stride + 1)
}

/// A pooling window (max or average) over its input: keys checked, output planned, as torch.
pub mod window {
    use super::*;

    pub fn check(
        p: &mut Problems,
        key: &str,
        kernel: &Size2,
        stride: &Option<Size2>,
        padding: &Size2,
    ) {
        check_positive(p, kernel, key, "kernel");
        p.check(
            padding.0[0] <= kernel.0[0] / 2 && padding.0[1] <= kernel.0[1] / 2,
            format!("{key}.padding"),
            format!(
                "{:?} must be at most half the kernel {:?} (as torch requires)",
                padding.0, kernel.0
            ),
        );
        if let Some(stride) = stride {
            check_positive(p, stride, key, "stride");
        }
    }

    /// `[c, oh, ow]` for an input `shape`; `stride` defaults to `kernel`.
    pub fn output(
        shape: &[usize],
        kernel: Size2,
        stride: Option<Size2>,
        padding: Size2,
    ) -> Result<Vec<usize>, String> {
        let [c, h, w] = image(shape)?;
        let stride = stride.unwrap_or(kernel);
        let out = [0, 1].map(|d| conv_out([h, w][d], kernel.0[d], stride.0[d], padding.0[d], 1));
        let [Some(oh), Some(ow)] = out else {
            return Err(format!(
                "with kernel {:?}, stride {:?}, padding {:?} does not fit its input {shape:?}",
                kernel.0, stride.0, padding.0
            ));
        };
        Ok(vec![c, oh, ow])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_follow_torch() {
        assert_eq!(conv_out(28, 5, 1, 2, 1), Some(28));
        assert_eq!(conv_out(28, 2, 2, 0, 1), Some(14));
        assert_eq!(conv_out(5, 3, 2, 0, 2), Some(1));
        assert_eq!(conv_out(28, 30, 1, 0, 1), None);
    }
}
