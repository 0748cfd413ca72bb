//! kiln-core's flush-to-zero module, compiled on its own for a cross target.
#[path = "../../../crates/core/src/kernels/denormals.rs"]
pub mod denormals;
