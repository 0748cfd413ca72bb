//! Shape inference: walks the layer list from the input shape, so that a network that cannot be
//! built is refused before any data moves, with the layer and both shapes named.

use crate::config::{LayerSpec, ModelConfig};
use crate::error::{Error, Result};

/// What one layer turns into, for building and for the summary table.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerPlan {
    /// `linear`, `conv2d + relu`, `max_pool2d`, ...
    pub label: String,
    /// Shape of one example before this layer.
    pub input: Vec<usize>,
    /// Shape of one example after this layer.
    pub output: Vec<usize>,
    /// Trainable parameters.
    pub params: usize,
    /// Parameters that are state, not trained (BatchNorm's running mean and variance).
    pub frozen: usize,
    /// Multiply-adds per example.
    pub macs: usize,
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
    let plans = plan_layers(model, input)?;
    check_classes(model, &plans, input, classes, "")?;
    Ok(plans)
}

/// Each layer's plan, from the input shape through the layers in order.
pub fn plan_layers(model: &ModelConfig, input: &[usize]) -> Result<Vec<LayerPlan>> {
    let mut shape = input.to_vec();
    let mut plans = Vec::with_capacity(model.layers.len());
    for (i, layer) in model.layers.iter().enumerate() {
        let plan = plan_layer(layer, &shape).map_err(|why| {
            Error::Model(format!("model.layers[{i}] ({}) {why}", layer.type_name()))
        })?;
        shape = plan.output.clone();
        plans.push(plan);
    }
    Ok(plans)
}

/// `Err` unless the network ends with one output per class; `why` says where the number of
/// classes came from, when that helps ("counted from the labels: ...").
pub fn check_classes(
    model: &ModelConfig,
    plans: &[LayerPlan],
    input: &[usize],
    classes: usize,
    why: &str,
) -> Result<()> {
    let shape = plans.last().map_or(input, |p| &p.output[..]);
    if shape != [classes] {
        let last = model.layers.len().saturating_sub(1);
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(" ({why})")
        };
        return Err(Error::Model(format!(
            "the network ends with shape {shape:?} (model.layers[{last}]), but the dataset has {classes} classes{why}; end with {{ type = \"linear\", units = {classes} }}"
        )));
    }
    Ok(())
}

/// One layer's plan from its input shape; `Err` completes "model.layers[i] (type) ...".
fn plan_layer(layer: &LayerSpec, shape: &[usize]) -> std::result::Result<LayerPlan, String> {
    let mut plan = LayerPlan {
        label: layer.type_name().to_string(),
        input: shape.to_vec(),
        output: shape.to_vec(),
        params: 0,
        frozen: 0,
        macs: 0,
    };
    let with_activation = |label: &str, activation: &crate::config::Activation| {
        if activation.is_identity() {
            label.to_string()
        } else {
            format!("{label} + {activation}")
        }
    };
    match layer {
        LayerSpec::Flatten {} => plan.output = vec![product(shape)?],
        LayerSpec::Reshape { shape: to } => {
            let (have, want) = (product(shape)?, product(to)?);
            if have != want || to.is_empty() || to.len() > 3 {
                return Err(format!(
                    "cannot reshape {shape:?} ({have} values) into {to:?} ({want} values); give 1 to 3 sizes whose product is {have}"
                ));
            }
            plan.output = to.clone();
        }
        LayerSpec::Linear {
            units,
            in_features,
            activation,
            bias,
            ..
        } => {
            let [width] = *shape else {
                return Err(format!(
                    "needs a flat input [features], but it receives {shape:?}; add {{ type = \"flatten\" }} before it"
                ));
            };
            if let Some(declared) = in_features.filter(|&d| d != width) {
                return Err(format!(
                    "declares in_features = {declared}, but the layer before it outputs [{width}]; set in_features = {width} or remove it"
                ));
            }
            plan.label = with_activation("linear", activation);
            plan.output = vec![*units];
            plan.macs = product(&[width, *units])?;
            plan.params = plan.macs + if *bias { *units } else { 0 };
        }
        LayerSpec::Conv2d {
            filters,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            activation,
            bias,
            ..
        } => {
            let [channels, h, w] = image(shape)?;
            if *groups == 0 || channels % groups != 0 || filters % groups != 0 {
                return Err(format!(
                    "has groups = {groups}, which must divide both its {channels} input channels and its {filters} filters"
                ));
            }
            let out = [0, 1].map(|d| {
                conv_out(
                    [h, w][d],
                    kernel.0[d],
                    stride.0[d],
                    padding.0[d],
                    dilation.0[d],
                )
            });
            let [Some(oh), Some(ow)] = out else {
                return Err(format!(
                    "with kernel {:?}, stride {:?}, padding {:?}, dilation {:?} does not fit its input {shape:?}",
                    kernel.0, stride.0, padding.0, dilation.0
                ));
            };
            let weights = product(&[*filters, channels / groups, kernel.0[0], kernel.0[1]])?;
            plan.label = with_activation("conv2d", activation);
            plan.output = vec![*filters, oh, ow];
            plan.params = weights + if *bias { *filters } else { 0 };
            plan.macs = product(&[weights, oh, ow])?;
        }
        LayerSpec::Batchnorm { activation, .. } => {
            let features = match *shape {
                [f] => f,
                [c, _, _] => c,
                _ => {
                    return Err(format!(
                        "needs [features] or [channels, height, width], not {shape:?}"
                    ));
                }
            };
            let kind = if shape.len() == 1 {
                "batchnorm1d"
            } else {
                "batchnorm2d"
            };
            plan.label = with_activation(kind, activation);
            plan.params = 2 * features;
            plan.frozen = 2 * features;
        }
        LayerSpec::MaxPool2d {
            kernel,
            stride,
            padding,
        }
        | LayerSpec::AvgPool2d {
            kernel,
            stride,
            padding,
        } => {
            let [c, h, w] = image(shape)?;
            let stride = stride.unwrap_or(*kernel);
            let out =
                [0, 1].map(|d| conv_out([h, w][d], kernel.0[d], stride.0[d], padding.0[d], 1));
            let [Some(oh), Some(ow)] = out else {
                return Err(format!(
                    "with kernel {:?}, stride {:?}, padding {:?} does not fit its input {shape:?}",
                    kernel.0, stride.0, padding.0
                ));
            };
            plan.output = vec![c, oh, ow];
        }
        LayerSpec::AdaptiveAvgPool2d { output } => {
            let [c, ..] = image(shape)?;
            plan.output = vec![c, output.0[0], output.0[1]];
        }
        LayerSpec::Dropout { .. } => {}
        other => {
            if let Some(activation) = other.as_activation() {
                plan.label = activation.to_string();
            }
        }
    }
    Ok(plan)
}

