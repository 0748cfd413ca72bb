//! What is wrong with a config, collected rather than returned at the first problem, so that
//! one run of `runner` names every mistake in the file.

/// Every problem found, as (dotted key, what is wrong).
#[derive(Default)]
pub struct Problems {
    pub found: Vec<(String, String)>,
}

impl Problems {
    pub fn check(&mut self, ok: bool, key: impl AsRef<str>, what: impl AsRef<str>) {
        if !ok {
            self.found
                .push((key.as_ref().to_string(), what.as_ref().to_string()));
        }
    }

    pub fn positive(&mut self, value: f64, key: &str) {
        self.check(
            value.is_finite() && value > 0.0,
            key,
            format!("must be greater than 0 (got {value})"),
        );
    }

    pub fn non_negative(&mut self, value: f64, key: &str) {
        self.check(
            value.is_finite() && value >= 0.0,
            key,
            format!("must be 0 or more (got {value})"),
        );
    }

    /// A value strictly between 0 and 1; `what` says what it does, for the message.
    pub fn between_0_and_1(&mut self, value: f64, key: &str, what: &str) {
        self.check(
            value > 0.0 && value < 1.0,
            key,
            format!("must be between 0 and 1, exclusive (got {value}): {what}"),
        );
    }

    pub fn fraction(&mut self, value: f64, key: &str) {
        self.check(
            (0.0..1.0).contains(&value),
            key,
            format!("must be in [0, 1) (got {value})"),
        );
    }
}

/// ` (did you mean `x`?)` when a valid name is a small edit away.
pub fn suggest(found: &str, valid: &[&str]) -> String {
    valid
        .iter()
        .map(|v| (edit_distance(found, v), v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 3))
        .min()
        .map(|(_, v)| format!(" (did you mean `{v}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(suggest("lrr", &["lr", "betas"]), " (did you mean `lr`?)");
        assert_eq!(
            suggest("adamm", &["sgd", "adam", "adamw"]),
            " (did you mean `adam`?)"
        );
        assert_eq!(suggest("zzzzzz", &["lr", "betas"]), "");
    }
}
