//! Where a dotted key sits in a TOML file, as `line:column`, for error messages: serde and
//! figment name the key but not the place, and a person fixing a file wants both.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

/// The 1-based line and column of the key `parts` (`["model", "layers", "1", "padding"]`) in
/// `text`; when only a prefix of the path exists there, the place of the deepest part that
/// does. `None` when the text does not parse or not even the first part is in it.
pub fn locate(text: &str, parts: &[String]) -> Option<(usize, usize)> {
    let doc = ImDocument::parse(text.to_string()).ok()?;
    let span = walk_table(doc.as_table(), parts)?;
    Some(line_column(text, span.start))
}

/// Inside the table or inline table at `parts`, the key whose value is written as `written`
/// (`"fast"`, `-16`): for errors from a tagged section (`[optimizer]`, a layer), where serde
/// names the section but not the field.
pub fn key_with_value(text: &str, parts: &[String], written: &str) -> Option<String> {
    let doc = ImDocument::parse(text.to_string()).ok()?;
    let mut item = doc.as_item();
    for part in parts {
        item = match item {
            Item::Table(t) => t.get(part)?,
            Item::ArrayOfTables(a) => {
                return a
                    .get(part.parse().ok()?)
                    .and_then(|t| find_in(t.iter().map(|(k, v)| (k, v.as_value())), written));
            }
            Item::Value(Value::Array(a)) => {
                let v = a.get(part.parse().ok()?)?;
                match v {
                    Value::InlineTable(t) if parts.last() == Some(part) => {
                        return find_in(t.iter().map(|(k, v)| (k, Some(v))), written);
                    }
                    _ => return None,
                }
            }
            Item::Value(Value::InlineTable(_)) => return None,
            _ => return None,
        };
    }
    match item {
        Item::Table(t) => find_in(t.iter().map(|(k, v)| (k, v.as_value())), written),
        Item::Value(Value::InlineTable(t)) => find_in(t.iter().map(|(k, v)| (k, Some(v))), written),
        _ => None,
    }
}

fn find_in<'a>(
    entries: impl Iterator<Item = (&'a str, Option<&'a Value>)>,
    written: &str,
) -> Option<String> {
    entries
        .filter_map(|(k, v)| Some((k, v?)))
        .find(|(_, v)| v.to_string().trim() == written)
        .map(|(k, _)| k.to_string())
}

fn walk_table(table: &Table, parts: &[String]) -> Option<Range<usize>> {
    let (first, rest) = parts.split_first()?;
    let (key, item) = table.get_key_value(first)?;
    let here = key.span().or_else(|| item.span());
    walk_item(item, rest).or(here)
}

fn walk_item(item: &Item, parts: &[String]) -> Option<Range<usize>> {
    if parts.is_empty() {
        return None;
    }
    match item {
        Item::Table(t) => walk_table(t, parts),
        Item::ArrayOfTables(a) => {
            let i: usize = parts[0].parse().ok()?;
            let t = a.get(i)?;
            walk_table(t, &parts[1..]).or_else(|| t.span())
        }
        Item::Value(v) => walk_value(v, parts),
        Item::None => None,
    }
}

fn walk_value(value: &Value, parts: &[String]) -> Option<Range<usize>> {
    let (first, rest) = parts.split_first()?;
    match value {
        Value::Array(a) => {
            let v = a.get(first.parse().ok()?)?;
            walk_value(v, rest).or_else(|| v.span())
        }
        Value::InlineTable(t) => {
            let (key, v) = t.get_key_value(first)?;
            walk_item(v, rest).or_else(|| key.span().or_else(|| v.span()))
        }
        _ => None,
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, path: &str) -> Option<(usize, usize)> {
        let parts: Vec<String> = path.split('.').map(String::from).collect();
        locate(text, &parts)
    }

    #[test]
    fn finds_tables_keys_array_items_and_inline_tables() {
        let text = "name = \"x\"\n[optimizer]\nkind = \"adam\"\n  lr = 0\n[model]\nlayers = [\n  { type = \"flatten\" },\n  { type = \"linear\", units = 0 },\n]\n";
        assert_eq!(at(text, "name"), Some((1, 1)));
        assert_eq!(at(text, "optimizer.lr"), Some((4, 3)));
        assert_eq!(at(text, "model.layers.1.units"), Some((8, 22)));
        assert_eq!(at(text, "model.layers.1"), Some((8, 3)));
        // A key that is not there (a missing one): the deepest part that is.
        assert_eq!(at(text, "optimizer.betas"), Some((2, 2)));
        assert_eq!(at(text, "train.epochs"), None);
        assert_eq!(at("[broken", "a"), None);
    }

    #[test]
    fn finds_the_key_holding_a_value() {
        let text = "[optimizer]\nkind = \"adam\"\nlr = \"fast\"\n[model]\nlayers = [{ type = \"linear\", units = -16 }]\n";
        let parts = |p: &str| p.split('.').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            key_with_value(text, &parts("optimizer"), "\"fast\""),
            Some("lr".into())
        );
        assert_eq!(
            key_with_value(text, &parts("model.layers.0"), "-16"),
            Some("units".into())
        );
        assert_eq!(key_with_value(text, &parts("optimizer"), "7"), None);
    }
}
