//! One run in named phases: [`Run::open`] (a new run folder, or the one being resumed, and the
//! state to start from), then per epoch [`Run::train_epoch`], [`Run::test_epoch`] and
//! [`Run::end_epoch`] (logs, histograms and the checkpoints [`checkpoint::policy`] asks for).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Int, Tensor};

use super::controls::{self, EarlyStopper, Stopped, SupervisorStop};
use super::pending::{PendingLosses, ReadLoss, StepLoss};
use super::step::{evaluate, forward_backward, step_seed};
use super::{Objective, Prepared, Resume, RunOptions, RunSummary, histograms, objective};
use crate::checkpoint::{self, Checkpoint, EpochMetrics, PartialEpoch, Position, policy};
use crate::config::{self, ExperimentConfig};
use crate::data::{Batches, DeviceSplit};
use crate::error::{Error, Result};
use crate::log::hparams::RunEnd;
use crate::log::pr_curve::PrCounts;
use crate::log::{Console, RunLog, run_dir};
use crate::model::{LayerPlan, Network};
use crate::optim::{self, Schedule};

/// A run being trained: its files, its optimizer, and where it stands. The network itself
/// is passed from phase to phase by value, so that the optimizer owns it while it steps and
/// updates its tensors in place.
pub struct Run<'o> {
    config: ExperimentConfig,
    options: &'o RunOptions,
    dir: PathBuf,
    log: RunLog,
    console: Console,
    plans: Vec<LayerPlan>,
    device: Device,
    seed: u64,
    optimizer: optim::Optimizer,
    schedule: Schedule,
    history: Vec<EpochMetrics>,
    /// The best score so far and its epoch.
    best: Option<(f64, usize)>,
    /// Where training stands; `steps_into_epoch` and `partial` describe the epoch under way.
    position: Position,
    train_set: DeviceSplit,
    test_set: DeviceSplit,
    /// Held out of the training set by `[data] validation`.
    validation_set: Option<DeviceSplit>,
    /// The dataset's class names, kept in checkpoints for `predict` and `eval`.
    class_names: Vec<String>,
    /// `[data.augment]`, applied to training batches.
    augment: Option<crate::data::augment::Augmenter>,
    batches: Batches,
    objective: Objective,
    /// `[train] early_stopping`, fed every epoch's figures.
    stopper: Option<EarlyStopper>,
    /// Set when the checkpoint resumed from was written by a run that had stopped early.
    stopped_early: Option<usize>,
    /// When this process opened the run: `[train] max_time` counts from here.
    opened: Instant,
}

/// What the training steps of one epoch summed up.
struct EpochTotals {
    loss_sum: f64,
    seen: usize,
    correct: i64,
    train_seconds: f64,
    /// The part of the epoch trained before a resume, for the speed shown.
    before: PartialEpoch,
}

impl<'o> Run<'o> {
    /// The run folder (made, or the resumed one), the network as initialised or as
    /// checkpointed, and the data on the device. Files first: a log folder that cannot be
    /// written is refused before any training.
    pub fn open(
        prepared: Prepared,
        options: &'o RunOptions,
        resume: Option<Resume>,
    ) -> Result<(Self, Network)> {
        let Prepared {
            config,
            dataset,
            input,
            plans,
            device,
            mut schedule,
            augment,
            ..
        } = prepared;
        let validation = dataset.validation.is_some();
        let (dir, log) = match &resume {
            None => start_folder(&config, options, &input, &plans, validation)?,
            Some(r) => resume_folder(&config, r, validation)?,
        };
        let seed = config.seed.unwrap_or(0);
        device.seed(seed);
        let network = Network::new(
            &config.model,
            &config.init,
            &input,
            &plans,
            &device.clone().autodiff(),
        );
        let optimizer = optim::Optimizer::new(
            &config.optimizer,
            &config.train,
            crate::backend::host_memory(config.backend),
        );
        let mut stopper = config.train.early_stopping.as_ref().map(EarlyStopper::new);
        let (network, optimizer, progress) = match resume {
            Some(r) => restore(
                network,
                optimizer,
                &mut schedule,
                &mut stopper,
                r.checkpoint,
            )?,
            None => (network, optimizer, Progress::default()),
        };
        let features = dataset.features();
        let source = dataset.source.clone();
        // On a GPU the splits live there; an augmented training set is built on the host.
        let gpu = crate::backend::on_gpu(config.backend);
        let augmented = augment.is_some();
        let train_set = DeviceSplit::upload(dataset.train, features, &device, gpu && !augmented);
        let test_set = DeviceSplit::upload(dataset.test, features, &device, gpu);
        let validation_set = dataset
            .validation
            .map(|v| DeviceSplit::upload(v, features, &device, gpu));
        let batch = config.train.batch_size.resolve(train_set.len);
        let t = &config.train;
        let batches = Batches::new(train_set.len, batch, t.shuffle, t.drop_last, seed);
        let mut run = Run {
            objective: objective(&config),
            console: Console::new(options.quiet),
            history: progress.history,
            best: progress.best,
            position: progress.position,
            config,
            options,
            dir,
            log,
            plans,
            device,
            seed,
            optimizer,
            schedule,
            train_set,
            test_set,
            validation_set,
            class_names: dataset.class_names,
            augment,
            batches,
            stopper,
            stopped_early: progress.stopped_early,
            opened: Instant::now(),
        };
        run.announce(&source);
        Ok((run, network))
    }

