//! Sweeps beyond one machine and beyond grids: the Slurm launcher against a real one-node
//! cluster (scripts/slurm-local.sh starts it; `.ci/run` does, and sets KILN_SLURM so that
//! these tests fail rather than skip without it), and ASHA with both launchers.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{runner, sigint, stderr, stdout, synthetic_experiment, wait_until};

/// Whether a Slurm cluster answers here; without one the test says it skipped (and fails
/// where CI promised one).
fn slurm_here() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| ["idle", "mix", "alloc"].contains(&l.trim()))
        });
    if !up {
        assert!(
            std::env::var_os("KILN_SLURM").is_none(),
            "KILN_SLURM is set but sinfo shows no node up: see scripts/slurm-local.sh"
        );
        eprintln!("skipped: no Slurm cluster here (sudo scripts/slurm-local.sh starts one)");
    }
    up
}

fn sweep_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, format!("[sweep]\nbase = \"syn.toml\"\n{body}")).unwrap();
    file
}

fn sweep(dir: &Path, file: &Path, logs: &str, extra: &[&str]) -> Command {
    let mut cmd = runner(dir);
    cmd.arg("sweep")
        .arg(file)
        .args(["--logdir", logs])
        .args(extra);
    cmd
}

/// summary.csv as (run, epochs, status) rows, sorted by run.
fn statuses(csv: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut rows: Vec<(String, String, String)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let plain = |s: &str| s.trim_matches('"').to_string();
            (plain(cells[0]), plain(cells[5]), plain(cells[7]))
        })
        .collect();
    rows.sort();
    rows
}

fn ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
}

/// ASHA with grace 1 and reduction 2 over runs of 2 epochs: one rung, after epoch 1. One run
/// at a time, in grid order: lr=0.1 is the first at the rung and goes on; the two tiny rates
/// (chance accuracy) fall below the cutoff of those before them and stop; lr=0.05 is above
/// the median of the three before it and goes on. Local children and Slurm tasks alike.
#[test]
fn asha_stops_the_same_runs_with_both_launchers() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_experiment(dir.path(), 2, 500);
    let file = sweep_file(
        dir.path(),
        "asha",
        "scheduler = { kind = \"asha\", metric = \"test_accuracy\", grace_epochs = 1, reduction = 2 }\n[sweep.grid]\n\"optimizer.lr\" = [0.1, 0.000001, 0.0000001, 0.05]\n",
    );
    let expected = [
        ("lr=0.0000001", "1", "stopped at epoch 1 by ASHA"),
        ("lr=0.000001", "1", "stopped at epoch 1 by ASHA"),
        ("lr=0.05", "2", "ok"),
        ("lr=0.1", "2", "ok"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    let mut launchers = vec![("local", vec!["--jobs", "1"])];
    if slurm_here() {
        launchers.push((
            "slurm",
            vec!["--launcher", "slurm", "--array-parallelism", "1"],
        ));
    }
    for (logs, flags) in launchers {
        let out = sweep(dir.path(), &file, logs, &flags).output().unwrap();
        ok(&out);
        let root = dir.path().join(logs).join("asha");
        assert_eq!(
            statuses(&root.join("summary.csv")),
            expected,
            "{logs}: {}",
            stdout(&out)
        );
        // A stopped run is complete (result.toml says who stopped it) and keeps its
        // checkpoint, to be continued by hand if wanted.
        let run = common::single_run(&root.join("lr=0.000001"));
        let result = std::fs::read_to_string(run.join("result.toml")).unwrap();
        assert!(result.contains("stopped_by = \"ASHA\""), "{result}");
        assert!(run.join("checkpoints/epoch-0001.ckpt").is_file());
        if let Some(python) = std::env::var_os("KILN_TB_PYTHON") {
            hparams_statuses_mark_the_stopped_runs(&python, &root);
        }
    }
}

/// TensorBoard's HParams session status: success for runs trained to the end, "unknown" for
/// those the scheduler stopped.
fn hparams_statuses_mark_the_stopped_runs(python: &std::ffi::OsStr, root: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/check_hparams.py");
    let check = Command::new(python).arg(script).arg(root).output().unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    let runs: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&check.stdout).unwrap();
    for (run, values) in runs {
        let stopped = run.starts_with("lr=0.000");
        let want = if stopped { 0 } else { 1 };
        assert_eq!(values["_status"].as_i64(), Some(want), "{run}");
    }
}

