//! CPU kernels for the layers where Burn's generic flex path is slow: dense layers with
//! their activation, training-mode BatchNorm, 2x2 max-pooling and 2-D convolution, each with
//! its own backward pass.
//!
//! They plug into Burn as a backend extension ([`HostKernels`]) implemented for `Flex` (the
//! kernels, [`flex`]) and for `Autodiff<B>` (the backward graph, [`autodiff`]), so that
//! `Tensor`s on a flex device, with or without autodiff, route to them. Any other backend
//! keeps Burn's stock layers: [`enabled`] says which to use. The math is in plain functions
//! over slices ([`dense`], [`batch_norm`], [`max_pool`], [`conv`]), each unit-tested against
//! its definition. Beside them: [`gather`] (a batch's bytes normalised as they are copied) and
//! [`denormals`] (flush-to-zero on the threads that train).

// Every `unsafe` of the workspace (but the runner's allocator call) is in this crate, in the
// modules that allow it below; each block says why it is sound (`SAFETY:`), which clippy checks.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
// Output goes to the caller; kernels never print.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod autodiff;
#[allow(unsafe_code)] // the output written once into reserved capacity, then `set_len`
pub mod batch_norm;
pub mod conv;
#[allow(unsafe_code)] // reads and writes of the thread's floating-point control register
pub mod denormals;
pub mod dense;
mod flex;
#[allow(unsafe_code)] // a batch written once into reserved capacity; prefetch intrinsics
pub mod gather;
#[allow(unsafe_code)]
mod gemm;
#[allow(unsafe_code)] // outputs written once into reserved capacity, then `set_len`
pub mod max_pool;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Dispatch, DispatchDevice, backend_extension};
use burn::tensor::{DType, Tensor};

#[backend_extension(Autodiff, Flex)]
pub trait HostKernels: burn::backend::Backend {
    /// `f(x @ weight + bias)` for `x` `[batch, inputs]` and `weight` `[inputs, outputs]`.
    fn host_dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: dense::Epilogue,
    ) -> FloatTensor<Self>;

    /// The gradient of `x @ weight + bias` from `grad` of [`Self::host_dense`]'s `output`.
    fn host_dense_pre_activation_grad(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        activation: dense::Epilogue,
    ) -> FloatTensor<Self>;

    /// Gradients (weight, bias) of a dense layer from its pre-activation gradient.
    fn host_dense_weight_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradient of a dense layer's input from its pre-activation gradient.
    fn host_dense_input_backward(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Training BatchNorm over `[batch, channels, ...]`, followed by a ReLU when `relu`:
    /// (output, batch mean, biased variance).
    fn host_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients (input, gamma, beta) of [`Self::host_batch_norm_train`] (called with the same
    /// `gamma` and `beta`, which returned `mean` and `variance`).
    #[allow(clippy::too_many_arguments)]
    fn host_batch_norm_train_backward(
        x: FloatTensor<Self>,
        relu: bool,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Max-pooling with a 2x2 window and stride 2 over `[batch, channels, h, w]`.
    fn host_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;

    fn host_max_pool2x2_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Convolution, groups 1 and dilation 1, `padding` on both sides of each dimension.
    fn host_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self>;

    /// Gradients (weight, bias) of [`Self::host_conv2d`].
    fn host_conv2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradient of the input of [`Self::host_conv2d`].
    fn host_conv2d_input_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self>;
}

/// Whether `x` can take these kernels: f32 on a flex device (with or without autodiff).
/// Calling them on any other backend would panic in Burn's dispatch.
pub fn enabled<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && matches!(x.device().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// `activation(x @ weight + bias)`.
pub fn dense(
    x: Tensor<2>,
    weight: Tensor<2>,
    bias: Tensor<1>,
    activation: dense::Epilogue,
) -> Tensor<2> {
    Tensor::from_dispatch(Dispatch::host_dense(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        activation,
    ))
}

/// Training-mode BatchNorm of `x`, then a ReLU if `relu`; returns (output, batch mean,
/// biased batch variance).
pub fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let (y, mean, var) = Dispatch::host_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
        relu,
    );
    (
        Tensor::from_dispatch(y),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

/// 2x2 max-pooling with stride 2, no padding.
pub fn max_pool2x2(x: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(Dispatch::host_max_pool2x2(x.into_dispatch()))
}

/// 2-D convolution with bias, groups 1, dilation 1, symmetric padding.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<4> {
    Tensor::from_dispatch(Dispatch::host_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        stride,
        padding,
    ))
}
