//! Per-layer histograms (`[log] histograms_every`): every parameter, and every layer's output
//! before and after its activation on a fixed set of test examples, so that saturated sigmoid
//! units show up as mass piling at 0 and 1 in TensorBoard's Histograms tab.
//!
//! Tags: `weights/<NN>_<layer>/{weight,bias}` and `activations/<NN>_<layer>/{pre,post}`, where
//! `NN` is the layer's position from 0 and `<layer>` its label in `runner inspect`
//! (`02_linear_sigmoid`). The step is the epoch; epoch 0 is the network as initialised.

use burn::tensor::Tensor;

use crate::data::DeviceSplit;
use crate::error::Result;
use crate::log::{EventWriter, histogram};
use crate::model::{LayerPlan, Network};

/// Writes the histograms of `network` (in evaluation mode: BatchNorm on its running
/// statistics, no dropout) at `epoch` into `writer`, and flushes it.
pub fn write(
    writer: &mut EventWriter,
    network: &Network,
    plans: &[LayerPlan],
    examples: &DeviceSplit,
    count: usize,
    epoch: usize,
) -> Result<()> {
    let name = |index: usize| layer_name(index, plans);
    for (index, param, values) in network.parameters() {
        let tag = format!("weights/{}/{param}", name(index));
        writer.summary(histogram::summary(&tag, &host(values)), epoch)?;
    }
    let (x, _) = examples.range(0, count.min(examples.len));
    for trace in network.trace(x) {
        let layer = name(trace.index);
        let pre = format!("activations/{layer}/pre");
        writer.summary(histogram::summary(&pre, &host(trace.pre)), epoch)?;
        if let Some(post) = trace.post {
            let tag = format!("activations/{layer}/post");
            writer.summary(histogram::summary(&tag, &host(post)), epoch)?;
        }
    }
    writer.flush()
}

fn layer_name(index: usize, plans: &[LayerPlan]) -> String {
    plans
        .get(index)
        .map_or_else(|| format!("{index:02}_layer"), |p| p.tag(index))
}

fn host(values: Tensor<1>) -> Vec<f32> {
    values.into_data().try_to_vec::<f32>().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_are_numbered_as_the_config_and_safe_as_tags() {
        let plan = |label: &str| LayerPlan {
            label: label.into(),
            input: vec![],
            output: vec![],
            params: 0,
            frozen: 0,
            macs: 0,
            from: Vec::new(),
        };
        let plans = [plan("linear + sigmoid"), plan("leaky_relu(0.2)")];
        assert_eq!(layer_name(0, &plans), "00_linear_sigmoid");
        assert_eq!(layer_name(1, &plans), "01_leaky_relu_0.2");
    }
}
