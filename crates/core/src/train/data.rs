//! A split uploaded to the device once; batches are gathered there by index.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use crate::data::Split;

/// Inputs `[len, features]` and labels `[len]` on the device.
pub struct DeviceSplit {
    pub inputs: Tensor<2>,
    pub labels: Tensor<1, Int>,
    pub len: usize,
}

impl DeviceSplit {
    /// Moves a split to the device; takes it by value so the host copy is freed, not doubled.
    pub fn upload(split: Split, features: usize, device: &Device) -> Self {
        let len = split.len();
        let labels: Vec<i64> = split.labels.iter().map(|&l| l as i64).collect();
        let inputs = Tensor::from_data(TensorData::new(split.inputs, [len, features]), device);
        let labels = Tensor::from_data(TensorData::new(labels, [len]), device);
        DeviceSplit {
            inputs,
            labels,
            len,
        }
    }

    /// The examples at `indices`, in that order.
    pub fn gather(&self, indices: &[i64]) -> (Tensor<2>, Tensor<1, Int>) {
        let device = self.inputs.device();
        let idx = Tensor::<1, Int>::from_data(
            TensorData::new(indices.to_vec(), [indices.len()]),
            &device,
        );
        (
            self.inputs.clone().select(0, idx.clone()),
            self.labels.clone().select(0, idx),
        )
    }

    /// Examples `start..end`, in order (no copy of the index list).
    pub fn range(&self, start: usize, end: usize) -> (Tensor<2>, Tensor<1, Int>) {
        (
            self.inputs.clone().slice(start..end),
            self.labels.clone().slice(start..end),
        )
    }
}

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

    /// Steps per epoch.
    pub fn steps(&self) -> usize {
        let n = self.order.len();
        if self.drop_last {
            n / self.batch
        } else {
            n.div_ceil(self.batch)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
