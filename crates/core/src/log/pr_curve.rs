//! Precision–recall curves per class for TensorBoard's PR Curves tab.
//!
//! The plugin's format (as `tensorboard.plugins.pr_curve.summary` writes it): one tensor per
//! tag, float32 `[6, thresholds]`, rows true positives, false positives, true negatives, false
//! negatives, precision, recall at the thresholds `i / (thresholds - 1)`; the metadata's
//! content is a `PrCurvePluginData` naming the number of thresholds. Counts are kept per
//! threshold bucket as examples go by, so nothing per example is stored.

use protobuf::Message;
use tensorboard_proto::plugin_pr_curve::PrCurvePluginData;
use tensorboard_proto::summary::Summary;
use tensorboard_proto::tensor::TensorProto;
use tensorboard_proto::tensor_shape::TensorShapeProto_Dim;
use tensorboard_proto::types::DataType;

use super::plugin::Plugin;

/// Thresholds per curve: 0, 0.01, ..., 1.
pub const THRESHOLDS: usize = 101;

/// The tag of class `class`'s curve (the same in `test/` and `eval/`, so that the curves of
/// training's evaluations and of `runner eval` share one card).
pub fn tag(class: usize) -> String {
    format!("pr_curve/{class}")
}

/// Per class, how many of its examples (positives) and of the others (negatives) got each
/// probability bucket for that class.
#[derive(Debug, Clone, PartialEq)]
pub struct PrCounts {
    positives: Vec<Vec<u64>>,
    negatives: Vec<Vec<u64>>,
}

impl PrCounts {
    pub fn new(classes: usize) -> Self {
        PrCounts {
            positives: vec![vec![0; THRESHOLDS]; classes],
            negatives: vec![vec![0; THRESHOLDS]; classes],
        }
    }

    /// Counts a batch: `probabilities` row-major `[labels.len(), classes]`. A probability
    /// that is not a number counts as 0.
    pub fn add(&mut self, probabilities: &[f32], labels: &[u32]) {
        let k = self.positives.len();
        for (row, &label) in probabilities.chunks_exact(k.max(1)).zip(labels) {
            for (class, &p) in row.iter().enumerate() {
                let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
                let bucket = (p * (THRESHOLDS - 1) as f32).floor() as usize;
                let counts = if label as usize == class {
                    &mut self.positives[class]
                } else {
                    &mut self.negatives[class]
                };
                counts[bucket.min(THRESHOLDS - 1)] += 1;
            }
        }
    }

    /// The `[6, THRESHOLDS]` rows of class `class`: TP, FP, TN, FN, precision, recall, where
    /// an example is predicted positive at threshold `t` when its probability is at least `t`
    /// (up to the bucket width).
    pub fn curve(&self, class: usize) -> [Vec<f32>; 6] {
        let at_least = |counts: &[u64]| -> Vec<u64> {
            let mut sums = counts.to_vec();
            for i in (0..sums.len().saturating_sub(1)).rev() {
                sums[i] += sums[i + 1];
            }
            sums
        };
        let tp = at_least(&self.positives[class]);
        let fp = at_least(&self.negatives[class]);
        let (pos, neg) = (tp[0], fp[0]);
        let f = |v: &[u64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let tn: Vec<u64> = fp.iter().map(|&x| neg - x).collect();
        let fn_: Vec<u64> = tp.iter().map(|&x| pos - x).collect();
        // TensorFlow's guard against 0/0: precision and recall are 0 where nothing is predicted.
        let ratio = |a: &[u64], b: &[u64]| -> Vec<f32> {
            a.iter()
                .zip(b)
                .map(|(&a, &b)| (a as f64 / ((a + b) as f64).max(1e-7)) as f32)
                .collect()
        };
        let precision = ratio(&tp, &fp);
        let recall = ratio(&tp, &fn_);
        [f(&tp), f(&fp), f(&tn), f(&fn_), precision, recall]
    }

    /// One summary per class, tagged [`tag`].
    pub fn summaries(&self) -> Vec<Summary> {
        (0..self.positives.len())
            .map(|class| summary(&tag(class), &self.curve(class)))
            .collect()
    }
}

fn summary(tag: &str, rows: &[Vec<f32>; 6]) -> Summary {
    let mut data = PrCurvePluginData::new();
    data.set_version(0);
    data.set_num_thresholds(THRESHOLDS as u32);
    let mut tensor = TensorProto::new();
    tensor.set_dtype(DataType::DT_FLOAT);
    for size in [6, THRESHOLDS] {
        let mut dim = TensorShapeProto_Dim::new();
        dim.set_size(size as i64);
        tensor.mut_tensor_shape().mut_dim().push(dim);
    }
    tensor.set_float_val(rows.concat());
    let mut value = Plugin::PrCurves.value(tag, data.write_to_bytes().unwrap_or_default());
    value.set_tensor(tensor);
    let mut summary = Summary::new();
    summary.mut_value().push(value);
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_thresholding_the_probabilities_by_hand() {
        // Three examples, two classes.
        let probabilities = [0.9, 0.1, 0.4, 0.6, 0.65, 0.35];
        let labels = [0, 1, 0];
        let mut counts = PrCounts::new(2);
        counts.add(&probabilities, &labels);
        let [tp, fp, tn, fn_, precision, recall] = counts.curve(0);
        // Threshold 0: everything positive. Class 0 has two examples (0.9, 0.65) and one
        // negative (0.4).
        assert_eq!((tp[0], fp[0], tn[0], fn_[0]), (2.0, 1.0, 0.0, 0.0));
        // Threshold 0.5: 0.9 and 0.65 positive, 0.4 negative -> perfect.
        assert_eq!((tp[50], fp[50], tn[50], fn_[50]), (2.0, 0.0, 1.0, 0.0));
        assert_eq!((precision[50], recall[50]), (1.0, 1.0));
        // Threshold 0.7: only 0.9.
        assert_eq!((tp[70], fn_[70], recall[70]), (1.0, 1.0, 0.5));
        // Threshold 1: nothing predicted -> precision 0 by convention.
        assert_eq!((tp[100], precision[100]), (0.0, 0.0));
        let [tp1, fp1, ..] = counts.curve(1);
        assert_eq!(
            (tp1[0], fp1[0], tp1[60], fp1[5], fp1[30]),
            (1.0, 2.0, 1.0, 2.0, 1.0)
        );
    }

    #[test]
    fn a_summary_is_a_6_by_thresholds_float_tensor_with_the_plugin_data() {
        let mut counts = PrCounts::new(3);
        counts.add(&[0.2, 0.3, 0.5], &[2]);
        let summaries = counts.summaries();
        assert_eq!(summaries.len(), 3);
        let value = &summaries[2].get_value()[0];
        assert_eq!(value.get_tag(), "pr_curve/2");
        assert_eq!(value.get_tensor().get_float_val().len(), 6 * THRESHOLDS);
        let data = PrCurvePluginData::parse_from_bytes(
            value.get_metadata().get_plugin_data().get_content(),
        )
        .unwrap();
        assert_eq!(data.get_num_thresholds(), THRESHOLDS as u32);
    }
}
