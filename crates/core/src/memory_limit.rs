//! How much memory kiln may plan to use: `KILN_MEMORY_LIMIT`, else the machine's. The
//! network's training floor and a decoded image folder are both checked against it before
//! anything is allocated.

/// The memory a network may use: `KILN_MEMORY_LIMIT` (bytes, or with a K/M/G/T suffix, powers
/// of 1024) if set, else this machine's physical memory (Linux's `MemTotal`); `None` when
/// neither is known. `Err` says what is wrong with the variable.
pub fn limit() -> Result<Option<u128>, String> {
    if let Some(text) = std::env::var_os("KILN_MEMORY_LIMIT") {
        let text = text.to_string_lossy();
        return parse_size(&text).map(Some).ok_or_else(|| {
            format!(
                "environment variable KILN_MEMORY_LIMIT = {text:?} is not a size; give bytes or a number with K, M, G or T, e.g. 16G"
            )
        });
    }
    Ok(machine_memory())
}

fn machine_memory() -> Option<u128> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `123`, `16G`, `1.5T`, `512m` -> bytes.
fn parse_size(text: &str) -> Option<u128> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let scale: u128 = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches(['B', 'I'])
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value > 0.0).then_some((value * scale as f64) as u128)
}

/// Bytes as GiB with one decimal.
pub fn gib(bytes: u128) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u128 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_suffixes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("16G"), Some(16 << 30));
        assert_eq!(parse_size("512 MiB"), Some(512 << 20));
        assert_eq!(parse_size("1.5t"), Some(3 << 39));
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("lots"), None);
        assert!(machine_memory().is_some_and(|m| m > 1 << 28));
    }
}
