//! Layered loading: the TOML file, then `KILN_*` environment variables, then `--set` flags.
//!
//! figment does the merging; this file adds the `--set` provider (so errors can name the flag)
//! and turns figment's errors into one line that names the source and the dotted key.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::schema::{ExperimentConfig, LayerSpec};
use super::validate;
use crate::error::{Error, Result};

/// The top-level keys of an experiment. Only `KILN_<KEY>` and `KILN_<KEY>__...` variables for
/// these are config; other `KILN_*` variables (`KILN_DATA_DIR`, `KILN_CACHE_DIR`, ...) are not.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "backend",
    "device",
    "data",
    "model",
    "init",
    "optimizer",
    "schedule",
    "train",
    "log",
];

/// Expands `[model] zoo = "name"` with its `params` into layers; `Err` says what is wrong with
/// the name or the parameters (it is prefixed with the file and key).
pub type ZooExpander<'a> =
    &'a dyn Fn(&str, &toml::Table) -> std::result::Result<Vec<LayerSpec>, String>;

/// Loads, merges, validates and resolves an experiment that does not use the model zoo.
///
/// `sets` are `dotted.key=value` strings from `--set`; values are read as TOML (`0.1`, `true`,
/// `[1, 2]`, `"text"`) and fall back to plain text, so `--set name=run2` works unquoted.
pub fn load(path: &Path, sets: &[String]) -> Result<ExperimentConfig> {
    load_with_zoo(path, sets, &|name, _| {
        Err(format!(
            "this program was built without the model zoo, so zoo = {name:?} is unknown; list the layers instead"
        ))
    })
}

/// [`load`], expanding a zoo architecture with `zoo` (the runner passes kiln-model-zoo's).
pub fn load_with_zoo(path: &Path, sets: &[String], zoo: ZooExpander) -> Result<ExperimentConfig> {
    load_requested(path, sets, zoo).map(resolve)
}

/// What the sources ask for, validated, before [`resolve`] fills in what they left to kiln (a
/// random seed, above all): two requests are the same experiment when these are equal.
pub fn load_requested(path: &Path, sets: &[String], zoo: ZooExpander) -> Result<ExperimentConfig> {
    if !path.is_file() {
        return Err(Error::Config(format!(
            "experiment file {} not found; give the path to a .toml file, e.g. experiments/fc_adam_l2.toml",
            path.display()
        )));
    }
    let mut figment = Figment::new().merge(Toml::file_exact(path)).merge(
        Env::prefixed("KILN_")
            .filter(|key| {
                let section = key.as_str().split("__").next().unwrap_or("");
                TOP_LEVEL_KEYS
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(section))
            })
            .split("__"),
    );
    for set in sets {
        figment = figment.merge(SetFlag::parse(set)?);
    }
    let mut config: ExperimentConfig = figment
        .extract()
        .map_err(|e| Error::Config(describe(&e, path)))?;
    if let Some(name) = config.model.zoo.take() {
        if !config.model.layers.is_empty() {
            return Err(Error::Config(format!(
                "{}: [model] has both zoo = {name:?} and layers; keep one",
                path.display()
            )));
        }
        let params = config.model.params.take().unwrap_or_default();
        config.model.layers = zoo(&name, &params).map_err(|why| {
            let source = source_of(
                figment.find_metadata("model.zoo"),
                &["model".into(), "zoo".into()],
                path,
            );
            Error::Config(format!("{source}: key `model.zoo`: {why}"))
        })?;
    } else if config.model.params.is_some() {
        return Err(Error::Config(format!(
            "{}: key `model.params` only applies with zoo = \"...\"",
            path.display()
        )));
    }
    let problems = validate::problems(&config);
    if !problems.is_empty() {
        let lines: Vec<String> = problems
            .iter()
            .map(|(key, what)| {
                let parts: Vec<String> = key
                    .replace('[', ".")
                    .replace(']', "")
                    .split('.')
                    .map(String::from)
                    .collect();
                // The innermost key with a known source (array items have none of their own).
                let meta = (1..=parts.len())
                    .rev()
                    .find_map(|n| figment.find_metadata(&parts[..n].join(".")));
                format!("{}: key `{key}`: {what}", source_of(meta, &parts, path))
            })
            .collect();
        return Err(Error::Config(lines.join("; ")));
    }
    Ok(config)
}

/// Fills in what was left to kiln (seed, cosine horizon), so the resolved config names it.
pub fn resolve(mut config: ExperimentConfig) -> ExperimentConfig {
    if config.seed.is_none() {
        config.seed = Some(rand::random::<u32>() as u64);
    }
    if let super::ScheduleConfig::Cosine { t_max, .. } = &mut config.schedule {
        t_max.get_or_insert(config.train.epochs);
    }
    // CSV files named relative to `dir` are found there, as the schema documents; other
    // relative paths are taken from the working folder. All become absolute, so the resolved
    // config works from anywhere.
    if let Some(dir) = &mut config.data.dir {
        *dir = absolute(dir);
    }
    let dir = config.data.dir.clone();
    for file in [&mut config.data.train_file, &mut config.data.test_file]
        .into_iter()
        .flatten()
    {
        *file = match &dir {
            Some(dir) if file.is_relative() => dir.join(&*file),
            _ => absolute(file),
        };
    }
    config
}

