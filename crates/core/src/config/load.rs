//! Layered loading: the TOML file, then `KILN_*` environment variables, then `--set` flags.
//!
//! figment does the merging; this file adds the `--set` provider (so errors can name the flag)
//! and turns figment's errors into one line that names the source and the dotted key.

use std::path::{Path, PathBuf};

use figment::Metadata;
use figment::providers::{Env, Format, Toml};

use super::schema::{ExperimentConfig, Node};
use super::sources::{self, Layer};
use super::validate;
use crate::error::{Error, Result};
use crate::problems::suggest;

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
pub type ZooExpander<'a> = &'a dyn Fn(&str, &toml::Table) -> std::result::Result<Vec<Node>, String>;

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
    if path.is_dir() {
        return Err(Error::Config(format!(
            "{} is a folder; to run every experiment in it: runner sweep {}",
            path.display(),
            path.display()
        )));
    }
    if !path.is_file() {
        return Err(Error::Config(format!(
            "experiment file {} not found; give the path to a .toml file, e.g. experiments/fc_adam_l2.toml",
            path.display()
        )));
    }
    check_env_names()?;
    let env = Env::prefixed("KILN_")
        .filter(|key| {
            let section = key.as_str().split("__").next().unwrap_or("");
            TOP_LEVEL_KEYS
                .iter()
                .any(|k| k.eq_ignore_ascii_case(section))
        })
        .split("__");
    let describe_in = |e: Box<figment::Error>| Error::Config(describe(&e, path));
    let mut layers = vec![
        Layer::of(&Toml::file_exact(path)).map_err(describe_in)?,
        Layer::of(&env).map_err(describe_in)?,
    ];
    for set in sets {
        sources::push_set(&mut layers, set)?;
    }
    let figment = sources::merged(&layers);
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
    let mut problems = validate::problems(&config);
    let expanded = expand_blocks(&mut config.model, problems.is_empty());
    problems.extend(expanded);
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

/// Expands `[model.blocks]` uses into layers (see [`super::blocks`]); the problems found. With
/// `sound` (nothing else is wrong), the expanded graph is checked too: a name a block gives
/// may clash with one the config gives.
fn expand_blocks(model: &mut super::ModelConfig, sound: bool) -> Vec<(String, String)> {
    let mut p = crate::problems::Problems::default();
    let had_blocks = !model.blocks.is_empty();
    super::blocks::expand(model, &mut p);
    if sound && had_blocks && p.found.is_empty() {
        crate::layers::wiring::wire(&model.layers, "model.layers", &mut p);
    }
    p.found
}

/// The `KILN_*` variables that are not config keys.
pub const OTHER_VARIABLES: &[&str] = &[
    "KILN_DATA_DIR",
    "KILN_CACHE_DIR",
    "KILN_MIRRORS",
    "KILN_MEMORY_LIMIT",
];

/// A variable that names a config key with one underscore where two are needed
/// (`KILN_TRAIN_EPOCHS` for `KILN_TRAIN__EPOCHS`) would be silently ignored: refuse it.
fn check_env_names() -> Result<()> {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let Some(rest) = name.strip_prefix("KILN_") else {
            continue;
        };
        if OTHER_VARIABLES.contains(&name.as_ref()) {
            continue;
        }
        let section = TOP_LEVEL_KEYS.iter().find(|k| {
            rest.len() > k.len()
                && rest[..k.len()].eq_ignore_ascii_case(k)
                && rest[k.len()..].starts_with('_')
                && !rest[k.len()..].starts_with("__")
        });
        if let Some(section) = section {
            let fixed = format!(
                "KILN_{}__{}",
                section.to_uppercase(),
                &rest[section.len() + 1..]
            );
            return Err(Error::Config(format!(
                "environment variable {name} is not read: nested config keys take two underscores, as in {fixed}"
            )));
        }
    }
    Ok(())
}

/// Fills in what was left to kiln (seed, cosine horizon), so the resolved config names it.
pub fn resolve(mut config: ExperimentConfig) -> ExperimentConfig {
    if config.seed.is_none() {
        config.seed = Some(rand::random::<u32>() as u64);
    }
    let validation = config.data.validation.is_some();
    // Early stopping's best epoch is best.ckpt's, which its restore_best restores.
    let watched = config.train.early_stopping.as_ref().map(|s| s.metric);
    config.checkpoint.best = config
        .checkpoint
        .best
        .or(watched)
        .or(Some(config.checkpoint.best_metric(validation)));
    if let super::ScheduleKind::Cosine { t_max, .. } = &mut config.schedule.kind {
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

/// `file:line:column` of the dotted `key` in `file` (just `file` where it is not written there),
/// for a mistake found after loading (`train::prepare`) that names its key.
pub fn place_of(file: &Path, key: &str) -> String {
    let parts: Vec<String> = key.split('.').map(String::from).collect();
    source_of(None, &parts, file)
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
            if let figment::error::Kind::UnknownField(found, _) = &e.kind
                && at.last() != Some(found)
            {
                at.push(found.clone());
            }
            // A --set names its key: where serde names only the table holding it, say it.
            if let Some(set_key) = e
                .metadata
                .as_ref()
                .and_then(|m| m.name.strip_prefix("--set "))
                .and_then(|raw| raw.split_once('=').map(|(k, _)| k.trim()))
                && (at.is_empty()
                    || set_key
                        .strip_prefix(&at.join("."))
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.')))
            {
                at = set_key.split('.').map(String::from).collect();
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
            let key = dotted(&at);
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

/// A key path as the user writes it: `model.layers[1].units` (figment says `model.layers.1.units`).
fn dotted(path: &[String]) -> String {
    let mut key = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() {
            key.push_str(&format!("[{part}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
    }
    key
}

/// figment's messages, reworded to say what to write instead.
fn explain(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::UnknownField(found, []) => {
            format!("unknown key `{found}`: this kind takes no other keys")
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_unknown_keys_with_a_suggestion() {
        let kind = figment::error::Kind::UnknownField("lrr".into(), &["lr", "betas"]);
        assert_eq!(
            explain(&kind),
            "unknown key `lrr` (did you mean `lr`?); valid keys here: lr, betas"
        );
    }
}
