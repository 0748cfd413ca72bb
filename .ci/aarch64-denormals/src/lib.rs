//! kiln-kernels's flush-to-zero module, compiled on its own for a cross target.
#[path = "../../../crates/kernels/src/denormals.rs"]
pub mod denormals;
