//! Checks of values that serde accepts but that make no sense (lr <= 0, batch_size 0, ...).
//!
//! Shapes are checked later, by [`crate::model::shape`], once the dataset's input shape is known.

use super::schema::*;
use crate::problems::Problems;

/// Every value problem in `config`, as (dotted key, what is wrong).
pub fn problems(config: &ExperimentConfig) -> Vec<(String, String)> {
    let mut p = Problems::default();
    check_name(&mut p, &config.name);
    check_data(&mut p, &config.data);
    check_model(&mut p, config);
    crate::init::check(&mut p, &config.init.weight, "init.weight");
    crate::init::check(&mut p, &config.init.bias, "init.bias");
    check_optimizer(&mut p, &config.optimizer);
    check_schedule(&mut p, config);
    check_train(&mut p, config);
    check_log(&mut p, &config.log);
    check_checkpoint(&mut p, &config.checkpoint, &config.data);
    check_classes(&mut p, &config.data);
    p.found
}

fn check_name(p: &mut Problems, name: &str) {
    let problem = crate::folder_name::problem(name);
    p.check(problem.is_none(), "name", problem.unwrap_or_default());
}

fn check_data(p: &mut Problems, data: &DataConfig) {
    let csv = data.dataset == DatasetKind::Csv;
    for (file, key) in [
        (&data.train_file, "data.train_file"),
        (&data.test_file, "data.test_file"),
    ] {
        if csv {
            p.check(
                file.is_some(),
                key,
                "is required when dataset = \"csv\" (the path of a CSV file, label in the first column)",
            );
        } else {
            p.check(
                file.is_none(),
                key,
                format!(
                    "only applies to dataset = \"csv\"; {} is read from its own files",
                    data.dataset.name()
                ),
            );
        }
    }
    if matches!(data.dataset, DatasetKind::Idx | DatasetKind::ImageFolder) {
        p.check(
            data.dir.is_some(),
            "data.dir",
            format!(
                "is required when dataset = \"{}\" (the folder holding its files)",
                data.dataset.name()
            ),
        );
    }
    check_normalize(p, data);
    check_image_folder(p, data);
    if let Some(augment) = &data.augment {
        check_augment(p, augment, data.dataset);
    }
    p.check(
        data.label_mode.is_none() || data.dataset == DatasetKind::Cifar100,
        "data.label_mode",
        "only applies to dataset = \"cifar100\" (fine or coarse labels)",
    );
    match data.validation {
        Some(Holdout::Fraction(f)) => p.check(
            f > 0.0 && f < 1.0,
            "data.validation",
            format!("a fraction must be between 0 and 1 (got {f}); or give a count of examples"),
        ),
        Some(Holdout::Count(n)) => p.check(
            n > 0,
            "data.validation",
            "must hold out at least one example (or leave it out: no validation split)",
        ),
        None => {}
    }
    for (limit, key) in [
        (data.limit_train, "data.limit_train"),
        (data.limit_test, "data.limit_test"),
    ] {
        p.check(limit != Some(0), key, "must be at least 1 when given");
    }
}

fn check_model(p: &mut Problems, config: &ExperimentConfig) {
    let model = &config.model;
    p.check(
        !model.layers.is_empty(),
        "model.layers",
        "is empty; list at least one layer, e.g. { type = \"linear\", units = 10 }",
    );
    if let Some(input) = &model.input {
        p.check(
            !input.is_empty() && input.iter().all(|&d| d > 0),
            "model.input",
            format!("{input:?} must list positive sizes, e.g. [1, 28, 28]"),
        );
    }
    for (i, node) in model.layers.iter().enumerate() {
        node.layer.kind().check(p, &format!("model.layers[{i}]"));
    }
    crate::layers::wiring::wire(&model.layers, "model.layers", p);
}

