//! Named architectures that expand into kiln-core's layer specs, so that a zoo model and a
//! hand-written layer list go through the same builder. From TOML:
//!
//! ```toml
//! [model]
//! zoo = "mlp"
//! params = { hidden = [250, 200], activation = "relu" }
//! ```

#![forbid(unsafe_code)]

mod resnet;

use kiln_core::layers::{
    Activation, AvgPool2d, Batchnorm, Conv2d, Dropout, Flatten, LayerSpec, Linear, MaxPool2d, Node,
    Size2,
};
use serde::Deserialize;

pub use resnet::ResNetParams;

/// The architectures [`expand`] knows.
pub const NAMES: &[&str] = &["mlp", "cnn_bn", "lenet5", "ann5", "resnet"];

/// Expands zoo architecture `name` with `params` into layers.
pub fn expand(name: &str, params: &toml::Table) -> Result<Vec<Node>, String> {
    let chain = |layers: Vec<LayerSpec>| layers.into_iter().map(Node::from).collect();
    match name {
        "mlp" => parse::<MlpParams>(params).map(|p| chain(p.layers())),
        "cnn_bn" => parse::<CnnBnParams>(params).map(|p| chain(p.layers())),
        "lenet5" => parse::<LeNet5Params>(params).map(|p| chain(p.layers())),
        "ann5" => parse::<Ann5Params>(params).map(|p| chain(p.layers())),
        "resnet" => parse::<ResNetParams>(params).and_then(|p| p.layers()),
        other => Err(format!(
            "unknown zoo model {other:?}; valid: {}",
            NAMES.join(", ")
        )),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(params: &toml::Table) -> Result<T, String> {
    toml::Value::Table(params.clone())
        .try_into()
        .map_err(|e| format!("model.params: {}", e.to_string().trim()))
}

/// `mlp`: flatten, `hidden` linear layers (each optionally followed by BatchNorm and dropout),
/// then a linear layer of `classes` logits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpParams {
    pub hidden: Vec<usize>,
    #[serde(default = "relu")]
    pub activation: Activation,
    #[serde(default)]
    pub batchnorm: bool,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default = "ten")]
    pub classes: usize,
}

impl MlpParams {
    pub fn layers(&self) -> Vec<LayerSpec> {
        let mut layers = vec![LayerSpec::Flatten(Flatten {})];
        for &units in &self.hidden {
            if self.batchnorm {
                layers.push(linear(units, Activation::Identity));
                layers.push(LayerSpec::Batchnorm(Batchnorm::new(self.activation)));
            } else {
                layers.push(linear(units, self.activation));
            }
            if self.dropout > 0.0 {
                layers.push(LayerSpec::Dropout(Dropout { p: self.dropout }));
            }
        }
        layers.push(linear(self.classes, Activation::Identity));
        layers
    }
}

/// `cnn_bn`: the reference CNN (conv 5x5 1->`filters` pad 2, BatchNorm2d, ReLU, max-pool 2,
/// then tanh linear layers of `hidden` sizes, then `classes` logits).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnBnParams {
    #[serde(default = "cnn_filters")]
    pub filters: usize,
    #[serde(default = "cnn_hidden")]
    pub hidden: Vec<usize>,
    #[serde(default = "ten")]
    pub classes: usize,
}

impl CnnBnParams {
    pub fn layers(&self) -> Vec<LayerSpec> {
        let mut layers = vec![
            conv(self.filters, 5, 2, Activation::Identity),
            LayerSpec::Batchnorm(Batchnorm::new(Activation::Relu)),
            LayerSpec::MaxPool2d(MaxPool2d {
                kernel: Size2([2, 2]),
                stride: None,
                padding: Size2([0, 0]),
            }),
            LayerSpec::Flatten(Flatten {}),
        ];
        layers.extend(self.hidden.iter().map(|&u| linear(u, Activation::Tanh)));
        layers.push(linear(self.classes, Activation::Identity));
        layers
    }
}

/// `lenet5`: LeCun et al. 1998 on 28x28 inputs (padding 2 on the first convolution), with
/// average pooling and `activation` (tanh by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeNet5Params {
    #[serde(default = "tanh")]
    pub activation: Activation,
    #[serde(default = "ten")]
    pub classes: usize,
}

impl LeNet5Params {
    pub fn layers(&self) -> Vec<LayerSpec> {
        let pool = || {
            LayerSpec::AvgPool2d(AvgPool2d {
                kernel: Size2([2, 2]),
                stride: None,
                padding: Size2([0, 0]),
            })
        };
        vec![
            conv(6, 5, 2, self.activation),
            pool(),
            conv(16, 5, 0, self.activation),
            pool(),
            LayerSpec::Flatten(Flatten {}),
            linear(120, self.activation),
            linear(84, self.activation),
            linear(self.classes, Activation::Identity),
        ]
    }
}