/// The resolved config as TOML text, as written to `config.toml` beside a run.
pub fn to_toml(config: &ExperimentConfig) -> String {
    // Every type in the schema serialises to TOML (no maps with non-string keys, Options
    // skipped when empty), so this cannot fail on a config that deserialised.
    toml::to_string(config).unwrap_or_else(|e| format!("# could not render config: {e}\n"))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// One `--set dotted.key=value` flag as a figment provider.
struct SetFlag {
    raw: String,
    key: String,
    value: Value,
}

impl SetFlag {
    fn parse(raw: &str) -> Result<Self> {
        let Some((key, text)) = raw.split_once('=') else {
            return Err(Error::Config(format!(
                "--set {raw:?} has no `=`; write it as --set dotted.key=value, e.g. --set optimizer.lr=0.001"
            )));
        };
        let key = key.trim();
        let valid_key = !key.is_empty()
            && key.split('.').all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if !valid_key {
            return Err(Error::Config(format!(
                "--set {raw:?}: {key:?} is not a dotted key like optimizer.lr"
            )));
        }
        let text = text.trim();
        // Read the value as TOML; anything TOML cannot read is taken as text.
        let value = toml::from_str::<toml::Table>(&format!("v = {text}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .map(|v| Value::serialize(v).unwrap_or_else(|_| Value::from(text.to_string())))
            .unwrap_or_else(|| Value::from(text.to_string()));
        Ok(SetFlag {
            raw: raw.to_string(),
            key: key.to_string(),
            value,
        })
    }
}

impl Provider for SetFlag {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("--set {}", self.raw))
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        figment::providers::Serialized::default(&self.key, &self.value).data()
    }
}

/// Where a value came from, for messages: the file, `--set ...`, or `environment variable KILN_...`.
fn source_of(meta: Option<&Metadata>, path: &[String], file: &Path) -> String {
    let in_file = || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        match super::locate::locate(&text, path) {
            Some((line, column)) => format!("{}:{line}:{column}", file.display()),
            None => file.display().to_string(),
        }
    };
    match meta {
        Some(meta) if meta.name.starts_with("--set") => meta.name.to_string(),
        Some(meta) if meta.name.contains("environment") => {
            format!(
                "environment variable KILN_{}",
                path.join("__").to_uppercase()
            )
        }
        _ => in_file(),
    }
}

/// One line per figment error: where the value came from, the dotted key, what is wrong.
fn describe(error: &figment::Error, file: &Path) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| {
            // An unknown key is not in the config's path: point at it, not at its table.
            let mut at = e.path.clone();
            if let figment::error::Kind::UnknownField(found, _) = &e.kind {
                at.push(found.clone());
            }
            // A wrong value inside a tagged section: serde names the section only; find the
            // key that holds the value in the file.
            if let figment::error::Kind::InvalidType(actual, _)
            | figment::error::Kind::InvalidValue(actual, _) = &e.kind
                && let Some(written) = written_as(actual)
                && let Ok(text) = std::fs::read_to_string(file)
                && let Some(key) = super::locate::key_with_value(&text, &at, &written)
            {
                at.push(key);
            }
            let source = source_of(e.metadata.as_ref(), &at, file);
            let key = at.join(".");
            let what = explain(&e.kind);
            if key.is_empty() {
                format!("{source}: {what}")
            } else {
                format!("{source}: key `{key}`: {what}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// figment's messages, reworded to say what to write instead.
fn explain(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::UnknownField(found, valid) => format!(
            "unknown key `{found}`{}; valid keys here: {}",
            suggest(found, valid),
            valid.join(", ")
        ),
        Kind::UnknownVariant(found, valid) => format!(
            "unknown value \"{found}\"{}; valid: {}",
            suggest(found, valid),
            valid.join(", ")
        ),
        Kind::MissingField(name) => format!("missing key `{name}`"),
        Kind::InvalidValue(actual, expected) | Kind::InvalidType(actual, expected) => {
            format!("got {actual}, expected {}", plain_type(expected))
        }
        // toml's parse errors span several lines (a source excerpt with a caret); keep the
        // position and the explanation on one line.
        Kind::Message(text) if text.contains('\n') => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.contains('|') && !l.starts_with('^'))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// How a value figment reports appears in TOML text.
fn written_as(actual: &figment::error::Actual) -> Option<String> {
    use figment::error::Actual;
    Some(match actual {
        Actual::Bool(b) => b.to_string(),
        Actual::Unsigned(u) => u.to_string(),
        Actual::Signed(i) => i.to_string(),
        Actual::Str(s) => format!("{s:?}"),
        _ => return None,
    })
}

/// serde's Rust type names in words a config writer knows.
fn plain_type(expected: &str) -> String {
    match expected {
        "usize" | "u64" | "u32" => "a whole number, 0 or more".into(),
        "f64" | "f32" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        other => other.to_string(),
    }
}

/// ` (did you mean `x`?)` when a valid name is a small edit away.
fn suggest(found: &str, valid: &[&str]) -> String {
    valid
        .iter()
        .map(|v| (edit_distance(found, v), v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 3))
        .min()
        .map(|(_, v)| format!(" (did you mean `{v}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(suggest("lrr", &["lr", "betas"]), " (did you mean `lr`?)");
        assert_eq!(
            suggest("adamm", &["sgd", "adam", "adamw"]),
            " (did you mean `adam`?)"
        );
        assert_eq!(suggest("zzzzzz", &["lr", "betas"]), "");
    }

    #[test]
    fn set_values_are_read_as_toml_or_text() {
        assert_eq!(SetFlag::parse("a.b=0.5").unwrap().value, Value::from(0.5));
        assert_eq!(
            SetFlag::parse("a=run2").unwrap().value,
            Value::from("run2".to_string())
        );
        assert_eq!(SetFlag::parse("a=true").unwrap().value, Value::from(true));
        assert!(SetFlag::parse("novalue").is_err());
        assert!(SetFlag::parse("a..b=1").is_err());
    }
}
