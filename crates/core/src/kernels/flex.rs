//! [`HostKernels`] on flex: contiguous f32 views in, new tensors out.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{Shape, TensorData};

use super::{HostKernels, batch_norm, conv, max_pool};

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

impl HostKernels for Flex {
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
        output: FloatTensor<Self>,
        relu: bool,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let d = norm_dims(&x);
        let (dx, dgamma, dbeta) = batch_norm::backward(
            &values(&x),
            &values(&output),
            relu,
            &values(&grad),
            d,
            &values(&gamma),
            &values(&mean),
            &values(&variance),
            epsilon,
        );
        (
            tensor(dx, dims(&x)),
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