    /// The console's first line: what is trained, on what, and where the logs go.
    fn announce(&mut self, source: &std::path::Path) {
        let Position {
            epochs_done,
            steps_into_epoch,
            ..
        } = self.position;
        let resumed = if epochs_done > 0 || steps_into_epoch > 0 {
            format!(
                ", resumed at epoch {} step {}",
                epochs_done + 1,
                steps_into_epoch + 1
            )
        } else {
            String::new()
        };
        let validation = self
            .validation_set
            .as_ref()
            .map_or(String::new(), |v| format!(" / {} validation", v.len));
        let k = self.config.train.accumulate.max(1);
        let accumulating = if k > 1 {
            format!(" (each the average of {k} batches)")
        } else {
            String::new()
        };
        self.console.line(&format!(
            "{}: {} training{validation} / {} test examples from {}, {} parameters, {} steps per epoch{accumulating}; logs in {}{resumed}",
            self.config.name,
            self.train_set.len,
            self.test_set.len,
            source.display(),
            self.plans.iter().map(|p| p.params).sum::<usize>(),
            self.config.train.optimizer_steps(self.batches.steps()),
            self.dir.display()
        ));
        if !self.class_names.is_empty() {
            self.console.line(&class_list(&self.class_names));
        }
    }

    /// Every epoch left (or until a control stops the run), then the run's end record.
    pub fn train(mut self, mut network: Network) -> Result<RunSummary> {
        if self.position == Position::default() {
            self.write_histograms(&network, 0)?;
        }
        let mut stopped = self.stopped_early.map(|epoch| Stopped::Early {
            epoch,
            best_epoch: self.best.map(|b| b.1),
            restored: self.stopper.as_ref().is_some_and(|s| s.restores_best()),
        });
        if let Some(epoch) = self.stopped_early {
            self.console.line(&format!(
                "the run had already stopped early after epoch {epoch}; nothing to train"
            ));
        }
        let last = self.config.train.epochs;
        let first = self.position.epochs_done + 1;
        for epoch in first..=last {
            if stopped.is_some() {
                break;
            }
            let started = Instant::now();
            self.schedule.next_epoch();
            let totals;
            (network, totals) = self.train_epoch(network, epoch)?;
            let (metrics, pr) = self.test_epoch(&network, epoch, &totals);
            self.schedule.observe(&metrics);
            let early = self.stopper.as_mut().is_some_and(|s| s.observe(&metrics)) && epoch < last;
            self.end_epoch(&network, &metrics, pr)?;
            self.report(&metrics, &totals);
            let told = self
                .options
                .supervisor
                .as_ref()
                .and_then(|s| (s.0)(&metrics));
            let budget = self.config.train.max_time.clone();
            if early {
                let restored;
                (network, restored) = self.stop_early(network, epoch)?;
                stopped = Some(Stopped::Early {
                    epoch,
                    best_epoch: self.best.map(|b| b.1),
                    restored,
                });
            } else if let Some(stop) = told.filter(|_| epoch < last) {
                self.stop_supervised(&network, epoch, &stop)?;
                stopped = Some(Stopped::Supervised { epoch, stop });
            } else if let Some(budget) = budget.filter(|b| {
                epoch < last && controls::out_of_time(self.opened, started.elapsed(), b.duration)
            }) {
                self.out_of_time(&network)?;
                return Ok(RunSummary {
                    run_dir: self.dir,
                    epochs: self.history,
                    stopped: Some(Stopped::OutOfTime {
                        epoch,
                        budget: budget.to_string(),
                    }),
                });
            }
        }
        self.log.finish(match stopped {
            Some(Stopped::Supervised { .. }) => RunEnd::Stopped,
            Some(Stopped::Early { .. } | Stopped::OutOfTime { .. }) | None => RunEnd::Success,
        })?;
        Ok(RunSummary {
            run_dir: self.dir,
            epochs: self.history,
            stopped,
        })
    }

