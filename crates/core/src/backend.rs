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
    if let Some(missing) = gpu_missing(backend, index) {
        return Err(Error::Config(format!(
            "backend = \"{}\" cannot run here: {missing}; run on a machine with an NVIDIA GPU, or use backend = \"flex\"",
            backend.name()
        )));
    }
    Ok(create(backend, index))
}

/// The device of a backend compiled in, unchecked.
// Burn 0.22 marks burn-tch deprecated (CubeCL is its future); libtorch is still what runs on a
// pip-installed PyTorch, which is what kiln's users have.
#[allow(deprecated)]
fn create(backend: Backend, index: usize) -> Device {
    let _ = index;
    match backend {
        #[cfg(feature = "tch")]
        Backend::Tch => Device::libtorch(),
        #[cfg(feature = "tch")]
        Backend::TchCuda => Device::libtorch_cuda(index),
        #[cfg(feature = "cuda")]
        Backend::Cuda => Device::cuda(index),
        _ => Device::flex(),
    }
}

/// What a GPU backend lacks here (driver, device), asked before the backend itself is: CubeCL
/// and libtorch report a missing GPU by panicking, CubeCL on a thread of its own.
fn gpu_missing(backend: Backend, index: usize) -> Option<String> {
    let count = match backend {
        Backend::Flex | Backend::Tch => return None,
        Backend::TchCuda => libtorch_gpus(),
        Backend::Cuda => cuda_gpus(),
    };
    match count {
        Err(why) => Some(why),
        Ok(n) if index >= n => Some(format!(
            "device = {index}, but there {} only {n} GPU{} here (numbered from 0)",
            if n == 1 { "is" } else { "are" },
            if n == 1 { "" } else { "s" }
        )),
        Ok(_) => None,
    }
}

/// The CUDA devices libtorch sees (`Err` when none).
#[cfg(feature = "tch")]
fn libtorch_gpus() -> std::result::Result<usize, String> {
    match quietly(tch::Cuda::device_count) {
        Ok(n) if n > 0 => Ok(n as usize),
        Ok(_) => Err(
            "libtorch sees no CUDA device (no NVIDIA GPU or driver, or a CPU-only PyTorch)".into(),
        ),
        Err(why) => Err(format!("libtorch could not count CUDA devices: {why}")),
    }
}

/// The GPUs the NVIDIA driver sees (`Err` when none), asked through the library CubeCL loads.
#[cfg(feature = "cuda")]
fn cuda_gpus() -> std::result::Result<usize, String> {
    use cudarc::driver::result as driver;
    // cudarc panics when it cannot load the driver's library.
    match quietly(|| driver::init().and_then(|()| driver::device::get_count())) {
        Ok(Ok(n)) if n > 0 => Ok(n as usize),
        Ok(Ok(_)) => Err("the NVIDIA driver sees no GPU".into()),
        Ok(Err(e)) => {
            let said = e.error_string().map(|s| s.to_string_lossy().into_owned());
            let said = said.unwrap_or_else(|_| "no description".into());
            Err(format!(
                "the NVIDIA driver found no usable GPU ({:?}: {said})",
                e.0
            ))
        }
        Err(_) => Err("no NVIDIA driver: its library libcuda.so.1 was not found".into()),
    }
}

// Without the feature `device` has refused the backend before asking.
#[cfg(not(feature = "tch"))]
fn libtorch_gpus() -> std::result::Result<usize, String> {
    Err("not compiled in".into())
}
#[cfg(not(feature = "cuda"))]
fn cuda_gpus() -> std::result::Result<usize, String> {
    Err("not compiled in".into())
}

/// Runs `f`, turning a panic into the first line of its message, printed nowhere.
fn quietly<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> std::result::Result<T, String> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(f);
    std::panic::set_hook(previous);
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .map(|m| first_line(&m))
            .unwrap_or_else(|| "the device could not start".into())
    })
}

/// Whether `backend` can run here: its device is created and a small computation on it gives
/// the right answer. `Err` says why not (no GPU, no driver, a library missing).
pub fn probe(backend: Backend, index: usize) -> std::result::Result<(), String> {
    if !is_compiled(backend) {
        return Err(format!(
            "not compiled in (--features {})",
            feature(backend).unwrap_or("?")
        ));
    }
    if let Some(missing) = gpu_missing(backend, index) {
        return Err(missing);
    }
    let device = create(backend, index);
    match quietly(move || {
        let x = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
        (x.clone() * x).sum().into_scalar::<f32>()
    })? {
        v if (v - 14.0).abs() < 1e-5 => Ok(()),
        v => Err(format!("a test sum came out {v}, not 14")),
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

/// Whether `backend` computes on a GPU, where every read of a value back to the host waits for
/// the device to finish: the training loop reads losses in groups and keeps the data there.
pub fn on_gpu(backend: Backend) -> bool {
    match backend {
        Backend::Flex | Backend::Tch => false,
        Backend::TchCuda | Backend::Cuda => true,
    }
}

/// Whether `backend` keeps tensors in host memory, where kiln's fused optimizers
/// ([`crate::optim::fused`]) read and write parameters without a device transfer.
pub fn host_memory(backend: Backend) -> bool {
    matches!(backend, Backend::Flex)
}

#[cfg(test)]
mod tests {
    /// scripts/cuda-env.sh lays tracel-llvm-bundler's install marker in a folder named after
    /// the bundler's version; if `cargo update` moves the bundler, the cuda build would try to
    /// download LLVM from GitHub again. Fails until the script knows the new version.
    #[test]
    fn cuda_env_knows_the_locked_llvm_bundler() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
        let locked = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"tracel-llvm-bundler\""))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .map(|v| v.trim_matches('"').to_string())
            .expect("Cargo.lock has no tracel-llvm-bundler: did the cuda feature's graph change?");
        let script = std::fs::read_to_string(root.join("scripts/cuda-env.sh")).unwrap();
        let known = script
            .lines()
            .find_map(|l| l.trim().strip_prefix("bundler="))
            .expect("scripts/cuda-env.sh sets bundler=");
        assert_eq!(
            locked, known,
            "Cargo.lock has tracel-llvm-bundler {locked}, scripts/cuda-env.sh lays the marker for {known}: check the new bundler's build.rs and llvm-config calls, then update the script"
        );
    }
}
