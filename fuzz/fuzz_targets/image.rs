//! Any bytes as a picture for `runner predict` and image folders: decoding under a pixel
//! budget (`data::picture::decode`), framing as an MNIST digit and fitting to a network's
//! input (`data::picture::fit`) must give a picture, refuse it, or find it blank, never panic;
//! a header claiming more pixels than the budget is refused before anything is decoded.
#![no_main]

use kiln_core::data::picture;
use kiln_core::infer::preprocess;
use libfuzzer_sys::fuzz_target;

/// Small enough that every input the fuzzer makes decodes in milliseconds.
const MAX_PIXELS: u64 = 1 << 20;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(image) = picture::decode(std::io::Cursor::new(bytes), MAX_PIXELS) {
        assert!(u64::from(image.width()) * u64::from(image.height()) <= MAX_PIXELS);
        let _ = preprocess::frame(&image);
        assert_eq!(picture::fit(&image, 3, [7, 5]).len(), 3 * 7 * 5);
    }
});
