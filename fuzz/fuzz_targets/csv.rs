//! Any text as a CSV split: `data::csv::parse` must return the rows or an error naming the
//! line, never panic (BOMs, blank lines, one column, huge or odd numbers).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // The reader hands the parser text; bytes that are not UTF-8 fail before it.
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = kiln_core::data::csv::parse(text, std::path::Path::new("fuzz.csv"));
    }
});
