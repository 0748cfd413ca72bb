//! Burn's linear, conv, max-pool and BatchNorm layers, run through [`crate::kernels`] where those
//! cover the layer's settings and the tensor is on flex, and through the layer's own
//! `forward` otherwise. Same parameters, same results (within rounding), same running
//! statistics.

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::tensor::Tensor;

use crate::config::ActivationFn;
use crate::kernels;
use crate::kernels::dense::Activation;

/// `linear` followed by `f` in one kernel, when the layer has a bias, `f` is one the kernel
/// fuses and `x` is on flex; `None` otherwise, for the caller to run Burn's layer.
pub fn dense(linear: &Linear, f: ActivationFn, x: &Tensor<2>) -> Option<Tensor<2>> {
    let fused = match f {
        ActivationFn::Identity => Activation::Identity,
        ActivationFn::Relu => Activation::Relu,
        ActivationFn::Sigmoid => Activation::Sigmoid,
        ActivationFn::Tanh => Activation::Tanh,
        _ => return None,
    };
    let bias = linear.bias.as_ref().filter(|_| kernels::enabled(x))?;
    Some(kernels::dense(
        x.clone(),
        linear.weight.val(),
        bias.val(),
        fused,
    ))
}

pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let fits = conv.dilation == [1, 1] && conv.groups == 1 && kernels::enabled(&x);
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    };
    match (padding, &conv.bias) {
        (Some(padding), Some(bias)) if fits => {
            kernels::conv2d(x, conv.weight.val(), bias.val(), conv.stride, padding)
        }
        _ => conv.forward(x),
    }
}

pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let two = pool.kernel_size == [2, 2] && pool.stride == [2, 2] && pool.dilation == [1, 1];
    let unpadded = matches!(
        pool.padding,
        PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
    );
    if two && unpadded && !pool.ceil_mode && kernels::enabled(&x) {
        kernels::max_pool2x2(x)
    } else {
        pool.forward(x)
    }
}

/// Training-mode BatchNorm (an autodiff device and a layer not frozen, Burn's own test),
/// followed by a ReLU when `relu`, through the kernels; the batch statistics are folded into
/// the running ones with Burn's momentum rule. `None` when the kernels do not apply: the
/// caller then runs Burn's layer.
pub fn batch_norm_train<const D: usize>(
    norm: &BatchNorm,
    x: &Tensor<D>,
    relu: bool,
) -> Option<Tensor<D>> {
    let training = x.device().is_autodiff() && norm.training.is_enabled();
    if !training || !kernels::enabled(x) {
        return None;
    }
    let device = x.device();
    let (gamma, beta) = (norm.gamma.val(), norm.beta.val());
    let (y, mean, var) = kernels::batch_norm_train(x.clone(), gamma, beta, norm.epsilon, relu);
    let momentum = norm.momentum;
    let update = |running: Tensor<1>, batch: Tensor<1>| {
        (running.to_device(&device) * (1.0 - momentum) + batch.detach() * momentum).detach()
    };
    // Burn keeps each update pending until the next `value_sync`; a checkpoint folds it in
    // first (`checkpoint::network_bytes`), for Burn's own BatchNorm as for this one.
    for (running, batch) in [(&norm.running_mean, mean), (&norm.running_var, var)] {
        running.update(update(running.value_sync(), batch));
    }
    Some(y)
}
