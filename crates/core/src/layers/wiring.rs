//! Who reads whom: each layer's inputs, from its `from` (or the layer before it). The one
//! place that turns names into positions, so that the checks of a config, its planning and
//! the built network agree on the graph.

use std::collections::HashMap;

use super::{INPUT, Node};
use crate::problems::{Problems, suggest};

/// Where a layer's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The network's input.
    Input,
    /// The output of the layer at this position.
    Layer(usize),
}

/// The inputs of every layer, in order; a merge has several.
pub type Wiring = Vec<Vec<Source>>;

/// The wiring of `nodes`, every problem with it added to `p` keyed under `key`
/// (`model.layers`). `"input"` is the network's input (a block's, for a block's layers).
/// Names are looked up by hash, so a list of thousands of layers is wired in linear time.
pub fn wire(nodes: &[Node], key: &str, p: &mut Problems) -> Wiring {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, name) in nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((i, n.name.as_deref()?)))
    {
        first.entry(name).or_insert(i);
    }
    let mut index = Index {
        first,
        before: HashMap::new(),
        order: Vec::new(),
    };
    let mut wiring = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        let here = format!("{key}[{i}]");
        wiring.push(sources(node, i, &index, &here, p));
        if let Some(name) = &node.name {
            check_name(
                p,
                name,
                index.before.get(name.as_str()),
                &format!("{here}.name"),
            );
            index.before.insert(name, i);
            index.order.push(name);
        }
    }
    wiring
}

/// Where the names are, for the layer being wired.
struct Index<'a> {
    /// Each name's first layer, anywhere in the list.
    first: HashMap<&'a str, usize>,
    /// Each name's latest layer before the one being wired.
    before: HashMap<&'a str, usize>,
    /// The names before the one being wired, in order (for messages).
    order: Vec<&'a str>,
}

/// The wiring of `nodes` when it is known to be sound, else the first problem as a sentence.
pub fn resolve(nodes: &[Node]) -> Result<Wiring, String> {
    let mut p = Problems::default();
    let wiring = wire(nodes, "model.layers", &mut p);
    match p.found.into_iter().next() {
        None => Ok(wiring),
        Some((key, what)) => Err(format!("{key}: {what}")),
    }
}

/// The layers whose output nothing reads (the last layer's is the network's output).
pub fn unread(wiring: &Wiring) -> Vec<usize> {
    let mut read = vec![false; wiring.len()];
    for source in wiring.iter().flatten() {
        if let Source::Layer(j) = source {
            read[*j] = true;
        }
    }
    (0..wiring.len().saturating_sub(1))
        .filter(|&j| !read[j])
        .collect()
}

/// Whether every layer reads the one before it (the network is a chain).
pub fn is_chain(wiring: &Wiring) -> bool {
    wiring.iter().enumerate().all(|(i, from)| {
        *from
            == [match i {
                0 => Source::Input,
                _ => Source::Layer(i - 1),
            }]
    })
}

fn check_name(p: &mut Problems, name: &str, earlier: Option<&usize>, key: &str) {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    p.check(
        valid,
        key,
        format!("{name:?} is not a name; use letters, digits, `_`, `-` and `.`"),
    );
    p.check(
        name != INPUT,
        key,
        "\"input\" names the network's input (a block's, inside a block); choose another name",
    );
    if let Some(j) = earlier {
        p.check(
            false,
            key,
            format!("{name:?} already names layer [{j}]; give each layer its own name"),
        );
    }
}

/// Node `i`'s inputs; problems for names that are not earlier layers.
fn sources(node: &Node, i: usize, index: &Index, here: &str, p: &mut Problems) -> Vec<Source> {
    let previous = match i {
        0 => Source::Input,
        _ => Source::Layer(i - 1),
    };
    let kind = node.layer.type_name();
    let key = format!("{here}.from");
    let Some(from) = &node.from else {
        if node.layer.merge().is_some() {
            p.check(
                false,
                &key,
                format!(
                    "is missing: {kind} reads several layers; name them, e.g. from = [\"a\", \"b\"]"
                ),
            );
        }
        return vec![previous];
    };
    let wanted = from.as_slice();
    match (node.layer.merge().is_some(), wanted.len()) {
        (true, n) if n < 2 => p.check(
            false,
            &key,
            format!("{kind} merges two layers or more; list them, e.g. from = [\"a\", \"b\"]"),
        ),
        (false, n) if n != 1 => p.check(
            false,
            &key,
            format!(
                "{kind} reads one layer; give one name, e.g. from = \"a\" (add and concat merge several)"
            ),
        ),
        _ => {}
    }
    wanted
        .iter()
        .filter_map(|name| {
            if name == INPUT {
                return Some(Source::Input);
            }
            if let Some(&j) = index.before.get(name.as_str()) {
                return Some(Source::Layer(j));
            }
            let what = match index.first.get(name.as_str()) {
                Some(&j) if j == i => {
                    format!("{name:?} is this layer's own name; a layer reads layers before it")
                }
                Some(&j) => format!(
                    "{name:?} is layer [{j}], which comes later; a layer reads only layers before it (move it up)"
                ),
                None => {
                    let known: Vec<&str> = std::iter::once(INPUT)
                        .chain(index.order.iter().copied())
                        .collect();
                    format!(
                        "no layer before it is named {name:?}{}; names here: {}",
                        suggest(name, &known),
                        known.join(", ")
                    )
                }
            };
            p.check(false, &key, what);
            None
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(lines: &str) -> Vec<Node> {
        lines
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| toml::from_str::<Node>(&l.replace(";", "\n")).unwrap())
            .collect()
    }

    fn problems(n: &[Node]) -> Vec<(String, String)> {
        let mut p = Problems::default();
        wire(n, "model.layers", &mut p);
        p.found
    }

    #[test]
    fn a_list_without_names_is_a_chain() {
        let n = nodes("type = \"flatten\"\ntype = \"linear\"; units = 3");
        let w = resolve(&n).unwrap();
        assert!(is_chain(&w));
        assert!(unread(&w).is_empty());
    }

    #[test]
    fn names_resolve_to_earlier_layers() {
        let n = nodes(
            r#"
            type = "flatten"; name = "x"
            type = "linear"; units = 4; name = "a"
            type = "linear"; units = 4; from = "x"
            type = "add"; from = ["a", "input"]
            "#,
        );
        let w = resolve(&n).unwrap();
        assert_eq!(w[2], vec![Source::Layer(0)]);
        assert_eq!(w[3], vec![Source::Layer(1), Source::Input]);
        assert!(!is_chain(&w));
        assert_eq!(unread(&w), vec![2]);
    }

    #[test]
    fn every_mistake_is_named_with_its_fix() {
        let found = problems(&nodes(
            r#"
            type = "flatten"; name = "x"
            type = "linear"; units = 4; name = "x"
            type = "linear"; units = 4; from = "later"
            type = "linear"; units = 4; from = "xx"
            type = "add"; from = "x"
            type = "concat"
            type = "linear"; units = 4; from = ["x", "input"]
            type = "linear"; units = 4; name = "input"
            type = "flatten"; name = "later"
            "#,
        ));
        let text = format!("{found:?}");
        for expected in [
            "already names layer [0]",
            "is layer [8], which comes later",
            "did you mean `x`?",
            "add merges two layers or more",
            "concat reads several layers",
            "linear reads one layer",
            "\\\"input\\\" names the network's input",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        assert_eq!(found[0].0, "model.layers[1].name");
        assert_eq!(found[1].0, "model.layers[2].from");
    }
}
