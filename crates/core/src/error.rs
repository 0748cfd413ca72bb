//! One error type for the whole engine, split by who can fix it.
//!
//! The runner maps [`Error::exit_code`] to the process exit status: 2 when the user's input
//! (config, CLI, data files) is wrong, 1 when a run fails on its own (divergence, I/O).

use std::path::PathBuf;

/// Everything that can stop kiln. Messages are complete sentences that name the file or key
/// and say what to do; they are printed as they are, on one line after `error: `.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The experiment file or a `--set`/`KILN_*` override is wrong.
    #[error("{0}")]
    Config(String),
    /// A data file is missing, damaged or not what the config says it is.
    #[error("{0}")]
    Data(String),
    /// The network described cannot be built (shapes that do not fit, a layer the backend lacks).
    #[error("{0}")]
    Model(String),
    /// Training stopped on its own: the loss diverged, or similar.
    #[error("{0}")]
    Run(String),
    /// Reading or writing a file failed outside the user's control (disk full, permissions).
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The user pressed Ctrl-C (or the process got SIGTERM); a checkpoint was written and the
    /// logs flushed.
    #[error("{}", interrupted(*epoch, *step, run_dir, checkpoint.as_deref(), command.as_deref()))]
    Interrupted {
        epoch: usize,
        step: usize,
        run_dir: PathBuf,
        /// The checkpoint written on the way out, if that worked.
        checkpoint: Option<PathBuf>,
        /// The command that started the run (without `--resume`), to say how to continue.
        command: Option<String>,
    },
    /// A sweep was interrupted; its runs in flight were interrupted too.
    #[error("sweep interrupted with {complete} of {total} runs complete; run the same command again to run only the others (logs in {})", dir.display())]
    SweepInterrupted {
        complete: usize,
        total: usize,
        dir: PathBuf,
    },
}

fn interrupted(
    epoch: usize,
    step: usize,
    run_dir: &std::path::Path,
    checkpoint: Option<&std::path::Path>,
    command: Option<&str>,
) -> String {
    let at = format!("interrupted at epoch {epoch}, step {step}");
    match checkpoint {
        Some(c) => {
            let command = command.unwrap_or("runner EXPERIMENT.toml");
            format!(
                "{at}; checkpoint saved in {}; continue with: {command} --resume {}",
                c.display(),
                run_dir.display()
            )
        }
        None => format!(
            "{at}; no checkpoint could be written; the logs written so far are in {}",
            run_dir.display()
        ),
    }
}

impl Error {
    /// The process exit code this error should end `runner` with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Data(_) | Error::Model(_) => 2,
            Error::Run(_) | Error::Io { .. } => 1,
            Error::Interrupted { .. } | Error::SweepInterrupted { .. } => 130,
        }
    }

    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }
}

/// Shorthand used across kiln-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
