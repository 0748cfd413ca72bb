//! A small learnable dataset in MNIST's IDX layout, for tests and smoke runs without MNIST
//! (`dataset = "idx"`, `dir = ...`).

use std::io::Write;
use std::path::Path;

use super::idx::encode;
use super::named::FILES;
use crate::error::{Error, Result};

/// Writes a learnable 10-class dataset of 28x28 images: class `c` lights up row band `c`
/// (plus noise). `gz` writes the `.gz` forms.
pub fn write_idx(dir: &Path, train: usize, test: usize, gz: bool) -> Result<()> {
    let mut state = 12345u64;
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 57) as u8
    };
    let mut make = |n: usize| {
        let mut images = Vec::with_capacity(n * 784);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = (i * 7 + 3) % 10;
            labels.push(class as u8);
            for row in 0..28 {
                for _ in 0..28 {
                    let lit = row / 3 == class;
                    images.push(if lit { 200 + noise() / 4 } else { noise() });
                }
            }
        }
        (encode(&[n, 28, 28], &images), encode(&[n], &labels))
    };
    let (train_x, train_y) = make(train);
    let (test_x, test_y) = make(test);
    for (name, bytes) in FILES.iter().zip([train_x, train_y, test_x, test_y]) {
        let (path, bytes) = if gz {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&bytes)
                .and_then(|()| enc.finish())
                .map(|gz| (dir.join(format!("{name}.gz")), gz))
                .map_err(|e| Error::io("cannot compress", dir.join(name), e))?
        } else {
            (dir.join(name), bytes)
        };
        std::fs::write(&path, bytes).map_err(|e| Error::io("cannot write", &path, e))?;
    }
    Ok(())
}
