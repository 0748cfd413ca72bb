//! Times forward + backward of candidate layer implementations at cnn_bn's shapes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use burn::module::Module;
use burn::nn::BatchNormConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::tensor::{Device, Distribution, Tensor, s};

fn time<F: FnMut()>(name: &str, mut f: F) {
    for _ in 0..3 {
        f();
    }
    let mut v = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(f64::total_cmp);
    println!(
        "{name:40} median {:.2} ms (min {:.2})",
        v[v.len() / 2],
        v[0]
    );
}

/// `ops_bench raw` times only the slice kernels.
fn main() {
    raw();
    if std::env::args().nth(1).as_deref() == Some("raw") {
        return;
    }
    let device = Device::flex();
    let ad = device.clone().autodiff();
    let base = Tensor::<4>::random([64, 32, 28, 28], Distribution::Normal(0.0, 1.0), &device);
    let input = || base.clone().autodiff().require_grad();
    let sync = |t: Tensor<4>| {
        let _: f32 = t.sum().into_scalar();
    };
    let run = |name: &str, f: &dyn Fn(Tensor<4>) -> Tensor<4>| {
        time(&format!("{name} fwd"), || {
            sync(f(base.clone()));
        });
        time(&format!("{name} fwd+bwd"), || {
            let x = input();
            let y = f(x.clone());
            let g = y.sum().backward();
            let gx = x.grad(&g).unwrap();
            sync(gx);
        });
    };
    let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    run("maxpool stock", &|x| pool.forward(x));
    run("maxpool reshape+max_dim", &|x| {
        let [b, c, h, w] = x.dims();
        x.reshape([b, c, h / 2, 2, w / 2, 2])
            .max_dim(5)
            .max_dim(3)
            .reshape([b, c, h / 2, w / 2])
    });
    run("maxpool 4 strided slices", &|x| {
        let a = x.clone().slice(s![.., .., 0..;2, 0..;2]);
        let b = x.clone().slice(s![.., .., 0..;2, 1..;2]);
        let c = x.clone().slice(s![.., .., 1..;2, 0..;2]);
        let d = x.slice(s![.., .., 1..;2, 1..;2]);
        a.max_pair(b).max_pair(c.max_pair(d))
    });
    run("maxpool kiln kernel", &|x| kiln_kernels::max_pool2x2(x));
    let bn = BatchNormConfig::new(32).init(&ad);
    run("batchnorm kiln kernel", &|x| {
        kiln_kernels::batch_norm_train(x, bn.gamma.val(), bn.beta.val(), 1e-5, false).0
    });
    run("batchnorm+relu kiln kernel", &|x| {
        kiln_kernels::batch_norm_train(x, bn.gamma.val(), bn.beta.val(), 1e-5, true).0
    });
    run("batchnorm stock", &|x| bn.forward(x));
    run("batchnorm by reductions", &|x| {
        let [b, c, h, w] = x.dims();
        let flat = x.reshape([b, c, h * w]);
        let mean = flat.clone().mean_dim(2).mean_dim(0);
        let centred = flat - mean;
        let var = centred.clone().square().mean_dim(2).mean_dim(0);
        let y = centred / (var + 1e-5).sqrt();
        y.reshape([b, c, h, w])
    });
    run("relu", &|x| burn::tensor::activation::relu(x));
    let conv = burn::nn::conv::Conv2dConfig::new([1, 32], [5, 5])
        .with_padding(burn::nn::PaddingConfig2d::Explicit(2, 2, 2, 2))
        .init(&ad);
    let img = Tensor::<4>::random([64, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
    time("conv stock fwd+bwd(weights)", || {
        let y = conv.forward(img.clone().autodiff());
        let g = y.sum().backward();
        let gw = conv.weight.val().grad(&g).unwrap();
        sync(gw);
    });
    time("conv kiln kernel fwd+bwd(weights)", || {
        let x = img.clone().autodiff();
        let y = kiln_kernels::conv2d(
            x,
            conv.weight.val(),
            conv.bias.as_ref().unwrap().val(),
            [1, 1],
            [2, 2],
        );
        let g = y.sum().backward();
        let gw = conv.weight.val().grad(&g).unwrap();
        sync(gw);
    });
    time("conv kiln kernel fwd", || {
        sync(kiln_kernels::conv2d(
            img.clone(),
            conv.weight.val().inner(),
            conv.bias.as_ref().unwrap().val().inner(),
            [1, 1],
            [2, 2],
        ));
    });
    let _ = conv.valid();
}

/// The slice kernels alone, without Burn's graph around them.
#[allow(dead_code)]
fn raw() {
    use kiln_kernels::{batch_norm, max_pool};
    let n = 64 * 32 * 28 * 28;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let dy: Vec<f32> = (0..n)
        .map(|i| ((i * 104729) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let dims = batch_norm::Dims {
        batch: 64,
        channels: 32,
        plane: 784,
    };
    let (g, b) = (vec![1.0f32; 32], vec![0.0f32; 32]);
    let (_, mean, var) = batch_norm::forward(&x, dims, &g, &b, 1e-5, true);
    // The backward writes the input's gradient over the output's, as in a run.
    let mut grad = dy.clone();
    time("raw bn fwd", || {
        std::hint::black_box(batch_norm::forward(&x, dims, &g, &b, 1e-5, true));
    });
    time("raw bn bwd relu", || {
        grad.copy_from_slice(&dy);
        std::hint::black_box(batch_norm::backward(
            &x, true, &mut grad, dims, &g, &b, &mean, &var, 1e-5,
        ));
    });
    time("raw bn bwd", || {
        grad.copy_from_slice(&dy);
        std::hint::black_box(batch_norm::backward(
            &x, false, &mut grad, dims, &g, &b, &mean, &var, 1e-5,
        ));
    });
    time("raw pool fwd", || {
        std::hint::black_box(max_pool::forward(&x, [28, 28]));
    });
    let pdy = &dy[..n / 4];
    time("raw pool bwd", || {
        std::hint::black_box(max_pool::backward(&x, pdy, [28, 28]));
    });
}
