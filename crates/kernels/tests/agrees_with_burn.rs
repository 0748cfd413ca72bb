//! Each kernel-backed layer against Burn's own layer on the same weights and inputs: the
//! forward pass, and the gradients of the input and of every parameter.

use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNormConfig, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Distribution, Gradients, Tensor, activation};
use kiln_kernels::dense::Epilogue;

fn device() -> Device {
    Device::flex().autodiff()
}

fn random<const D: usize>(shape: [usize; D]) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device())
}

/// `Err` unless `a` and `b` hold the same values within `tol` (relative to the larger of 1
/// and the value's size).
fn close<const D: usize>(a: Tensor<D>, b: Tensor<D>, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let a = a.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let b = b.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * y.abs().max(1.0),
            "{what}: value {i} is {x}, Burn's is {y}"
        );
    }
}

/// The gradients of `sum(ours * upstream)` and `sum(burns * upstream)` (one backward pass
/// each: Burn consumes the graph).
fn backward<const D: usize>(
    ours: Tensor<D>,
    burns: Tensor<D>,
    upstream: &Tensor<D>,
) -> [Gradients; 2] {
    [ours, burns].map(|out| (out * upstream.clone()).sum().backward())
}

/// Both passes gave `input` the same gradient.
fn same_grad<const E: usize>(g: &[Gradients; 2], input: &Tensor<E>, what: &str) {
    close(input.grad(&g[0]).unwrap(), input.grad(&g[1]).unwrap(), what);
}

type Activation = fn(Tensor<2>) -> Tensor<2>;

#[test]
fn dense_agrees_with_burns_linear_and_activation() {
    let linear = LinearConfig::new(7, 5).init(&device());
    let x = random([4, 7]).require_grad();
    let upstream = random([4, 5]);
    let (w, b) = (linear.weight.val(), linear.bias.as_ref().unwrap().val());
    let epilogues: [(Epilogue, Activation); 4] = [
        (Epilogue::Identity, |t| t),
        (Epilogue::Relu, activation::relu),
        (Epilogue::Sigmoid, activation::sigmoid),
        (Epilogue::Tanh, |t| t.tanh()),
    ];
    for (epilogue, f) in epilogues {
        let ours = kiln_kernels::dense(x.clone(), w.clone(), b.clone(), epilogue);
        let burns = f(linear.forward(x.clone()));
        let what = format!("{epilogue:?}");
        close(ours.clone(), burns.clone(), &format!("{what} forward"));
        let g = backward(ours, burns, &upstream);
        same_grad(&g, &x, &format!("{what} input gradient"));
        same_grad(&g, &w, &format!("{what} weight gradient"));
        same_grad(&g, &b, &format!("{what} bias gradient"));
    }
}

#[test]
fn conv2d_agrees_with_burns_conv2d() {
    for (stride, padding) in [(1, 1), (2, 0), (1, 2)] {
        let conv = Conv2dConfig::new([3, 4], [3, 3])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(
                padding, padding, padding, padding,
            ))
            .init(&device());
        let x = random([2, 3, 7, 6]).require_grad();
        let (w, b) = (conv.weight.val(), conv.bias.as_ref().unwrap().val());
        let ours = kiln_kernels::conv2d(x.clone(), w.clone(), b.clone(), [stride; 2], [padding; 2]);
        let burns = conv.forward(x.clone());
        let what = format!("stride {stride} padding {padding}");
        close(ours.clone(), burns.clone(), &format!("{what} forward"));
        let upstream = random(burns.dims());
        let g = backward(ours, burns, &upstream);
        same_grad(&g, &x, &format!("{what} input gradient"));
        same_grad(&g, &w, &format!("{what} weight gradient"));
        same_grad(&g, &b, &format!("{what} bias gradient"));
    }
}

#[test]
fn max_pool2x2_agrees_with_burns_max_pool2d() {
    let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    // Odd sizes: the last row and column are dropped, as torch and Burn do.
    let x = random([2, 3, 7, 6]).require_grad();
    let ours = kiln_kernels::max_pool2x2(x.clone());
    let burns = pool.forward(x.clone());
    close(ours.clone(), burns.clone(), "forward");
    let upstream = random(burns.dims());
    let g = backward(ours, burns, &upstream);
    same_grad(&g, &x, "input gradient");
}

#[test]
fn batch_norm_train_agrees_with_burns_batch_norm_in_training() {
    fn check<const D: usize>(shape: [usize; D], relu: bool) {
        let norm = BatchNormConfig::new(shape[1]).init(&device());
        let (gamma, beta) = (norm.gamma.val(), norm.beta.val());
        let x = (random(shape) * 2.0 + 0.5).detach().require_grad();
        let (ours, mean, var) = kiln_kernels::batch_norm_train(
            x.clone(),
            gamma.clone(),
            beta.clone(),
            norm.epsilon,
            relu,
        );
        let mut burns = norm.forward(x.clone());
        if relu {
            burns = activation::relu(burns);
        }
        let what = format!("{D}-d relu {relu}");
        close(ours.clone(), burns.clone(), &format!("{what} forward"));
        // The batch statistics: Burn's running ones moved by momentum 0.1 towards them.
        let running_mean = norm.running_mean.value_sync().inner();
        close(
            mean.inner() * 0.1,
            running_mean,
            &format!("{what} batch mean"),
        );
        let running_var = norm.running_var.value_sync().inner();
        close(
            var.inner() * 0.1 + 0.9,
            running_var,
            &format!("{what} batch variance"),
        );
        let upstream = random(shape);
        let g = backward(ours, burns, &upstream);
        same_grad(&g, &x, &format!("{what} input gradient"));
        same_grad(&g, &gamma, &format!("{what} gamma gradient"));
        same_grad(&g, &beta, &format!("{what} beta gradient"));
    }
    check([8, 3, 5, 4], false);
    check([8, 3, 5, 4], true);
    check([16, 6], false);
    check([16, 6], true);
}
