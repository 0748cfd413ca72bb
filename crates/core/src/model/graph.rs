//! The nodes of the network's graph for TensorBoard's Graphs tab ([`crate::log::graph`]): the
//! input, then one node per layer, named as its histograms are (`01_batchnorm2d_relu`), with
//! an edge from each layer it reads (several for a merge).

use crate::layers::wiring::Source;
use crate::layers::{LayerPlan, LayerSpec, Node as LayerNode};
use crate::log::graph::Node;

/// The input node's name.
pub const INPUT: &str = "input";

/// The graph of a network taking examples of shape `input` through `layers`, planned as
/// `plans`.
pub fn nodes(input: &[usize], layers: &[LayerNode], plans: &[LayerPlan]) -> Vec<Node> {
    let mut nodes = vec![Node {
        name: INPUT.into(),
        op: "Placeholder".into(),
        inputs: vec![],
        output: input.to_vec(),
        counts: vec![],
        texts: vec![],
    }];
    for (index, (layer, plan)) in layers.iter().zip(plans).enumerate() {
        let inputs = plan
            .from
            .iter()
            .map(|source| match source {
                Source::Input => INPUT.to_string(),
                Source::Layer(j) => plans[*j].tag(*j),
            })
            .collect();
        nodes.push(Node {
            name: plan.tag(index),
            op: layer.layer.type_name().into(),
            inputs,
            output: plan.output.clone(),
            counts: vec![
                ("parameters", plan.params as u64),
                ("state", plan.frozen as u64),
                ("multiply_adds", plan.macs as u64),
            ],
            texts: vec![
                ("activation", layer.layer.kind().activation().to_string()),
                ("config", inline_toml(&layer.layer)),
            ],
        });
    }
    nodes
}

/// The layer as the config's inline table would write it: `{ type = "conv2d", filters = 32 }`.
fn inline_toml(spec: &LayerSpec) -> String {
    toml::Value::try_from(spec).map_or_else(|e| format!("({e})"), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;

    #[test]
    fn a_chain_links_each_layer_to_the_one_before_with_its_shape_and_parameters() {
        let model: ModelConfig = toml::from_str(
            r#"
            input = [1, 28, 28]
            layers = [
              { type = "conv2d", filters = 4, kernel = 3, activation = "relu" },
              { type = "flatten" },
              { type = "linear", units = 10 },
            ]"#,
        )
        .unwrap();
        let plans = crate::model::plan(&model, &[1, 28, 28], 10).unwrap();
        let nodes = nodes(&[1, 28, 28], &model.layers, &plans);
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            ["input", "00_conv2d_relu", "01_flatten", "02_linear"]
        );
        assert_eq!(nodes[1].inputs, ["input"]);
        assert_eq!(nodes[3].inputs, ["01_flatten"]);
        assert_eq!(nodes[1].op, "conv2d");
        assert_eq!(nodes[1].output, [4, 26, 26]);
        assert_eq!(nodes[1].counts[0], ("parameters", 4 * 9 + 4));
        assert_eq!(nodes[3].counts[0], ("parameters", 4 * 26 * 26 * 10 + 10));
        assert_eq!(nodes[1].texts[0], ("activation", "relu".to_string()));
        assert!(
            nodes[1].texts[1].1.contains("filters = 4"),
            "{:?}",
            nodes[1].texts
        );
    }

    #[test]
    fn a_merge_draws_an_edge_from_each_layer_it_reads() {
        let model: ModelConfig = toml::from_str(
            r#"
            layers = [
              { type = "flatten", name = "x" },
              { type = "linear", units = 8, activation = "relu" },
              { type = "linear", units = 784 },
              { type = "add", from = ["x", "input"] },
              { type = "linear", units = 10 },
            ]"#,
        )
        .unwrap();
        let plans = crate::model::plan(&model, &[784], 10).unwrap();
        let nodes = nodes(&[784], &model.layers, &plans);
        assert_eq!(nodes[4].op, "add");
        assert_eq!(nodes[4].inputs, ["00_flatten", "input"]);
        assert_eq!(nodes[5].inputs, ["03_add"]);
    }
}
