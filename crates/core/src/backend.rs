//! The backend named in the experiment -> a Burn runtime `Device`.
//!
//! `flex` is always compiled in; `tch` and `tch-cuda` with the cargo feature `tch` (libtorch,
//! from a pip-installed PyTorch), `cuda` with the feature `cuda` (CubeCL). Asking for one that
//! is not compiled in is a user error naming the feature to build with.

use burn::tensor::Device;

use crate::config::Backend;
use crate::error::{Error, Result};

/// Every backend kiln knows, in the order `runner backends` lists them.
pub const ALL: [Backend; 4] = [Backend::Flex, Backend::Tch, Backend::TchCuda, Backend::Cuda];

/// The cargo feature that compiles `backend` in (`None`: always there).
pub fn feature(backend: Backend) -> Option<&'static str> {
    match backend {
        Backend::Flex => None,
        Backend::Tch | Backend::TchCuda => Some("tch"),
        Backend::Cuda => Some("cuda"),
    }
}

/// Whether this build has `backend`.
pub fn is_compiled(backend: Backend) -> bool {
    match backend {
        Backend::Flex => true,
        Backend::Tch | Backend::TchCuda => cfg!(feature = "tch"),
        Backend::Cuda => cfg!(feature = "cuda"),
    }
}

/// The backends this build of kiln can run.
pub fn compiled() -> Vec<Backend> {
    ALL.into_iter().filter(|b| is_compiled(*b)).collect()
}

/// The device for `backend` (GPU number `index` where it applies), without autodiff; the
/// training loop adds it.
// Burn 0.22 marks burn-tch deprecated (CubeCL is its future); libtorch is still what runs on a
// pip-installed PyTorch, which is what kiln's users have.
#[allow(deprecated)]
pub fn device(backend: Backend, index: usize) -> Result<Device> {
    if !is_compiled(backend) {
        let feature = feature(backend).unwrap_or("none");
        return Err(Error::Config(format!(
            "backend = \"{}\" is not compiled into this build of kiln (it has: {}); build with `cargo build --release --features {feature}` (README: Backends), or use backend = \"flex\"",
            backend.name(),
            compiled()
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let _ = index;
    Ok(match backend {
        #[cfg(feature = "tch")]
        Backend::Tch => Device::libtorch(),
        #[cfg(feature = "tch")]
        Backend::TchCuda => Device::libtorch_cuda(index),
        #[cfg(feature = "cuda")]
        Backend::Cuda => Device::cuda(index),
        _ => Device::flex(),
    })
}

/// Whether `backend` can run here: its device is created and a small computation on it gives
/// the right answer. `Err` says why not (no GPU, no driver, a library missing).
pub fn probe(backend: Backend, index: usize) -> std::result::Result<(), String> {
    let device = device(backend, index).map_err(|e| e.to_string())?;
    // Backends report a missing device by panicking; keep that from ending the process and
    // from printing a panic message.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(move || {
        let x = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
        (x.clone() * x).sum().into_scalar::<f32>()
    });
    std::panic::set_hook(previous);
    match result {
        Ok(v) if (v - 14.0).abs() < 1e-5 => Ok(()),
        Ok(v) => Err(format!("a test sum came out {v}, not 14")),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .map(|m| first_line(&m))
            .unwrap_or_else(|| "the device could not start".into())),
    }
}

/// The first line of a backend's panic message; libtorch's carry a C++ stack trace, escaped
/// (`\\n`) inside a `Result`'s debug text.
fn first_line(message: &str) -> String {
    let cut = message
        .find("\\n")
        .into_iter()
        .chain(message.find('\n'))
        .min()
        .unwrap_or(message.len());
    message[..cut].chars().take(300).collect()
}

/// Whether `backend` keeps tensors in host memory, where kiln's fused optimizers
/// ([`crate::optim::fused`]) read and write parameters without a device transfer.
pub fn host_memory(backend: Backend) -> bool {
    matches!(backend, Backend::Flex)
}
