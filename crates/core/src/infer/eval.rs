//! `runner eval`: test loss and accuracy, per-class accuracy and the confusion matrix, as
//! numbers and as TensorBoard scalars, text and an image.

use std::fmt::Write;
use std::path::Path;

use super::Trained;
use crate::data::DeviceSplit;
use crate::error::Result;
use crate::log::pr_curve::PrCounts;
use crate::log::{EventWriter, media};
use crate::train::objective;
use kiln_kernels::denormals::FlushDenormals;

/// The confusion matrix's tags: one tag holds one kind of summary, or TensorBoard shows neither.
pub const CONFUSION_TABLE: &str = "eval/confusion_matrix/table";
pub const CONFUSION_IMAGE: &str = "eval/confusion_matrix/image";

/// What evaluating a network on a split found.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub examples: usize,
    pub loss: f64,
    pub accuracy: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
    /// Per class, the counts behind its precision–recall curve.
    pub pr: PrCounts,
}

impl Evaluation {
    /// Accuracy on the examples of each class (`None` for a class absent from the split).
    pub fn per_class(&self) -> Vec<Option<f64>> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(k, row)| {
                let n: u64 = row.iter().sum();
                (n > 0).then(|| row[k] as f64 / n as f64)
            })
            .collect()
    }

    /// The confusion matrix as a Markdown table (rows: true class; columns: predicted).
    pub fn confusion_markdown(&self) -> String {
        let k = self.confusion.len();
        let mut out = String::from("| true \\ predicted |");
        (0..k).for_each(|c| {
            let _ = write!(out, " {c} |");
        });
        out.push_str(" accuracy |\n|---|");
        (0..=k).for_each(|_| out.push_str("---|"));
        out.push('\n');
        for (t, (row, acc)) in self.confusion.iter().zip(self.per_class()).enumerate() {
            let _ = write!(out, "| **{t}** |");
            row.iter().for_each(|n| {
                let _ = write!(out, " {n} |");
            });
            let acc = acc.map_or("-".into(), |a| format!("{:.4}", a));
            let _ = writeln!(out, " {acc} |");
        }
        out
    }

    /// The confusion matrix as plain text for a terminal.
    pub fn confusion_text(&self) -> String {
        let k = self.confusion.len();
        let width = self
            .confusion
            .iter()
            .flatten()
            .map(|n| n.to_string().len())
            .max()
            .unwrap_or(1)
            .max(k.to_string().len());
        let mut out = format!("{:>9} |", "true\\pred");
        (0..k).for_each(|c| {
            let _ = write!(out, " {c:>width$}");
        });
        out.push_str(" | accuracy\n");
        for (t, (row, acc)) in self.confusion.iter().zip(self.per_class()).enumerate() {
            let _ = write!(out, "{t:>9} |");
            row.iter().for_each(|n| {
                let _ = write!(out, " {n:>width$}");
            });
            let acc = acc.map_or("-".into(), |a| format!("{a:.4}"));
            let _ = writeln!(out, " | {acc}");
        }
        out
    }

    /// A heat map of the row-normalised matrix, `cell` pixels per entry, RGB: white for none
    /// of a class's examples, dark blue for all. The square root of the share is drawn, so
    /// that a few percent of confusions are visible beside a 98% diagonal.
    pub fn confusion_image(&self, cell: usize) -> (Vec<u8>, u32) {
        let k = self.confusion.len();
        let side = k * cell;
        let mut pixels = vec![255u8; side * side * 3];
        for (t, row) in self.confusion.iter().enumerate() {
            let n: u64 = row.iter().sum::<u64>().max(1);
            for (p, &count) in row.iter().enumerate() {
                let share = (count as f64 / n as f64).sqrt();
                let lerp = |light: f64, dark: f64| (light + (dark - light) * share).round() as u8;
                let rgb = [lerp(255.0, 8.0), lerp(255.0, 48.0), lerp(255.0, 107.0)];
                for y in t * cell..(t + 1) * cell {
                    for x in p * cell..(p + 1) * cell {
                        // A one-pixel grid between cells.
                        let edge = y % cell == 0 || x % cell == 0;
                        let at = (y * side + x) * 3;
                        pixels[at..at + 3].copy_from_slice(if edge {
                            &[200, 200, 200]
                        } else {
                            &rgb
                        });
                    }
                }
            }
        }
        (pixels, side as u32)
    }
}

/// Evaluates `trained` on `split` in batches of `batch`.
pub fn evaluate(
    trained: &Trained,
    split: &DeviceSplit,
    labels: &[u32],
    batch: usize,
) -> Evaluation {
    // The arithmetic of training's evaluation, so the figures match the run's.
    let _mode = FlushDenormals::apply(trained.config.train.flush_denormals);
    let loss_fn = objective(&trained.config);
    let k = trained.classes;
    let mut confusion = vec![vec![0u64; k]; k];
    let mut pr = PrCounts::new(k);
    let yields = trained.config.model.yields();
    let mut loss_sum = 0.0f64;
    for start in (0..split.len).step_by(batch.max(1)) {
        let end = (start + batch).min(split.len);
        let (x, y) = split.range(start, end);
        let logits = trained.network.forward(x);
        let loss: f32 = loss_fn.forward(logits.clone(), y).into_scalar();
        loss_sum += loss as f64 * (end - start) as f64;
        let probabilities = yields.probabilities(logits.clone()).into_data();
        pr.add(
            &probabilities.try_to_vec::<f32>().unwrap_or_default(),
            &labels[start..end],
        );
        let predicted = logits.argmax(1).flatten::<1>(0, 1).into_data();
        let predicted: Vec<i64> = predicted
            .convert::<i64>()
            .try_into_vec::<i64>()
            .unwrap_or_default();
        for (p, t) in predicted.iter().zip(&labels[start..end]) {
            if let (Some(row), Ok(p)) = (confusion.get_mut(*t as usize), usize::try_from(*p))
                && p < k
            {
                row[p] += 1;
            }
        }
    }
    let n = split.len.max(1);
    let correct: u64 = (0..k).map(|c| confusion[c][c]).sum();
    Evaluation {
        examples: split.len,
        loss: loss_sum / n as f64,
        accuracy: correct as f64 / n as f64,
        confusion,
        pr,
    }
}

/// Writes `eval` to a new event file in `run_dir/eval/`, at the checkpoint's epoch: scalars
/// (loss, accuracy, each class's accuracy), the confusion matrix as Markdown and as an image,
/// and each class's precision–recall curve.
pub fn write_tensorboard(
    run_dir: &Path,
    eval: &Evaluation,
    epoch: usize,
) -> Result<std::path::PathBuf> {
    let mut writer = EventWriter::create(&run_dir.join("eval"))?;
    writer.scalar("eval/loss", eval.loss as f32, epoch)?;
    writer.scalar("eval/accuracy", eval.accuracy as f32, epoch)?;
    for (k, acc) in eval.per_class().iter().enumerate() {
        if let Some(acc) = acc {
            writer.scalar(&format!("eval/class_accuracy/{k}"), *acc as f32, epoch)?;
        }
    }
    writer.summary(
        media::text(CONFUSION_TABLE, &eval.confusion_markdown()),
        epoch,
    )?;
    let (pixels, side) = eval.confusion_image(24);
    writer.summary(
        media::image(CONFUSION_IMAGE, &pixels, side, side, 3)?,
        epoch,
    )?;
    for summary in eval.pr.summaries() {
        writer.summary(summary, epoch)?;
    }
    writer.flush()?;
    Ok(writer.path().to_path_buf())
}
