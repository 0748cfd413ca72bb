//! [`HostKernels`] on flex: contiguous f32 views in, new tensors out.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{Shape, TensorData};

use super::{HostKernels, batch_norm, conv, dense, max_pool};

/// The tensor's values in row-major order (a copy only when it is a strided view).
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => s.into(),
        None => t
            .to_contiguous()
            .as_slice::<f32>()
            .expect("contiguous f32")
            .to_vec()
            .into(),
    }
}

/// `t` as a tensor whose f32 storage may be written in place: `t` itself when it is the only
/// owner of a buffer it covers exactly, else a contiguous copy.
fn writable(t: FlexTensor) -> FlexTensor {
    let whole = t.layout().contiguous_offsets() == Some((0, t.layout().num_elements()))
        && t.bytes().len() == t.layout().num_elements() * std::mem::size_of::<f32>();
    if whole && t.is_unique() {
        t
    } else {
        tensor(values(&t).into_owned(), dims(&t))
    }
}

fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().to_vec()
}

/// `[batch, channels, product of the rest]` of a `[batch, channels, ...]` tensor.
fn norm_dims(x: &FlexTensor) -> batch_norm::Dims {
    let d = dims(x);
    batch_norm::Dims {
        batch: d[0],
        channels: d[1],
        plane: d[2..].iter().product(),
    }
}

fn geometry(
    x: &FlexTensor,
    weight: &FlexTensor,
    stride: [usize; 2],
    padding: [usize; 2],
) -> conv::Geometry {
    let (x, w) = (dims(x), dims(weight));
    conv::Geometry {
        batch: x[0],
        c_in: x[1],
        input: [x[2], x[3]],
        c_out: w[0],
        kernel: [w[2], w[3]],
        stride,
        padding,
    }
}

/// A dense layer's shapes from its input `[batch, inputs]` and weight `[inputs, outputs]`.
fn dense_dims(x: &FlexTensor, weight: &FlexTensor) -> dense::Dims {
    let (x, w) = (dims(x), dims(weight));
    dense::Dims {
        batch: x[0],
        inputs: w[0],
        outputs: w[1],
    }
}

impl HostKernels for Flex {
    fn host_dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: dense::Epilogue,
    ) -> FloatTensor<Self> {
        let d = dense_dims(&x, &weight);
        let y = dense::forward(&values(&x), &values(&weight), &values(&bias), d, activation);
        tensor(y, [d.batch, d.outputs])
    }

    fn host_dense_pre_activation_grad(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        activation: dense::Epilogue,
    ) -> FloatTensor<Self> {
        if activation == dense::Epilogue::Identity {
            return grad;
        }
        let g = dense::pre_activation_grad(&values(&output), &values(&grad), activation);
        tensor(g, dims(&output))
    }

    fn host_dense_weight_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (x_dims, g_dims) = (dims(&x), dims(&grad));
        let d = dense::Dims {
            batch: x_dims[0],
            inputs: x_dims[1],
            outputs: g_dims[1],
        };
        let (dw, db) = dense::weight_backward(&values(&x), &values(&grad), d);
        (tensor(dw, [d.inputs, d.outputs]), tensor(db, [d.outputs]))
    }

    fn host_dense_input_backward(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        // grad is [batch, outputs]: its batch is the input's.
        let d = dense_dims(&grad, &weight);
        tensor(
            dense::input_backward(&values(&weight), &values(&grad), d),
            [d.batch, d.inputs],
        )
    }

    fn host_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let d = norm_dims(&x);
        let (y, mean, var) = batch_norm::forward(
            &values(&x),
            d,
            &values(&gamma),
            &values(&beta),
            epsilon,
            relu,
        );
        (
            tensor(y, dims(&x)),
            tensor(mean, [d.channels]),
            tensor(var, [d.channels]),
        )
    }

    fn host_batch_norm_train_backward(
        x: FloatTensor<Self>,
        relu: bool,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let d = norm_dims(&x);
        // The output's gradient becomes the input's, in its own buffer when nothing else
        // holds it.
        let mut dx = writable(grad);
        let (dgamma, dbeta) = batch_norm::backward(
            &values(&x),
            relu,
            dx.storage_mut::<f32>(),
            d,
            &values(&gamma),
            &values(&beta),
            &values(&mean),
            &values(&variance),
            epsilon,
        );
        (
            dx,
            tensor(dgamma, [d.channels]),
            tensor(dbeta, [d.channels]),
        )
    }

    fn host_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let d = dims(&x);
        let [oh, ow] = max_pool::output_size([d[2], d[3]]);
        tensor(
            max_pool::forward(&values(&x), [d[2], d[3]]),
            [d[0], d[1], oh, ow],
        )
    }

    fn host_max_pool2x2_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let d = dims(&x);
        tensor(
            max_pool::backward(&values(&x), &values(&grad), [d[2], d[3]]),
            d,
        )
    }

    fn host_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        let g = geometry(&x, &weight, stride, padding);
        let [oh, ow] = g.output();
        let y = conv::forward(&values(&x), &values(&weight), &values(&bias), g);
        tensor(y, [g.batch, g.c_out, oh, ow])
    }

    fn host_conv2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let g = geometry(&x, &weight, stride, padding);
        let (dw, db) = conv::weight_backward(&values(&x), &values(&grad), g);
        (tensor(dw, dims(&weight)), tensor(db, [g.c_out]))
    }

    fn host_conv2d_input_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        let g = geometry(&x, &weight, stride, padding);
        tensor(
            conv::input_backward(&values(&weight), &values(&grad), g),
            dims(&x),
        )
    }
}
