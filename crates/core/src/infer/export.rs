//! `runner export --format safetensors`: the weights under the names an equivalent
//! `torch.nn.Sequential` gives them, and that Sequential as Python source.
//!
//! Each kiln layer becomes one torch module, and a layer's `activation` (when not identity)
//! the module right after it, so kiln's layer list `[linear relu, linear]` is
//! `nn.Sequential(nn.Linear, nn.ReLU(), nn.Linear)` with tensors `0.weight`, `0.bias`,
//! `2.weight`, `2.bias`.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use super::Trained;
use crate::config::{ActivationFn, LayerSpec};
use crate::error::{Error, Result};
use crate::model::LayerPlan;

/// The torch module of each kiln layer: (kiln layer index, Python expression), in order.
pub fn torch_modules(layers: &[LayerSpec], plans: &[LayerPlan]) -> Vec<(usize, String)> {
    let mut out = vec![];
    for (i, (spec, plan)) in layers.iter().zip(plans).enumerate() {
        let pair = |s: crate::config::Size2| format!("({}, {})", s.0[0], s.0[1]);
        let module = match spec {
            LayerSpec::Flatten {} => Some("nn.Flatten()".to_string()),
            LayerSpec::Reshape { shape } => Some(format!("nn.Unflatten(1, {shape:?})")),
            LayerSpec::Linear { units, bias, .. } => Some(format!(
                "nn.Linear({}, {units}, bias={})",
                plan.input.iter().product::<usize>(),
                py_bool(*bias)
            )),
            LayerSpec::Conv2d {
                filters,
                kernel,
                stride,
                padding,
                dilation,
                groups,
                bias,
                ..
            } => Some(format!(
                "nn.Conv2d({}, {filters}, kernel_size={}, stride={}, padding={}, dilation={}, groups={groups}, bias={})",
                plan.input[0],
                pair(*kernel),
                pair(*stride),
                pair(*padding),
                pair(*dilation),
                py_bool(*bias)
            )),
            LayerSpec::Batchnorm { eps, momentum, .. } => {
                let kind = if plan.input.len() == 3 { "2d" } else { "1d" };
                Some(format!(
                    "nn.BatchNorm{kind}({}, eps={eps}, momentum={momentum})",
                    plan.input[0]
                ))
            }
            LayerSpec::MaxPool2d {
                kernel,
                stride,
                padding,
            } => Some(format!(
                "nn.MaxPool2d(kernel_size={}, stride={}, padding={})",
                pair(*kernel),
                pair(stride.unwrap_or(*kernel)),
                pair(*padding)
            )),
            LayerSpec::AvgPool2d {
                kernel,
                stride,
                padding,
            } => Some(format!(
                "nn.AvgPool2d(kernel_size={}, stride={}, padding={}, count_include_pad=True)",
                pair(*kernel),
                pair(stride.unwrap_or(*kernel)),
                pair(*padding)
            )),
            LayerSpec::AdaptiveAvgPool2d { output } => {
                Some(format!("nn.AdaptiveAvgPool2d({})", pair(*output)))
            }
            LayerSpec::Dropout { p } => Some(format!("nn.Dropout(p={p})")),
            _ => None,
        };
        if let Some(m) = module {
            out.push((i, m));
        }
        let activation = match spec {
            LayerSpec::Linear { .. } | LayerSpec::Conv2d { .. } | LayerSpec::Batchnorm { .. } => {
                spec.final_activation()
            }
            other => other.as_activation(),
        };
        if let Some(a) = activation.and_then(torch_activation) {
            out.push((i, a));
        }
    }
    out
}

fn torch_activation(a: ActivationFn) -> Option<String> {
    Some(match a {
        ActivationFn::Identity => return None,
        ActivationFn::Relu => "nn.ReLU()".into(),
        ActivationFn::Sigmoid => "nn.Sigmoid()".into(),
        ActivationFn::Tanh => "nn.Tanh()".into(),
        ActivationFn::Gelu => "nn.GELU()".into(),
        ActivationFn::Softmax => "nn.Softmax(dim=1)".into(),
        ActivationFn::LogSoftmax => "nn.LogSoftmax(dim=1)".into(),
        ActivationFn::LeakyRelu(s) => format!("nn.LeakyReLU({s})"),
        ActivationFn::Elu(a) => format!("nn.ELU({a})"),
    })
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// The Python source of the equivalent module, with how to load the exported file.
pub fn python_source(trained: &Trained, file_name: &str) -> String {
    let modules = torch_modules(&trained.config.model.layers, &trained.plans);
    let body: Vec<String> = modules
        .iter()
        .enumerate()
        .map(|(k, (_, m))| format!("    {m},  # {k}"))
        .collect();
    format!(
        "# The network of {name}, as PyTorch. Input: float32 of shape [batch, {input}],\n\
         # normalised as the run's [data] normalize says.\n\
         import torch\nfrom torch import nn\nfrom safetensors.torch import load_file\n\n\
         model = nn.Sequential(\n{body}\n)\n\
         model.load_state_dict(load_file(\"{file_name}\"))\nmodel.eval()\n",
        name = trained.config.name,
        input = trained
            .input
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        body = body.join("\n"),
    )
}

/// Writes `trained`'s weights to `path` as safetensors with torch names; returns the names.
pub fn write_safetensors(trained: &Trained, path: &Path) -> Result<Vec<String>> {
    let modules = torch_modules(&trained.config.model.layers, &trained.plans);
    // Each kiln layer's own module is the first of its entries.
    let mut index_of: HashMap<usize, usize> = HashMap::new();
    for (k, (layer, _)) in modules.iter().enumerate() {
        index_of.entry(*layer).or_insert(k);
    }
    let tensors = trained.network.torch_tensors();
    let mut named: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = vec![];
    for t in &tensors {
        let k = index_of.get(&t.layer).copied().unwrap_or(t.layer);
        let bytes = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        named.push((
            format!("{k}.{}", t.name),
            t.shape.clone(),
            bytes,
            Dtype::F32,
        ));
        if t.name == "running_var" {
            // torch's BatchNorm also has a step counter; load_state_dict (strict) wants it.
            let steps = trained.global_step as i64;
            named.push((
                format!("{k}.num_batches_tracked"),
                vec![],
                steps.to_le_bytes().to_vec(),
                Dtype::I64,
            ));
        }
    }
    let views = named
        .iter()
        .map(|(name, shape, bytes, dtype)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Run(format!("cannot describe tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    // One key only: safetensors writes a HashMap's keys in no fixed order, and the same
    // weights should give the same file.
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Run(format!("cannot encode {}: {e}", path.display())))?;
    crate::checkpoint::write_atomic(path, &bytes)?;
    Ok(named.into_iter().map(|(n, ..)| n).collect())
}