fn check_optimizer(p: &mut Problems, optimizer: &OptimizerConfig) {
    p.positive(optimizer.lr(), "optimizer.lr");
    match optimizer {
        OptimizerConfig::Sgd {
            momentum,
            dampening,
            nesterov,
            weight_decay,
            ..
        } => {
            p.fraction(*momentum, "optimizer.momentum");
            p.check(
                (0.0..=1.0).contains(dampening),
                "optimizer.dampening",
                format!("must be in [0, 1] (got {dampening})"),
            );
            p.check(
                !*nesterov || (*momentum > 0.0 && *dampening == 0.0),
                "optimizer.nesterov",
                "needs momentum > 0 and dampening = 0 (as in torch.optim.SGD)",
            );
            p.non_negative(*weight_decay, "optimizer.weight_decay");
        }
        OptimizerConfig::Adam {
            betas,
            eps,
            weight_decay,
            ..
        }
        | OptimizerConfig::Adamw {
            betas,
            eps,
            weight_decay,
            ..
        } => {
            p.fraction(betas[0], "optimizer.betas");
            p.fraction(betas[1], "optimizer.betas");
            p.positive(*eps, "optimizer.eps");
            p.non_negative(*weight_decay, "optimizer.weight_decay");
        }
        OptimizerConfig::Rmsprop {
            alpha,
            eps,
            momentum,
            weight_decay,
            ..
        } => {
            p.fraction(*alpha, "optimizer.alpha");
            p.positive(*eps, "optimizer.eps");
            p.fraction(*momentum, "optimizer.momentum");
            p.non_negative(*weight_decay, "optimizer.weight_decay");
        }
    }
}

fn check_schedule(p: &mut Problems, config: &ExperimentConfig) {
    let (schedule, lr) = (&config.schedule, config.optimizer.lr());
    let validation = config.data.validation.is_some();
    match &schedule.kind {
        ScheduleKind::Constant {} => {}
        ScheduleKind::Step { step_size, gamma } => {
            p.check(
                *step_size > 0,
                "schedule.step_size",
                "must be at least 1 (epochs)",
            );
            p.positive(*gamma, "schedule.gamma");
        }
        ScheduleKind::Exponential { gamma } => p.positive(*gamma, "schedule.gamma"),
        ScheduleKind::Cosine { t_max, eta_min } => {
            p.check(
                *t_max != Some(0),
                "schedule.t_max",
                "must be at least 1 (epochs)",
            );
            p.check(
                eta_min.is_finite() && *eta_min >= 0.0 && *eta_min <= lr,
                "schedule.eta_min",
                format!("must be in [0, optimizer.lr = {lr}] (got {eta_min})"),
            );
        }
        ScheduleKind::Plateau(plateau) => {
            check_metric(p, plateau.metric, "schedule.metric", validation);
            p.between_0_and_1(
                plateau.factor,
                "schedule.factor",
                "the rate is multiplied by it",
            );
            p.non_negative(plateau.threshold, "schedule.threshold");
            p.check(
                plateau.min_lr.is_finite() && plateau.min_lr >= 0.0 && plateau.min_lr < lr,
                "schedule.min_lr",
                format!(
                    "must be in [0, optimizer.lr = {lr}) (got {})",
                    plateau.min_lr
                ),
            );
        }
        ScheduleKind::Onecycle(one) => {
            p.between_0_and_1(
                one.pct_start,
                "schedule.pct_start",
                "the share of the steps spent rising",
            );
            p.positive(one.div_factor, "schedule.div_factor");
            p.positive(one.final_div_factor, "schedule.final_div_factor");
            let warmup = schedule.warmup_steps.is_some() || schedule.warmup_epochs.is_some();
            p.check(
                !warmup,
                "schedule.warmup_steps",
                "does not apply to kind = \"onecycle\", which warms up by itself (pct_start); remove the warmup",
            );
        }
    }
    check_warmup(p, schedule, config.train.epochs);
}