/// `ann5`: the Keras tutorial's 256-128-64-32 ReLU MLP with a softmax output (pair it with
/// `loss = "categorical_crossentropy"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ann5Params {
    #[serde(default = "ten")]
    pub classes: usize,
}

impl Ann5Params {
    pub fn layers(&self) -> Vec<LayerSpec> {
        let mut layers = vec![LayerSpec::Flatten(Flatten {})];
        layers.extend([256, 128, 64, 32].map(|u| linear(u, Activation::Relu)));
        layers.push(linear(self.classes, Activation::Softmax));
        layers
    }
}

fn linear(units: usize, activation: Activation) -> LayerSpec {
    LayerSpec::Linear(Linear::new(units, activation))
}

fn conv(filters: usize, kernel: usize, padding: usize, activation: Activation) -> LayerSpec {
    LayerSpec::Conv2d(Conv2d::new(filters, kernel, padding, activation))
}

fn relu() -> Activation {
    Activation::Relu
}
fn tanh() -> Activation {
    Activation::Tanh
}
fn ten() -> usize {
    10
}
fn cnn_filters() -> usize {
    32
}
fn cnn_hidden() -> Vec<usize> {
    vec![70, 30]
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::config::ModelConfig;
    use kiln_core::model::plan;

    fn total(layers: Vec<Node>) -> usize {
        total_on(layers, &[1, 28, 28])
    }

    fn total_on(layers: Vec<Node>, input: &[usize]) -> usize {
        let model = ModelConfig {
            zoo: None,
            params: None,
            input: None,
            layers,
            blocks: Default::default(),
        };
        plan(&model, input, 10)
            .unwrap()
            .iter()
            .map(|p| p.params)
            .sum()
    }

    #[test]
    fn resnet20_has_the_papers_parameter_count_with_projection_shortcuts() {
        let layers = expand("resnet", &params("depth = 20")).unwrap();
        assert_eq!(total_on(layers.clone(), &[3, 32, 32]), 272_474);
        // 1 stem conv + 3 stages x 3 blocks x 2 convs + 2 projections + the classifier.
        let convs = layers
            .iter()
            .filter(|n| n.layer.type_name() == "conv2d")
            .count();
        assert_eq!(convs, 1 + 18 + 2);
        let adds = layers
            .iter()
            .filter(|n| n.layer.type_name() == "add")
            .count();
        assert_eq!(adds, 9);
        // Depth 56: 9 blocks per stage, 6 more than depth 20, each two 3x3 convolutions of
        // f filters with their BatchNorms: 18f^2 + 4f parameters.
        let deeper = expand("resnet", &params("depth = 56")).unwrap();
        let extra: usize = [16, 32, 64].iter().map(|f| 6 * (18 * f * f + 4 * f)).sum();
        assert_eq!(total_on(deeper, &[3, 32, 32]), 272_474 + extra);
        let err = expand("resnet", &params("depth = 21")).unwrap_err();
        assert!(err.contains("6n+2"), "{err}");
    }

    fn params(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn mlp_of_fc_adam_l2_has_its_parameter_count() {
        assert_eq!(
            total(expand("mlp", &params("hidden = [250, 200]")).unwrap()),
            248_460
        );
    }

    #[test]
    fn reference_cnn_and_classics_have_their_parameter_counts() {
        // conv 832 + BN 64 + 6272*70+70 + 70*30+30 + 30*10+10
        assert_eq!(
            total(expand("cnn_bn", &toml::Table::new()).unwrap()),
            442_446
        );
        // LeNet-5 on 28x28 with padding: 156 + 2416 + 48120 + 10164 + 850
        assert_eq!(
            total(expand("lenet5", &toml::Table::new()).unwrap()),
            61_706
        );
        // 784*256+256 + 256*128+128 + 128*64+64 + 64*32+32 + 32*10+10
        assert_eq!(total(expand("ann5", &toml::Table::new()).unwrap()), 244_522);
    }

    #[test]
    fn batchnorm_and_dropout_options_add_their_layers() {
        let layers = expand(
            "mlp",
            &params("hidden = [64]\nbatchnorm = true\ndropout = 0.5"),
        )
        .unwrap();
        let types: Vec<&str> = layers.iter().map(|l| l.layer.type_name()).collect();
        assert_eq!(
            types,
            ["flatten", "linear", "batchnorm", "dropout", "linear"]
        );
    }

    #[test]
    fn unknown_names_and_parameters_are_errors() {
        assert!(
            expand("resnet50", &toml::Table::new())
                .unwrap_err()
                .contains("mlp, cnn_bn")
        );
        let err = expand("mlp", &params("hiden = [3]")).unwrap_err();
        assert!(
            err.contains("hiden") && err.contains("model.params"),
            "{err}"
        );
    }
}
