//! A split held for training: batches are assembled from it by index.

use std::sync::Mutex;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use super::{Inputs, Split};

/// Inputs `[len, features]` and labels `[len]`. The inputs stay as the dataset holds them
/// (IDX pixels as bytes) and each batch is normalised as it is gathered: a batch of 64 MNIST
/// images is 50k table lookups, where normalising all 60,000 up front wrote 188 MB of fresh
/// memory before the first step (60% of start-up on this project's VM).
pub struct DeviceSplit {
    inputs: Inputs,
    features: usize,
    pub labels: Tensor<1, Int>,
    pub len: usize,
    device: Device,
    /// The last contiguous range built, kept: a full-batch run asks for the whole split on
    /// every step.
    last_range: Mutex<Option<(usize, usize, Tensor<2>)>>,
}

impl DeviceSplit {
    /// Holds a split for training on `device`; the labels go to the device now.
    pub fn upload(split: Split, features: usize, device: &Device) -> Self {
        let len = split.len();
        let labels: Vec<i64> = split.labels.iter().map(|&l| l as i64).collect();
        let labels = Tensor::from_data(TensorData::new(labels, [len]), device);
        DeviceSplit {
            inputs: split.inputs,
            features,
            labels,
            len,
            device: device.clone(),
            last_range: Mutex::new(None),
        }
    }

    /// The examples at `indices`, in that order.
    pub fn gather(&self, indices: &[i64]) -> (Tensor<2>, Tensor<1, Int>) {
        let f = self.features;
        let mut values = Vec::with_capacity(indices.len() * f);
        let row = |i: i64| i as usize * f..(i as usize + 1) * f;
        // The rows are scattered over a split larger than the caches: ask for a few rows
        // ahead of the one being normalised, so their loads overlap.
        for &i in indices.iter().take(PREFETCH_ROWS) {
            self.inputs.prefetch(row(i));
        }
        for (k, &i) in indices.iter().enumerate() {
            if let Some(&ahead) = indices.get(k + PREFETCH_ROWS) {
                self.inputs.prefetch(row(ahead));
            }
            self.inputs.extend_normalised(row(i), &mut values);
        }
        (
            self.tensor(values, indices.len()),
            self.labels_at(indices.to_vec()),
        )
    }

    /// The labels of the examples `rows`, in that order.
    fn labels_at(&self, rows: Vec<i64>) -> Tensor<1, Int> {
        let n = rows.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &self.device);
        self.labels.clone().select(0, idx)
    }

    /// The examples at `indices`, transformed by `augment` with the draws of `global_step`,
    /// and the labels each row was mixed with and the weight of its own, when mixed.
    pub fn augmented(
        &self,
        indices: &[i64],
        augment: &super::augment::Augmenter,
        global_step: usize,
    ) -> (Tensor<2>, Tensor<1, Int>, Option<MixedLabels>) {
        let Inputs::Pixels { values, norm } = &self.inputs else {
            // Only pictures are augmented (the config check refuses the rest).
            let (x, y) = self.gather(indices);
            return (x, y, None);
        };
        let f = self.features;
        let rows = indices
            .iter()
            .map(|&i| &values[i as usize * f..(i as usize + 1) * f]);
        let mut out = Vec::with_capacity(indices.len() * f);
        let mix = augment.batch(rows, norm, global_step, &mut out);
        let labels = self.labels_at(indices.to_vec());
        let mixed = mix.map(|m| {
            let partners = m.partner.iter().map(|&p| indices[p]).collect();
            (self.labels_at(partners), m.lambda)
        });
        (self.tensor(out, indices.len()), labels, mixed)
    }

    /// The examples at `indices`: gathered when `shuffled`, else a contiguous range (which
    /// unshuffled batches are) taken as one: a full batch of MNIST is 188 MB, which `range`
    /// builds once and keeps.
    pub fn batch(&self, indices: &[i64], shuffled: bool) -> (Tensor<2>, Tensor<1, Int>) {
        if shuffled {
            return self.gather(indices);
        }
        let start = indices.first().map_or(0, |&i| i as usize);
        self.range(start, start + indices.len())
    }

    /// Examples `start..end`, in order.
    pub fn range(&self, start: usize, end: usize) -> (Tensor<2>, Tensor<1, Int>) {
        let labels = self.labels.clone().slice(start..end);
        let mut last = self.last_range.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, inputs)) = last.as_ref().filter(|(s, e, _)| (*s, *e) == (start, end)) {
            return (inputs.clone(), labels);
        }
        let f = self.features;
        let mut values = Vec::with_capacity((end - start) * f);
        self.inputs
            .extend_normalised(start * f..end * f, &mut values);
        let inputs = self.tensor(values, end - start);
        *last = Some((start, end, inputs.clone()));
        (inputs, labels)
    }

    fn tensor(&self, values: Vec<f32>, rows: usize) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values, [rows, self.features]), &self.device)
    }
}

