//! Any bytes as a checkpoint file: `checkpoint::decode` (header, length, CRC, CBOR body) and
//! the config inside must give a checkpoint or an error, never panic or allocate what a
//! damaged header claims. Inputs that do not start with the magic are also framed as a
//! checkpoint whose header and CRC are right, so the fuzzer reaches the CBOR body (a random
//! mutation almost never keeps a CRC valid).
#![no_main]

use kiln_core::checkpoint::{self, Checkpoint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = std::path::Path::new("fuzz.ckpt");
    let framed;
    let file = if bytes.starts_with(b"KILNCKPT") {
        bytes
    } else {
        framed = [
            &b"KILNCKPT"[..],
            &checkpoint::FORMAT.to_le_bytes(),
            &(bytes.len() as u64).to_le_bytes(),
            &crc32fast::hash(bytes).to_le_bytes(),
            bytes,
        ]
        .concat();
        &framed
    };
    if let Ok(found) = checkpoint::decode::<Checkpoint>(file, path) {
        let _ = found.config(path);
    }
});
