//! kiln-core: the engine behind `runner`.
//!
//! Data flows one way: TOML -> [`config::ExperimentConfig`] (validated, resolved) ->
//! [`data::Dataset`] + [`model::Network`] + optimizer ([`optim`]) -> [`train`] loop ->
//! TensorBoard event files and console ([`log`]). Nothing downstream re-reads the TOML.

// No `unsafe` here: the kernels that need it are the kiln-kernels crate.
#![forbid(unsafe_code)]
// Output goes through `say!`/`say_err!` (log/console.rs), which never panic on a closed pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod backend;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod files;
pub mod folder_name;
pub mod infer;
pub mod init;
pub mod layers;
pub mod log;
pub mod memory_limit;
pub mod model;
pub mod optim;
pub mod problems;
pub mod train;

pub use error::{Error, Result};
