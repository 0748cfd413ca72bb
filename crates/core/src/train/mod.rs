//! The training loop: epochs of shuffled batches, an evaluation on the test set after each,
//! TensorBoard scalars and a console line per epoch.

mod data;
mod histograms;
mod loss;
mod warm;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor};

pub use data::{Batches, DeviceSplit};
pub use loss::Objective;

use crate::checkpoint::{self, Checkpoint, PartialEpoch};
use crate::config::{self, BestMetric, ExperimentConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::kernels::denormals::FlushDenormals;
use crate::log::hparams::RunEnd;
use crate::log::{Console, RunLog, run_dir};
use crate::model::{self, LayerPlan, Network};
use crate::optim::{self, Schedule};

/// How a run is carried out (as opposed to what it trains, which is the config).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Root of the log tree (`logs` by default).
    pub log_root: PathBuf,
    /// No progress bar, no per-epoch lines.
    pub quiet: bool,
    /// Set by a Ctrl-C handler; checked after every step.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Dotted config keys to record as HParams beside [`crate::log::hparams::BASE_KEYS`]
    /// (a sweep passes the keys it varies).
    pub hparams: Vec<String>,
    /// The command line that started the run, less any `--resume`, to say how to continue
    /// an interrupted one.
    pub command: Option<String>,
}

/// What one epoch measured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    /// Optimizer steps taken in this epoch.
    pub steps: usize,
    pub learning_rate: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// Wall time of the training steps of this epoch (evaluation excluded).
    pub train_seconds: f64,
}

/// The outcome of a finished run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub epochs: Vec<EpochMetrics>,
}

/// Everything prepared before the first step: checked, loaded, built.
pub struct Prepared {
    pub config: ExperimentConfig,
    pub dataset: Dataset,
    pub input: Vec<usize>,
    pub plans: Vec<LayerPlan>,
    pub device: Device,
    /// Things that will run but are probably not what the user meant.
    pub warnings: Vec<String>,
    /// Built here because Burn may refuse a schedule (lr > 1 for cosine), before any file exists.
    pub schedule: Schedule,
}

/// Checks the config against the data and the backend, without creating any file.
pub fn prepare(config: &ExperimentConfig, progress: bool) -> Result<Prepared> {
    let device = crate::backend::device(config.backend, config.device)?;
    let dataset = crate::data::load(&config.data, progress)?;
    let input = model::input_shape(&config.model, &dataset.shape)?;
    let plans = model::plan_layers(&config.model, &input)?;
    model::check_classes(
        &config.model,
        &plans,
        &input,
        dataset.classes,
        &dataset.classes_source(),
    )?;
    let n = dataset.train.len();
    let batch = config.train.batch_size.resolve(n);
    if n == 0 {
        return Err(Error::Data(format!(
            "the dataset has no training examples ({}); give data with at least one",
            config.data.dataset.name()
        )));
    }
    if config.train.drop_last && n < batch {
        return Err(Error::Config(format!(
            "train.batch_size = {batch} is more than the {n} training examples, and drop_last = true drops that one partial batch, leaving none; lower batch_size or set drop_last = false"
        )));
    }
    if let Some(problem) = memory_problem(&input, &plans, batch.min(n))? {
        return Err(Error::Model(problem));
    }
    let last = config.model.layers.last().map(|l| l.kind().activation());
    let warnings = objective(config).mismatch(last).into_iter().collect();
    let schedule = Schedule::new(&config.schedule, config.optimizer.lr(), config.train.epochs)?;
    Ok(Prepared {
        config: config.clone(),
        dataset,
        input,
        plans,
        device,
        warnings,
        schedule,
    })
}

/// What an experiment's network is, worked out without training.
pub struct Planned {
    /// Shape of one input example, as the network takes it.
    pub input: Vec<usize>,
    pub plans: Vec<LayerPlan>,
    pub classes: usize,
    /// Why it could not be trained here (more memory than the machine has).
    pub warnings: Vec<String>,
}

