//! Shape inference: walks the layer list from the input shape, so that a network that cannot be
//! built is refused before any data moves, with the layer and both shapes named.

use crate::config::{LayerSpec, ModelConfig};
use crate::error::{Error, Result};

/// What one layer turns into, for building and for the summary table.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerPlan {
    /// `linear`, `flatten`, `relu`, ... with its activation when it has one.
    pub label: String,
    /// Shape of one example after this layer.
    pub output: Vec<usize>,
    /// Trainable parameters.
    pub params: usize,
    /// Multiply-adds per example.
    pub macs: usize,
    /// For linear layers: input and output width.
    pub linear: Option<(usize, usize)>,
}

/// The input shape to use: `[model] input` when given (it must hold the dataset's number of
/// values), else the dataset's own.
pub fn input_shape(model: &ModelConfig, dataset_shape: &[usize]) -> Result<Vec<usize>> {
    let Some(input) = &model.input else {
        return Ok(dataset_shape.to_vec());
    };
    let want: usize = dataset_shape.iter().product();
    let have: usize = input.iter().product();
    if have != want || input.len() > 3 {
        return Err(Error::Model(format!(
            "[model] input = {input:?} ({have} values) does not fit the dataset's examples of shape {dataset_shape:?} ({want} values); use a shape of 1 to 3 sizes whose product is {want}, or remove it"
        )));
    }
    Ok(input.clone())
}

/// Plans every layer; `classes` is what the last layer must output.
pub fn plan(model: &ModelConfig, input: &[usize], classes: usize) -> Result<Vec<LayerPlan>> {
    let mut shape = input.to_vec();
    let mut plans = Vec::with_capacity(model.layers.len());
    for (i, layer) in model.layers.iter().enumerate() {
        let where_ = format!("model.layers[{i}] ({})", layer.type_name());
        let plan = match layer {
            LayerSpec::Flatten {} => LayerPlan {
                label: "flatten".into(),
                output: vec![shape.iter().product()],
                params: 0,
                macs: 0,
                linear: None,
            },
            LayerSpec::Linear {
                units,
                in_features,
                activation,
                bias,
                ..
            } => {
                let [width] = shape.as_slice() else {
                    return Err(Error::Model(format!(
                        "{where_} needs a flat input [features], but it receives {shape:?}; add {{ type = \"flatten\" }} before it"
                    )));
                };
                if let Some(declared) = in_features.filter(|d| d != width) {
                    return Err(Error::Model(format!(
                        "{where_} declares in_features = {declared}, but the layer before it outputs [{width}]; set in_features = {width} or remove it"
                    )));
                }
                let label = if activation.is_identity() {
                    "linear".to_string()
                } else {
                    format!("linear + {activation}")
                };
                LayerPlan {
                    label,
                    output: vec![*units],
                    params: width * units + if *bias { *units } else { 0 },
                    macs: width * units,
                    linear: Some((*width, *units)),
                }
            }
            other => LayerPlan {
                label: other.type_name().into(),
                output: shape.clone(),
                params: 0,
                macs: 0,
                linear: None,
            },
        };
        shape = plan.output.clone();
        plans.push(plan);
    }
    if shape != [classes] {
        let last = model.layers.len().saturating_sub(1);
        return Err(Error::Model(format!(
            "the network ends with shape {shape:?} (model.layers[{last}]), but the dataset has {classes} classes; end with {{ type = \"linear\", units = {classes} }}"
        )));
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Activation, LayerSpec};

    fn linear(units: usize, in_features: Option<usize>) -> LayerSpec {
        LayerSpec::Linear {
            units,
            in_features,
            activation: Activation::Relu,
            bias: true,
            init: None,
        }
    }

    fn model(layers: Vec<LayerSpec>) -> ModelConfig {
        ModelConfig {
            input: None,
            layers,
        }
    }

    #[test]
    fn counts_parameters_of_fc_adam_l2() {
        let m = model(vec![
            LayerSpec::Flatten {},
            linear(250, None),
            linear(200, None),
            linear(10, None),
        ]);
        let plans = plan(&m, &[1, 28, 28], 10).unwrap();
        assert_eq!(plans.iter().map(|p| p.params).sum::<usize>(), 248_460);
        assert_eq!(plans[1].output, vec![250]);
    }

    #[test]
    fn linear_on_an_image_asks_for_flatten() {
        let err = plan(&model(vec![linear(10, None)]), &[1, 28, 28], 10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.layers[0]")
                && err.contains("[1, 28, 28]")
                && err.contains("flatten"),
            "{err}"
        );
    }

    #[test]
    fn declared_width_must_match_the_previous_layer() {
        let m = model(vec![LayerSpec::Flatten {}, linear(10, Some(700))]);
        let err = plan(&m, &[1, 28, 28], 10).unwrap_err().to_string();
        assert!(
            err.contains("model.layers[1]") && err.contains("700") && err.contains("784"),
            "{err}"
        );
    }

    #[test]
    fn last_layer_must_give_one_output_per_class() {
        let m = model(vec![LayerSpec::Flatten {}, linear(12, None)]);
        let err = plan(&m, &[1, 28, 28], 10).unwrap_err().to_string();
        assert!(err.contains("[12]") && err.contains("10 classes"), "{err}");
    }

    #[test]
    fn input_must_hold_the_dataset_values() {
        let mut m = model(vec![]);
        m.input = Some(vec![1, 28, 27]);
        assert!(input_shape(&m, &[1, 28, 28]).is_err());
        m.input = Some(vec![784]);
        assert_eq!(input_shape(&m, &[1, 28, 28]).unwrap(), vec![784]);
    }
}
