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
        let per_read = if on_gpu { GPU_STEPS_PER_READ } else { 1 };
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
