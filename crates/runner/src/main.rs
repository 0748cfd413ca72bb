//! `runner`: train the experiment a TOML file describes.
//!
//! Exit codes: 0 success; 2 a problem with what the user gave (config, flags, data); 1 a failure
//! during training; 130 interrupted (Ctrl-C or SIGTERM).

#![deny(unsafe_code)]
// allowed only in allocator.rs, for one FFI call
// Output goes through kiln_core::say!/say_err!, which never panic on a closed pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

mod allocator;
mod signals;
mod sweep;
mod use_run;

use kiln_core::train::{self, RunOptions};
use kiln_core::{Error, checkpoint, config};
use signals::{Phase, Signals};

/// Train a network described in a TOML experiment file; curves go to TensorBoard.
#[derive(Debug, Parser)]
#[command(
    name = "runner",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    /// The experiment file, e.g. experiments/fc_adam_l2.toml.
    #[arg(required = true)]
    experiment: Option<PathBuf>,

    /// Override a config value: --set optimizer.lr=0.001 (repeatable; the last one wins).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,

    /// Root folder of the TensorBoard logs.
    #[arg(long, value_name = "DIR", default_value = "logs")]
    logdir: PathBuf,

    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,

    /// Continue a run from its newest checkpoint: its folder (logs/<name>/<run>), or
    /// `latest` for the newest run of this experiment under --logdir.
    #[arg(long, value_name = "RUN_DIR|latest")]
    resume: Option<PathBuf>,

    /// Write the final figures of the run to this TOML file (used by `runner sweep`).
    #[arg(long, value_name = "FILE", hide = true)]
    result_file: Option<PathBuf>,

    /// A dotted config key to record as an HParam (used by `runner sweep`; repeatable).
    #[arg(long = "hparam", value_name = "KEY", hide = true)]
    hparams: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the network's layers, output shapes, parameters and multiply-adds without training.
    Inspect {
        /// The experiment file.
        experiment: PathBuf,
        /// Override a config value, as for training.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// List the backends compiled into this runner and whether each can start a device here.
    Backends {
        /// The GPU to try for tch-cuda and cuda.
        #[arg(long, default_value_t = 0)]
        device: usize,
    },
    /// Evaluate a trained run on its test set: loss, accuracy, per-class accuracy, confusion matrix.
    Eval {
        /// The run folder, e.g. logs/cnn_bn/2026-11-27_10-00-00.
        run_dir: PathBuf,
        /// best, last, or a checkpoint file.
        #[arg(long, default_value = "best", value_name = "best|last|PATH")]
        checkpoint: checkpoint::Which,
        /// Use a --checkpoint file of another run, writing into this run's folders.
        #[arg(long)]
        force: bool,
        /// Project the penultimate layer's outputs of the first N test examples in
        /// TensorBoard's Projector tab (0: none).
        #[arg(long, value_name = "N", default_value_t = kiln_core::infer::embeddings::DEFAULT_COUNT)]
        embeddings: usize,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Classify pictures of digits (PNG, JPEG, BMP; any size and colour) with a trained run.
    Predict {
        /// The run folder.
        run_dir: PathBuf,
        /// The pictures.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// best, last, or a checkpoint file.
        #[arg(long, default_value = "best", value_name = "best|last|PATH")]
        checkpoint: checkpoint::Which,
        /// Use a --checkpoint file of another run, writing into this run's folders.
        #[arg(long)]
        force: bool,
        /// The largest picture to decode, in pixels (width x height).
        #[arg(long, value_name = "N", default_value_t = kiln_core::infer::preprocess::MAX_PIXELS)]
        max_pixels: u64,
        /// Print the predictions as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a trained run's weights for PyTorch.
    Export {
        /// The run folder.
        run_dir: PathBuf,
        /// The file format (safetensors, with PyTorch's names and layouts).
        #[arg(long, default_value = "safetensors")]
        format: ExportFormat,
        /// best, last, or a checkpoint file.
        #[arg(long, default_value = "best", value_name = "best|last|PATH")]
        checkpoint: checkpoint::Which,
        /// Use a --checkpoint file of another run.
        #[arg(long)]
        force: bool,
        /// Where to write: a .safetensors file (the .py script goes beside it) or a folder
        /// [default: RUN_DIR/export/model.safetensors].
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Replace files already at --output.
        #[arg(long)]
        overwrite: bool,
    },
    /// Run a folder of experiments, or a sweep file's grid, here or on Slurm; rank the runs by test accuracy.
    Sweep {
        /// A folder of experiment files (sub-folders only with --recursive), or a sweep file.
        path: PathBuf,
        /// Also run the experiments in the folder's sub-folders.
        #[arg(long, short)]
        recursive: bool,
        /// Override a config value in every run (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Root folder of the logs; the sweep writes to DIR/<folder name>/.
        #[arg(long, value_name = "DIR", default_value = "logs")]
        logdir: PathBuf,
        /// Runs at a time [default: the number of cores].
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Print nothing but errors.
        #[arg(long, short)]
        quiet: bool,
        /// Run again the experiments that already completed with the same config.
        #[arg(long)]
        force: bool,
        /// Where the runs are carried out.
        #[arg(long, value_enum, default_value = "local")]
        launcher: sweep::Launcher,
        /// Slurm: submit the array and leave; the same command later collects the results
        /// (and submits only what is missing).
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        slurm: sweep::SlurmSettings,
    },
    /// One run of a sweep, as `runner sweep` starts it (a child process, a Slurm task).
    #[command(hide = true)]
    SweepTask {
        /// The sweep's manifest.toml.
        manifest: PathBuf,
        /// The run's index in it.
        index: usize,
        /// Print the epoch lines (a Slurm task's log keeps them).
        #[arg(long)]
        progress: bool,
    },
}

/// When this process started: a run's wall time in its result.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Safetensors,
}

fn main() -> ExitCode {
    STARTED.get_or_init(std::time::Instant::now);
    allocator::configure();
    let cli = Cli::parse();
    let signals = Signals::install();
    let result = match &cli.command {
        Some(Command::Inspect { experiment, sets }) => inspect(experiment, sets).map(|()| true),
        Some(Command::Backends { device }) => {
            backends(*device);
            Ok(true)
        }
        Some(Command::Eval {
            run_dir,
            checkpoint,
            force,
            embeddings,
            json,
        }) => {
            use_run::eval(&use_run(run_dir, checkpoint, *force), *embeddings, *json).map(|()| true)
        }
        Some(Command::Predict {
            run_dir,
            images,
            checkpoint,
            force,
            max_pixels,
            json,
        }) => use_run::predict(
            &use_run(run_dir, checkpoint, *force),
            images,
            *max_pixels,
            *json,
        )
        .map(|()| true),
        Some(Command::Export {
            run_dir,
            format: ExportFormat::Safetensors,
            checkpoint,
            force,
            output,
            overwrite,
        }) => use_run::export(
            &use_run(run_dir, checkpoint, *force),
            output.as_deref(),
            *overwrite,
        )
        .map(|()| true),
        Some(Command::Sweep {
            path,
            sets,
            logdir,
            jobs,
            quiet,
            force,
            recursive,
            launcher,
            no_wait,
            slurm,
        }) => sweep::run(&sweep::SweepArgs {
            path,
            recursive: *recursive,
            sets,
            logdir,
            jobs: *jobs,
            quiet: *quiet,
            force: *force,
            launcher: *launcher,
            slurm,
            no_wait: *no_wait,
            signals: &signals,
        })
        .inspect(|&all_passed| {
            if !all_passed {
                kiln_core::say_err!("error: some runs of the sweep failed; see the summary");
            }
        }),
        Some(Command::SweepTask {
            manifest,
            index,
            progress,
        }) => sweep::task::run(manifest, *index, *progress, &signals).map(|()| true),
        None => run(&cli.train, &signals, None).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            kiln_core::say_err!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn use_run<'a>(
    run_dir: &'a Path,
    which: &'a checkpoint::Which,
    force: bool,
) -> use_run::UseRun<'a> {
    use_run::UseRun {
        run_dir,
        which,
        force,
    }
}

/// Shape problems are about the experiment: say which file, and which `--set`s changed it
/// (the bad value may be theirs).
fn in_file<'a>(path: &'a Path, sets: &'a [String]) -> impl Fn(Error) -> Error + 'a {
    move |e| match e {
        Error::Model(m) if sets.is_empty() => Error::Model(format!("{}: {m}", path.display())),
        Error::Model(m) => Error::Model(format!(
            "{} with --set {}: {m}",
            path.display(),
            sets.join(" --set ")
        )),
        // A value refused once the data is known ("key `schedule.warmup_steps`: ..."): where
        // the file says it.
        Error::Config(m) => match m.strip_prefix("key `").and_then(|r| r.split_once('`')) {
            Some((key, _)) => Error::Config(format!("{}: {m}", config::place_of(path, key))),
            None => Error::Config(m),
        },
        other => other,
    }
}

/// `runner EXPERIMENT [--set ...] [--logdir ...]`, shell-quoted where needed: how to run the
/// same experiment again (an interrupted run's message adds `--resume`).
fn command_line(experiment: &Path, cli: &TrainArgs) -> String {
    let quote = shell_word;
    let mut words = vec!["runner".to_string(), quote(&experiment.to_string_lossy())];
    for set in &cli.sets {
        words.push("--set".into());
        words.push(quote(set));
    }
    if cli.logdir != Path::new("logs") {
        words.push("--logdir".into());
        words.push(quote(&cli.logdir.to_string_lossy()));
    }
    words.join(" ")
}

/// `s` as one word of a POSIX shell command line, quoted only where needed.
fn shell_word(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c));
    if plain && !s.is_empty() {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `runner backends`: one line per backend kiln knows.
fn backends(index: usize) {
    for backend in kiln_core::backend::ALL {
        let status = if !kiln_core::backend::is_compiled(backend) {
            format!(
                "not compiled in (build with --features {})",
                kiln_core::backend::feature(backend).unwrap_or("?")
            )
        } else {
            match kiln_core::backend::probe(backend, index) {
                Ok(()) => "compiled in, runs here".to_string(),
                Err(why) => format!("compiled in, cannot start here: {why}"),
            }
        };
        kiln_core::say!("{:<9} {status}", backend.name());
    }
}

fn inspect(experiment: &Path, sets: &[String]) -> Result<(), Error> {
    let config = config::load_with_zoo(experiment, sets, &kiln_model_zoo::expand)?;
    let planned = kiln_core::model::plan_only(&config).map_err(in_file(experiment, sets))?;
    for warning in &planned.warnings {
        kiln_core::say_err!("warning: {}: {warning}", experiment.display());
    }
    kiln_core::log::console::print(&kiln_core::model::summary::render(
        &config.name,
        &planned.input,
        &config.model.layers,
        &planned.plans,
    ));
    Ok(())
}

/// Trains `cli.experiment`; a sweep's task passes the supervisor its scheduler answers through.
fn run(
    cli: &TrainArgs,
    signals: &Signals,
    supervisor: Option<train::Supervisor>,
) -> Result<(), Error> {
    // clap requires it when no subcommand is given.
    let Some(experiment) = cli.experiment.as_deref() else {
        return Err(Error::Config(
            "give an experiment file: runner EXPERIMENT.toml".into(),
        ));
    };
    if cli.result_file.is_some() {
        // Only a sweep passes --result-file: stop cleanly if that sweep dies.
        sweep::interrupt_when_parent_dies();
    }
    let (config, resume) = match &cli.resume {
        None => (
            config::load_with_zoo(experiment, &cli.sets, &kiln_model_zoo::expand)?,
            None,
        ),
        Some(run) => {
            let requested = config::load_requested(experiment, &cli.sets, &kiln_model_zoo::expand)?;
            let run_dir = if run.as_os_str() == "latest" {
                checkpoint::latest_run(&cli.logdir, &requested.name)?
            } else {
                run.clone()
            };
            let found = checkpoint::find(&run_dir, &checkpoint::Which::Last)?;
            for warning in &found.warnings {
                kiln_core::say_err!("warning: {warning}");
            }
            let saved = found.checkpoint.config(&found.path)?;
            let config = checkpoint::config_for_resume(requested, &saved, experiment, &run_dir)?;
            if config.train.epochs <= found.checkpoint.epochs_done {
                return Err(Error::Config(format!(
                    "the run in {} has already trained {} epochs and train.epochs is {}; raise it (--set train.epochs=N) to train longer",
                    run_dir.display(),
                    found.checkpoint.epochs_done,
                    config.train.epochs
                )));
            }
            if !cli.quiet {
                kiln_core::say!(
                    "resuming {} from {}",
                    run_dir.display(),
                    found.path.display()
                );
            }
            (
                config,
                Some(train::Resume {
                    run_dir,
                    checkpoint: found.checkpoint,
                }),
            )
        }
    };
    let prepared = train::prepare(&config, !cli.quiet).map_err(in_file(experiment, &cli.sets))?;
    for warning in &prepared.warnings {
        kiln_core::say_err!("warning: {}: {warning}", experiment.display());
    }
    let options = RunOptions {
        log_root: cli.logdir.clone(),
        quiet: cli.quiet,
        interrupt: Some(signals.requested.clone()),
        hparams: cli.hparams.clone(),
        command: Some(command_line(experiment, cli)),
        supervisor,
    };
    signals.enter(Phase::Training);
    let summary = train::train(prepared, &options, resume)?;
    finish(&summary, &config, experiment, cli)
}

/// After training: `result.toml` (a complete run), and the last line on the console.
fn finish(
    summary: &train::RunSummary,
    config: &config::ExperimentConfig,
    experiment: &Path,
    cli: &TrainArgs,
) -> Result<(), Error> {
    if let Some(train::Stopped::OutOfTime { epoch, budget }) = &summary.stopped {
        // Not complete: no result.toml, so a sweep runs it again (resuming is the user's call).
        kiln_core::say!(
            "stopped after epoch {epoch} of {}: another epoch would run past max_time = {budget:?}; continue with: {} --resume {}",
            config.train.epochs,
            command_line(experiment, cli),
            summary.run_dir.display()
        );
        return Ok(());
    }
    let early = match &summary.stopped {
        Some(train::Stopped::Early {
            epoch,
            best_epoch,
            restored,
        }) => Some((*epoch, best_epoch.filter(|_| *restored))),
        Some(train::Stopped::Supervised { .. } | train::Stopped::OutOfTime { .. }) | None => None,
    };
    let supervised = match &summary.stopped {
        Some(train::Stopped::Supervised { epoch, stop }) => Some((*epoch, stop.by.clone())),
        _ => None,
    };
    if let (Some(last), Some(trained)) = (summary.final_metrics(), summary.epochs.last()) {
        let result = sweep::RunResult {
            name: config.name.clone(),
            run_dir: summary.run_dir.clone(),
            epochs: trained.epoch,
            train_loss: last.train_loss,
            test_loss: last.test_loss,
            test_accuracy: last.test_accuracy,
            validation_accuracy: last.validation_accuracy,
            stopped_early_after: early.map(|e| e.0),
            weights_of_epoch: early.and_then(|e| e.1),
            stopped_by: supervised.as_ref().map(|s| s.1.clone()),
            seconds: STARTED.get().map(|t| t.elapsed().as_secs_f64()),
        };
        let text = toml::to_string(&result).unwrap_or_default();
        // result.toml in the run folder marks the run complete (a sweep skips it next time).
        let marker = summary.run_dir.join(sweep::RESULT_FILE);
        for path in std::iter::once(&marker).chain(&cli.result_file) {
            checkpoint::write_atomic(path, text.as_bytes())?;
        }
    }
    if let Some(last) = summary.final_metrics().filter(|_| !cli.quiet) {
        let stopped = match early {
            Some((epoch, Some(best))) => {
                format!(" (stopped early after epoch {epoch}; the weights are epoch {best}'s)")
            }
            Some((epoch, None)) => format!(" (stopped early after epoch {epoch})"),
            None => match &supervised {
                Some((epoch, by)) => format!(" (stopped after epoch {epoch} by {by})"),
                None => String::new(),
            },
        };
        kiln_core::say!(
            "done: test accuracy {:.4}, test loss {:.4} after {} epochs{stopped}; see the curves with: tensorboard --logdir {}",
            last.test_accuracy,
            last.test_loss,
            summary.epochs.len(),
            cli.logdir.join(&config.name).display()
        );
    }
    Ok(())
}
