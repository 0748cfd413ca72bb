//! The sources of a config as layers, in order: the TOML file, the `KILN_*` environment, then
//! each `--set` flag. figment merges tables key by key, which is right for `--set
//! optimizer.lr=0.1` but wrong for `--set 'init.weight={kind="normal", std=0.1}'`: the user
//! means that table, not its keys mixed into the file's. So the layers are kept as data,
//! and a `--set` of a table takes its key out of every layer before it. A `--set` of a list
//! item (`model.layers[1].units=128`) becomes the whole list with that item changed.

use figment::providers::Serialized;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use crate::error::{Error, Result};

/// One source's data under its own metadata (which names it in messages).
#[derive(Clone)]
pub struct Layer {
    meta: Metadata,
    data: Map<Profile, Dict>,
}

impl Layer {
    /// The data of `provider`, read now; `Err` is figment's (a TOML syntax error, say).
    pub fn of(provider: &impl Provider) -> std::result::Result<Layer, Box<figment::Error>> {
        Ok(Layer {
            meta: provider.metadata(),
            data: provider.data().map_err(Box::new)?,
        })
    }

    /// Takes the dotted `key` out of this layer (a later layer replaces it whole).
    fn remove(&mut self, key: &[String]) {
        for dict in self.data.values_mut() {
            remove_in(dict, key);
        }
    }
}

fn remove_in(dict: &mut Dict, key: &[String]) {
    match key {
        [] => {}
        [last] => {
            dict.remove(last);
        }
        [first, rest @ ..] => {
            if let Some(Value::Dict(_, inner)) = dict.get_mut(first) {
                remove_in(inner, rest);
            }
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.meta.clone()
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        Ok(self.data.clone())
    }
}

/// The layers merged, later ones winning.
pub fn merged(layers: &[Layer]) -> Figment {
    layers
        .iter()
        .fold(Figment::new(), |f, layer| f.merge(layer.clone()))
}

/// One step of a `--set` key: a table key, or an index into a list.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Adds the `--set` flag `raw` (`dotted.key=value`) on top of `layers`.
pub fn push_set(layers: &mut Vec<Layer>, raw: &str) -> Result<()> {
    let bad = |what: String| Error::Config(format!("--set {raw}: {what}"));
    let Some((key, text)) = raw.split_once('=') else {
        return Err(Error::Config(format!(
            "--set {raw:?} has no `=`; write it as --set dotted.key=value, e.g. --set optimizer.lr=0.001"
        )));
    };
    let steps = parse_key(key.trim()).ok_or_else(|| {
        bad(format!(
            "{:?} is not a key like optimizer.lr or model.layers[1].units",
            key.trim()
        ))
    })?;
    let mut value = parse_value(text.trim()).map_err(bad)?;
    // Up to the first list index, the key is a table path; what follows is inside the list.
    let split = steps
        .iter()
        .position(|s| matches!(s, Step::Index(_)))
        .unwrap_or(steps.len());
    let table_key: Vec<String> = steps[..split]
        .iter()
        .filter_map(|s| match s {
            Step::Key(k) => Some(k.clone()),
            Step::Index(_) => None, // none before `split`
        })
        .collect();
    let dotted = table_key.join(".");
    if split < steps.len() {
        let mut list = merged(layers).find_value(&dotted).map_err(|_| {
            bad(format!(
                "there is no list `{dotted}` to index (is it written in the file?)"
            ))
        })?;
        set_in(&mut list, &steps[split..], value).map_err(|why| bad(format!("`{dotted}`{why}")))?;
        // Fresh tags, so that figment credits the list to this flag.
        value = Value::serialize(&list).map_err(|e| bad(e.to_string()))?;
    } else if matches!(value, Value::Dict(..)) {
        for layer in layers.iter_mut() {
            layer.remove(&table_key);
        }
    }
    let data = Serialized::default(&dotted, &value)
        .data()
        .map_err(|e| bad(e.to_string()))?;
    layers.push(Layer {
        meta: Metadata::named(format!("--set {raw}")),
        data,
    });
    Ok(())
}

/// `model.layers[1].units` -> [model, layers, 1, units]; `None` if it is not such a key.
fn parse_key(key: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for part in key.split('.') {
        let (name, mut indices) = part.split_at(part.find('[').unwrap_or(part.len()));
        let plain =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !plain(name) {
            return None;
        }
        steps.push(Step::Key(name.to_string()));
        while !indices.is_empty() {
            let (index, rest) = indices.strip_prefix('[')?.split_once(']')?;
            steps.push(Step::Index(index.trim().parse().ok()?));
            indices = rest;
        }
    }
    Some(steps)
}

/// A `--set` value read as TOML (`0.1`, `true`, `[1, 2]`, `{kind = "normal"}`, `"text"`);
/// bare text that TOML cannot read is a string (`--set name=run2`), but what was meant as a
/// list, a table, a quoted string or a number and is malformed is an error, not text.
fn parse_value(text: &str) -> std::result::Result<Value, String> {
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut table) => {
            let value = table.remove("v").unwrap_or(toml::Value::Boolean(false));
            Value::serialize(value).map_err(|e| e.to_string())
        }
        Err(e) if text.starts_with(['[', '{', '"', '\'']) => Err(format!(
            "the value {text} is not valid TOML ({}); quote text as \"...\"",
            e.message().lines().collect::<Vec<_>>().join(": ")
        )),
        Err(_) if is_integer(text) => Err(format!(
            "{text} is beyond TOML's whole numbers (-9223372036854775808 to 9223372036854775807)"
        )),
        Err(_) => Ok(Value::from(text.to_string())),
    }
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '_')
}

