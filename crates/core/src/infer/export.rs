//! `runner export --format safetensors`: the weights under the names an equivalent
//! `torch.nn.Sequential` gives them, and that Sequential as Python source (for a graph, a
//! subclass of it whose `forward` follows the graph).
//!
//! Each kiln layer becomes one torch module, and a layer's `activation` (when not identity)
//! the module right after it, so kiln's layer list `[linear relu, linear]` is
//! `nn.Sequential(nn.Linear, nn.ReLU(), nn.Linear)` with tensors `0.weight`, `0.bias`,
//! `2.weight`, `2.bias`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

use super::Trained;
use crate::error::{Error, Result};
use crate::layers::Node;
use crate::layers::wiring::{self, Source};
use crate::model::LayerPlan;

/// The torch module of each kiln layer: (kiln layer index, Python expression), in order. A
/// layer's activation, when it has one, is the module after its own.
pub fn torch_modules(layers: &[Node], plans: &[LayerPlan]) -> Vec<(usize, String)> {
    let mut out = vec![];
    for (i, (node, plan)) in layers.iter().zip(plans).enumerate() {
        let kind = node.layer.kind();
        out.extend(kind.torch(&plan.input).map(|m| (i, m)));
        out.extend(kind.activation().torch().map(|a| (i, a)));
    }
    out
}

/// The Python source of the equivalent module, with how to load the exported file: an
/// `nn.Sequential` for a chain; for a graph, a subclass of it (so the tensors keep the same
/// names) whose `forward` follows the graph.
pub fn python_source(trained: &Trained, file_name: &str) -> String {
    let layers = &trained.config.model.layers;
    let modules = torch_modules(layers, &trained.plans);
    let body: Vec<String> = modules
        .iter()
        .enumerate()
        .map(|(k, (_, m))| format!("    {m},  # {k}"))
        .collect();
    let wiring: Vec<_> = trained.plans.iter().map(|p| p.from.clone()).collect();
    let (class, model) = if wiring::is_chain(&wiring) {
        (String::new(), "nn.Sequential")
    } else {
        (graph_class(layers, &trained.plans, &modules), "Graph")
    };
    format!(
        "# The network of {name}, as PyTorch. Input: float32 of shape [batch, {input}],\n\
         # normalised as the run's [data] normalize says.\n\
         import torch\nfrom torch import nn\nfrom safetensors.torch import load_file\n\n\
         {class}\
         model = {model}(\n{body}\n)\n\
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

/// A `nn.Sequential` subclass whose `forward` runs kiln's graph: `x3 = self[4](x1 + x2)`.
fn graph_class(layers: &[Node], plans: &[LayerPlan], modules: &[(usize, String)]) -> String {
    let mut lines = vec![
        "class Graph(nn.Sequential):".to_string(),
        "    \"\"\"kiln's layers in order; forward follows what each layer reads.\"\"\"".into(),
        String::new(),
        "    def forward(self, input):".into(),
    ];
    let var = |s: &Source| match s {
        Source::Input => "input".to_string(),
        Source::Layer(j) => format!("x{j}"),
    };
    for (i, (node, plan)) in layers.iter().zip(plans).enumerate() {
        let inputs: Vec<String> = plan.from.iter().map(var).collect();
        let mut value = match node.layer.merge() {
            Some(op) => op.torch(&inputs),
            None => inputs.join(", "),
        };
        for (k, _) in modules
            .iter()
            .enumerate()
            .filter(|(_, (layer, _))| *layer == i)
        {
            value = format!("self[{k}]({value})");
        }
        lines.push(format!("        x{i} = {value}"));
    }
    lines.push(format!(
        "        return x{}",
        layers.len().saturating_sub(1)
    ));
    lines.push(String::new());
    lines.push(String::new());
    lines.join("\n") + "\n"
}

/// Where `runner export` writes the weights and, beside them, the PyTorch script (`.py`).
/// Without `output`, `RUN_DIR/export/model.safetensors`, kiln's own folder, replaced at each
/// export. An `output` that is a folder gets `model.safetensors` in it; otherwise it must end
/// in `.safetensors` (so the script's name differs from it). A file already at either path
/// is replaced only with `overwrite`, since kiln did not make it.
pub fn output_paths(
    run_dir: &Path,
    output: Option<&Path>,
    overwrite: bool,
) -> Result<(PathBuf, PathBuf)> {
    let Some(output) = output else {
        let weights = run_dir.join("export").join("model.safetensors");
        return Ok((weights.clone(), weights.with_extension("py")));
    };
    let weights = if output.is_dir() {
        output.join("model.safetensors")
    } else if output.extension().is_some_and(|e| e == "safetensors") {
        output.to_path_buf()
    } else {
        return Err(Error::Config(format!(
            "-o {}: give a file name ending in .safetensors (the PyTorch script is written beside it as .py) or a folder",
            output.display()
        )));
    };
    let script = weights.with_extension("py");
    for path in [&weights, &script] {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.is_file() => {
                return Err(Error::Config(format!(
                    "{} exists and is not a regular file; choose another -o",
                    path.display()
                )));
            }
            Ok(_) if !overwrite => {
                return Err(Error::Config(format!(
                    "{} already exists; choose another -o, or add --overwrite to replace it",
                    path.display()
                )));
            }
            _ => {}
        }
    }
    Ok((weights, script))
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
    for (layer, t) in &tensors {
        let k = index_of.get(layer).copied().unwrap_or(*layer);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `-o` never destroys a file kiln did not make: not the script beside the weights, not
    /// the weights named as the script, not a device.
    #[test]
    fn export_paths_refuse_to_replace_what_kiln_did_not_make() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (w, py) = output_paths(d, None, false).unwrap();
        assert_eq!(
            (w, py),
            (
                d.join("export/model.safetensors"),
                d.join("export/model.py")
            )
        );
        // A folder gets model.safetensors in it.
        assert_eq!(
            output_paths(d, Some(d), false).unwrap().0,
            d.join("model.safetensors")
        );
        // The script would be the weights' own name.
        let err = output_paths(d, Some(&d.join("model.py")), false).unwrap_err();
        assert!(err.to_string().contains("ending in .safetensors"), "{err}");
        std::fs::write(d.join("notes.py"), "mine").unwrap();
        let err = output_paths(d, Some(&d.join("notes.safetensors")), false).unwrap_err();
        assert!(err.to_string().contains("notes.py already exists"), "{err}");
        assert!(output_paths(d, Some(&d.join("notes.safetensors")), true).is_ok());
        std::fs::create_dir(d.join("x.safetensors")).unwrap();
        assert!(
            output_paths(d, Some(&d.join("x.safetensors")), true).is_ok(),
            "a folder"
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/dev/null", d.join("dev.safetensors")).unwrap();
            let err = output_paths(d, Some(&d.join("dev.safetensors")), true).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
    }
}