/// The product of `sizes`; `Err` when it does not fit in 64 bits (no machine holds that).
fn product(sizes: &[usize]) -> std::result::Result<usize, String> {
    sizes
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            format!("has sizes {sizes:?} whose product overflows 64 bits; make the layer smaller")
        })
}

fn image(shape: &[usize]) -> std::result::Result<[usize; 3], String> {
    match *shape {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(format!(
            "needs an image input [channels, height, width], but it receives {shape:?}; set [model] input = [1, 28, 28] or add {{ type = \"reshape\", shape = [...] }} before it"
        )),
    }
}

/// torch's output size of a convolution or pooling window; `None` when it does not fit.
fn conv_out(
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Option<usize> {
    let span = dilation
        .checked_mul(kernel.checked_sub(1)?)?
        .checked_add(1)?;
    let padded = size.checked_add(padding.checked_mul(2)?)?;
    if stride == 0 || padded < span {
        return None;
    }
    Some((padded - span) / stride + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Activation, LayerSpec, Size2};

    fn linear(units: usize, in_features: Option<usize>) -> LayerSpec {
        LayerSpec::Linear {
            units,
            in_features,
            activation: Activation::Relu,
            bias: true,
            init: None,
        }
    }

    fn conv(filters: usize, kernel: usize, padding: usize) -> LayerSpec {
        LayerSpec::Conv2d {
            filters,
            kernel: Size2([kernel, kernel]),
            stride: Size2([1, 1]),
            padding: Size2([padding, padding]),
            dilation: Size2([1, 1]),
            groups: 1,
            activation: Activation::Relu,
            bias: true,
            init: None,
        }
    }

    #[test]
    fn plans_the_reference_cnn() {
        let m = model(vec![
            conv(32, 5, 2),
            LayerSpec::Batchnorm {
                eps: 1e-5,
                momentum: 0.1,
                activation: Activation::Relu,
            },
            LayerSpec::MaxPool2d {
                kernel: Size2([2, 2]),
                stride: None,
                padding: Size2([0, 0]),
            },
            LayerSpec::Flatten {},
            linear(70, None),
            linear(30, None),
            linear(10, None),
        ]);
        let plans = plan(&m, &[1, 28, 28], 10).unwrap();
        assert_eq!(plans[0].output, vec![32, 28, 28]);
        assert_eq!(plans[0].params, 32 * 25 + 32);
        assert_eq!(plans[1].label, "batchnorm2d + relu");
        assert_eq!((plans[1].params, plans[1].frozen), (64, 64));
        assert_eq!(plans[2].output, vec![32, 14, 14]);
        assert_eq!(plans[3].output, vec![6272]);
        let total: usize = plans.iter().map(|p| p.params).sum();
        assert_eq!(
            total,
            832 + 64 + 6272 * 70 + 70 + 70 * 30 + 30 + 30 * 10 + 10
        );
    }

    #[test]
    fn a_kernel_larger_than_its_input_is_refused() {
        let m = model(vec![conv(4, 30, 0)]);
        let err = plan(&m, &[1, 28, 28], 10).unwrap_err().to_string();
        assert!(
            err.contains("model.layers[0] (conv2d)") && err.contains("does not fit"),
            "{err}"
        );
        assert_eq!(conv_out(28, 5, 1, 2, 1), Some(28));
        assert_eq!(conv_out(28, 2, 2, 0, 1), Some(14));
        assert_eq!(conv_out(5, 3, 2, 0, 2), Some(1));
    }

    fn model(layers: Vec<LayerSpec>) -> ModelConfig {
        ModelConfig {
            zoo: None,
            params: None,
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
