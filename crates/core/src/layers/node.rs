//! One entry of `[model] layers`: a layer kind, and the graph around it. `name` lets later
//! layers read this one; `from` says what this one reads (the layer before it when absent,
//! `"input"` for the network's input, a list for the merge kinds).

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::LayerSpec;

/// The name `from` uses for the network's input (and, inside a block, for the block's input).
pub const INPUT: &str = "input";

/// A layer with its place in the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    #[serde(flatten)]
    pub layer: LayerSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Names>,
}

impl From<LayerSpec> for Node {
    fn from(layer: LayerSpec) -> Self {
        Node {
            layer,
            name: None,
            from: None,
        }
    }
}

impl Node {
    /// `layer` named `name`.
    pub fn named(layer: LayerSpec, name: &str) -> Self {
        Node {
            name: Some(name.to_string()),
            ..Node::from(layer)
        }
    }

    /// This node reading `from` (one name or several).
    pub fn reading(mut self, from: &[&str]) -> Self {
        self.from = Some(match from {
            [one] => Names::One(one.to_string()),
            many => Names::Many(many.iter().map(|s| s.to_string()).collect()),
        });
        self
    }

    /// `model.layers[3]` or `model.layers[3] ("shortcut")`, for messages.
    pub fn describe(&self, key: &str) -> String {
        match &self.name {
            Some(name) => format!("{key} ({name:?}, {})", self.layer.type_name()),
            None => format!("{key} ({})", self.layer.type_name()),
        }
    }
}

/// What `from` names: one layer, or several for a merge.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Names {
    One(String),
    Many(Vec<String>),
}

impl Names {
    pub fn as_slice(&self) -> &[String] {
        match self {
            Names::One(name) => std::slice::from_ref(name),
            Names::Many(names) => names,
        }
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NamesVisitor;
        impl<'de> Visitor<'de> for NamesVisitor {
            type Value = Names;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a layer's name, or a list of names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Names, E> {
                Ok(Names::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(Names::Many(names))
            }
        }
        d.deserialize_any(NamesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_name_and_from_beside_the_layer_keys() {
        let node: Node = toml::from_str(
            "type = \"add\"\nfrom = [\"a\", \"b\"]\nname = \"sum\"\nactivation = \"relu\"",
        )
        .unwrap();
        assert_eq!(node.layer.type_name(), "add");
        assert_eq!(node.name.as_deref(), Some("sum"));
        assert_eq!(node.from.as_ref().unwrap().as_slice(), ["a", "b"]);
        let text = toml::to_string(&node).unwrap();
        assert!(text.starts_with("type = \"add\""), "{text}");
        assert_eq!(toml::from_str::<Node>(&text).unwrap(), node);

        let node: Node = toml::from_str("type = \"flatten\"\nfrom = \"input\"").unwrap();
        assert_eq!(node.from, Some(Names::One("input".into())));
    }

    #[test]
    fn unknown_keys_are_still_refused_by_the_kind() {
        let err = toml::from_str::<Node>("type = \"linear\"\nunits = 3\nunit = 4")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unit"), "{err}");
        let err = toml::from_str::<Node>("type = \"flatten\"\nfrom = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a layer's name"), "{err}");
    }
}
