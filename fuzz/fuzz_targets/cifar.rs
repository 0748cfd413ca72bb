//! Any bytes as a CIFAR archive (`[data] dir` may name one, and `verify = false` lets one
//! whose checksum differs through): reading the dataset's files out of it must give them at
//! their exact sizes or refuse it, never panic or allocate past those sizes.
#![no_main]

use kiln_core::config::DatasetKind;
use kiln_core::data::cifar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    for kind in [DatasetKind::Cifar10, DatasetKind::Cifar100] {
        let _ = cifar::extract_archive(kind, bytes);
    }
});