    /// Early stopping after `epoch`: the console says why, the weights become `best.ckpt`'s
    /// with `restore_best`, and the final checkpoint holds them. Whether they were restored.
    fn stop_early(&mut self, mut network: Network, epoch: usize) -> Result<(Network, bool)> {
        let Some(stopper) = &self.stopper else {
            return Ok((network, false));
        };
        let why = stopper.reason();
        let best_epoch = self.best.map(|b| b.1);
        let restore = stopper.restores_best() && best_epoch.is_some_and(|b| b != epoch);
        if restore {
            let best = checkpoint::find(&self.dir, &checkpoint::Which::Best)?;
            network = checkpoint::load_network(network, best.checkpoint.model)
                .map_err(|e| Error::Run(format!("cannot restore {}: {e}", best.path.display())))?;
            if let Some(ema) = best.checkpoint.ema {
                self.optimizer.set_ema(ema);
            }
        }
        let c = self.snapshot(&network)?;
        checkpoint::save(&self.dir, &c, self.config.checkpoint.keep_last)?;
        let weights = match best_epoch {
            Some(b) if restore => format!("; the weights are epoch {b}'s (best.ckpt)"),
            _ => String::new(),
        };
        self.console.line(&format!(
            "stopped early after epoch {epoch}: {why}{weights}"
        ));
        Ok((network, restore))
    }

    /// The supervisor ended the run after `epoch`: a checkpoint of where it stands (to
    /// continue it by hand with `--resume` and more epochs), and the reason on the console.
    fn stop_supervised(
        &mut self,
        network: &Network,
        epoch: usize,
        stop: &SupervisorStop,
    ) -> Result<()> {
        let c = self.snapshot(network)?;
        checkpoint::save(&self.dir, &c, self.config.checkpoint.keep_last)?;
        self.console.line(&format!(
            "stopped after epoch {epoch} by {}: {}",
            stop.by, stop.reason
        ));
        Ok(())
    }

    /// `[train] max_time` reached: a checkpoint to resume from (with the event files' lengths
    /// before the run-end record, as on Ctrl-C). The caller says how to continue.
    fn out_of_time(&mut self, network: &Network) -> Result<()> {
        let c = self.snapshot(network)?;
        checkpoint::save(&self.dir, &c, self.config.checkpoint.keep_last)?;
        self.log.finish(RunEnd::Aborted)
    }

