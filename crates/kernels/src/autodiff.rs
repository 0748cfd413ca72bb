//! [`HostKernels`] under autodiff: each forward kernel is one node of the graph whose
//! backward calls the matching backward kernel, as Burn's own `batch_norm_train` does.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;

use super::{HostKernels, dense};

type Primitive<B> = <B as burn::backend::BackendTypes>::FloatTensorPrimitive;

/// A new graph leaf holding `t`: results that take no part in differentiation.
fn constant<B: HostKernels, C: CheckpointStrategy>(t: Primitive<B>) -> FloatTensor<Autodiff<B, C>> {
    <FloatTensor<Autodiff<B, C>>>::new(t)
}

/// Hands each gradient to its parent, for the parents that take part in differentiation.
fn register_all<B: HostKernels, const N: usize>(
    grads: &mut Gradients,
    parents: [(Option<NodeId>, Primitive<B>); N],
) {
    for (parent, g) in parents {
        if let Some(id) = parent {
            grads.register::<B>(id, g);
        }
    }
}

impl<B: HostKernels, C: CheckpointStrategy> HostKernels for Autodiff<B, C> {
    fn host_dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: dense::Epilogue,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct DenseBackward;

        impl<B: HostKernels> Backward<B, 3> for DenseBackward {
            /// x, weight, the output, the activation.
            type State = (NodeId, NodeId, Primitive<B>, dense::Epilogue);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_weight, node_bias] = ops.parents.map(|n| n.map(|n| n.id));
                let grad = grads.consume::<B>(&ops.node);
                let (x, weight, output, activation) = ops.state;
                let x = checkpointer.retrieve_node_output::<Primitive<B>>(x);
                let weight = checkpointer.retrieve_node_output::<Primitive<B>>(weight);
                let g = B::host_dense_pre_activation_grad(output, grad, activation);
                if let Some(node) = node_x {
                    grads.register::<B>(node, B::host_dense_input_backward(weight, g.clone()));
                }
                if node_weight.is_some() || node_bias.is_some() {
                    let (dw, db) = B::host_dense_weight_backward(x, g);
                    register_all::<B, 2>(grads, [(node_weight, dw), (node_bias, db)]);
                }
            }
        }

        match DenseBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (x_state, weight_state) = (prep.checkpoint(&x), prep.checkpoint(&weight));
                let y = B::host_dense(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    activation,
                );
                prep.finish((x_state, weight_state, y.clone(), activation), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::host_dense(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                activation,
            )),
        }
    }

    fn host_dense_pre_activation_grad(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        activation: dense::Epilogue,
    ) -> FloatTensor<Self> {
        constant::<B, C>(B::host_dense_pre_activation_grad(
            output.into_primitive(),
            grad.into_primitive(),
            activation,
        ))
    }

    fn host_dense_weight_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dw, db) = B::host_dense_weight_backward(x.into_primitive(), grad.into_primitive());
        (constant::<B, C>(dw), constant::<B, C>(db))
    }

    fn host_dense_input_backward(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        constant::<B, C>(B::host_dense_input_backward(
            weight.into_primitive(),
            grad.into_primitive(),
        ))
    }

    fn host_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        #[derive(Debug)]
        struct BatchNormBackward;

        impl<B: HostKernels> Backward<B, 3> for BatchNormBackward {
            /// x, gamma, beta, then mean, variance, epsilon, relu.
            type State = (NodeId, NodeId, NodeId, [Primitive<B>; 2], f64, bool);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_gamma, node_beta] = ops.parents.map(|n| n.map(|n| n.id));
                let grad = grads.consume::<B>(&ops.node);
                let (x, gamma, beta, [mean, variance], epsilon, relu) = ops.state;
                let x = checkpointer.retrieve_node_output::<Primitive<B>>(x);
                let gamma = checkpointer.retrieve_node_output::<Primitive<B>>(gamma);
                let beta = checkpointer.retrieve_node_output::<Primitive<B>>(beta);
                let (dx, dgamma, dbeta) = B::host_batch_norm_train_backward(
                    x, relu, gamma, beta, mean, variance, epsilon, grad,
                );
                register_all::<B, 3>(
                    grads,
                    [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)],
                );
            }
        }

        match BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let beta_state = prep.checkpoint(&beta);
                let (y, mean, var) = B::host_batch_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                let saved = [mean.clone(), var.clone()];
                let state = (x_state, gamma_state, beta_state, saved, epsilon, relu);
                let y = prep.finish(state, y);
                (y, constant::<B, C>(mean), constant::<B, C>(var))
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = B::host_batch_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                (
                    prep.finish(y),
                    constant::<B, C>(mean),
                    constant::<B, C>(var),
                )
            }
        }
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
        // Not itself differentiated: computed on the inner values, as constants.
        let (dx, dgamma, dbeta) = B::host_batch_norm_train_backward(
            x.into_primitive(),
            relu,
            gamma.into_primitive(),
            beta.into_primitive(),
            mean.into_primitive(),
            variance.into_primitive(),
            epsilon,
            grad.into_primitive(),
        );
        (
            constant::<B, C>(dx),
            constant::<B, C>(dgamma),
            constant::<B, C>(dbeta),
        )
    }

    fn host_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct MaxPoolBackward;

        impl<B: HostKernels> Backward<B, 1> for MaxPoolBackward {
            type State = NodeId;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x] = ops.parents.map(|n| n.map(|n| n.id));
                let grad = grads.consume::<B>(&ops.node);
                let x = checkpointer.retrieve_node_output::<Primitive<B>>(ops.state);
                if let Some(node) = node_x {
                    grads.register::<B>(node, B::host_max_pool2x2_backward(x, grad));
                }
            }
        }

        match MaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                prep.finish(x_state, B::host_max_pool2x2(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::host_max_pool2x2(x.into_primitive())),
        }
    }

    fn host_max_pool2x2_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        constant::<B, C>(B::host_max_pool2x2_backward(
            x.into_primitive(),
            grad.into_primitive(),
        ))
    }

    fn host_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct ConvBackward;

        impl<B: HostKernels> Backward<B, 3> for ConvBackward {
            type State = (NodeId, NodeId, [usize; 2], [usize; 2]);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_weight, node_bias] = ops.parents.map(|n| n.map(|n| n.id));
                let grad = grads.consume::<B>(&ops.node);
                let (x, weight, stride, padding) = ops.state;
                let x = checkpointer.retrieve_node_output::<Primitive<B>>(x);
                let weight = checkpointer.retrieve_node_output::<Primitive<B>>(weight);
                if let Some(node) = node_x {
                    let dx = B::host_conv2d_input_backward(
                        x.clone(),
                        weight.clone(),
                        grad.clone(),
                        stride,
                        padding,
                    );
                    grads.register::<B>(node, dx);
                }
                if node_weight.is_some() || node_bias.is_some() {
                    let (dw, db) = B::host_conv2d_weight_backward(x, weight, grad, stride, padding);
                    register_all::<B, 2>(grads, [(node_weight, dw), (node_bias, db)]);
                }
            }
        }

        match ConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    stride,
                    padding,
                );
                let y = B::host_conv2d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    stride,
                    padding,
                );
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::host_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                stride,
                padding,
            )),
        }
    }

    fn host_conv2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dw, db) = B::host_conv2d_weight_backward(
            x.into_primitive(),
            weight.into_primitive(),
            grad.into_primitive(),
            stride,
            padding,
        );
        (constant::<B, C>(dw), constant::<B, C>(db))
    }

    fn host_conv2d_input_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        constant::<B, C>(B::host_conv2d_input_backward(
            x.into_primitive(),
            weight.into_primitive(),
            grad.into_primitive(),
            stride,
            padding,
        ))
    }
}
