//! `[model.blocks]`: layers declared once with parameters and used many times, so that a
//! ResNet stage is a few lines. Loading a config expands every use into plain layers with
//! names and `from`s of their own; nothing after loading knows blocks existed.
//!
//! ```toml
//! [model.blocks.residual]
//! args = { units = 64 }
//! layers = [
//!   { type = "linear", units = "${units}", activation = "relu" },
//!   { type = "linear", units = "${units}", name = "out" },
//!   { type = "add", from = ["input", "out"], activation = "relu" },
//! ]
//! ```
//!
//! Inside a block, `from` names the block's own layers, and `"input"` the block's input (what
//! the use reads). A repetition reads the one before it. The expanded layers are named
//! `<use>.<repetition>.<name>`, where `<use>` is the use's `name` (or the block's name and the
//! use's position); the use's `name` goes to the last layer of the last repetition, so later
//! layers read the block's output by it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::ModelConfig;
use crate::layers::{BlockUse, INPUT, LayerSpec, Names, Node};
use crate::problems::{Problems, suggest};

/// `[model.blocks.NAME]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockDef {
    /// The block's parameters and their defaults; a layer value `"${name}"` stands for one.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub args: toml::Table,
    /// The block's layers, as in `[model] layers`.
    pub layers: Vec<toml::Value>,
}

/// The most layers blocks may expand into: far beyond any network trained here, and a bound
/// on what a config of a few bytes (`repeat = 1000000000`) can make kiln allocate.
pub const MAX_LAYERS: usize = 10_000;

/// Replaces every block use in `model.layers` by the block's layers and empties
/// `model.blocks`; what is wrong with a block or a use goes to `p`.
pub fn expand(model: &mut ModelConfig, p: &mut Problems) {
    let blocks = std::mem::take(&mut model.blocks);
    if !model
        .layers
        .iter()
        .any(|n| matches!(n.layer, LayerSpec::Block(_)))
    {
        return;
    }
    let mut out: Vec<Node> = Vec::with_capacity(model.layers.len());
    for (i, node) in std::mem::take(&mut model.layers).into_iter().enumerate() {
        let Node { layer, name, from } = node;
        match layer {
            LayerSpec::Block(used) => {
                let key = format!("model.layers[{i}]");
                let Some(def) = blocks.get(&used.block) else {
                    let declared: Vec<&str> = blocks.keys().map(String::as_str).collect();
                    p.check(
                        false,
                        format!("{key}.block"),
                        format!(
                            "no block is named {:?}{}; declared under [model.blocks]: {}",
                            used.block,
                            suggest(&used.block, &declared),
                            if declared.is_empty() {
                                "none".to_string()
                            } else {
                                declared.join(", ")
                            }
                        ),
                    );
                    continue;
                };
                let adds = def.layers.len().saturating_mul(used.repeat);
                if out.len().saturating_add(adds) > MAX_LAYERS {
                    p.check(
                        false,
                        format!("{key}.repeat"),
                        format!(
                            "= {} repeats {} layers, more than the {MAX_LAYERS} layers a network may have; lower it",
                            used.repeat,
                            def.layers.len()
                        ),
                    );
                    continue;
                }
                let prefix = name.clone().unwrap_or_else(|| format!("{}{i}", used.block));
                let input = from.as_ref().map(|f| f.as_slice().to_vec());
                let before = out.len();
                let block = Use {
                    key: &key,
                    used: &used,
                    def,
                    prefix: &prefix,
                };
                block.expand(input, &mut out, p);
                if let Some(name) = name
                    && out.len() > before
                    && let Some(last) = out.last_mut()
                {
                    last.name = Some(name);
                }
            }
            layer => out.push(Node { layer, name, from }),
        }
    }
    model.layers = out;
}

/// One use of a block.
struct Use<'a> {
    /// `model.layers[3]`.
    key: &'a str,
    used: &'a BlockUse,
    def: &'a BlockDef,
    /// What the expanded layers' names start with.
    prefix: &'a str,
}

