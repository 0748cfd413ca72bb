//! A Keras-style `model.summary()`: each layer, its output shape, parameters and multiply-adds.

use crate::layers::LayerPlan;

/// The summary table of a planned network, ready to print.
pub fn render(name: &str, input: &[usize], plans: &[LayerPlan]) -> String {
    let rows: Vec<[String; 5]> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            [
                i.to_string(),
                p.label.clone(),
                format!("{:?}", p.output),
                grouped(p.params as u128 + p.frozen as u128),
                grouped(p.macs as u128),
            ]
        })
        .collect();
    let header = ["#", "layer", "output shape", "params", "mult-adds"].map(String::from);
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            rows.iter()
                .chain([&header])
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: &[String; 5]| {
        format!(
            "{:>w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4]
        )
    };
    let rule = "-".repeat(widths.iter().sum::<usize>() + 8);
    // u128: a network too large to train is still summed without overflow.
    let sum = |f: fn(&LayerPlan) -> usize| plans.iter().map(|p| f(p) as u128).sum::<u128>();
    let (trainable, frozen, macs) = (sum(|p| p.params), sum(|p| p.frozen), sum(|p| p.macs));
    let mut out = format!(
        "model {name}, input {input:?}\n{rule}\n{}\n{rule}\n",
        line(&header)
    );
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out.push_str(&format!(
        "{rule}\ntotal params: {} (trainable {}, non-trainable {})\nmultiply-adds per example: {}\n",
        grouped(trainable + frozen),
        grouped(trainable),
        grouped(frozen),
        grouped(macs)
    ));
    out
}

/// 248460 -> "248,460".
pub fn grouped(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(248_460), "248,460");
        assert_eq!(grouped(1_000_000), "1,000,000");
    }
}
