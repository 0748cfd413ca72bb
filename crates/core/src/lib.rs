//! kiln-core: the engine behind `runner`.
//!
//! Data flows one way: TOML -> [`config::ExperimentConfig`] (validated, resolved) ->
//! [`data::Dataset`] + [`model::Network`] + optimizer ([`optim`]) -> [`train`] loop ->
//! TensorBoard event files and console ([`log`]). Nothing downstream re-reads the TOML.

// The one `unsafe` block is the gemm call in kernels/gemm.rs, justified there.
#![deny(unsafe_code)]

pub mod backend;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod infer;
pub mod kernels;
pub mod log;
pub mod model;
pub mod optim;
pub mod train;

pub use error::{Error, Result};
