//! `runner`: train the experiment a TOML file describes.
//!
//! Exit codes: 0 success; 2 a problem with what the user gave (config, flags, data); 1 a failure
//! during training; 130 interrupted (Ctrl-C or SIGTERM).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use kiln_core::train::{self, RunOptions};
use kiln_core::{Error, config};

/// Train a network described in a TOML experiment file; curves go to TensorBoard.
#[derive(Debug, Parser)]
#[command(name = "runner", version, about, long_about = None)]
struct Cli {
    /// The experiment file, e.g. experiments/fc_adam_l2.toml.
    experiment: PathBuf,

    /// Override a config value: --set optimizer.lr=0.001 (repeatable; the last one wins).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,

    /// Root folder of the TensorBoard logs.
    #[arg(long, value_name = "DIR", default_value = "logs")]
    logdir: PathBuf,

    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    // First Ctrl-C: finish the step, flush the logs, exit 130. A second one: leave at once.
    let handler = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    if let Err(e) = handler {
        eprintln!(
            "warning: cannot catch Ctrl-C ({e}); an interrupted run may lose its last epoch's logs"
        );
    }
    match run(&cli, interrupt) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn run(cli: &Cli, interrupt: Arc<AtomicBool>) -> Result<(), Error> {
    let config = config::load(&cli.experiment, &cli.sets)?;
    let prepared = train::prepare(&config, !cli.quiet).map_err(|e| match e {
        // Shape problems are about the experiment file: say which.
        Error::Model(m) => Error::Model(format!("{}: {m}", cli.experiment.display())),
        other => other,
    })?;
    for warning in &prepared.warnings {
        eprintln!("warning: {}: {warning}", cli.experiment.display());
    }
    let options = RunOptions {
        log_root: cli.logdir.clone(),
        quiet: cli.quiet,
        interrupt: Some(interrupt),
    };
    let summary = train::train(prepared, &options)?;
    if let Some(last) = summary.epochs.last().filter(|_| !cli.quiet) {
        println!(
            "done: test accuracy {:.4}, test loss {:.4} after {} epochs; see the curves with: tensorboard --logdir {}",
            last.test_accuracy,
            last.test_loss,
            last.epoch,
            cli.logdir.join(&config.name).display()
        );
    }
    Ok(())
}
