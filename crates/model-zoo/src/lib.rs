//! Named architectures that expand into kiln-core's layer specs, so that a zoo model and a
//! hand-written layer list go through the same builder.

use kiln_core::config::{Activation, LayerSpec};

/// A multi-layer perceptron: flatten, one linear layer per hidden size with `activation`,
/// then a linear output layer of `classes` units without activation (logits).
pub fn mlp(hidden: &[usize], activation: Activation, classes: usize) -> Vec<LayerSpec> {
    let linear = |units, activation| LayerSpec::Linear {
        units,
        in_features: None,
        activation,
        bias: true,
        init: None,
    };
    std::iter::once(LayerSpec::Flatten {})
        .chain(hidden.iter().map(|&units| linear(units, activation)))
        .chain(std::iter::once(linear(classes, Activation::Identity)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::config::ModelConfig;
    use kiln_core::model::plan;

    #[test]
    fn mlp_of_fc_adam_l2_has_its_parameter_count() {
        let layers = mlp(&[250, 200], Activation::Relu, 10);
        assert_eq!(layers.len(), 4);
        let model = ModelConfig {
            input: None,
            layers,
        };
        let plans = plan(&model, &[1, 28, 28], 10).unwrap();
        assert_eq!(plans.iter().map(|p| p.params).sum::<usize>(), 248_460);
    }
}
