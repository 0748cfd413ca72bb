//! A dense layer `y = f(x @ w + b)` with its activation fused, forward and backward, each
//! product split by rows across the thread pool.
//!
//! Burn's `Linear` plus activation is several flex ops forward and backward, each allocating
//! (and zeroing, then copying) its output, and flex splits a gemm across threads only above
//! 192^3 multiply-adds. Here every product goes through [`parallel_matmul`] (one block per
//! thread), the bias is written into the output before the product accumulates onto it, and
//! the activation's derivative is taken from the output, so nothing else is kept.

use rayon::prelude::*;

use super::gemm::{Mat, parallel_matmul, parallel_product};

/// What the kernel applies to `x W + b` before writing it: the activations whose derivative
/// is a function of their output, so that the backward pass needs only `y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    Identity,
    Relu,
    Sigmoid,
    Tanh,
}

impl Epilogue {
    fn apply(self, y: &mut [f32]) {
        match self {
            Epilogue::Identity => {}
            Epilogue::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
            Epilogue::Sigmoid => y.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
            Epilogue::Tanh => y.iter_mut().for_each(|v| *v = v.tanh()),
        }
    }

    /// `f'(x)` written with `y = f(x)`.
    fn derivative(self, y: f32) -> f32 {
        match self {
            Epilogue::Identity => 1.0,
            Epilogue::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Epilogue::Sigmoid => y * (1.0 - y),
            Epilogue::Tanh => 1.0 - y * y,
        }
    }
}

/// Shapes: input `[batch, inputs]`, weight `[inputs, outputs]` (Burn's `Linear` layout).
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub batch: usize,
    pub inputs: usize,
    pub outputs: usize,
}

/// Elements below which an element-wise pass runs on one thread.
const MIN_PARALLEL_ELEMENTS: usize = 1 << 16;

/// `f` over `y` in place, in blocks of rows on rayon's pool when `y` is large (sigmoid over a
/// full-batch layer is millions of `exp`s).
fn activate(y: &mut [f32], row_len: usize, f: Epilogue) {
    if f == Epilogue::Identity {
        return;
    }
    let rows = if y.len() < MIN_PARALLEL_ELEMENTS {
        y.len()
    } else {
        (MIN_PARALLEL_ELEMENTS / row_len.max(1)).max(1) * row_len.max(1)
    };
    y.par_chunks_mut(rows.max(1))
        .for_each(|block| f.apply(block));
}

/// `f(x @ w + b)`, `[batch, outputs]`.
pub fn forward(x: &[f32], w: &[f32], b: &[f32], d: Dims, f: Epilogue) -> Vec<f32> {
    // The bias in every row: the product then accumulates onto it.
    let mut y = b.repeat(d.batch);
    if d.outputs == 0 {
        return y;
    }
    parallel_matmul(
        &mut y,
        true,
        Mat::new(x, d.batch, d.inputs),
        Mat::new(w, d.inputs, d.outputs),
    );
    activate(&mut y, d.outputs, f);
    y
}

/// The gradient of the pre-activation `x @ w + b`: `grad * f'` written with the output `y`.
pub fn pre_activation_grad(y: &[f32], grad: &[f32], f: Epilogue) -> Vec<f32> {
    if f == Epilogue::Identity {
        return grad.to_vec();
    }
    y.iter()
        .zip(grad)
        .map(|(&y, &g)| g * f.derivative(y))
        .collect()
}