fn check_warmup(p: &mut Problems, schedule: &ScheduleConfig, epochs: usize) {
    if let (Some(_), Some(_)) = (schedule.warmup_steps, schedule.warmup_epochs) {
        p.check(
            false,
            "schedule.warmup_epochs",
            "and schedule.warmup_steps both set; keep one",
        );
    }
    p.check(
        schedule.warmup_steps != Some(0),
        "schedule.warmup_steps",
        "must be at least 1 (or leave it out: no warmup)",
    );
    if let Some(n) = schedule.warmup_epochs {
        p.check(
            n > 0 && n < epochs,
            "schedule.warmup_epochs",
            format!(
                "must be at least 1 and less than train.epochs = {epochs} (got {n}): the warmup would take the whole run"
            ),
        );
    }
    if let Some(start) = schedule.warmup_start {
        p.check(
            (0.0..1.0).contains(&start),
            "schedule.warmup_start",
            format!("must be in [0, 1) (got {start}): the first step's share of lr"),
        );
        p.check(
            schedule.warmup_steps.is_some() || schedule.warmup_epochs.is_some(),
            "schedule.warmup_start",
            "only applies with warmup_steps or warmup_epochs",
        );
    }
}

/// A metric a control or `checkpoint.best` watches: one measured on the validation split needs
/// that split.
fn check_metric(p: &mut Problems, metric: BestMetric, key: &str, validation: bool) {
    p.check(
        validation || !metric.needs_validation(),
        key,
        format!(
            "{} needs a validation split: set [data] validation = 0.1 (a fraction of the training set), or choose {}",
            metric.name(),
            metric.name().replace("validation_", "test_")
        ),
    );
}

fn check_train(p: &mut Problems, config: &ExperimentConfig) {
    let train = &config.train;
    p.check(train.epochs > 0, "train.epochs", "must be at least 1");
    p.check(
        train.batch_size != BatchSize::Size(0),
        "train.batch_size",
        "must be at least 1, or \"full\"",
    );
    p.fraction(train.label_smoothing, "train.label_smoothing");
    p.check(
        train.eval_batch_size > 0,
        "train.eval_batch_size",
        "must be at least 1",
    );
    if let Some(stop) = &train.early_stopping {
        let validation = config.data.validation.is_some();
        check_metric(p, stop.metric, "train.early_stopping.metric", validation);
        p.non_negative(stop.min_delta, "train.early_stopping.min_delta");
        let best = config.checkpoint.best.unwrap_or(stop.metric);
        p.check(
            !stop.restore_best || best == stop.metric,
            "train.early_stopping.restore_best",
            format!(
                "restores best.ckpt, which checkpoint.best = \"{}\" picks, while early stopping watches {}; make them the same metric (or leave checkpoint.best out), or set restore_best = false",
                best.name(),
                stop.metric.name()
            ),
        );
    }
    for (clip, key) in [
        (train.clip_grad_norm, "train.clip_grad_norm"),
        (train.clip_grad_value, "train.clip_grad_value"),
    ] {
        if let Some(x) = clip {
            p.positive(x, key);
        }
    }
    p.check(
        train.accumulate > 0,
        "train.accumulate",
        "must be at least 1 (batches per optimizer step; 1 is no accumulation)",
    );
    if let Some(decay) = train.ema {
        p.between_0_and_1(
            decay,
            "train.ema",
            "the average's decay per step, e.g. 0.999",
        );
    }
    p.check(
        train.ema_eval.is_none() || train.ema.is_some(),
        "train.ema_eval",
        "only applies with train.ema (a decay such as 0.999)",
    );
    if let Some(budget) = &train.max_time {
        p.check(
            !budget.duration.is_zero(),
            "train.max_time",
            "must be longer than 0 (or leave it out: no time limit)",
        );
    }
}

fn check_classes(p: &mut Problems, data: &DataConfig) {
    if let Some(classes) = data.classes {
        p.check(
            classes >= 2,
            "data.classes",
            format!("must be at least 2 (got {classes})"),
        );
        p.check(
            matches!(data.dataset, DatasetKind::Csv | DatasetKind::Idx),
            "data.classes",
            "applies to csv and idx datasets only; the others know their classes",
        );
    }
}