    /// The training steps of `epoch`, from where [`Self::position`] stands in it: groups of
    /// `[train] accumulate` batches, one optimizer step each. `Err` when the loss stops being
    /// a number, or on Ctrl-C (after a checkpoint of this very step).
    fn train_epoch(
        &mut self,
        mut network: Network,
        epoch: usize,
    ) -> Result<(Network, EpochTotals)> {
        let k = self.config.train.accumulate.max(1);
        let per_epoch = self.batches.steps();
        self.console.start_epoch(
            epoch,
            self.config.train.epochs,
            self.config.train.optimizer_steps(per_epoch),
        );
        let skip = std::mem::take(&mut self.position.steps_into_epoch);
        let before = std::mem::take(&mut self.position.partial);
        let started = Instant::now();
        let (mut loss_sum, mut seen) = (before.loss_sum, before.seen);
        let mut correct: Tensor<1, Int> = Tensor::from_data([before.correct], &self.device);
        // The batch order is lent out for the epoch, so the steps can use the rest of `self`.
        let mut batches = std::mem::replace(&mut self.batches, Batches::new(0, 1, false, false, 0));
        let order: Vec<&[i64]> = batches.epoch(epoch).collect();
        let mut pending = PendingLosses::new(crate::backend::on_gpu(self.config.backend));
        for (group, batch_group) in order.chunks(k).enumerate().skip(skip / k) {
            let first = group * k;
            let lr = self.schedule.at_step(self.position.global_step);
            let n: usize = batch_group.iter().map(|b| b.len()).sum();
            let mut accumulated = GradientsAccumulator::<Network>::new();
            let mut grads: Option<GradientsParams> = None;
            let mut losses = Vec::with_capacity(k);
            for (j, indices) in batch_group.iter().enumerate() {
                let (pass_loss, pass_grads, pass_correct) =
                    self.micro_batch(&network, (epoch - 1) * per_epoch + first + j, indices, n);
                correct = correct + pass_correct;
                losses.push((pass_loss, indices.len()));
                match k {
                    1 => grads = Some(pass_grads),
                    _ => accumulated.accumulate(&network, pass_grads),
                }
            }
            let grads = grads.unwrap_or_else(|| accumulated.grads());
            network = self.optimizer.step(lr, network, grads);
            self.position.global_step += 1;
            seen += n;
            pending.push(StepLoss {
                batches: losses,
                n,
                first,
                seen,
                lr,
                global_step: self.position.global_step,
            });
            let interrupted = self.interrupted();
            if interrupted || pending.is_due() {
                self.settle(&mut pending, epoch, &mut loss_sum)?;
            }
            if interrupted {
                let partial = PartialEpoch {
                    loss_sum,
                    seen,
                    correct: correct.into_scalar::<i64>(),
                    train_seconds: before.train_seconds + started.elapsed().as_secs_f64(),
                };
                return Err(self.stop(&network, epoch, first + batch_group.len(), partial));
            }
        }
        self.settle(&mut pending, epoch, &mut loss_sum)?;
        self.batches = batches;
        let totals = EpochTotals {
            loss_sum,
            seen,
            correct: correct.into_scalar::<i64>(),
            train_seconds: before.train_seconds + started.elapsed().as_secs_f64(),
            before,
        };
        Ok((network, totals))
    }

    /// The losses of the steps `pending` holds, read: each checked, added to the epoch's
    /// `loss_sum` and logged, in order.
    fn settle(
        &mut self,
        pending: &mut PendingLosses,
        epoch: usize,
        loss_sum: &mut f64,
    ) -> Result<()> {
        for ReadLoss { loss, step } in pending.read() {
            self.check_finite(loss as f32, epoch, step.first, step.global_step)?;
            *loss_sum += loss * step.n as f64;
            self.log_step(loss as f32, step.seen, step.lr, step.global_step)?;
        }
        Ok(())
    }

    /// The forward and backward pass of batch number `batch` of the run (its draws of dropout
    /// and augmentation are that number's), its loss weighted by its share of the `n`
    /// examples of its optimizer step: the loss, the gradients, the rows it got right.
    fn micro_batch(
        &self,
        network: &Network,
        batch: usize,
        indices: &[i64],
        n: usize,
    ) -> (Tensor<1>, GradientsParams, Tensor<1, Int>) {
        self.device.seed(step_seed(self.seed, batch));
        let (x, y, mixed) = match &self.augment {
            Some(a) => self.train_set.augmented(indices, a, batch),
            None => {
                let (x, y) = self.train_set.batch(indices, self.config.train.shuffle);
                (x, y, None)
            }
        };
        let weight = indices.len() as f32 / n as f32;
        let pass = forward_backward(network, &self.objective, x, y, mixed, weight);
        (pass.loss, pass.grads, pass.correct)
    }

    /// `Err` naming the likely cause when a step's loss is not a number.
    fn check_finite(
        &mut self,
        loss: f32,
        epoch: usize,
        step: usize,
        global_step: usize,
    ) -> Result<()> {
        if loss.is_finite() {
            return Ok(());
        }
        self.log.finish(RunEnd::Failure)?;
        // The first step's loss comes from the initial weights, before any update.
        let cause = if global_step == 1 {
            "the initial weights or the inputs already produce it, before any update: check [init] (a scale like 1e30 overflows float32) and [data] normalize".to_string()
        } else {
            format!(
                "the learning rate (optimizer.lr = {}) is probably too high for this network: try a smaller one",
                self.config.optimizer.lr()
            )
        };
        Err(Error::Run(format!(
            "the training loss became {loss} at epoch {epoch}, step {} (global step {global_step}); {cause}. Logs up to this step are in {}",
            step + 1,
            self.dir.display()
        )))
    }

