//! Helpers shared by the integration tests.
#![allow(dead_code)]

use kiln_core::data::named::FILES;

/// Writes the synthetic dataset of `kiln_core::data::synthetic`.
pub fn write_synthetic_idx(dir: &std::path::Path, train: usize, test: usize, gz: bool) {
    kiln_core::data::synthetic::write_idx(dir, train, test, gz).unwrap();
}

/// The real MNIST folder, if this machine has it (`KILN_DATA_DIR`).
pub fn real_mnist() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(std::env::var_os("KILN_DATA_DIR")?);
    FILES
        .iter()
        .all(|f| dir.join(f).is_file() || dir.join(format!("{f}.gz")).is_file())
        .then_some(dir)
}