/// The median rule with the local launcher: runs 3 and 4 (a tiny rate) fall below the median
/// of the others' averages once two runs are there to compare with.
#[test]
fn the_median_rule_stops_runs_below_the_others() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_experiment(dir.path(), 3, 500);
    let file = sweep_file(
        dir.path(),
        "median",
        "scheduler = { kind = \"median\", metric = \"test_accuracy\", grace_epochs = 1, min_runs = 2 }\n[sweep.grid]\n\"optimizer.lr\" = [0.1, 0.05, 0.0000001, 0.2]\n",
    );
    let out = sweep(dir.path(), &file, "logs", &["--jobs", "1"])
        .output()
        .unwrap();
    ok(&out);
    let rows = statuses(&dir.path().join("logs/median/summary.csv"));
    let status = |run: &str| rows.iter().find(|r| r.0 == run).unwrap().2.clone();
    assert_eq!(status("lr=0.1"), "ok", "{rows:?}");
    assert_eq!(status("lr=0.05"), "ok", "{rows:?}");
    assert_eq!(
        status("lr=0.0000001"),
        "stopped at epoch 1 by the median stopping rule"
    );
}

/// A scheduler's mistakes stop the sweep before anything runs, naming the key.
#[test]
fn scheduler_mistakes_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_experiment(dir.path(), 2, 100);
    for (body, expect) in [
        (
            "scheduler = { kind = \"asha\", metric = \"test_accuracy\", reduction = 1 }",
            "sweep.scheduler.reduction",
        ),
        (
            "scheduler = { kind = \"asha\", metric = \"validation_accuracy\" }",
            "sweep.scheduler.metric",
        ),
        (
            "scheduler = { kind = \"hyperband\", metric = \"test_accuracy\" }",
            "hyperband",
        ),
    ] {
        let file = sweep_file(
            dir.path(),
            "bad",
            &format!("{body}\n[sweep.grid]\n\"optimizer.lr\" = [0.1]\n"),
        );
        let out = sweep(dir.path(), &file, "logs", &[]).output().unwrap();
        common::assert_user_error(&out, &[expect]);
        assert!(!dir.path().join("logs/bad").exists(), "nothing ran");
    }
    let file = sweep_file(dir.path(), "s", "[sweep.grid]\n\"optimizer.lr\" = [0.1]\n");
    let out = sweep(dir.path(), &file, "logs", &["--partition", "gpu"])
        .output()
        .unwrap();
    common::assert_user_error(&out, &["--launcher slurm"]);
}

