//! The losses of `[train] loss`, on a batch of outputs `[batch, classes]` and labels `[batch]`.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use crate::config::Loss;
use crate::layers::{Activation, Yields};

/// Keras clips probabilities to [EPS, 1 - EPS] before taking their log.
const KERAS_EPSILON: f64 = 1e-7;

/// A loss with its label smoothing, ready to apply.
#[derive(Debug, Clone, Copy)]
pub struct Objective {
    pub loss: Loss,
    pub smoothing: f64,
}

impl Objective {
    /// The mean loss of the batch, a one-element tensor.
    pub fn forward(&self, output: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
        let [_, classes] = output.dims();
        let log_probs = match self.loss {
            Loss::CrossEntropy => log_softmax(output, 1),
            Loss::Nll => output,
            Loss::CategoricalCrossentropy => output.clamp(KERAS_EPSILON, 1.0 - KERAS_EPSILON).log(),
            Loss::Mse => {
                let target = self.targets(labels, classes);
                return (output - target).square().mean();
            }
        };
        let picked = log_probs.clone().gather(1, labels.unsqueeze_dim(1));
        if self.smoothing == 0.0 {
            return picked.mean().neg();
        }
        // Smoothed target t = (1 - e) one_hot + e / C, so sum(t * log p) needs only the label's
        // log-probability and the sum over classes.
        let e = self.smoothing;
        let spread = log_probs.sum_dim(1).mul_scalar(e / classes as f64);
        (picked.mul_scalar(1.0 - e) + spread).mean().neg()
    }

    /// One-hot targets with label smoothing, `[batch, classes]`.
    fn targets(&self, labels: Tensor<1, Int>, classes: usize) -> Tensor<2> {
        let one_hot: Tensor<2> = labels.one_hot::<2>(classes).float();
        let e = self.smoothing;
        one_hot.mul_scalar(1.0 - e).add_scalar(e / classes as f64)
    }

    /// Why this loss does not suit a network ending in `last`, if it does not.
    pub fn mismatch(&self, last: Option<Activation>) -> Option<String> {
        let last = last.unwrap_or(Activation::Identity);
        let yields = last.yields();
        match self.loss {
            Loss::CrossEntropy => (yields != Yields::Scores).then(|| format!(
                "the network ends with {last} but loss = \"cross_entropy\" applies log-softmax to its output itself; remove the {last} (keep logits), or use loss = \"{}\"",
                if yields == Yields::Probabilities {
                    "categorical_crossentropy"
                } else {
                    "nll"
                }
            )),
            Loss::Nll => (yields != Yields::LogProbabilities).then(|| format!(
                "loss = \"nll\" expects log-probabilities, but the network ends with {last}; end with {{ type = \"log_softmax\" }} or use loss = \"cross_entropy\""
            )),
            Loss::CategoricalCrossentropy => (yields != Yields::Probabilities).then(|| format!(
                "loss = \"categorical_crossentropy\" expects probabilities, but the network ends with {last}; end with activation = \"softmax\" or use loss = \"cross_entropy\""
            )),
            // Regression onto one-hot targets: any output is a fair guess.
            Loss::Mse => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn batch() -> (Tensor<2>, Tensor<1, Int>) {
        let device = Device::flex();
        let logits = Tensor::from_data(
            TensorData::new(vec![2.0f32, 0.5, -1.0, 0.1, 0.2, 3.0], [2, 3]),
            &device,
        );
        let labels = Tensor::from_data(TensorData::new(vec![0i64, 2], [2]), &device);
        (logits, labels)
    }

    fn value(loss: Loss, smoothing: f64, transform: impl Fn(Tensor<2>) -> Tensor<2>) -> f64 {
        let (x, y) = batch();
        Objective { loss, smoothing }
            .forward(transform(x), y)
            .into_scalar::<f32>() as f64
    }

    /// torch.nn.functional.cross_entropy(logits, [0, 2]) for the logits above.
    fn torch_ce(smoothing: f64) -> f64 {
        let rows = [[2.0f64, 0.5, -1.0], [0.1, 0.2, 3.0]];
        let labels = [0usize, 2];
        let mut total = 0.0;
        for (row, &label) in rows.iter().zip(&labels) {
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            let logp: Vec<f64> = row.iter().map(|v| v - lse).collect();
            let mean_logp = logp.iter().sum::<f64>() / 3.0;
            total -= (1.0 - smoothing) * logp[label] + smoothing * mean_logp;
        }
        total / 2.0
    }

    #[test]
    fn every_form_of_cross_entropy_agrees_with_the_definition() {
        for s in [0.0, 0.1] {
            let expected = torch_ce(s);
            assert!((value(Loss::CrossEntropy, s, |x| x) - expected).abs() < 1e-5);
            assert!((value(Loss::Nll, s, |x| log_softmax(x, 1)) - expected).abs() < 1e-5);
            let cce = value(Loss::CategoricalCrossentropy, s, |x| {
                burn::tensor::activation::softmax(x, 1)
            });
            assert!((cce - expected).abs() < 1e-5, "{cce} vs {expected}");
        }
    }

    #[test]
    fn mse_compares_with_one_hot_targets() {
        // ((2-1)^2 + 0.5^2 + 1^2 + 0.1^2 + 0.2^2 + (3-1)^2) / 6
        let expected = (1.0 + 0.25 + 1.0 + 0.01 + 0.04 + 4.0) / 6.0;
        assert!((value(Loss::Mse, 0.0, |x| x) - expected).abs() < 1e-6);
    }

    #[test]
    fn softmax_with_a_logits_loss_is_flagged() {
        let ce = Objective {
            loss: Loss::CrossEntropy,
            smoothing: 0.0,
        };
        assert!(ce.mismatch(Some(Activation::Softmax)).is_some());
        assert!(ce.mismatch(Some(Activation::Identity)).is_none());
        let cce = Objective {
            loss: Loss::CategoricalCrossentropy,
            smoothing: 0.0,
        };
        assert!(cce.mismatch(Some(Activation::Softmax)).is_none());
        assert!(cce.mismatch(None).is_some());
    }
}