/// The labels a mixed batch's rows were mixed with, and the weight of each row's own label.
pub type MixedLabels = (Tensor<1, Int>, f64);

/// How many rows ahead of the one being copied a gather prefetches.
const PREFETCH_ROWS: usize = 4;

/// The order of examples within each epoch.
pub struct Batches {
    order: Vec<i64>,
    shuffle: bool,
    seed: u64,
    batch: usize,
    drop_last: bool,
}

impl Batches {
    pub fn new(len: usize, batch: usize, shuffle: bool, drop_last: bool, seed: u64) -> Self {
        Batches {
            order: (0..len as i64).collect(),
            shuffle,
            seed,
            batch,
            drop_last,
        }
    }

    /// Batches per epoch.
    pub fn steps(&self) -> usize {
        per_epoch(self.order.len(), self.batch, self.drop_last)
    }

    /// The batches of indices of epoch `epoch` (from 1). A shuffled epoch's order depends on
    /// the seed and the epoch alone (its own stream, so that adding a layer, which draws more
    /// init values, leaves the order unchanged), so a run resumed at any epoch sees the data
    /// in the order the uninterrupted run did.
    pub fn epoch(&mut self, epoch: usize) -> impl Iterator<Item = &[i64]> {
        if self.shuffle {
            self.order.iter_mut().zip(0..).for_each(|(o, i)| *o = i);
            let stream =
                self.seed ^ 0x5eed_f00d ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            self.order.shuffle(&mut SmallRng::seed_from_u64(stream));
        }
        let steps = self.steps();
        self.order.chunks(self.batch).take(steps)
    }
}

/// How many batches of `batch` an epoch of `n` examples has (the last one partial, or dropped
/// with `drop_last`).
pub fn per_epoch(n: usize, batch: usize, drop_last: bool) -> usize {
    if drop_last {
        n / batch
    } else {
        n.div_ceil(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Affine;

    /// Pixels normalised per batch give exactly what normalising the whole split up front
    /// gave, through both `gather` and `range` (twice: the second from the kept range).
    #[test]
    fn pixel_batches_equal_normalised_floats() {
        let n = crate::config::Normalize {
            mean: crate::config::PerChannel(vec![0.1307]),
            std: crate::config::PerChannel(vec![0.3081]),
            ..Default::default()
        };
        let norm = Affine::of(&n, 0);
        let values: Vec<u8> = (0..5 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let pixels = Inputs::Pixels {
            values: values.clone(),
            norm: crate::data::PixelNorm::new(&n, 1, 3),
        };
        let floats = Inputs::Floats(values.iter().map(|&p| norm.apply(p as f32)).collect());
        let device = Device::flex();
        let split = |inputs| {
            let split = Split {
                inputs,
                labels: vec![0, 1, 2, 3, 4],
            };
            DeviceSplit::upload(split, 3, &device)
        };
        let (a, b) = (split(pixels), split(floats));
        let read = |t: Tensor<2>| t.into_data().iter::<f32>().collect::<Vec<_>>();
        // Longer than the prefetch distance, with repeats.
        let order = [4i64, 0, 2, 1, 3, 4, 0];
        assert_eq!(read(a.gather(&order).0), read(b.gather(&order).0));
        for _ in 0..2 {
            assert_eq!(read(a.range(1, 4).0), read(b.range(1, 4).0));
        }
        assert_eq!(read(a.range(0, 5).0).len(), 15);
        assert_eq!(
            a.gather(&order)
                .1
                .into_data()
                .iter::<i64>()
                .collect::<Vec<_>>(),
            vec![4, 0, 2, 1, 3, 4, 0]
        );
    }

    #[test]
    fn drop_last_drops_only_the_partial_batch() {
        let mut b = Batches::new(10, 4, false, true, 0);
        let sizes: Vec<usize> = b.epoch(1).map(|s| s.len()).collect();
        assert_eq!(sizes, vec![4, 4]);
        let mut b = Batches::new(10, 4, false, false, 0);
        let sizes: Vec<usize> = b.epoch(1).map(|s| s.len()).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
    }

    #[test]
    fn shuffling_is_a_seeded_permutation_that_changes_each_epoch() {
        let mut a = Batches::new(100, 100, true, false, 7);
        let mut b = Batches::new(100, 100, true, false, 7);
        let first: Vec<i64> = a.epoch(1).flatten().copied().collect();
        assert_eq!(first, b.epoch(1).flatten().copied().collect::<Vec<_>>());
        let second: Vec<i64> = a.epoch(2).flatten().copied().collect();
        assert_ne!(first, second);
        // Epoch 2 straight away (a resumed run) gives epoch 2's order.
        assert_eq!(second, b.epoch(2).flatten().copied().collect::<Vec<_>>());
        let mut sorted = second.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }
}