/// `mean` and `std`: one value, or one per channel of the dataset.
fn check_normalize(p: &mut Problems, data: &DataConfig) {
    let n = &data.normalize;
    p.check(
        n.scale.is_finite() && n.scale != 0.0,
        "data.normalize.scale",
        format!("must be a non-zero number (got {})", n.scale),
    );
    p.check(
        n.center.is_finite(),
        "data.normalize.center",
        "must be a finite number",
    );
    let channels = data.channels();
    for (values, key) in [
        (&n.mean, "data.normalize.mean"),
        (&n.std, "data.normalize.std"),
    ] {
        let count = values.0.len();
        p.check(
            count == 1 || count == channels,
            key,
            format!(
                "has {count} values but {} pictures have {channels} channel{}: give one value, or one per channel",
                data.dataset.name(),
                if channels == 1 { "" } else { "s" }
            ),
        );
        for v in &values.0 {
            if key.ends_with("std") {
                p.positive(*v, key);
            } else {
                p.check(v.is_finite(), key, "must be finite numbers");
            }
        }
    }
}

/// The values of `[data.augment]` that cannot work whatever the pictures' size (that is
/// checked once the data is loaded: `data::augment::Augmenter::new`).
fn check_augment(p: &mut Problems, a: &Augment, dataset: DatasetKind) {
    p.check(
        dataset != DatasetKind::Csv,
        "data.augment",
        "applies to pictures; CSV rows have no height and width",
    );
    if let Some(flip) = a.horizontal_flip {
        let chance = flip.probability();
        p.check(
            (0.0..=1.0).contains(&chance),
            "data.augment.horizontal_flip",
            format!("must be true, false or a probability from 0 to 1 (got {chance})"),
        );
    }
    if let Some(degrees) = a.rotation {
        p.check(
            (0.0..=180.0).contains(&degrees),
            "data.augment.rotation",
            format!("must be degrees from 0 to 180 (got {degrees})"),
        );
    }
    if let Some(fraction) = a.translate {
        p.check(
            (0.0..1.0).contains(&fraction),
            "data.augment.translate",
            format!("must be a fraction of the size, from 0 to below 1 (got {fraction})"),
        );
    }
    if let Some(cutout) = a.cutout {
        p.check(
            cutout.size > 0,
            "data.augment.cutout.size",
            "must be at least 1 (the side of the square, in pixels)",
        );
    }
    for (alpha, key) in [
        (a.mixup, "data.augment.mixup"),
        (a.cutmix, "data.augment.cutmix"),
    ] {
        if let Some(alpha) = alpha {
            p.positive(alpha, key);
        }
    }
}

/// The largest side `image_size` accepts: past it, a batch of pictures alone outgrows memory.
const MAX_SIDE: usize = 4096;

fn check_image_folder(p: &mut Problems, data: &DataConfig) {
    if data.dataset != DatasetKind::ImageFolder {
        for (given, key) in [
            (data.image_size.is_some(), "data.image_size"),
            (data.channels.is_some(), "data.channels"),
        ] {
            p.check(
                !given,
                key,
                format!(
                    "only applies to dataset = \"image_folder\"; {} pictures have a fixed size",
                    data.dataset.name()
                ),
            );
        }
        return;
    }
    match data.image_size {
        None => p.check(
            false,
            "data.image_size",
            "is required when dataset = \"image_folder\": [height, width] every picture is resized to, e.g. [32, 32]",
        ),
        Some([h, w]) => p.check(
            (1..=MAX_SIDE).contains(&h) && (1..=MAX_SIDE).contains(&w),
            "data.image_size",
            format!("must be [height, width], each 1 to {MAX_SIDE} (got [{h}, {w}])"),
        ),
    }
    if let Some(c) = data.channels {
        p.check(
            c == 1 || c == 3,
            "data.channels",
            format!("must be 1 (grey) or 3 (RGB), got {c}"),
        );
    }
}

fn check_checkpoint(p: &mut Problems, checkpoint: &CheckpointConfig, data: &DataConfig) {
    if let Some(best) = checkpoint.best {
        check_metric(p, best, "checkpoint.best", data.validation.is_some());
    }
    p.check(
        checkpoint.keep_last > 0,
        "checkpoint.keep_last",
        "must be at least 1 (the newest checkpoint is what --resume continues from)",
    );
}

fn check_log(p: &mut Problems, log: &LogConfig) {
    p.check(
        log.histograms_every == 0 || log.histogram_examples > 0,
        "log.histogram_examples",
        "must be at least 1 when log.histograms_every is set",
    );
}