/// The input shape, layer plans and number of classes of an experiment, without training
/// (and without reading named datasets, whose shape is known).
pub fn plan_only(config: &ExperimentConfig) -> Result<Planned> {
    let (shape, classes, examples) = match crate::data::known_shape(config.data.dataset) {
        Some(known) => known,
        None => {
            let dataset = crate::data::load(&config.data, false)?;
            (dataset.shape, dataset.classes, dataset.train.len())
        }
    };
    let input = model::input_shape(&config.model, &shape)?;
    let plans = model::plan(&config.model, &input, classes)?;
    let batch = config.train.batch_size.resolve(examples).min(examples);
    let warnings = memory_problem(&input, &plans, batch)?.into_iter().collect();
    Ok(Planned {
        input,
        plans,
        classes,
        warnings,
    })
}

/// Why training `plans` on batches of `batch` cannot fit in memory (see [`model::memory`]),
/// if it cannot; `Err` for a `KILN_MEMORY_LIMIT` that is not a size.
fn memory_problem(input: &[usize], plans: &[LayerPlan], batch: usize) -> Result<Option<String>> {
    let Some(limit) = model::memory::limit().map_err(Error::Config)? else {
        return Ok(None);
    };
    let floor = model::memory::training_floor(input, plans, batch);
    Ok(model::memory::check(plans, batch, floor, limit).err())
}

/// The loss a config trains with.
pub fn objective(config: &ExperimentConfig) -> Objective {
    Objective {
        loss: config.train.loss,
        smoothing: config.train.label_smoothing,
    }
}

/// A run to continue: its folder and the checkpoint to continue from.
#[derive(Debug, Clone)]
pub struct Resume {
    pub run_dir: PathBuf,
    pub checkpoint: Checkpoint,
}

/// The seed of Burn's generator (dropout) for one step: a function of the run's seed and the
/// step alone, so a resumed run draws what the uninterrupted one did.
fn step_seed(seed: u64, global_step: usize) -> u64 {
    seed ^ (global_step as u64 + 1).wrapping_mul(0xd1b5_4a32_d192_ed03)
}

/// Trains a prepared experiment, writing its run folder under `options.log_root`, or
/// continuing the run `resume` names.
pub fn train(
    prepared: Prepared,
    options: &RunOptions,
    resume: Option<Resume>,
) -> Result<RunSummary> {
    // Subnormals flushed (or not) on this thread and every worker of the pool before the
    // first step, and the previous mode back afterwards.
    let _mode = FlushDenormals::apply(prepared.config.train.flush_denormals);
    // On a worker of rayon's pool: a kernel's parallel product then runs one block here and
    // leaves the other to a worker that is polling for it (`warm`), instead of waking the pool
    // from outside and sleeping until it is done (two thread hand-offs per product).
    let (stop, started) = (AtomicBool::new(false), AtomicUsize::new(0));
    rayon::scope(|scope| {
        let _warm = warm::Warm::start(scope, &stop, &started);
        train_on_worker(prepared, options, resume)
    })
}