impl Use<'_> {
    /// Appends the use's layers to `out`; `from` is what the use reads (`None`: the layer
    /// before it).
    fn expand(&self, mut from: Option<Vec<String>>, out: &mut Vec<Node>, p: &mut Problems) {
        let templates = self.templates(p);
        let inner: Vec<Option<String>> = templates
            .iter()
            .map(|t| t.as_ref().and_then(|n| n.name.clone()))
            .collect();
        for rep in 0..self.used.repeat {
            // Where the repetition starts: the layer before it is what it reads by default.
            let start = out.len();
            let mut local: HashMap<&str, String> = HashMap::new();
            for (j, template) in templates.iter().enumerate() {
                let Some(mut node) = template.clone() else {
                    continue;
                };
                let reads = match node.from.take() {
                    Some(names) => Some(
                        names
                            .as_slice()
                            .iter()
                            .map(|name| {
                                if name == INPUT {
                                    return self.input(&from, start, out, rep);
                                }
                                local.get(name.as_str()).cloned().unwrap_or_else(|| {
                                    if rep == 0 {
                                        let key = format!("{}.from", self.layer_key(j));
                                        p.check(false, key, self.unknown(name, j, &inner));
                                    }
                                    name.clone()
                                })
                            })
                            .collect::<Vec<_>>(),
                    ),
                    // The block's first layer reads the block's input.
                    None if j == 0 => from.clone(),
                    None => None,
                };
                node.from = reads.map(|names| match (node.layer.merge(), &names[..]) {
                    (None, [one]) => Names::One(one.clone()),
                    _ => Names::Many(names),
                });
                if let Some(name) = &inner[j] {
                    let global = format!("{}.{rep}.{name}", self.prefix);
                    local.insert(name, global.clone());
                    node.name = Some(global);
                }
                out.push(node);
            }
            // The next repetition reads this one's last layer.
            from = None;
        }
    }

    /// `model.blocks.basic.layers[2]`.
    fn layer_key(&self, j: usize) -> String {
        format!("model.blocks.{}.layers[{j}]", self.used.block)
    }

    /// Each of the block's layers with the args put in, checked; `None` for one that is wrong.
    fn templates(&self, p: &mut Problems) -> Vec<Option<Node>> {
        let args = self.args(p);
        let mut names: std::collections::HashSet<String> = std::collections::HashSet::new();
        let used_at = format!("(the block is used at {})", self.key);
        self.def
            .layers
            .iter()
            .enumerate()
            .map(|(j, raw)| {
                let key = self.layer_key(j);
                let before = p.found.len();
                let value = substitute(raw.clone(), &args, &key, p);
                if p.found.len() > before {
                    return None;
                }
                let node: Node = match value.try_into() {
                    Ok(node) => node,
                    Err(e) => {
                        p.check(false, &key, format!("{} {used_at}", one_line(&e)));
                        return None;
                    }
                };
                if let LayerSpec::Block(_) = node.layer {
                    p.check(
                        false,
                        format!("{key}.type"),
                        "a block cannot use a block; list both uses in [model] layers",
                    );
                    return None;
                }
                node.layer.kind().check(p, &key);
                if let Some(name) = &node.name {
                    p.check(
                        !names.contains(name.as_str()) && name != INPUT,
                        format!("{key}.name"),
                        format!("{name:?} names another layer of the block, or its input; give each layer its own name"),
                    );
                    names.insert(name.clone());
                }
                Some(node)
            })
            .collect()
    }

    /// What the block's `"input"` is in the expanded list: what the use reads, or the layer
    /// before the repetition, named here if it has no name (`<use>.input` before the first,
    /// `<use>.<r>.output` for repetition r's last layer).
    fn input(
        &self,
        from: &Option<Vec<String>>,
        start: usize,
        out: &mut [Node],
        rep: usize,
    ) -> String {
        if let Some(name) = from.as_ref().and_then(|names| names.first()) {
            return name.clone();
        }
        match start.checked_sub(1) {
            None => INPUT.to_string(),
            Some(before) => out[before]
                .name
                .get_or_insert_with(|| match rep {
                    0 => format!("{}.input", self.prefix),
                    _ => format!("{}.{}.output", self.prefix, rep - 1),
                })
                .clone(),
        }
    }

    /// Why `name`, read by the block's layer `j`, is not a layer before it.
    fn unknown(&self, name: &str, j: usize, inner: &[Option<String>]) -> String {
        if inner[j..].iter().any(|n| n.as_deref() == Some(name)) {
            return format!(
                "{name:?} is a layer at or after this one in the block; a layer reads only layers before it"
            );
        }
        let known: Vec<&str> = std::iter::once(INPUT)
            .chain(inner[..j].iter().flatten().map(String::as_str))
            .collect();
        format!(
            "no layer of block {:?} before it is named {name:?}{}; a block's layers read its own layers and \"input\" (the block's input): {}",
            self.used.block,
            suggest(name, &known),
            known.join(", ")
        )
    }

    /// The block's args: its defaults, overridden by the use's.
    fn args(&self, p: &mut Problems) -> toml::Table {
        let mut args = self.def.args.clone();
        for (name, value) in &self.used.args {
            if args.contains_key(name) {
                args.insert(name.clone(), value.clone());
            } else {
                let declared: Vec<&str> = self.def.args.keys().map(String::as_str).collect();
                p.check(
                    false,
                    format!("{}.args.{name}", self.key),
                    format!(
                        "block {:?} has no arg {name:?}{}; its args: {}",
                        self.used.block,
                        suggest(name, &declared),
                        if declared.is_empty() {
                            "none".to_string()
                        } else {
                            declared.join(", ")
                        }
                    ),
                );
            }
        }
        args
    }
}

/// `value` with every string `"${arg}"` replaced by the arg's value.
fn substitute(value: toml::Value, args: &toml::Table, key: &str, p: &mut Problems) -> toml::Value {
    match value {
        toml::Value::String(s) => {
            let Some(arg) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) else {
                return toml::Value::String(s);
            };
            if let Some(value) = args.get(arg) {
                return value.clone();
            }
            p.check(
                false,
                key,
                format!(
                    "uses \"${{{arg}}}\", which the block does not declare; add it to the block's args with a default, e.g. args = {{ {arg} = 16 }}"
                ),
            );
            toml::Value::String(s)
        }
        toml::Value::Array(items) => toml::Value::Array(
            items
                .into_iter()
                .map(|v| substitute(v, args, key, p))
                .collect(),
        ),
        toml::Value::Table(table) => toml::Value::Table(
            table
                .into_iter()
                .map(|(k, v)| (k, substitute(v, args, key, p)))
                .collect(),
        ),
        other => other,
    }
}

/// A toml error on one line, without its source excerpt.
fn one_line(e: &toml::de::Error) -> String {
    e.message().trim().replace('\n', "; ")
}
