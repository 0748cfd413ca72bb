//! Any bytes as a checkpoint file: `checkpoint::decode` (header, length, CRC, CBOR body) and
//! the config inside must give a checkpoint or an error, never panic or allocate what a
//! damaged header claims.
#![no_main]

use kiln_core::checkpoint::{self, Checkpoint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = std::path::Path::new("fuzz.ckpt");
    if let Ok(found) = checkpoint::decode::<Checkpoint>(bytes, path) {
        let _ = found.config(path);
    }
});