fn train_on_worker(
    prepared: Prepared,
    options: &RunOptions,
    resume: Option<Resume>,
) -> Result<RunSummary> {
    let Prepared {
        config,
        dataset,
        input,
        plans,
        device,
        mut schedule,
        ..
    } = prepared;
    let mut console = Console::new(options.quiet);

    // Files first: a log folder that cannot be written is refused before any training.
    let (dir, mut log) = match &resume {
        None => {
            let dir = run_dir::create(&options.log_root, &config.name)?;
            let config_path = dir.join("config.toml");
            std::fs::write(&config_path, config::to_toml(&config))
                .map_err(|e| Error::io("cannot write", &config_path, e))?;
            let mut log = RunLog::create(&dir)?;
            let mut keys: Vec<String> = crate::log::hparams::BASE_KEYS
                .iter()
                .map(|k| k.to_string())
                .collect();
            keys.extend(
                options
                    .hparams
                    .iter()
                    .filter(|k| !keys.contains(k))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            let start = crate::log::events::wall_time();
            log.session
                .summary(crate::log::hparams::session_start(&config, &keys, start), 0)?;
            (dir, log)
        }
        Some(r) => {
            checkpoint::remove_temporaries(&r.run_dir);
            let log = RunLog::resume(&r.run_dir, &r.checkpoint.event_files)?;
            // train.epochs may have been raised.
            let config_path = r.run_dir.join("config.toml");
            checkpoint::write_atomic(&config_path, config::to_toml(&config).as_bytes())?;
            (r.run_dir.clone(), log)
        }
    };

    let seed = config.seed.unwrap_or(0);
    device.seed(seed);
    let ad_device = device.clone().autodiff();
    let mut network = Network::new(&config.model, &config.init, &input, &plans, &ad_device);
    let mut optimizer = optim::Optimizer::new(
        &config.optimizer,
        crate::backend::host_memory(config.backend),
    );
    let mut history = Vec::with_capacity(config.train.epochs);
    let mut global_step = 0usize;
    let mut best: Option<(f64, usize)> = None;
    let (mut resume_steps, mut resume_partial) = (0usize, PartialEpoch::default());
    let first_epoch = match resume {
        None => 1,
        Some(Resume { checkpoint: c, .. }) => {
            network = checkpoint::load_network(network, c.model).map_err(|e| {
                Error::Data(format!(
                    "the checkpoint's weights do not fit this network: {e}"
                ))
            })?;
            optimizer = optimizer.load_state(c.optimizer)?;
            history = c.history;
            global_step = c.global_step;
            best = c.best;
            resume_steps = c.steps_into_epoch;
            resume_partial = c.partial;
            // The schedule is a function of the epoch: replay it up to where the run was.
            for _ in 0..c.epochs_done {
                schedule.next_epoch();
            }
            c.epochs_done + 1
        }
    };

    let features = dataset.features();
    let source = dataset.source.clone();
    let train_set = DeviceSplit::upload(dataset.train, features, &device);
    let test_set = DeviceSplit::upload(dataset.test, features, &device);
    let batch = config.train.batch_size.resolve(train_set.len);
    let mut batches = Batches::new(
        train_set.len,
        batch,
        config.train.shuffle,
        config.train.drop_last,
        seed,
    );
    let steps = batches.steps();
    let loss_fn = objective(&config);
    let resumed = if first_epoch > 1 || resume_steps > 0 {
        format!(", resumed at epoch {first_epoch} step {}", resume_steps + 1)
    } else {
        String::new()
    };
    console.line(&format!(
        "{}: {} training / {} test examples from {}, {} parameters, {} steps per epoch; logs in {}{resumed}",
        config.name,
        train_set.len,
        test_set.len,
        source.display(),
        plans.iter().map(|p| p.params).sum::<usize>(),
        steps,
        dir.display()
    ));

    // Histograms at epoch 0 (as initialised), every N epochs, and at the last epoch.
    let histograms_every = config.log.histograms_every;
    let write_histograms = |log: &mut RunLog, network: &Network, epoch: usize| {
        let due = epoch.is_multiple_of(histograms_every) || epoch == config.train.epochs;
        if histograms_every > 0 && due {
            histograms::write(
                &mut log.train,
                &network.valid(),
                &plans,
                &test_set,
                config.log.histogram_examples,
                epoch,
            )?;
        }
        Result::Ok(())
    };
    if first_epoch == 1 && resume_steps == 0 {
        write_histograms(&mut log, &network, 0)?;
    }

    // Everything a checkpoint holds, taken at the current position.
    let snapshot = |log: &mut RunLog,
                    network: &Network,
                    optimizer: &optim::Optimizer,
                    history: &[EpochMetrics],
                    position: (usize, usize, usize, PartialEpoch),
                    best: Option<(f64, usize)>|
     -> Result<Checkpoint> {
        let (epochs_done, steps_into_epoch, global_step, partial) = position;
        let model = checkpoint::network_bytes(network)?;
        Ok(Checkpoint {
            epochs_done,
            steps_into_epoch,
            global_step,
            partial,
            history: history.to_vec(),
            best,
            event_files: log.lengths()?,
            config_toml: config::to_toml(&config),
            model,
            optimizer: optimizer.state()?,
        })
    };

    for epoch in first_epoch..=config.train.epochs {
        let lr = schedule.next_epoch();
        console.start_epoch(epoch, config.train.epochs, steps);
        let skip = std::mem::take(&mut resume_steps);
        let partial = std::mem::take(&mut resume_partial);
        let started = Instant::now();
        let mut loss_sum = partial.loss_sum;
        let mut seen = partial.seen;
        let mut correct: Tensor<1, Int> = Tensor::from_data([partial.correct], &device);
        for (step, indices) in batches.epoch(epoch).enumerate().skip(skip) {
            device.seed(step_seed(seed, global_step));
            let (x, y) = train_set.batch(indices, config.train.shuffle);
            let pass = forward_backward(&network, &loss_fn, x, y);
            correct = correct + pass.correct;
            let batch_loss = pass.loss;
            network = optimizer.step(&lr, network, pass.grads);

            global_step += 1;
            seen += indices.len();
            if !batch_loss.is_finite() {
                log.finish(RunEnd::Failure)?;
                // The first step's loss comes from the initial weights, before any update.
                let cause = if global_step == 1 {
                    "the initial weights or the inputs already produce it, before any update: check [init] (a scale like 1e30 overflows float32) and [data] normalize".to_string()
                } else {
                    format!(
                        "the learning rate (optimizer.lr = {}) is probably too high for this network: try a smaller one",
                        config.optimizer.lr()
                    )
                };
                return Err(Error::Run(format!(
                    "the training loss became {batch_loss} at epoch {epoch}, step {} (global step {global_step}); {cause}. Logs up to this step are in {}",
                    step + 1,
                    dir.display()
                )));
            }
            loss_sum += batch_loss as f64 * indices.len() as f64;
            let every = config.log.batch_loss_every;
            if every > 0 && global_step.is_multiple_of(every) {
                log.train.scalar("batch_loss", batch_loss, global_step)?;
            }
            console.step(batch_loss, seen);
            if options
                .interrupt
                .as_ref()
                .is_some_and(|f| f.load(Ordering::Relaxed))
            {
                // The checkpoint first, with the event files' lengths before the run-end
                // record, so a resumed run cuts that record off and carries on.
                let partial = PartialEpoch {
                    loss_sum,
                    seen,
                    correct: correct.into_scalar::<i64>(),
                    train_seconds: partial.train_seconds + started.elapsed().as_secs_f64(),
                };
                let position = (epoch - 1, step + 1, global_step, partial);
                let saved = snapshot(&mut log, &network, &optimizer, &history, position, best)
                    .and_then(|c| checkpoint::save(&dir, &c, config.checkpoint.keep_last));
                log.finish(RunEnd::Aborted)?;
                return Err(Error::Interrupted {
                    epoch,
                    step: step + 1,
                    run_dir: dir,
                    checkpoint: saved.ok(),
                    command: options.command.clone(),
                });
            }
        }
        let train_seconds = partial.train_seconds + started.elapsed().as_secs_f64();
        let train_correct = correct.into_scalar::<i64>() as f64;
        let (test_loss, test_accuracy) = evaluate(
            &network.valid(),
            &test_set,
            &loss_fn,
            config.train.eval_batch_size,
        );
        let metrics = EpochMetrics {
            epoch,
            steps,
            learning_rate: schedule.current(),
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: train_correct / seen.max(1) as f64,
            test_loss,
            test_accuracy,
            train_seconds,
        };
        write_epoch(&mut log, &metrics)?;
        write_histograms(&mut log, &network, epoch)?;
        history.push(metrics);

        let cfg = &config.checkpoint;
        let value = metric(&metrics, cfg.best);
        let improved = best.is_none_or(|(b, _)| {
            if cfg.best.higher_is_better() {
                value > b
            } else {
                value < b
            }
        });
        if improved && value.is_finite() {
            best = Some((value, epoch));
        }
        let periodic = cfg.every > 0 && epoch.is_multiple_of(cfg.every);
        if improved || periodic || epoch == config.train.epochs {
            let position = (epoch, 0, global_step, PartialEpoch::default());
            let c = snapshot(&mut log, &network, &optimizer, &history, position, best)?;
            if improved {
                checkpoint::save_best(&dir, &c)?;
            }
            if periodic || epoch == config.train.epochs {
                checkpoint::save(&dir, &c, cfg.keep_last)?;
            }
        }
        console.end_epoch(&format!(
            "epoch {epoch:>3}/{}  loss {:.4}  acc {:.4}  test_loss {:.4}  test_acc {:.4}  lr {:.3e}  {:.2}s ({:.0} samples/s)",
            config.train.epochs,
            metrics.train_loss,
            metrics.train_accuracy,
            metrics.test_loss,
            metrics.test_accuracy,
            metrics.learning_rate,
            train_seconds,
            (seen - partial.seen) as f64 / (train_seconds - partial.train_seconds).max(1e-9)
        ));
    }
    log.finish(RunEnd::Success)?;
    Ok(RunSummary {
        run_dir: dir,
        epochs: history,
    })
}

/// One forward and backward pass over a batch.
struct Pass {
    grads: GradientsParams,
    /// The batch's mean loss.
    loss: f32,
    /// Rows whose largest output is the label, left on the device.
    correct: Tensor<1, Int>,
}

/// The gradients of the mean loss of `network` on `(x, y)`.
fn forward_backward(
    network: &Network,
    loss_fn: &Objective,
    x: Tensor<2>,
    y: Tensor<1, Int>,
) -> Pass {
    // An autodiff input puts BatchNorm and Dropout in training mode even when they come
    // first (Burn decides by the input's device).
    let logits = network.forward(x.autodiff());
    let loss = loss_fn.forward(logits.clone(), y.clone());
    let correct = count_correct(logits.inner(), y);
    let grads = GradientsParams::from_grads(loss.backward(), network);
    Pass {
        grads,
        loss: loss.inner().into_scalar(),
        correct,
    }
}

/// The value of `which` in an epoch's figures.
fn metric(m: &EpochMetrics, which: BestMetric) -> f64 {
    match which {
        BestMetric::TestAccuracy => m.test_accuracy,
        BestMetric::TestLoss => m.test_loss,
        BestMetric::TrainAccuracy => m.train_accuracy,
        BestMetric::TrainLoss => m.train_loss,
    }
}

/// Mean loss and accuracy of `network` on a whole split.
pub fn evaluate(
    network: &Network,
    split: &DeviceSplit,
    loss_fn: &Objective,
    batch: usize,
) -> (f64, f64) {
    let mut loss_sum = 0.0f64;
    let mut correct = 0i64;
    for start in (0..split.len).step_by(batch) {
        let end = (start + batch).min(split.len);
        let (x, y) = split.range(start, end);
        let logits = network.forward(x);
        let loss: f32 = loss_fn.forward(logits.clone(), y.clone()).into_scalar();
        loss_sum += loss as f64 * (end - start) as f64;
        correct += count_correct(logits, y).into_scalar::<i64>();
    }
    let n = split.len.max(1) as f64;
    (loss_sum / n, correct as f64 / n)
}

/// How many rows of `output` have their largest value at the label, as a one-element tensor
/// (left on the device so the training loop reads it once per epoch).
fn count_correct(output: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1, Int> {
    output
        .argmax(1)
        .flatten::<1>(0, 1)
        .equal(labels)
        .int()
        .sum()
}

fn write_epoch(log: &mut RunLog, m: &EpochMetrics) -> Result<()> {
    let step = m.epoch;
    log.train.scalar("epoch_loss", m.train_loss as f32, step)?;
    log.train
        .scalar("epoch_accuracy", m.train_accuracy as f32, step)?;
    log.train
        .scalar("learning_rate", m.learning_rate as f32, step)?;
    log.test.scalar("epoch_loss", m.test_loss as f32, step)?;
    log.test
        .scalar("epoch_accuracy", m.test_accuracy as f32, step)?;
    log.flush()
}
