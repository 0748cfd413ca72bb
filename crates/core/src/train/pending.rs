//! Step losses read back from the device in groups. On a GPU every read of a value is a wait
//! for the device to finish its queue: reading each step's loss would leave it idle between
//! steps. The losses stay there and are read a group at a time (one read per group), then
//! checked and logged step by step exactly as if each had been read at once; on the CPU a
//! group is one step, so nothing waits.

use burn::tensor::Tensor;

/// Steps per read on a GPU.
pub const GPU_STEPS_PER_READ: usize = 32;

/// One optimizer step whose loss is still on the device.
pub struct StepLoss {
    /// Each batch's mean loss and its number of examples.
    pub batches: Vec<(Tensor<1>, usize)>,
    /// The step's examples (the sum of its batches').
    pub n: usize,
    /// The step's first batch within its epoch (from 0).
    pub first: usize,
    /// Examples seen in the epoch after this step.
    pub seen: usize,
    pub lr: f64,
    /// The run's step count after this step.
    pub global_step: usize,
}

/// A step's loss, read: the mean over its examples.
pub struct ReadLoss {
    pub loss: f64,
    pub step: StepLoss,
}

/// The steps whose losses wait to be read.
pub struct PendingLosses {
    per_read: usize,
    steps: Vec<StepLoss>,
}

impl PendingLosses {
    pub fn new(on_gpu: bool) -> Self {
        Self::reading_every(if on_gpu { GPU_STEPS_PER_READ } else { 1 })
    }

    fn reading_every(per_read: usize) -> Self {
        PendingLosses {
            per_read,
            steps: Vec::with_capacity(per_read),
        }
    }

    pub fn push(&mut self, step: StepLoss) {
        self.steps.push(step);
    }

    /// Whether a full group waits.
    pub fn is_due(&self) -> bool {
        self.steps.len() >= self.per_read
    }

    /// Every waiting step's loss, in order, from one read.
    pub fn read(&mut self) -> Vec<ReadLoss> {
        let steps = std::mem::take(&mut self.steps);
        let losses: Vec<Tensor<1>> = steps
            .iter()
            .flat_map(|s| s.batches.iter().map(|(loss, _)| loss.clone()))
            .collect();
        if losses.is_empty() {
            return Vec::new();
        }
        let values: Vec<f32> = Tensor::cat(losses, 0).into_data().iter::<f32>().collect();
        let mut values = values.into_iter();
        steps
            .into_iter()
            .map(|step| {
                // Each batch weighted by its share of the step's examples, summed in f64.
                let loss = step.batches.iter().fold(0.0f64, |sum, (_, len)| {
                    let value = values.next().unwrap_or(f32::NAN);
                    sum + value as f64 * *len as f64 / step.n as f64
                });
                ReadLoss { loss, step }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn step(losses: &[(f32, usize)], global_step: usize) -> StepLoss {
        let device = Device::flex();
        StepLoss {
            batches: losses
                .iter()
                .map(|&(l, n)| (Tensor::from_floats([l], &device), n))
                .collect(),
            n: losses.iter().map(|b| b.1).sum(),
            first: global_step - 1,
            seen: 0,
            lr: 0.1,
            global_step,
        }
    }

    /// A group of steps read at once gives each step the loss a read per step gives: its
    /// batches weighted by their share of its examples, in order, NaN kept where it was.
    #[test]
    fn a_group_read_gives_each_step_its_own_loss() {
        let mut pending = PendingLosses::reading_every(3);
        pending.push(step(&[(1.0, 10)], 1));
        pending.push(step(&[(2.0, 30), (4.0, 10)], 2));
        assert!(!pending.is_due());
        pending.push(step(&[(f32::NAN, 5)], 3));
        assert!(pending.is_due());
        let read = pending.read();
        let losses: Vec<f64> = read.iter().map(|r| r.loss).collect();
        assert_eq!(losses[..2], [1.0, 2.0 * 30.0 / 40.0 + 4.0 * 10.0 / 40.0]);
        assert!(losses[2].is_nan());
        let steps: Vec<usize> = read.iter().map(|r| r.step.global_step).collect();
        assert_eq!(steps, [1, 2, 3]);
        assert!(pending.read().is_empty() && !pending.is_due());
        // On the CPU every step is read at once.
        let mut cpu = PendingLosses::new(false);
        cpu.push(step(&[(0.5, 1)], 1));
        assert!(cpu.is_due());
    }
}
