//! `[data] validation`: a stratified, seeded hold-out of the training set. Each class gives
//! its share (largest remainders make the total exact), drawn by a shuffle seeded from the
//! run's seed and the class, so a resumed run holds out the same examples.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use super::{Inputs, Split};
use crate::config::Holdout;
use crate::error::{Error, Result};

/// `split` as (what is trained on, what is held out), both in the original order.
pub fn hold_out(
    split: Split,
    holdout: Holdout,
    classes: usize,
    seed: u64,
) -> Result<(Split, Split)> {
    let len = split.len();
    let total = match holdout {
        Holdout::Count(n) => n,
        Holdout::Fraction(f) => (f * len as f64).round() as usize,
    };
    if total == 0 || total >= len {
        return Err(Error::Config(format!(
            "[data] validation = {} holds out {total} of the {len} training examples; at least one must be held out and one left to train on",
            match holdout {
                Holdout::Count(n) => n.to_string(),
                Holdout::Fraction(f) => f.to_string(),
            }
        )));
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &label) in split.labels.iter().enumerate() {
        if let Some(members) = by_class.get_mut(label as usize) {
            members.push(i);
        }
    }
    let shares = shares(&by_class.iter().map(Vec::len).collect::<Vec<_>>(), total);
    let mut held = vec![false; len];
    for (class, (members, share)) in by_class.iter_mut().zip(shares).enumerate() {
        let stream = seed ^ 0x007a_11d0_u64 ^ (class as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        members.shuffle(&mut SmallRng::seed_from_u64(stream));
        for &i in &members[..share] {
            held[i] = true;
        }
    }
    let (kept, out): (Vec<usize>, Vec<usize>) = (0..len).partition(|&i| !held[i]);
    Ok((select(&split, &kept), select(&split, &out)))
}

/// `total` shared among classes of `sizes` in proportion, the rounding remainders going to
/// the classes with the largest fractions (the first on ties).
fn shares(sizes: &[usize], total: usize) -> Vec<usize> {
    let len: usize = sizes.iter().sum();
    let exact: Vec<f64> = sizes
        .iter()
        .map(|&s| total as f64 * s as f64 / len.max(1) as f64)
        .collect();
    let mut shares: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let mut left = total - shares.iter().sum::<usize>();
    for c in order.into_iter().cycle().take(sizes.len() * 2) {
        if left == 0 {
            break;
        }
        if shares[c] < sizes[c] {
            shares[c] += 1;
            left -= 1;
        }
    }
    shares
}

/// The examples `rows` of `split`, in that order.
fn select(split: &Split, rows: &[usize]) -> Split {
    let features = split.inputs.len() / split.len().max(1);
    let inputs = match &split.inputs {
        Inputs::Pixels { values, norm } => Inputs::Pixels {
            values: pick(values, rows, features),
            norm: norm.clone(),
        },
        Inputs::Floats(values) => Inputs::Floats(pick(values, rows, features)),
    };
    Split {
        inputs,
        labels: rows.iter().map(|&r| split.labels[r]).collect(),
    }
}

fn pick<T: Copy>(values: &[T], rows: &[usize], features: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(rows.len() * features);
    for &r in rows {
        out.extend_from_slice(&values[r * features..(r + 1) * features]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(labels: Vec<u32>) -> Split {
        Split {
            inputs: Inputs::Floats((0..labels.len() * 2).map(|v| v as f32).collect()),
            labels,
        }
    }

    #[test]
    fn each_class_gives_its_share_and_the_rows_move_with_their_labels() {
        // 60 of class 0, 30 of class 1, 10 of class 2; hold out 10%.
        let labels: Vec<u32> = (0..100)
            .map(|i| {
                if i < 60 {
                    0
                } else if i < 90 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let (kept, held) = hold_out(split(labels), Holdout::Fraction(0.1), 3, 7).unwrap();
        assert_eq!((kept.len(), held.len()), (90, 10));
        let count = |s: &Split, c| s.labels.iter().filter(|&&l| l == c).count();
        assert_eq!(
            [count(&held, 0), count(&held, 1), count(&held, 2)],
            [6, 3, 1]
        );
        // Row i holds [2i, 2i+1] and label of i: they still agree.
        let Inputs::Floats(v) = &held.inputs else {
            panic!()
        };
        for (k, &label) in held.labels.iter().enumerate() {
            let i = v[2 * k] as usize / 2;
            assert_eq!(
                label,
                if i < 60 {
                    0
                } else if i < 90 {
                    1
                } else {
                    2
                }
            );
        }
        // Seeded: the same seed holds out the same rows, another seed others.
        let labels: Vec<u32> = (0..100).map(|i| i % 3).collect();
        let a = hold_out(split(labels.clone()), Holdout::Count(20), 3, 1)
            .unwrap()
            .1;
        let b = hold_out(split(labels.clone()), Holdout::Count(20), 3, 1)
            .unwrap()
            .1;
        let c = hold_out(split(labels), Holdout::Count(20), 3, 2).unwrap().1;
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 20);
    }

    #[test]
    fn shares_add_up_exactly() {
        assert_eq!(shares(&[1, 1, 1], 2), vec![1, 1, 0]);
        assert_eq!(shares(&[5, 0, 5], 3).iter().sum::<usize>(), 3);
        let err = hold_out(split(vec![0, 1]), Holdout::Count(2), 2, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds out 2 of the 2"), "{err}");
    }
}
