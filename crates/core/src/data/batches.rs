//! A split held for training: batches are assembled from it by index.

use std::sync::Mutex;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use super::{Inputs, Split};

/// Inputs `[len, features]` and labels `[len]` (on the device). On CPU backends the inputs
/// stay as the dataset holds them (IDX pixels as bytes) and each batch is normalised as it is
/// gathered: a batch of 64 MNIST images is 50k table lookups, where normalising all 60,000 up
/// front wrote 188 MB of fresh memory before the first step (60% of start-up on this
/// project's VM). On a GPU they are normalised once and kept there ([`Rows::Device`]).
pub struct DeviceSplit {
    rows: Rows,
    features: usize,
    pub labels: Tensor<1, Int>,
    pub len: usize,
    device: Device,
}

/// Where a split's inputs live between batches.
enum Rows {
    /// On the host; each batch is normalised and then uploaded. The last contiguous range
    /// built is kept: a full-batch run asks for the whole split on every step.
    Host {
        inputs: Inputs,
        last_range: Box<Mutex<Option<(usize, usize, Tensor<2>)>>>,
    },
    /// Normalised once and uploaded with the labels: a GPU run then gathers each batch on the
    /// device instead of sending it from the host every step. Never augmented (augmentation
    /// works on the host's pixels; the training loop keeps such a split on the host).
    Device(Tensor<2>),
}

/// The largest split kept on the device, normalised (CIFAR-10's training set is 614 MB):
/// larger ones are sent a batch at a time, as on the CPU.
pub const RESIDENT_LIMIT_BYTES: usize = 4 << 30;

impl DeviceSplit {
    /// Holds a split for training on `device`; the labels go to the device now, and the
    /// inputs too when `resident` and they fit under [`RESIDENT_LIMIT_BYTES`].
    pub fn upload(split: Split, features: usize, device: &Device, resident: bool) -> Self {
        let len = split.len();
        let labels: Vec<i64> = split.labels.iter().map(|&l| l as i64).collect();
        let labels = Tensor::from_data(TensorData::new(labels, [len]), device);
        let bytes = split.inputs.len() * std::mem::size_of::<f32>();
        let rows = if resident && bytes <= RESIDENT_LIMIT_BYTES {
            let mut values = Vec::with_capacity(split.inputs.len());
            split
                .inputs
                .extend_normalised(0..split.inputs.len(), &mut values);
            Rows::Device(Tensor::from_data(
                TensorData::new(values, [len, features]),
                device,
            ))
        } else {
            Rows::Host {
                inputs: split.inputs,
                last_range: Box::new(Mutex::new(None)),
            }
        };
        DeviceSplit {
            rows,
            features,
            labels,
            len,
            device: device.clone(),
        }
    }

    /// Whether the inputs are kept on the device.
    pub fn is_resident(&self) -> bool {
        matches!(self.rows, Rows::Device(_))
    }

    /// The examples at `indices`, in that order.
    pub fn gather(&self, indices: &[i64]) -> (Tensor<2>, Tensor<1, Int>) {
        let inputs = match &self.rows {
            Rows::Device(all) => all.clone().select(0, self.index(indices.to_vec())),
            Rows::Host { inputs, .. } => {
                self.tensor(gather_rows(inputs, self.features, indices), indices.len())
            }
        };
        (inputs, self.labels_at(indices.to_vec()))
    }

    /// `rows` as an index tensor on the device.
    fn index(&self, rows: Vec<i64>) -> Tensor<1, Int> {
        let n = rows.len();
        Tensor::from_data(TensorData::new(rows, [n]), &self.device)
    }

    /// The labels of the examples `rows`, in that order.
    fn labels_at(&self, rows: Vec<i64>) -> Tensor<1, Int> {
        self.labels.clone().select(0, self.index(rows))
    }

