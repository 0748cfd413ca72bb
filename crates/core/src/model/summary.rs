//! A Keras-style `model.summary()`: each layer, its output shape, parameters and multiply-adds,
//! and for a network that is not a chain, what each layer reads (Keras' "Connected to").

use crate::layers::wiring::{self, Source};
use crate::layers::{LayerPlan, Node};

/// The summary table of a planned network, ready to print.
pub fn render(name: &str, input: &[usize], layers: &[Node], plans: &[LayerPlan]) -> String {
    let wiring: Vec<Vec<Source>> = plans.iter().map(|p| p.from.clone()).collect();
    let graph = !wiring::is_chain(&wiring);
    let label = |i: usize| match layers.get(i).and_then(|n| n.name.as_deref()) {
        Some(name) => format!("{} ({name})", plans[i].label),
        None => plans[i].label.clone(),
    };
    let reads = |p: &LayerPlan| {
        p.from
            .iter()
            .map(|s| match s {
                Source::Input => "input".to_string(),
                Source::Layer(j) => j.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows: Vec<Vec<String>> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut row = vec![
                i.to_string(),
                if graph { label(i) } else { p.label.clone() },
                format!("{:?}", p.output),
                grouped(p.params as u128 + p.frozen as u128),
                grouped(p.macs as u128),
            ];
            if graph {
                row.push(reads(p));
            }
            row
        })
        .collect();
    let mut header: Vec<String> = ["#", "layer", "output shape", "params", "mult-adds"]
        .map(String::from)
        .to_vec();
    if graph {
        header.push("reads".into());
    }
    let columns = header.len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .chain([&header])
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Numbers right-aligned, words left-aligned, two spaces apart.
    let line = |r: &[String]| {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| match c {
                0 | 3 | 4 => format!("{cell:>w$}"),
                _ => format!("{cell:<w$}"),
            })
            .collect();
        cells.join("  ").trim_end().to_string()
    };
    let rule = "-".repeat(widths.iter().sum::<usize>() + 2 * (columns - 1));
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
