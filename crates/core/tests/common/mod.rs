//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// Writes the synthetic dataset of `kiln_core::data::synthetic`.
pub fn write_synthetic_idx(dir: &std::path::Path, train: usize, test: usize, gz: bool) {
    kiln_core::data::synthetic::write_idx(dir, train, test, gz).unwrap();
}

/// The real MNIST folder, if this machine has one: `KILN_DATA_DIR` (a relative path is taken
/// from the workspace root, where `cargo test` is typed), else kiln's cache.
pub fn real_mnist() -> std::option::Option<std::path::PathBuf> {
    use kiln_core::config::DatasetKind;
    use kiln_core::data::named::Lookup;
    let mut lookup = Lookup::from_env(DatasetKind::Mnist, None, false);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    lookup.env_dir = lookup.env_dir.map(|d| root.join(d));
    lookup.on_disk().map(|d| d.to_path_buf())
}