/// Sets `new` at `steps` inside `value` (a list, then whatever its items hold); `Err`
/// completes "`model.layers`...".
fn set_in(value: &mut Value, steps: &[Step], new: Value) -> std::result::Result<(), String> {
    let Some((step, rest)) = steps.split_first() else {
        *value = new;
        return Ok(());
    };
    match (step, value) {
        (Step::Index(i), Value::Array(_, items)) => {
            let len = items.len();
            let item = items.get_mut(*i).ok_or_else(|| {
                format!(
                    " has {len} items, so [{i}] is not one (they are numbered from 0 to {})",
                    len.saturating_sub(1)
                )
            })?;
            set_in(item, rest, new).map_err(|why| format!("[{i}]{why}"))
        }
        (Step::Key(k), Value::Dict(_, dict)) => {
            let entry = dict
                .entry(k.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            set_in(entry, rest, new).map_err(|why| format!(".{k}{why}"))
        }
        (Step::Index(i), _) => Err(format!(" is not a list, so [{i}] cannot index it")),
        (Step::Key(k), _) => Err(format!(" is not a table, so it has no key `{k}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(toml: &str) -> Vec<Layer> {
        use figment::providers::Format;
        vec![Layer::of(&figment::providers::Toml::string(toml)).unwrap()]
    }

    fn value(layers: &[Layer], key: &str) -> toml::Value {
        merged(layers).extract_inner(key).unwrap()
    }

    #[test]
    fn keys_parse_with_list_indices() {
        use Step::*;
        assert_eq!(
            parse_key("model.layers[1].units"),
            Some(vec![
                Key("model".into()),
                Key("layers".into()),
                Index(1),
                Key("units".into())
            ])
        );
        assert_eq!(parse_key("a[0][2]").map(|s| s.len()), Some(3));
        for bad in ["", "a..b", "a[x]", "a[1", "[1]", "a b"] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_are_toml_text_or_an_error() {
        assert_eq!(parse_value("0.5").unwrap(), Value::from(0.5));
        assert_eq!(
            parse_value("run2").unwrap(),
            Value::from("run2".to_string())
        );
        assert!(parse_value("[1,").unwrap_err().contains("not valid TOML"));
        assert!(
            parse_value("18446744073709551615")
                .unwrap_err()
                .contains("beyond")
        );
    }

    #[test]
    fn a_table_replaces_and_a_list_item_is_addressed() {
        let mut l = layers(
            "[init]\nweight = { kind = \"uniform\", a = 1.0 }\n[model]\nlayers = [{ type = \"flatten\" }, { type = \"linear\", units = 10 }]\n",
        );
        push_set(&mut l, "init.weight={kind=\"normal\", std=0.1}").unwrap();
        let weight = value(&l, "init.weight");
        assert_eq!(weight.get("a"), None, "replaced, not merged: {weight}");
        assert_eq!(weight.get("std").and_then(|v| v.as_float()), Some(0.1));
        push_set(&mut l, "model.layers[1].units=128").unwrap();
        let layers_now = value(&l, "model.layers");
        assert_eq!(layers_now[1]["units"].as_integer(), Some(128));
        assert_eq!(layers_now[0]["type"].as_str(), Some("flatten"));
        let err = push_set(&mut l, "model.layers[2].units=1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("has 2 items"), "{err}");
        // A plain key still merges into its table.
        push_set(&mut l, "init.weight.std=0.5").unwrap();
        assert_eq!(value(&l, "init.weight.kind").as_str(), Some("normal"));
    }
}
