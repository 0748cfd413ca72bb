//! The network as TensorBoard's Graphs tab draws it: a TensorFlow `GraphDef` with one node per
//! layer, as Keras' TensorBoard callback writes it, and edges along the data flow.
//!
//! Each node carries its output shape as `_output_shapes` (the attribute the Graphs tab labels
//! edges with; the batch dimension is `?`) and kiln's own figures as attributes shown in the
//! node's info card. What the nodes are is the model's business ([`crate::model::graph`]).

use tensorboard_proto::attr_value::{AttrValue, AttrValue_ListValue};
use tensorboard_proto::graph::GraphDef;
use tensorboard_proto::node_def::NodeDef;
use tensorboard_proto::tensor_shape::{TensorShapeProto, TensorShapeProto_Dim};
use tensorboard_proto::types::DataType;

/// One node: a layer, or the network's input.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Unique in the graph; `/` would make a name scope, so it is not used.
    pub name: String,
    /// What the node computes (`Placeholder` for the input, a layer's `type` otherwise).
    pub op: String,
    /// The names of the nodes it reads.
    pub inputs: Vec<String>,
    /// The shape of one example it outputs.
    pub output: Vec<usize>,
    /// Integer attributes (parameter counts, multiply-adds).
    pub counts: Vec<(&'static str, u64)>,
    /// Text attributes (the layer's config, its activation).
    pub texts: Vec<(&'static str, String)>,
}

/// The `GraphDef` of `nodes`.
pub fn graph_def(nodes: &[Node]) -> GraphDef {
    let mut graph = GraphDef::new();
    for node in nodes {
        let mut def = NodeDef::new();
        def.set_name(node.name.clone());
        def.set_op(node.op.clone());
        def.mut_input().extend(node.inputs.iter().cloned());
        let attrs = def.mut_attr();
        attrs.insert("_output_shapes".into(), shapes(&node.output));
        let mut dtype = AttrValue::new();
        dtype.set_field_type(DataType::DT_FLOAT);
        attrs.insert("dtype".into(), dtype);
        for (key, n) in &node.counts {
            let mut v = AttrValue::new();
            v.set_i(i64::try_from(*n).unwrap_or(i64::MAX));
            attrs.insert((*key).into(), v);
        }
        for (key, text) in &node.texts {
            let mut v = AttrValue::new();
            v.set_s(text.as_bytes().to_vec());
            attrs.insert((*key).into(), v);
        }
        graph.mut_node().push(def);
    }
    graph
}

/// A one-shape list `[?, d1, d2, ...]`: the batch dimension is unknown (-1), as in Keras'.
fn shapes(example: &[usize]) -> AttrValue {
    let mut shape = TensorShapeProto::new();
    for size in std::iter::once(-1).chain(example.iter().map(|&d| d as i64)) {
        let mut dim = TensorShapeProto_Dim::new();
        dim.set_size(size);
        shape.mut_dim().push(dim);
    }
    let mut list = AttrValue_ListValue::new();
    list.mut_shape().push(shape);
    let mut value = AttrValue::new();
    value.set_list(list);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_keep_their_edges_shapes_and_attributes() {
        let nodes = [
            Node {
                name: "input".into(),
                op: "Placeholder".into(),
                inputs: vec![],
                output: vec![1, 28, 28],
                counts: vec![],
                texts: vec![],
            },
            Node {
                name: "00_linear".into(),
                op: "linear".into(),
                inputs: vec!["input".into()],
                output: vec![10],
                counts: vec![("parameters", 7850)],
                texts: vec![("activation", "relu".into())],
            },
        ];
        let graph = graph_def(&nodes);
        let linear = &graph.get_node()[1];
        assert_eq!(linear.get_input(), ["input"]);
        assert_eq!(linear.get_attr()["parameters"].get_i(), 7850);
        assert_eq!(linear.get_attr()["activation"].get_s(), b"relu");
        let dims: Vec<i64> = linear.get_attr()["_output_shapes"].get_list().get_shape()[0]
            .get_dim()
            .iter()
            .map(|d| d.get_size())
            .collect();
        assert_eq!(dims, [-1, 10]);
    }
}
