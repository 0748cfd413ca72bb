//! Any bytes as a picture for `runner predict`: decoding under a pixel budget
//! (`infer::preprocess::decode`) and framing as an MNIST digit must give a picture, refuse
//! it, or find it blank, never panic; a header claiming more pixels than the budget is
//! refused before anything is decoded.
#![no_main]

use kiln_core::infer::preprocess;
use libfuzzer_sys::fuzz_target;

/// Small enough that every input the fuzzer makes decodes in milliseconds.
const MAX_PIXELS: u64 = 1 << 20;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(picture) = preprocess::decode(std::io::Cursor::new(bytes), MAX_PIXELS) {
        assert!(u64::from(picture.width()) * u64::from(picture.height()) <= MAX_PIXELS);
        let _ = preprocess::frame(&picture);
    }
});
