//! `runner sweep --launcher slurm`: the sweep's runs as ONE Slurm job array. The batch script
//! (`sweep.sbatch`, in the sweep's log folder beside `manifest.toml`) runs
//! `runner sweep-task MANIFEST $SLURM_ARRAY_TASK_ID` as a job step; the parent submits it with
//! `sbatch --parsable`, then waits: progress from `squeue` and the runs' result files, the
//! scheduler's verdicts ([`super::watch`]), `scancel` on Ctrl-C. The job ids it submitted are
//! kept in `slurm-jobs.toml`, so running the same sweep again attaches to tasks still queued
//! or running and submits only those neither complete nor queued.
//!
//! Preemption and time limits: Slurm sends SIGTERM `signal_seconds` ahead of the limit (and on
//! preemption, `scontrol requeue` and `scancel`); the runner finishes its step, checkpoints
//! and exits 130. With `requeue = true` the script queues the task again after the limit's
//! signal, and a requeued task resumes its run from that checkpoint, bit-exact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kiln_core::Error;
use serde::{Deserialize, Serialize};

use super::Outcome;
use super::manifest::Manifest;
use super::watch::Watch;
use crate::signals::Signals;

const SCRIPT: &str = "sweep.sbatch";
const JOBS: &str = "slurm-jobs.toml";

/// `[sweep.slurm]` in a sweep file; each also a flag of `runner sweep` (the flag wins).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    /// Slurm: the partition (queue) to submit to [default: the cluster's].
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm: the time limit of each run, e.g. 2:00:00.
    #[arg(long)]
    pub time: Option<String>,
    /// Slurm: cores per run (each run trains on as many threads) [default: 1].
    #[arg(long)]
    pub cpus_per_task: Option<usize>,
    /// Slurm: memory per run, e.g. 8G.
    #[arg(long)]
    pub mem: Option<String>,
    /// Slurm: GPUs per run, e.g. 1 or a100:1.
    #[arg(long)]
    pub gpus: Option<String>,
    /// Slurm: at most this many runs at once (the %N of --array).
    #[arg(long)]
    pub array_parallelism: Option<usize>,
    /// Slurm: queue a run again after its time limit or a preemption; it resumes from its
    /// checkpoint.
    #[arg(long)]
    #[serde(default)]
    pub requeue: bool,
    /// Slurm: seconds ahead of the time limit at which a run is told to checkpoint (SIGTERM)
    /// [default: 120].
    #[arg(long)]
    pub signal_seconds: Option<u32>,
    /// Slurm: an extra sbatch option for every run, e.g. --qos=high (repeatable).
    #[arg(long = "sbatch", value_name = "OPTION")]
    #[serde(default)]
    pub extra: Vec<String>,
}

impl SlurmSettings {
    /// The sweep file's table with the flags given on top.
    pub fn merged(self, flags: &SlurmSettings) -> SlurmSettings {
        let or = |a: &Option<String>, b: Option<String>| a.clone().or(b);
        SlurmSettings {
            partition: or(&flags.partition, self.partition),
            time: or(&flags.time, self.time),
            cpus_per_task: flags.cpus_per_task.or(self.cpus_per_task),
            mem: or(&flags.mem, self.mem),
            gpus: or(&flags.gpus, self.gpus),
            array_parallelism: flags.array_parallelism.or(self.array_parallelism),
            requeue: flags.requeue || self.requeue,
            signal_seconds: flags.signal_seconds.or(self.signal_seconds),
            extra: self.extra.into_iter().chain(flags.extra.clone()).collect(),
        }
    }

    /// The `#SBATCH` lines, or the setting that cannot go in one (a line break would start a
    /// line of its own in the script).
    fn sbatch_lines(&self) -> Result<Vec<String>, Error> {
        let mut options: Vec<(&str, String)> = Vec::new();
        let mut add = |key: &'static str, value: Option<String>| {
            if let Some(v) = value {
                options.push((key, format!("--{}={v}", key.replace('_', "-"))));
            }
        };
        add("partition", self.partition.clone());
        add("time", self.time.clone());
        add("cpus_per_task", self.cpus_per_task.map(|n| n.to_string()));
        add("mem", self.mem.clone());
        add("gpus", self.gpus.clone());
        add(
            "signal",
            Some(format!("TERM@{}", self.signal_seconds.unwrap_or(120))),
        );
        options.push((
            "requeue",
            if self.requeue {
                "--requeue"
            } else {
                "--no-requeue"
            }
            .into(),
        ));
        for extra in &self.extra {
            let option = extra.strip_prefix("#SBATCH").unwrap_or(extra).trim();
            if !option.starts_with('-') {
                return Err(Error::Config(format!(
                    "key `sweep.slurm.extra`: {extra:?} is not an sbatch option; write options such as \"--qos=high\""
                )));
            }
            options.push(("extra", option.to_string()));
        }
        options
            .into_iter()
            .map(|(key, line)| {
                if line.chars().any(char::is_control) {
                    Err(Error::Config(format!(
                        "key `sweep.slurm.{key}` holds a line break or control character; give one plain value"
                    )))
                } else {
                    Ok(format!("#SBATCH {line}"))
                }
            })
            .collect()
    }
}

