//! The network built at run time from the layer list: a Burn `Module`, so Burn's autodiff,
//! optimizers and records work on it as on any hand-written model. What each layer does is
//! its kind's business ([`crate::layers`]); this is the chain that runs them in order.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::config::{InitConfig, ModelConfig};
use crate::layers::{Activation, Features, Layer, LayerPlan, TorchTensor};

/// A sequential network.
#[derive(Module, Debug)]
pub struct Network {
    layers: Vec<Layer>,
    /// Shape of one input example, e.g. `[1, 28, 28]`.
    #[module(skip)]
    input: Vec<usize>,
}

impl Network {
    /// Builds the network `model` describes; `plans` come from [`super::shape::plan`], which
    /// has already checked that every layer fits its input.
    pub fn new(
        model: &ModelConfig,
        default_init: &InitConfig,
        input: &[usize],
        plans: &[LayerPlan],
        device: &Device,
    ) -> Self {
        let layers = model
            .layers
            .iter()
            .zip(plans)
            .map(|(spec, plan)| spec.kind().build(&plan.input, default_init, device))
            .collect();
        Network {
            layers,
            input: input.to_vec(),
        }
    }

    /// Runs a batch of flat inputs `[batch, features]` through the network; returns the last
    /// layer's output as `[batch, outputs]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut act = Features::Flat(x).reshape(&self.input);
        for layer in &self.layers {
            act = layer.module().forward(act);
        }
        act.flat()
    }

    /// The output of the first `count` layers, one flat row per example: what layer `count`
    /// reads (the embeddings the Projector shows).
    pub fn forward_until(&self, x: Tensor<2>, count: usize) -> Tensor<2> {
        let mut act = Features::Flat(x).reshape(&self.input);
        for layer in self.layers.iter().take(count) {
            act = layer.module().forward(act);
        }
        act.flat()
    }
}

/// What one layer did to a batch, for histograms: its output before and after its activation
/// (`post` is `None` when the activation is the identity).
pub struct LayerTrace {
    /// Position in the layer list, from 0.
    pub index: usize,
    pub pre: Tensor<1>,
    pub post: Option<Tensor<1>>,
}

impl Network {
    /// Runs `x` through the network, keeping each layer's output before and after its
    /// activation. Layers that only move data (flatten, reshape, pooling, dropout) are left out.
    pub fn trace(&self, x: Tensor<2>) -> Vec<LayerTrace> {
        let mut act = Features::Flat(x).reshape(&self.input);
        let mut traces = Vec::new();
        for (index, layer) in self.layers.iter().enumerate() {
            let (pre, f) = layer.module().pre_activation(act);
            let post = pre.clone().apply(f);
            if layer.module().traced() {
                traces.push(LayerTrace {
                    index,
                    pre: pre.flat_all(),
                    post: (f != Activation::Identity).then(|| post.clone().flat_all()),
                });
            }
            act = post;
        }
        traces
    }

    /// Each layer's parameters as `(layer index, "weight" | "bias", values)`.
    pub fn parameters(&self) -> Vec<(usize, &'static str, Tensor<1>)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, layer)| {
                layer
                    .module()
                    .parameters()
                    .into_iter()
                    .map(move |(name, t)| (i, name, t))
            })
            .collect()
    }

    /// Every parameter and BatchNorm statistic in the layout and under the names the
    /// equivalent torch module uses, with the index of its layer.
    pub fn torch_tensors(&self) -> Vec<(usize, TorchTensor)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, layer)| {
                layer
                    .module()
                    .torch_tensors()
                    .into_iter()
                    .map(move |t| (i, t))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Batchnorm, LayerSpec};
    use crate::model::plan;
    use burn::tensor::TensorData;

    #[test]
    fn batchnorm_uses_batch_statistics_in_training_and_running_ones_in_evaluation() {
        let model = ModelConfig {
            input: None,
            zoo: None,
            params: None,
            layers: vec![LayerSpec::Batchnorm(Batchnorm::new(Activation::Identity))],
        };
        let plans = plan(&model, &[2], 2).unwrap();
        let device = Device::flex();
        let network = Network::new(
            &model,
            &InitConfig::default(),
            &[2],
            &plans,
            &device.clone().autodiff(),
        );
        let x = || {
            Tensor::<2>::from_data(
                TensorData::new(vec![4.0f32, 10.0, 6.0, 14.0], [2, 2]),
                &device,
            )
        };

        // Training: normalised by the batch's own mean and variance -> mean 0.
        let trained: Vec<f32> = network
            .forward(x().autodiff())
            .inner()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((trained[0] + trained[2]).abs() < 1e-4, "{trained:?}");
        // Evaluation: running mean moved from 0 by momentum 0.1 towards the batch mean (5, 12).
        let evaluated: Vec<f32> = network
            .valid()
            .forward(x())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let running_mean = 0.1 * 5.0;
        // Burn updates the running variance with the batch's biased variance (1 here); torch
        // uses the unbiased one (2 here). At batch 64 the two differ by 1.6%.
        let running_var = 0.9 + 0.1 * 1.0;
        let expected = (4.0 - running_mean) / (running_var + 1e-5f32).sqrt();
        assert!(
            (evaluated[0] - expected).abs() < 1e-3,
            "{evaluated:?} vs {expected}"
        );
    }
}
