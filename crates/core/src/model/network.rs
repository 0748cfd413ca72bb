//! The network built at run time from the layer list: a Burn `Module`, so Burn's autodiff,
//! optimizers and records work on it as on any hand-written model. What each layer does is
//! its kind's business ([`crate::layers`]); this runs them in order, each on what its plan
//! says it reads (merged for `add` and `concat`).

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::config::{InitConfig, ModelConfig};
use crate::layers::wiring::Source;
use crate::layers::{Activation, Features, Layer, LayerPlan, MergeOp, TorchTensor};

/// A network whose layers form a graph (a chain, most often).
#[derive(Module, Debug)]
pub struct Network {
    layers: Vec<Layer>,
    /// Shape of one input example, e.g. `[1, 28, 28]`.
    #[module(skip)]
    input: Vec<usize>,
    /// What each layer reads and how it merges that; checkpoints do not hold it (the config
    /// does), so their records are those of a chain of the same layers.
    #[module(skip)]
    reads: Vec<Reads>,
}

/// A layer's inputs.
#[derive(Debug, Clone)]
struct Reads {
    from: Vec<Source>,
    merge: Option<MergeOp>,
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
            .map(|(node, plan)| node.layer.kind().build(&plan.input, default_init, device))
            .collect();
        let reads = model
            .layers
            .iter()
            .zip(plans)
            .map(|(node, plan)| Reads {
                from: plan.from.clone(),
                merge: node.layer.merge(),
            })
            .collect();
        Network {
            layers,
            input: input.to_vec(),
            reads,
        }
    }

    /// Runs a batch of flat inputs `[batch, features]` through the network; returns the last
    /// layer's output as `[batch, outputs]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.run(x, self.layers.len(), |_, layer, x| {
            layer.module().forward(x)
        })
        .flat()
    }

    /// What layer `layer` reads (merged, for a merge), one flat row per example: the
    /// embeddings the Projector shows when `layer` is the classifier.
    pub fn forward_into(&self, x: Tensor<2>, layer: usize) -> Tensor<2> {
        self.run(x, layer, |_, layer, x| layer.module().forward(x))
            .flat()
    }

    /// Runs the layers before `until` on `x`, `step` computing each layer's output from its
    /// (merged) input; returns what layer `until` reads (the last output when `until` is past
    /// the end). An output is dropped after its last reader, and moved, not cloned, into it,
    /// so a chain holds one batch at a time as before graphs existed.
    fn run(
        &self,
        x: Tensor<2>,
        until: usize,
        mut step: impl FnMut(usize, &Layer, Features) -> Features,
    ) -> Features {
        let count = until.min(self.layers.len());
        let mut readers = vec![0usize; count + 1];
        let wanted = self.reads.get(until).map_or_else(
            || {
                vec![
                    self.layers
                        .len()
                        .checked_sub(1)
                        .map_or(Source::Input, Source::Layer),
                ]
            },
            |r| r.from.clone(),
        );
        let slot = |s: &Source| match s {
            Source::Input => 0,
            Source::Layer(j) => j + 1,
        };
        for s in self.reads[..count]
            .iter()
            .flat_map(|r| &r.from)
            .chain(&wanted)
        {
            readers[slot(s)] += 1;
        }
        let mut outputs: Vec<Option<Features>> = vec![None; count + 1];
        outputs[0] = Some(Features::Flat(x).reshape(&self.input));
        let mut take = |outputs: &mut Vec<Option<Features>>, s: &Source| {
            let k = slot(s);
            readers[k] -= 1;
            let value = if readers[k] == 0 {
                outputs[k].take()
            } else {
                outputs[k].clone()
            };
            value.expect("the wiring reads only earlier outputs, each kept until its last reader")
        };
        for (i, layer) in self.layers[..count].iter().enumerate() {
            let reads = &self.reads[i];
            let mut inputs = reads
                .from
                .iter()
                .map(|s| take(&mut outputs, s))
                .collect::<Vec<_>>();
            let first = inputs.remove(0);
            let x = match reads.merge {
                Some(op) => op.combine(first, inputs),
                None => first,
            };
            outputs[i + 1] = Some(step(i, layer, x));
        }
        let mut inputs = wanted
            .iter()
            .map(|s| take(&mut outputs, s))
            .collect::<Vec<_>>();
        let first = inputs.remove(0);
        match self.reads.get(until).and_then(|r| r.merge) {
            Some(op) => op.combine(first, inputs),
            None => first,
        }
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
        let mut traces = Vec::new();
        self.run(x, self.layers.len(), |index, layer, x| {
            let (pre, f) = layer.module().pre_activation(x);
            let post = pre.clone().apply(f);
            if layer.module().traced() {
                traces.push(LayerTrace {
                    index,
                    pre: pre.flat_all(),
                    post: (f != Activation::Identity).then(|| post.clone().flat_all()),
                });
            }
            post
        });
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
            layers: vec![LayerSpec::Batchnorm(Batchnorm::new(Activation::Identity)).into()],
            blocks: Default::default(),
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
