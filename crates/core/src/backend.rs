//! The backend named in the experiment -> a Burn runtime `Device`.
//!
//! Only `flex` is compiled into the default build; asking for another is a user error that
//! names the cargo feature it needs.

use burn::tensor::Device;

use crate::config::Backend;
use crate::error::{Error, Result};

/// The backends this build of kiln can run.
pub fn compiled() -> Vec<Backend> {
    vec![Backend::Flex]
}

/// The device for `backend` (without autodiff; the training loop adds it).
pub fn device(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Flex => Ok(Device::flex()),
        other => {
            let feature = match other {
                Backend::Cuda => "cuda",
                _ => "tch",
            };
            Err(Error::Config(format!(
                "backend = \"{}\" is not compiled into this build of kiln (it has: {}); it needs the cargo feature `{feature}`, which kiln does not offer yet; use backend = \"flex\"",
                other.name(),
                compiled()
                    .iter()
                    .map(|b| b.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
}

/// Whether `backend` keeps tensors in host memory, where kiln's fused optimizers
/// ([`crate::optim::fused`]) read and write parameters without a device transfer.
pub fn host_memory(backend: Backend) -> bool {
    matches!(backend, Backend::Flex)
}
