//! Any text as an experiment file: `config::load_with_zoo` must return a config or an error,
//! never panic. It goes through a real file because the loader reads one (and re-reads it to
//! point errors at line:column).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("fuzz.toml");
    std::fs::write(&path, text).expect("write the input");
    let _ = kiln_core::config::load_with_zoo(&path, &[], &kiln_model_zoo::expand);
});
