//! Helpers shared by the CLI test binaries.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod tensorboard;

pub const FC_ADAM_L2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../experiments/fc_adam_l2.toml"
);

/// A path as a command-line argument.
pub fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A `runner` command isolated from the user's environment: its own cache, no mirrors that
/// could reach the internet, no `KILN_*` variables but those the test sets.
pub fn runner(scratch: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runner"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KILN_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("KILN_CACHE_DIR", scratch.join("cache"))
        .env("KILN_MIRRORS", "http://127.0.0.1:9/")
        .current_dir(scratch);
    cmd
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Exit code 2 and exactly one line on stderr, an `error:` without a panic.
pub fn assert_user_error(out: &Output, expect: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in: {err}");
    }
}

/// A synthetic-data experiment in `dir` (see kiln_core::data::synthetic).
pub fn synthetic_experiment(dir: &Path, epochs: usize, train: usize) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    kiln_core::data::synthetic::write_idx(&data, train, 100, false).unwrap();
    let file = dir.join("syn.toml");
    std::fs::write(
        &file,
        format!(
            r#"name = "syn"
seed = 1
[data]
dataset = "idx"
dir = "{}"
[model]
layers = [{{ type = "flatten" }}, {{ type = "linear", units = 16, activation = "relu" }}, {{ type = "linear", units = 10 }}]
[optimizer]
kind = "sgd"
lr = 0.1
[train]
epochs = {epochs}
batch_size = 50
"#,
            data.display()
        ),
    )
    .unwrap();
    file
}

/// Polls `ready` for up to a minute; fails the test with `what` if it never holds.
pub fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Sends SIGINT to `child`, as Ctrl-C would.
pub fn sigint(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The one run folder under `experiment_dir`.
pub fn single_run(experiment_dir: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(experiment_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

/// The real MNIST folder, if this machine has one: `KILN_DATA_DIR` (a relative path is taken
/// from the workspace root, where `cargo test` is typed), else kiln's cache.
pub fn real_mnist() -> std::option::Option<std::path::PathBuf> {
    use kiln_core::config::DatasetKind;
    use kiln_core::data::named::Lookup;
    let mut lookup = Lookup::from_env(DatasetKind::Mnist, None, false);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    lookup.env_dir = lookup.env_dir.map(|d| root.join(d));
    lookup.on_disk().map(|d| d.to_path_buf())
}

/// Exit code 0, or the failure with everything the command printed.
pub fn ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
}

/// The size of the one event file in `dir` (a run's `train/` or `test/`).
pub fn event_file_len(dir: &Path) -> u64 {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::metadata(file).unwrap().len()
}