/// What the Slurm launcher was asked to do.
pub struct SlurmRun<'a> {
    pub manifest: &'a Manifest,
    /// Tasks neither complete nor to be skipped.
    pub pending: &'a [usize],
    pub settings: SlurmSettings,
    pub no_wait: bool,
    pub quiet: bool,
    /// The command that collects the results later (printed with `--no-wait`).
    pub again: String,
    pub signals: &'a Signals,
}

/// The job ids submitted for this sweep and the tasks each holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Submitted {
    #[serde(default)]
    job: Vec<Submission>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Submission {
    id: String,
    tasks: Vec<usize>,
}

/// Submits what is missing and waits; `None` with `--no-wait` (nothing to summarise yet).
pub fn run(s: &SlurmRun) -> Result<Option<Vec<Outcome>>, Error> {
    let manifest = s.manifest;
    let jobs_file = manifest.root.join(JOBS);
    let mut submitted: Submitted = std::fs::read_to_string(&jobs_file)
        .ok()
        .and_then(|t| toml::from_str(&t).ok())
        .unwrap_or_default();
    let ids: Vec<String> = submitted.job.iter().map(|j| j.id.clone()).collect();
    let live = queue(&ids)?;
    if !live.is_empty() && manifest.on_disk().as_ref() != Some(manifest) {
        return Err(Error::Config(format!(
            "the sweep changed while its Slurm job(s) {} are queued or running in {}; wait for them (run the sweep as it was) or cancel them with: scancel {}",
            ids.join(", "),
            manifest.root.display(),
            ids.join(" ")
        )));
    }
    let missing: Vec<usize> = s
        .pending
        .iter()
        .copied()
        .filter(|i| !live.contains_key(i))
        .collect();
    manifest.install(&missing)?;
    if !missing.is_empty() {
        let id = submit(manifest, &missing, &s.settings)?;
        if !s.quiet {
            kiln_core::say!(
                "submitted Slurm job {id}: {} run(s) of {} as one array; logs in {}",
                missing.len(),
                manifest.name,
                manifest.root.join("tasks").display()
            );
        }
        submitted.job.push(Submission {
            id,
            tasks: missing.clone(),
        });
        let text = toml::to_string(&submitted).unwrap_or_default();
        kiln_core::checkpoint::write_atomic(&jobs_file, text.as_bytes())?;
    } else if !live.is_empty() && !s.quiet {
        kiln_core::say!(
            "{} run(s) already queued or running: waiting for them",
            live.len()
        );
    }
    if s.no_wait {
        let ids: Vec<&str> = submitted.job.iter().map(|j| j.id.as_str()).collect();
        kiln_core::say!(
            "not waiting (--no-wait): follow with `squeue --me`; collect the results with: {}",
            s.again
        );
        if manifest.scheduler.is_some() {
            kiln_core::say!(
                "note: the scheduler decides only while a sweep command waits; runs go on unjudged until you run that command (job(s) {})",
                ids.join(", ")
            );
        }
        return Ok(None);
    }
    wait(s, &submitted).map(Some)
}

