//! Any bytes as an IDX file: `data::idx::parse` must return the parsed file or an error,
//! never panic or allocate what the header merely claims.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = kiln_core::data::idx::parse(bytes.to_vec(), std::path::Path::new("fuzz-idx"));
});
