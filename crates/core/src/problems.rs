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

    pub fn fraction(&mut self, value: f64, key: &str) {
        self.check(
            (0.0..1.0).contains(&value),
            key,
            format!("must be in [0, 1) (got {value})"),
        );
    }
}
