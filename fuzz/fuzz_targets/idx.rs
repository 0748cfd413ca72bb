//! Any bytes as an IDX file: `data::idx::parse` must return the parsed file or an error,
//! never panic or allocate what the header merely claims. Bytes that start as gzip go
//! through `data::idx::read_from` as a `.gz` file would: a gzip bomb must be cut where its
//! header says the data ends, not inflated.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = std::path::Path::new("fuzz-idx.gz");
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let reader = flate2::read::GzDecoder::new(bytes);
        if let Ok(read) = kiln_core::data::idx::read_from(reader, path, None) {
            // What was read is exactly what its header promises: it parses.
            assert!(kiln_core::data::idx::parse(read, path).is_ok());
        }
    } else {
        let _ = kiln_core::data::idx::parse(bytes.to_vec(), path);
    }
});