    /// The examples at `indices`, transformed by `augment` with the draws of `global_step`,
    /// and the labels each row was mixed with and the weight of its own, when mixed.
    pub fn augmented(
        &self,
        indices: &[i64],
        augment: &super::augment::Augmenter,
        global_step: usize,
    ) -> (Tensor<2>, Tensor<1, Int>, Option<MixedLabels>) {
        let Rows::Host {
            inputs: Inputs::Pixels { values, norm },
            ..
        } = &self.rows
        else {
            // Only pictures are augmented (the config check refuses the rest), and only on
            // the host (see `Rows::Device`).
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
        let (inputs, last_range) = match &self.rows {
            Rows::Device(all) => return (all.clone().slice(start..end), labels),
            Rows::Host { inputs, last_range } => (inputs, last_range),
        };
        let mut last = last_range.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, kept)) = last.as_ref().filter(|(s, e, _)| (*s, *e) == (start, end)) {
            return (kept.clone(), labels);
        }
        let f = self.features;
        let mut values = Vec::with_capacity((end - start) * f);
        inputs.extend_normalised(start * f..end * f, &mut values);
        let built = self.tensor(values, end - start);
        *last = Some((start, end, built.clone()));
        (built, labels)
    }

    fn tensor(&self, values: Vec<f32>, rows: usize) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values, [rows, self.features]), &self.device)
    }
}

/// The normalised values of the rows at `indices` of `inputs`, in that order.
fn gather_rows(inputs: &Inputs, features: usize, indices: &[i64]) -> Vec<f32> {
    let mut values = Vec::with_capacity(indices.len() * features);
    let row = |i: i64| i as usize * features..(i as usize + 1) * features;
    // The rows are scattered over a split larger than the caches: ask for a few rows ahead of
    // the one being normalised, so their loads overlap.
    for &i in indices.iter().take(PREFETCH_ROWS) {
        inputs.prefetch(row(i));
    }
    for (k, &i) in indices.iter().enumerate() {
        if let Some(&ahead) = indices.get(k + PREFETCH_ROWS) {
            inputs.prefetch(row(ahead));
        }
        inputs.extend_normalised(row(i), &mut values);
    }
    values
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
            DeviceSplit::upload(split, 3, &device, false)
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

    /// A split kept on the device (as on a GPU) gives exactly the batches of one built on the
    /// host, shuffled, in ranges and as a whole.
    #[test]
    fn a_resident_split_gives_the_host_splits_batches() {
        let n = crate::config::Normalize {
            mean: crate::config::PerChannel(vec![0.5]),
            std: crate::config::PerChannel(vec![0.25]),
            ..Default::default()
        };
        let values: Vec<u8> = (0..6 * 4).map(|i| (i * 53 % 256) as u8).collect();
        let device = Device::flex();
        let split = |resident| {
            let inputs = Inputs::Pixels {
                values: values.clone(),
                norm: crate::data::PixelNorm::new(&n, 1, 4),
            };
            let labels = vec![5, 4, 3, 2, 1, 0];
            DeviceSplit::upload(Split { inputs, labels }, 4, &device, resident)
        };
        let (host, resident) = (split(false), split(true));
        assert!(resident.is_resident() && !host.is_resident());
        let read = |(x, y): (Tensor<2>, Tensor<1, Int>)| {
            let x: Vec<f32> = x.into_data().iter::<f32>().collect();
            let y: Vec<i64> = y.into_data().iter::<i64>().collect();
            (x, y)
        };
        let order = [3i64, 5, 0, 0, 2];
        assert_eq!(read(host.gather(&order)), read(resident.gather(&order)));
        assert_eq!(
            read(host.batch(&order, true)),
            read(resident.batch(&order, true))
        );
        assert_eq!(read(host.range(2, 5)), read(resident.range(2, 5)));
        assert_eq!(read(host.range(0, 6)), read(resident.range(0, 6)));
        assert_eq!(read(resident.range(1, 2)).1, vec![4]);
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