    /// The batch loss in TensorBoard every `log.batch_loss_every` steps (and the rate, when
    /// the schedule changes it within epochs), and on the console.
    fn log_step(&mut self, loss: f32, seen: usize, lr: f64, global_step: usize) -> Result<()> {
        let every = self.config.log.batch_loss_every;
        if every > 0 && global_step.is_multiple_of(every) {
            self.log.train.scalar("batch_loss", loss, global_step)?;
        }
        if self.schedule.per_step() && global_step.is_multiple_of(every.max(1)) {
            self.log
                .train
                .scalar("learning_rate", lr as f32, global_step)?;
        }
        self.console.step(loss, seen);
        Ok(())
    }

    fn interrupted(&self) -> bool {
        self.options
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// After Ctrl-C, `step` steps into `epoch`: a checkpoint first, with the event files'
    /// lengths before the run-end record (a resumed run cuts that record off and carries
    /// on), then the error that says how to continue.
    fn stop(
        &mut self,
        network: &Network,
        epoch: usize,
        step: usize,
        partial: PartialEpoch,
    ) -> Error {
        self.position = Position {
            epochs_done: epoch - 1,
            steps_into_epoch: step,
            partial,
            ..self.position
        };
        let keep_last = self.config.checkpoint.keep_last;
        let saved = self
            .snapshot(network)
            .and_then(|c| checkpoint::save(&self.dir, &c, keep_last));
        if let Err(e) = self.log.finish(RunEnd::Aborted) {
            return e;
        }
        Error::Interrupted {
            epoch,
            step,
            run_dir: self.dir.clone(),
            checkpoint: saved.ok(),
            command: self.options.command.clone(),
        }
    }

    /// The epoch's figures, with the test set (and the validation split, if any) evaluated
    /// on the trained weights, and the counts of the test set's precision–recall curves when
    /// they are due (`[log] pr_curves_every`: every N epochs and at the last).
    fn test_epoch(
        &self,
        network: &Network,
        epoch: usize,
        t: &EpochTotals,
    ) -> (EpochMetrics, Option<PrCounts>) {
        let every = self.config.log.pr_curves_every;
        let due = every > 0 && (epoch.is_multiple_of(every) || epoch == self.config.train.epochs);
        let evaluated = self.evaluated(network);
        let (test_loss, test_accuracy, pr) = evaluate(
            &evaluated,
            &self.test_set,
            &self.objective,
            self.config.train.eval_batch_size,
            due.then(|| self.config.model.yields()),
        );
        let validation = self.validation_set.as_ref().map(|set| {
            let (loss, accuracy, _) = evaluate(
                &evaluated,
                set,
                &self.objective,
                self.config.train.eval_batch_size,
                None,
            );
            (loss, accuracy)
        });
        let seen = t.seen.max(1) as f64;
        let metrics = EpochMetrics {
            epoch,
            steps: self.config.train.optimizer_steps(self.batches.steps()),
            learning_rate: self.schedule.current(),
            train_loss: t.loss_sum / seen,
            train_accuracy: t.correct as f64 / seen,
            test_loss,
            test_accuracy,
            validation_loss: validation.map(|v| v.0),
            validation_accuracy: validation.map(|v| v.1),
            train_seconds: t.train_seconds,
        };
        (metrics, pr)
    }

    /// The network evaluation sees: the moving average of the weights with `[train] ema`
    /// (unless `ema_eval = false`), the trained weights otherwise.
    fn evaluated(&self, network: &Network) -> Network {
        match self
            .optimizer
            .ema()
            .filter(|_| self.config.train.evaluates_ema())
        {
            Some(ema) => ema.apply(network.valid()),
            None => network.valid(),
        }
    }

    /// The epoch's scalars, histograms and precision–recall curves, then the checkpoints the
    /// policy asks for.
    fn end_epoch(
        &mut self,
        network: &Network,
        metrics: &EpochMetrics,
        pr: Option<PrCounts>,
    ) -> Result<()> {
        write_epoch(&mut self.log, metrics, !self.schedule.per_step())?;
        self.write_histograms(network, metrics.epoch)?;
        if let Some(pr) = pr {
            for summary in pr.summaries() {
                self.log.test.summary(summary, metrics.epoch)?;
            }
            self.log.test.flush()?;
        }
        self.history.push(*metrics);
        self.position = Position {
            epochs_done: metrics.epoch,
            global_step: self.position.global_step,
            ..Position::default()
        };
        let cfg = &self.config.checkpoint;
        let (best, actions) =
            policy::after_epoch(cfg, self.best, metrics, self.config.train.epochs);
        self.best = best;
        if actions.any() {
            let c = self.snapshot(network)?;
            if actions.best {
                checkpoint::save_best(&self.dir, &c)?;
            }
            if actions.numbered {
                checkpoint::save(&self.dir, &c, self.config.checkpoint.keep_last)?;
            }
        }
        Ok(())
    }

    /// The console's line for the epoch.
    fn report(&mut self, m: &EpochMetrics, t: &EpochTotals) {
        let trained = (t.seen - t.before.seen) as f64;
        let seconds = (t.train_seconds - t.before.train_seconds).max(1e-9);
        let validation = match (m.validation_loss, m.validation_accuracy) {
            (Some(loss), Some(acc)) => format!("  val_loss {loss:.4}  val_acc {acc:.4}"),
            _ => String::new(),
        };
        self.console.end_epoch(&format!(
            "epoch {:>3}/{}  loss {:.4}  acc {:.4}{validation}  test_loss {:.4}  test_acc {:.4}  lr {:.3e}  {:.2}s ({:.0} samples/s)",
            m.epoch,
            self.config.train.epochs,
            m.train_loss,
            m.train_accuracy,
            m.test_loss,
            m.test_accuracy,
            m.learning_rate,
            t.train_seconds,
            trained / seconds
        ));
    }

    /// Histograms at epoch 0 (as initialised), every N epochs, and at the last epoch.
    fn write_histograms(&mut self, network: &Network, epoch: usize) -> Result<()> {
        let every = self.config.log.histograms_every;
        let due = epoch.is_multiple_of(every) || epoch == self.config.train.epochs;
        if every > 0 && due {
            histograms::write(
                &mut self.log.train,
                &network.valid(),
                &self.plans,
                &self.test_set,
                self.config.log.histogram_examples,
                epoch,
            )?;
        }
        Ok(())
    }

    /// Everything a checkpoint holds, at the current position.
    fn snapshot(&mut self, network: &Network) -> Result<Checkpoint> {
        let p = self.position;
        Ok(Checkpoint {
            epochs_done: p.epochs_done,
            steps_into_epoch: p.steps_into_epoch,
            global_step: p.global_step,
            partial: p.partial,
            history: self.history.clone(),
            best: self.best,
            event_files: self.log.lengths()?,
            config_toml: config::to_toml(&self.config),
            model: checkpoint::network_bytes(network)?,
            optimizer: self.optimizer.state()?,
            ema: self.optimizer.ema().map(|e| e.state()),
            class_names: self.class_names.clone(),
        })
    }
}

/// What a run has done so far: nothing yet, or what its checkpoint recorded.
#[derive(Default)]
struct Progress {
    history: Vec<EpochMetrics>,
    best: Option<(f64, usize)>,
    position: Position,
    /// The epoch after which early stopping ended the run, if it did.
    stopped_early: Option<usize>,
}

/// Continues from `c`: its weights, optimizer state and moving average, history and
/// position; the schedule and early stopping replay the history to where the run was.
fn restore(
    network: Network,
    optimizer: optim::Optimizer,
    schedule: &mut Schedule,
    stopper: &mut Option<EarlyStopper>,
    c: Checkpoint,
) -> Result<(Network, optim::Optimizer, Progress)> {
    let position = c.position();
    let network = checkpoint::load_network(network, c.model).map_err(|e| {
        Error::Data(format!(
            "the checkpoint's weights do not fit this network: {e}"
        ))
    })?;
    let optimizer = optimizer.load_state(c.optimizer, c.ema)?;
    let mut stopped_early = None;
    for m in &c.history {
        schedule.next_epoch();
        schedule.observe(m);
        if stopper.as_mut().is_some_and(|s| s.observe(m)) && stopped_early.is_none() {
            stopped_early = Some(m.epoch);
        }
    }
    let progress = Progress {
        position,
        history: c.history,
        best: c.best,
        stopped_early,
    };
    Ok((network, optimizer, progress))
}

/// A new run's folder: `config.toml`, the event files, and what TensorBoard shows of the run
/// before it trains: the HParams session start, the config (Text tab) and the network's graph
/// (Graphs tab, in `train/` as Keras puts it).
fn start_folder(
    config: &ExperimentConfig,
    options: &RunOptions,
    input: &[usize],
    plans: &[crate::model::LayerPlan],
    validation: bool,
) -> Result<(PathBuf, RunLog)> {
    let dir = run_dir::create(&options.log_root, &config.name)?;
    let config_path = dir.join("config.toml");
    let toml = config::to_toml(config);
    std::fs::write(&config_path, &toml).map_err(|e| Error::io("cannot write", &config_path, e))?;
    let mut log = RunLog::create(&dir, validation)?;
    log.session
        .summary(crate::log::media::config_text(&toml), 0)?;
    let nodes = crate::model::graph::nodes(input, &config.model.layers, plans);
    log.train.graph(&crate::log::graph::graph_def(&nodes))?;
    let mut keys: Vec<String> = crate::log::hparams::BASE_KEYS
        .iter()
        .map(|k| k.to_string())
        .collect();
    for k in &options.hparams {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    let start = crate::log::events::wall_time();
    log.session
        .summary(crate::log::hparams::session_start(config, &keys, start), 0)?;
    Ok((dir, log))
}

/// A resumed run's folder, its event files cut back to the checkpoint's lengths.
fn resume_folder(
    config: &ExperimentConfig,
    r: &Resume,
    validation: bool,
) -> Result<(PathBuf, RunLog)> {
    checkpoint::remove_temporaries(&r.run_dir);
    let mut log = RunLog::resume(&r.run_dir, &r.checkpoint.event_files, validation)?;
    // train.epochs may have been raised: the Text tab shows the new config from the epoch
    // the run resumed at.
    let config_path = r.run_dir.join("config.toml");
    let toml = config::to_toml(config);
    checkpoint::write_atomic(&config_path, toml.as_bytes())?;
    if toml != r.checkpoint.config_toml {
        log.session.summary(
            crate::log::media::config_text(&toml),
            r.checkpoint.epochs_done,
        )?;
    }
    Ok((r.run_dir.clone(), log))
}

/// The epoch's scalars; `learning_rate` only when it is per epoch (a per-step schedule logs it
/// by global step, and one tag takes one kind of step).
fn write_epoch(log: &mut RunLog, m: &EpochMetrics, epoch_rate: bool) -> Result<()> {
    let step = m.epoch;
    log.train.scalar("epoch_loss", m.train_loss as f32, step)?;
    log.train
        .scalar("epoch_accuracy", m.train_accuracy as f32, step)?;
    if epoch_rate {
        log.train
            .scalar("learning_rate", m.learning_rate as f32, step)?;
    }
    log.test.scalar("epoch_loss", m.test_loss as f32, step)?;
    log.test
        .scalar("epoch_accuracy", m.test_accuracy as f32, step)?;
    if let (Some(writer), Some(loss), Some(accuracy)) = (
        &mut log.validation,
        m.validation_loss,
        m.validation_accuracy,
    ) {
        writer.scalar("epoch_loss", loss as f32, step)?;
        writer.scalar("epoch_accuracy", accuracy as f32, step)?;
    }
    log.flush()
}

/// "classes: 0 airplane, 1 automobile, ..." (the first 20, then how many more).
fn class_list(names: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut list: Vec<String> = names
        .iter()
        .take(SHOWN)
        .enumerate()
        .map(|(i, n)| format!("{i} {n}"))
        .collect();
    if names.len() > SHOWN {
        list.push(format!("... ({} more)", names.len() - SHOWN));
    }
    format!("classes: {}", list.join(", "))
}