/// Gradients of the weight (`x^T @ g`, `[inputs, outputs]`) and the bias (column sums of
/// `g`), given the pre-activation gradient `g`.
pub fn weight_backward(x: &[f32], g: &[f32], d: Dims) -> (Vec<f32>, Vec<f32>) {
    let dw = parallel_product(
        Mat::t(x, d.inputs, d.batch),
        Mat::new(g, d.batch, d.outputs),
    );
    let mut db = vec![0.0; d.outputs];
    if d.outputs > 0 {
        for row in g.chunks(d.outputs) {
            db.iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
    }
    (dw, db)
}

/// Gradient of the input, `g @ w^T`, `[batch, inputs]`.
pub fn input_backward(w: &[f32], g: &[f32], d: Dims) -> Vec<f32> {
    parallel_product(
        Mat::new(g, d.batch, d.outputs),
        Mat::t(w, d.outputs, d.inputs),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.731).sin()).collect()
    }

    /// `x @ w + b` by its definition.
    fn naive_pre(x: &[f32], w: &[f32], b: &[f32], d: Dims) -> Vec<f32> {
        let mut y = vec![0.0; d.batch * d.outputs];
        for i in 0..d.batch {
            for j in 0..d.outputs {
                y[i * d.outputs + j] = b[j]
                    + (0..d.inputs)
                        .map(|p| x[i * d.inputs + p] * w[p * d.outputs + j])
                        .sum::<f32>();
            }
        }
        y
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    /// Large enough to be split across threads (batch 64 x 300 x 40 > MIN_PARALLEL_WORK),
    /// with a batch that does not divide evenly.
    const D: Dims = Dims {
        batch: 67,
        inputs: 300,
        outputs: 40,
    };

    #[test]
    fn forward_is_the_activation_of_x_w_plus_b() {
        let (x, w, b) = (
            values(67 * 300, 0.0),
            values(300 * 40, 1.0),
            values(40, 2.0),
        );
        let pre = naive_pre(&x, &w, &b, D);
        close(&forward(&x, &w, &b, D, Epilogue::Identity), &pre);
        let relu: Vec<f32> = pre.iter().map(|v| v.max(0.0)).collect();
        close(&forward(&x, &w, &b, D, Epilogue::Relu), &relu);
        let sigmoid: Vec<f32> = pre.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
        close(&forward(&x, &w, &b, D, Epilogue::Sigmoid), &sigmoid);
        let tanh: Vec<f32> = pre.iter().map(|v| v.tanh()).collect();
        close(&forward(&x, &w, &b, D, Epilogue::Tanh), &tanh);
    }

    /// Gradients against central differences of `sum(f(x @ w + b) * r)` for a fixed `r`.
    #[test]
    fn backward_matches_finite_differences() {
        let d = Dims {
            batch: 5,
            inputs: 4,
            outputs: 3,
        };
        let (x, w, b) = (values(20, 0.3), values(12, 1.7), values(3, 2.9));
        let r = values(15, 4.1);
        for f in [
            Epilogue::Identity,
            Epilogue::Relu,
            Epilogue::Sigmoid,
            Epilogue::Tanh,
        ] {
            let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
                let y = forward(x, w, b, d, f);
                y.iter()
                    .zip(&r)
                    .map(|(y, r)| (*y as f64) * (*r as f64))
                    .sum()
            };
            let y = forward(&x, &w, &b, d, f);
            let g = pre_activation_grad(&y, &r, f);
            let (dw, db) = weight_backward(&x, &g, d);
            let dx = input_backward(&w, &g, d);
            let numeric = |which: usize, i: usize| {
                let h = 1e-2f32;
                let mut args = [x.clone(), w.clone(), b.clone()];
                args[which][i] += h;
                let up = loss(&args[0], &args[1], &args[2]);
                args[which][i] -= 2.0 * h;
                let down = loss(&args[0], &args[1], &args[2]);
                ((up - down) / (2.0 * h as f64)) as f32
            };
            for (which, analytic) in [(0, &dx), (1, &dw), (2, &db)] {
                for (i, a) in analytic.iter().enumerate() {
                    let n = numeric(which, i);
                    assert!(
                        (a - n).abs() < 2e-2 * (1.0 + n.abs()),
                        "{f:?} arg {which}[{i}]: {a} vs {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn parallel_blocks_give_the_single_block_result() {
        let (x, w) = (values(67 * 300, 0.5), values(300 * 40, 1.5));
        let g = values(67 * 40, 2.5);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let one = pool.install(|| (weight_backward(&x, &g, D), input_backward(&w, &g, D)));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let three = pool.install(|| (weight_backward(&x, &g, D), input_backward(&w, &g, D)));
        close(&one.0.0, &three.0.0);
        close(&one.0.1, &three.0.1);
        close(&one.1, &three.1);
    }
}