/// One array through the real Slurm: `--no-wait` submits and leaves, saying how to collect;
/// the same command again waits for what is queued, submits nothing twice and writes the
/// summary.
#[test]
fn a_slurm_sweep_submits_one_array_and_collects_its_summary() {
    if !slurm_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    synthetic_experiment(dir.path(), 3, 2000);
    let file = sweep_file(
        dir.path(),
        "grid",
        "[sweep.slurm]\ncpus_per_task = 1\ntime = \"10:00\"\n[sweep.grid]\n\"optimizer.lr\" = [0.01, 0.05, 0.1]\n",
    );
    let flags = ["--launcher", "slurm"];
    let out = sweep(
        dir.path(),
        &file,
        "logs",
        &[&flags[..], &["--no-wait"]].concat(),
    )
    .output()
    .unwrap();
    ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("submitted Slurm job") && text.contains("runner sweep"),
        "{text}"
    );
    let root = dir.path().join("logs/grid");
    let script = std::fs::read_to_string(root.join("sweep.sbatch")).unwrap();
    assert!(
        script.contains("#SBATCH --time=10:00") && script.contains("sweep-task"),
        "{script}"
    );
    assert!(root.join("manifest.toml").is_file());

    let out = sweep(dir.path(), &file, "logs", &flags).output().unwrap();
    ok(&out);
    let rows = statuses(&root.join("summary.csv"));
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.1 == "3" && r.2 == "ok"), "{rows:?}");
    let jobs = std::fs::read_to_string(root.join("slurm-jobs.toml")).unwrap();
    assert_eq!(jobs.matches("[[job]]").count(), 1, "submitted once: {jobs}");
    // Each task's Slurm log kept its epoch lines.
    let logs: Vec<PathBuf> = std::fs::read_dir(root.join("tasks/0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".out"))
        .collect();
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(log.contains("epoch   3/3"), "{log}");
}

/// The array's task id, read from slurm-jobs.toml: `JOB_INDEX`.
fn task_id(root: &Path, index: usize) -> String {
    let jobs = std::fs::read_to_string(root.join("slurm-jobs.toml")).unwrap();
    let table: toml::Table = toml::from_str(&jobs).unwrap();
    let id = table["job"][0]["id"].as_str().unwrap();
    format!("{id}_{index}")
}

fn epochs_written(root: &Path, index: usize) -> usize {
    std::fs::read_to_string(root.join(format!("tasks/{index}/epochs.toml")))
        .map(|t| t.matches("[[epoch]]").count())
        .unwrap_or(0)
}

/// Preemption: `scontrol requeue` stops a running task (SIGTERM: it checkpoints) and queues it
/// again; it resumes from its checkpoint and ends with the figures, per epoch and final, of
/// the same run never interrupted.
#[test]
fn a_requeued_task_resumes_bit_exact() {
    interrupted_task_resumes_bit_exact(&["scontrol", "requeue"], "", &["--requeue"]);
}

/// The time limit's signal: Slurm sends SIGTERM to the job's steps only (`--signal=TERM@N`;
/// `scancel --signal=TERM` does the same at once), the run checkpoints and exits 130, and the
/// batch script, still alive, queues the task again (`requeue = true`); it resumes bit-exact.
#[test]
fn a_task_signalled_as_before_its_time_limit_requeues_itself() {
    interrupted_task_resumes_bit_exact(
        &["scancel", "--signal=TERM"],
        "[sweep.slurm]\nrequeue = true\n",
        &[],
    );
}

/// Runs one 12-epoch sweep on Slurm, interrupts its task with `interrupt JOB_0` after two
/// epochs (the sweep file holding `slurm`, the command `flags`), and compares the outcome with
/// the same sweep never interrupted.
fn interrupted_task_resumes_bit_exact(interrupt: &[&str], slurm: &str, flags: &[&str]) {
    if !slurm_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    synthetic_experiment(dir.path(), 12, 20000);
    let file = sweep_file(
        dir.path(),
        "one",
        &format!("{slurm}[sweep.grid]\n\"optimizer.lr\" = [0.05]\n"),
    );
    // The reference runs as a Slurm task too: one thread, as the interrupted one (the test
    // loss's last bits depend on the thread count; training's do not).
    let reference = sweep(dir.path(), &file, "plain", &["--launcher", "slurm"])
        .output()
        .unwrap();
    ok(&reference);

    let child = sweep(
        dir.path(),
        &file,
        "slurm",
        &[&["--launcher", "slurm"], flags].concat(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let root = dir.path().join("slurm/one");
    wait_until("the task never finished an epoch", || {
        epochs_written(&root, 0) >= 2
    });
    let task = task_id(&root, 0);
    let stop = Command::new(interrupt[0])
        .args(&interrupt[1..])
        .arg(&task)
        .output()
        .unwrap();
    assert!(stop.status.success(), "{}", stderr(&stop));
    // Slurm holds a requeued job back for about two minutes; let it start at once.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let now = Command::new("scontrol")
            .args(["update", &format!("JobId={task}"), "StartTime=now"])
            .output()
            .unwrap();
        let state = Command::new("squeue")
            .args(["-h", "-j", &task, "-o", "%t"])
            .output()
            .unwrap();
        if now.status.success() && stdout(&state).trim() == "PD" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    ok(&out);

    let run = common::single_run(&root.join("lr=0.05"));
    let log = std::fs::read_to_string(root.join(format!("tasks/0/slurm-{task}.out"))).unwrap();
    assert!(log.contains("resuming"), "the task resumed: {log}");
    let figures = |root: &Path| {
        let epochs: toml::Table =
            toml::from_str(&std::fs::read_to_string(root.join("tasks/0/epochs.toml")).unwrap())
                .unwrap();
        let mut epochs = epochs["epoch"].as_array().unwrap().clone();
        for e in &mut epochs {
            e.as_table_mut().unwrap().remove("train_seconds");
        }
        let result: toml::Table =
            toml::from_str(&std::fs::read_to_string(root.join("tasks/0/result.toml")).unwrap())
                .unwrap();
        let last = ["train_loss", "test_loss", "test_accuracy"].map(|k| result[k].clone());
        (epochs, last)
    };
    let (epochs, last) = figures(&root);
    assert_eq!(epochs.len(), 12);
    assert_eq!((epochs, last), figures(&dir.path().join("plain/one")));
    assert!(run.join("result.toml").is_file());
}

/// Ctrl-C while waiting asks nothing: the array is cancelled (its running task checkpoints),
/// the sweep says so and exits 130.
#[test]
fn ctrl_c_cancels_the_array() {
    if !slurm_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    synthetic_experiment(dir.path(), 2000, 2000);
    let file = sweep_file(
        dir.path(),
        "long",
        "[sweep.grid]\n\"optimizer.lr\" = [0.01, 0.02, 0.03]\n",
    );
    let child = sweep(dir.path(), &file, "logs", &["--launcher", "slurm"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let root = dir.path().join("logs/long");
    wait_until("no task started", || epochs_written(&root, 0) >= 1);
    let task = task_id(&root, 0);
    let job = task.split('_').next().unwrap().to_string();
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains(&format!("cancelled Slurm job(s) {job}")) && !err.contains("panicked"),
        "{err}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let queue = Command::new("squeue")
            .args(["-h", "-r", "--me", "-o", "%F"])
            .output()
            .unwrap();
        if !stdout(&queue).lines().any(|l| l.trim() == job) {
            break;
        }
        assert!(Instant::now() < deadline, "job {job} still queued");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The running task checkpointed on its way out: the same command would resume it.
    let run = common::single_run(&root.join("lr=0.01"));
    assert!(run.join("checkpoints").read_dir().unwrap().next().is_some());
}

/// Runs decide nothing alone: submitted with `--no-wait`, no sweep watches them (no lease), so
/// ASHA's rung passes without a verdict and every run trains to the end; the same command
/// later collects them all as complete.
#[test]
fn without_a_watching_sweep_runs_train_on_unjudged() {
    if !slurm_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    synthetic_experiment(dir.path(), 2, 500);
    let file = sweep_file(
        dir.path(),
        "alone",
        "scheduler = { kind = \"asha\", metric = \"test_accuracy\", grace_epochs = 1, reduction = 2 }\n[sweep.grid]\n\"optimizer.lr\" = [0.1, 0.0000001]\n",
    );
    let flags = ["--launcher", "slurm"];
    let out = sweep(
        dir.path(),
        &file,
        "logs",
        &[&flags[..], &["--no-wait"]].concat(),
    )
    .output()
    .unwrap();
    ok(&out);
    assert!(stdout(&out).contains("decides only while a sweep command waits"));
    let root = dir.path().join("logs/alone");
    wait_until("the runs never finished", || {
        (0..2).all(|i| root.join(format!("tasks/{i}/result.toml")).is_file())
    });
    let out = sweep(dir.path(), &file, "logs", &flags).output().unwrap();
    ok(&out);
    assert!(
        stdout(&out).contains("2 runs, 2 already complete"),
        "{}",
        stdout(&out)
    );
    let rows = statuses(&root.join("summary.csv"));
    assert!(rows.iter().all(|r| r.1 == "2" && r.2 == "ok"), "{rows:?}");
}

/// A run that fails on a node is reported with the error its log ends with and the log's
/// path; the other runs complete and the sweep exits 1.
#[test]
fn a_failed_task_is_reported_with_its_slurm_log() {
    if !slurm_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    synthetic_experiment(dir.path(), 2, 500);
    // A rate of 1e30 makes the loss infinite at the first step: the run fails (exit 1).
    let file = sweep_file(
        dir.path(),
        "bad",
        "[sweep.grid]\n\"optimizer.lr\" = [0.1, 1e30]\n",
    );
    let out = sweep(dir.path(), &file, "logs", &["--launcher", "slurm"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let rows = statuses(&dir.path().join("logs/bad/summary.csv"));
    let csv = std::fs::read_to_string(dir.path().join("logs/bad/summary.csv")).unwrap();
    assert_eq!(rows.len(), 2, "{csv}");
    let ok_row = csv.lines().find(|l| l.starts_with("\"lr=0.1\"")).unwrap();
    assert!(ok_row.contains(",\"ok\","), "{csv}");
    let failed = csv.lines().find(|l| l.contains("failed:")).unwrap();
    assert!(
        failed.contains("loss became NaN")
            && failed.contains("Slurm log: ")
            && failed.contains("tasks/1/slurm-"),
        "{failed}"
    );
}
