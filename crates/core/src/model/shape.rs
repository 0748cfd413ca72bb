//! Shape inference: walks the layer list from the input shape, so that a network that cannot be
//! built is refused before any data moves, with the layer and both shapes named.

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::layers::LayerPlan;
use crate::layers::wiring::{self, Source};

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

/// Each layer's plan, from the input shape through the graph: a layer's input is what its
/// `from` names (merged, for `add` and `concat`), the layer before it by default.
pub fn plan_layers(model: &ModelConfig, input: &[usize]) -> Result<Vec<LayerPlan>> {
    let wiring = wiring::resolve(&model.layers).map_err(Error::Model)?;
    let mut plans: Vec<LayerPlan> = Vec::with_capacity(model.layers.len());
    for (i, (node, from)) in model.layers.iter().zip(wiring).enumerate() {
        let failed = |why: String| {
            Error::Model(format!(
                "{} {why}",
                node.describe(&format!("model.layers[{i}]"))
            ))
        };
        let shapes: Vec<&[usize]> = from
            .iter()
            .map(|source| match source {
                Source::Input => input,
                Source::Layer(j) => &plans[*j].output[..],
            })
            .collect();
        let shape = match node.layer.merge() {
            Some(op) => op.shape(&shapes).map_err(failed)?,
            None => shapes
                .first()
                .map_or_else(|| input.to_vec(), |s| s.to_vec()),
        };
        let mut plan = node.layer.kind().plan(&shape).map_err(failed)?;
        plan.from = from;
        plans.push(plan);
    }
    Ok(plans)
}

/// Warnings for layers whose output nothing reads: computed, then thrown away.
pub fn unread_warnings(model: &ModelConfig, plans: &[LayerPlan]) -> Vec<String> {
    let wiring: Vec<Vec<Source>> = plans.iter().map(|p| p.from.clone()).collect();
    wiring::unread(&wiring)
        .into_iter()
        .map(|j| {
            format!(
                "{} is computed but no layer reads it; remove it, or name it in a later layer's from",
                model.layers[j].describe(&format!("model.layers[{j}]"))
            )
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Node;

    /// A model of the layers written as TOML tables, one per line.
    fn model(layers: &str) -> ModelConfig {
        let layers = layers
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| toml::from_str::<Node>(&l.replace(", ", "\n")).unwrap())
            .collect();
        ModelConfig {
            zoo: None,
            params: None,
            input: None,
            layers,
            blocks: Default::default(),
        }
    }

    #[test]
    fn plans_the_reference_cnn() {
        let m = model(
            r#"
            type = "conv2d", filters = 32, kernel = 5, padding = 2, activation = "relu"
            type = "batchnorm", activation = "relu"
            type = "max_pool2d", kernel = 2
            type = "flatten"
            type = "linear", units = 70, activation = "tanh"
            type = "linear", units = 30, activation = "tanh"
            type = "linear", units = 10
            "#,
        );
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
    fn an_error_names_the_layer_and_its_type() {
        let m = model("type = \"conv2d\", filters = 4, kernel = 30");
        let err = plan(&m, &[1, 28, 28], 10).unwrap_err().to_string();
        assert!(
            err.contains("model.layers[0] (conv2d)") && err.contains("does not fit"),
            "{err}"
        );
        let m = model("type = \"flatten\"\ntype = \"linear\", units = 10, in_features = 700");
        let err = plan(&m, &[1, 28, 28], 10).unwrap_err().to_string();
        assert!(
            err.contains("model.layers[1]") && err.contains("784"),
            "{err}"
        );
    }

    #[test]
    fn counts_parameters_of_fc_adam_l2() {
        let m = model(
            r#"
            type = "flatten"
            type = "linear", units = 250, activation = "relu"
            type = "linear", units = 200, activation = "relu"
            type = "linear", units = 10
            "#,
        );
        let plans = plan(&m, &[1, 28, 28], 10).unwrap();
        assert_eq!(plans.iter().map(|p| p.params).sum::<usize>(), 248_460);
        assert_eq!(plans[1].output, vec![250]);
    }

    #[test]
    fn last_layer_must_give_one_output_per_class() {
        let m = model("type = \"flatten\"\ntype = \"linear\", units = 12");
        let err = plan(&m, &[1, 28, 28], 10).unwrap_err().to_string();
        assert!(err.contains("[12]") && err.contains("10 classes"), "{err}");
    }

    #[test]
    fn input_must_hold_the_dataset_values() {
        let mut m = model("");
        m.input = Some(vec![1, 28, 27]);
        assert!(input_shape(&m, &[1, 28, 28]).is_err());
        m.input = Some(vec![784]);
        assert_eq!(input_shape(&m, &[1, 28, 28]).unwrap(), vec![784]);
    }
}
