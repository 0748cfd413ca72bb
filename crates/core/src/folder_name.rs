//! The one rule for every name that becomes a folder under the log root: experiment names,
//! sweep names, and the run names made from grid values.

/// The longest folder name kiln makes from a name (file systems allow 255 bytes).
pub const MAX_NAME_LEN: usize = 120;

/// Why `name` cannot be a folder that kiln creates under the log root, if it cannot: the one
/// rule for experiment names, sweep names and the run names made from grid values, so that
/// nothing kiln writes can land outside `--logdir` (`..`, `/`, an empty name) or in a hidden
/// folder.
pub fn problem(name: &str) -> Option<String> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '=' | ','));
    if name.is_empty() || name.starts_with('.') || !plain {
        Some(format!(
            "{name:?} must be a plain folder name (letters, digits, `_ - . = ,`, not starting with `.`): it names a folder under the log root"
        ))
    } else if name.len() > MAX_NAME_LEN {
        Some(format!(
            "{:?}... is {} characters long; a folder name under the log root is at most {MAX_NAME_LEN}",
            &name[..20],
            name.len()
        ))
    } else {
        None
    }
}

/// `text` made into a folder name that [`problem`] accepts: other characters
/// become `_`, a leading `.` or an empty name gets a `_` before it, and a name too long is cut
/// and ends with a hash of the whole, so that distinct texts stay distinct.
pub fn from(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '=' | ',') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        name.insert(0, '_');
    }
    if name.len() > MAX_NAME_LEN {
        // FNV-1a: a stable hash (std's `DefaultHasher` may change between Rust releases).
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        name.truncate(MAX_NAME_LEN - 17);
        name.push_str(&format!("-{hash:016x}"));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_stay_under_the_root() {
        for bad in [
            "",
            "..",
            "../x",
            "/abs",
            "a/b",
            ".hidden",
            "a b",
            &"x".repeat(121),
        ] {
            assert!(problem(bad).is_some(), "{bad:?}");
            let made = from(bad);
            assert_eq!(problem(&made), None, "{bad:?} -> {made:?}");
        }
        assert_eq!(problem("std=0.1,lr=1.0"), None);
        assert_eq!(from("lr=0.1 x"), "lr=0.1_x");
        let (a, b) = (from(&"y".repeat(200)), from(&"y".repeat(201)));
        assert_ne!(a, b);
        assert_eq!(a.len(), MAX_NAME_LEN);
    }
}
