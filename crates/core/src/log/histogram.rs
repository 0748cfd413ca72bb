//! Histogram summaries for TensorBoard's Histograms and Distributions tabs.
//!
//! TensorBoard re-bins whatever buckets it is given, so kiln writes a fixed number of equal-width
//! buckets between the values' minimum and maximum (TensorFlow's convention: bucket `i` counts the
//! values in `(limit[i-1], limit[i]]`, the first one everything up to `limit[0]`).

use tensorboard_proto::summary::Summary;

use super::plugin::Plugin;

/// Buckets per histogram: enough to show saturation at 0 and 1, few enough to keep event files
/// small when every epoch is logged.
pub const BUCKETS: usize = 30;

/// A histogram summary of `values` tagged `tag`. Non-finite values are left out (a diverged run
/// stops on its loss first); an empty input gives an empty histogram.
pub fn summary(tag: &str, values: &[f32]) -> Summary {
    let mut summary = buckets(tag, values);
    for value in summary.mut_value().iter_mut() {
        value.set_metadata(Plugin::Histograms.metadata(vec![]));
    }
    summary
}

/// The legacy `histo` value (which both the server and the legacy reader understand).
fn buckets(tag: &str, values: &[f32]) -> Summary {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (mut min, mut max, mut num, mut sum, mut sum_squares) =
        (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0, 0.0);
    for v in finite.clone() {
        let v = v as f64;
        min = min.min(v);
        max = max.max(v);
        num += 1.0;
        sum += v;
        sum_squares += v * v;
    }
    if num == 0.0 {
        return tensorboard_rs::summary::histogram_raw(tag, 0.0, 0.0, 0.0, 0.0, 0.0, &[], &[]);
    }
    let (limits, counts) = if max > min {
        let width = (max - min) / BUCKETS as f64;
        let mut limits: Vec<f64> = (1..=BUCKETS).map(|i| min + width * i as f64).collect();
        // The last limit is exactly the maximum, whatever the rounding of `width * BUCKETS`.
        limits[BUCKETS - 1] = max;
        let mut counts = vec![0.0; BUCKETS];
        for v in finite {
            // ceil((v - min) / width) - 1 is the bucket whose upper limit first reaches v.
            let i = (((v as f64 - min) / width).ceil() as usize).clamp(1, BUCKETS) - 1;
            counts[i] += 1.0;
        }
        (limits, counts)
    } else {
        // All values equal (a bias initialised to zeros): one bucket.
        (vec![max], vec![num])
    };
    tensorboard_rs::summary::histogram_raw(tag, min, max, num, sum, sum_squares, &limits, &counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histo(values: &[f32]) -> tensorboard_proto::summary::HistogramProto {
        summary("t", values).get_value()[0].get_histo().clone()
    }

    #[test]
    fn counts_every_finite_value_once_in_the_bucket_that_holds_it() {
        let values: Vec<f32> = (0..=300).map(|i| i as f32).collect();
        let h = histo(&values);
        assert_eq!(h.get_num(), 301.0);
        assert_eq!(h.get_bucket().iter().sum::<f64>(), 301.0);
        assert_eq!(h.get_bucket().len(), BUCKETS);
        assert_eq!((h.get_min(), h.get_max()), (0.0, 300.0));
        assert_eq!(*h.get_bucket_limit().last().unwrap(), 300.0);
        // Buckets are (10 k, 10 (k+1)]; the first also holds the minimum 0.
        assert_eq!(h.get_bucket()[0], 11.0);
        assert_eq!(h.get_bucket()[1], 10.0);
        let mean = h.get_sum() / h.get_num();
        assert!((mean - 150.0).abs() < 1e-9);
    }

    #[test]
    fn saturated_sigmoid_outputs_pile_up_at_both_ends() {
        let mut values = vec![0.0f32; 40];
        values.extend(vec![1.0f32; 60]);
        values.push(0.5);
        let h = histo(&values);
        assert_eq!(h.get_bucket()[0], 40.0);
        assert_eq!(h.get_bucket()[BUCKETS - 1], 60.0);
        assert_eq!(h.get_bucket().iter().sum::<f64>(), 101.0);
    }

    #[test]
    fn constant_and_non_finite_and_empty_inputs() {
        let h = histo(&[0.25, 0.25, f32::NAN, f32::INFINITY]);
        assert_eq!(h.get_num(), 2.0);
        assert_eq!(h.get_bucket(), &[2.0]);
        assert_eq!(h.get_bucket_limit(), &[0.25]);
        let empty = histo(&[]);
        assert_eq!(empty.get_num(), 0.0);
        assert!(empty.get_bucket().is_empty());
    }
}
