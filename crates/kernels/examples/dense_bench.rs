//! Times fc_adam_l2's dense products (forward, weight and input gradients of its three
//! layers at batch 64), as one training step runs them: `RAYON_NUM_THREADS=1` for one core.
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kiln_kernels::dense::{self, Dims, Epilogue};

/// A layer's input, weight, bias and output gradient.
type Layer = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Dims);

fn main() {
    let batch = 64;
    let values = |n: usize, s: f32| (0..n).map(|k| ((k as f32 + s) * 0.37).sin()).collect();
    let layers: Vec<Layer> = [(784, 250), (250, 200), (200, 10)]
        .iter()
        .map(|&(inputs, outputs)| {
            let d = Dims {
                batch,
                inputs,
                outputs,
            };
            let x = values(batch * inputs, 0.0);
            (
                x,
                values(inputs * outputs, 1.0),
                values(outputs, 2.0),
                values(batch * outputs, 3.0),
                d,
            )
        })
        .collect();
    let step = || {
        for (n, (x, w, b, g, d)) in layers.iter().enumerate() {
            let y = dense::forward(x, w, b, *d, Epilogue::Relu);
            let g = dense::pre_activation_grad(&y, g, Epilogue::Relu);
            std::hint::black_box(dense::weight_backward(x, &g, *d));
            // The first layer's input is data: no gradient, as in training.
            if n > 0 {
                std::hint::black_box(dense::input_backward(w, &g, *d));
            }
        }
    };
    // On a pool worker, as training runs (kiln_core::train::train).
    rayon::scope(|_| {
        let mut times = Vec::new();
        for _ in 0..15 {
            for _ in 0..20 {
                step();
            }
            let t = Instant::now();
            for _ in 0..200 {
                step();
            }
            times.push(t.elapsed().as_secs_f64() / 200.0 * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "dense products of one fc_adam_l2 step: median {:.3} ms (min {:.3}) on {} threads",
            times[times.len() / 2],
            times[0],
            rayon::current_num_threads()
        );
    });
}