/// Writes the batch script and submits one array of `tasks`; the job id.
fn submit(manifest: &Manifest, tasks: &[usize], settings: &SlurmSettings) -> Result<String, Error> {
    let script = manifest.root.join(SCRIPT);
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("cannot find the runner executable", "runner", e))?;
    let text = batch_script(manifest, settings, &exe)?;
    kiln_core::checkpoint::write_atomic(&script, text.as_bytes())?;
    for &i in tasks {
        let dir = manifest.task_dir(i);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    }
    let mut array = tasks
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    if let Some(n) = settings.array_parallelism {
        array.push_str(&format!("%{n}"));
    }
    let output = manifest.root.join("tasks/%a/slurm-%A_%a.out");
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(format!("--array={array}"))
        .arg(format!("--output={}", output.display()))
        .arg(&script)
        .output()
        .map_err(|e| {
            Error::Config(format!(
                "--launcher slurm needs Slurm's sbatch on PATH ({e}); run the sweep on a machine that can submit jobs, or without --launcher slurm"
            ))
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    if !out.status.success() || id.is_empty() {
        return Err(Error::Run(format!(
            "sbatch refused the sweep's array ({}): {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(id)
}

fn batch_script(
    manifest: &Manifest,
    settings: &SlurmSettings,
    exe: &Path,
) -> Result<String, Error> {
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!(
            "# Written by `runner sweep --launcher slurm` for the sweep {}: array task N is run N of",
            manifest.name
        ),
        "# manifest.toml ([[task]] N, from 0). Submitted with sbatch --parsable --array=... --output=....".into(),
        format!("#SBATCH --job-name=kiln-{}", manifest.name),
        "#SBATCH --open-mode=append".into(),
    ];
    lines.extend(settings.sbatch_lines()?);
    lines.extend([
        "# A run checkpoints on SIGTERM (Slurm's signal ahead of the time limit, preemption,".into(),
        "# scontrol requeue, scancel) and exits 130; a requeued run resumes from it.".into(),
        "export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"".into(),
        format!(
            "srun --kill-on-bad-exit=1 {} sweep-task --progress {} \"$SLURM_ARRAY_TASK_ID\"",
            quote(exe),
            quote(&manifest.path())
        ),
        "rc=$?".into(),
        format!(
            "if [ \"$rc\" = 130 ] && {}; then",
            if settings.requeue { "true" } else { "false" }
        ),
        "  # Signalled ahead of the time limit: queue this run again; it goes on from its checkpoint.".into(),
        "  scontrol requeue \"$SLURM_JOB_ID\"".into(),
        "fi".into(),
        "exit \"$rc\"".into(),
    ]);
    Ok(lines.join("\n") + "\n")
}

/// The array tasks of `ids` still in Slurm's queue (pending, running, completing), by task
/// index, with their state code.
fn queue(ids: &[String]) -> Result<BTreeMap<usize, String>, Error> {
    let mut live = BTreeMap::new();
    if ids.is_empty() {
        return Ok(live);
    }
    let out = Command::new("squeue")
        .args(["-h", "-r", "--me", "-o", "%F %K %t"])
        .output()
        .map_err(|e| {
            Error::Config(format!(
                "--launcher slurm needs Slurm's squeue on PATH ({e}); run the sweep where jobs can be submitted"
            ))
        })?;
    if !out.status.success() {
        return Err(Error::Run(format!(
            "squeue failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut words = line.split_whitespace();
        if let (Some(job), Some(task), Some(state)) = (words.next(), words.next(), words.next())
            && ids.iter().any(|id| id == job)
            && let Ok(task) = task.parse()
        {
            live.insert(task, state.to_string());
        }
    }
    Ok(live)
}

/// Waits until no task of the sweep's jobs is queued, printing the counts as they change,
/// answering the scheduler, cancelling on Ctrl-C.
fn wait(s: &SlurmRun, submitted: &Submitted) -> Result<Vec<Outcome>, Error> {
    let manifest = s.manifest;
    let ids: Vec<String> = submitted.job.iter().map(|j| j.id.clone()).collect();
    let mut watch = Watch::new(manifest);
    let mut said = String::new();
    let mut cancelled = false;
    let mut failures = 0;
    let started = Instant::now();
    loop {
        if s.signals.requested.load(Ordering::SeqCst) && !cancelled {
            cancelled = true;
            let _ = Command::new("scancel").args(&ids).status();
            kiln_core::say_err!(
                "cancelled Slurm job(s) {} (scancel): running runs checkpoint and stop; run the same sweep command again to resume them",
                ids.join(", ")
            );
        }
        watch.poll();
        let live = match queue(&ids) {
            Ok(live) => {
                failures = 0;
                live
            }
            // slurmctld busy or restarting: try again, up to about a minute.
            Err(e) if failures < 30 => {
                failures += 1;
                kiln_core::say_err!("warning: {e}; trying again");
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
            Err(e) => return Err(e),
        };
        let count = |f: &dyn Fn(&str) -> bool| live.values().filter(|t| f(t)).count();
        let (done, gone): (Vec<usize>, Vec<usize>) = s
            .pending
            .iter()
            .filter(|i| !live.contains_key(i))
            .partition(|&&i| manifest.result_file(i).exists());
        let line = format!(
            "slurm: {} pending, {} running, {} done, {} ended without a result",
            count(&|t| t == "PD"),
            count(&|t| t != "PD"),
            done.len(),
            gone.len()
        );
        if line != said && !s.quiet {
            kiln_core::say!("{line} ({:.0}s)", started.elapsed().as_secs_f64());
            said = line;
        }
        if live.is_empty() {
            break;
        }
        // Runs wait for verdicts at decision epochs: answer often, ask squeue less.
        for _ in 0..10 {
            watch.poll();
            std::thread::sleep(Duration::from_millis(200));
            if s.signals.requested.load(Ordering::SeqCst) && !cancelled {
                break;
            }
        }
    }
    Ok(s.pending
        .iter()
        .map(|&i| outcome(manifest, i, submitted, cancelled))
        .collect())
}

/// Task `index`'s outcome from its result file, or why it has none, with its log's path.
fn outcome(manifest: &Manifest, index: usize, submitted: &Submitted, cancelled: bool) -> Outcome {
    let label = manifest.tasks[index].label.clone();
    if let Ok(result) = manifest.result(index) {
        let seconds = result.seconds.unwrap_or(0.0);
        return Outcome {
            label,
            result: Ok(result),
            seconds,
        };
    }
    let log = submitted
        .job
        .iter()
        .rev()
        .find(|j| j.tasks.contains(&index))
        .map(|j| log_file(manifest, &j.id, index));
    let why = match (&log, cancelled) {
        (_, true) => "interrupted".to_string(),
        (Some(log), false) => {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let line = text
                .lines()
                .rfind(|l| l.starts_with("error:") || l.contains("error:"))
                .unwrap_or("ended without a result")
                .trim_start_matches("error: ")
                .to_string();
            format!("{line} (Slurm log: {})", log.display())
        }
        (None, false) => "never submitted".into(),
    };
    Outcome {
        label,
        result: Err(why),
        seconds: 0.0,
    }
}

fn log_file(manifest: &Manifest, job: &str, index: usize) -> PathBuf {
    manifest
        .task_dir(index)
        .join(format!("slurm-{job}_{index}.out"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_sbatch_lines_and_line_breaks_are_refused() {
        let s = SlurmSettings {
            partition: Some("gpu".into()),
            time: Some("1:00:00".into()),
            cpus_per_task: Some(4),
            requeue: true,
            extra: vec!["--qos=high".into(), "#SBATCH --account=lab".into()],
            ..SlurmSettings::default()
        };
        assert_eq!(
            s.sbatch_lines().unwrap(),
            [
                "#SBATCH --partition=gpu",
                "#SBATCH --time=1:00:00",
                "#SBATCH --cpus-per-task=4",
                "#SBATCH --signal=TERM@120",
                "#SBATCH --requeue",
                "#SBATCH --qos=high",
                "#SBATCH --account=lab",
            ]
        );
        let bad = SlurmSettings {
            mem: Some("8G\nrm -rf /".into()),
            ..SlurmSettings::default()
        };
        assert!(
            bad.sbatch_lines()
                .unwrap_err()
                .to_string()
                .contains("sweep.slurm.mem")
        );
        let shell = SlurmSettings {
            extra: vec!["module load cuda".into()],
            ..SlurmSettings::default()
        };
        assert!(
            shell
                .sbatch_lines()
                .unwrap_err()
                .to_string()
                .contains("not an sbatch option")
        );
    }

    #[test]
    fn flags_win_over_the_table() {
        let table = SlurmSettings {
            partition: Some("cpu".into()),
            mem: Some("4G".into()),
            extra: vec!["--qos=low".into()],
            ..SlurmSettings::default()
        };
        let flags = SlurmSettings {
            partition: Some("gpu".into()),
            extra: vec!["--qos=high".into()],
            ..SlurmSettings::default()
        };
        let merged = table.merged(&flags);
        assert_eq!(merged.partition.as_deref(), Some("gpu"));
        assert_eq!(merged.mem.as_deref(), Some("4G"));
        assert_eq!(merged.extra, ["--qos=low", "--qos=high"]);
    }
}
