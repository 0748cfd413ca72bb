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
    check_schedule(&mut p, &config.schedule, config.optimizer.lr());
    check_train(&mut p, &config.train);
    check_log(&mut p, &config.log);
    check_checkpoint(&mut p, &config.checkpoint);
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
                    "only applies to dataset = \"csv\"; {} is read from its IDX files",
                    data.dataset.name()
                ),
            );
        }
    }
    if data.dataset == DatasetKind::Idx {
        p.check(
            data.dir.is_some(),
            "data.dir",
            "is required when dataset = \"idx\" (the folder holding the four IDX files)",
        );
    }
    let n = &data.normalize;
    p.check(
        n.scale.is_finite() && n.scale != 0.0,
        "data.normalize.scale",
        format!("must be a non-zero number (got {})", n.scale),
    );
    p.positive(n.std, "data.normalize.std");
    p.check(
        n.center.is_finite(),
        "data.normalize.center",
        "must be a finite number",
    );
    p.check(
        n.mean.is_finite(),
        "data.normalize.mean",
        "must be a finite number",
    );
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
    for (i, layer) in model.layers.iter().enumerate() {
        layer.kind().check(p, &format!("model.layers[{i}]"));
    }
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

fn check_schedule(p: &mut Problems, schedule: &ScheduleConfig, lr: f64) {
    match schedule {
        ScheduleConfig::Constant {} => {}
        ScheduleConfig::Step { step_size, gamma } => {
            p.check(
                *step_size > 0,
                "schedule.step_size",
                "must be at least 1 (epochs)",
            );
            p.positive(*gamma, "schedule.gamma");
        }
        ScheduleConfig::Exponential { gamma } => p.positive(*gamma, "schedule.gamma"),
        ScheduleConfig::Cosine { t_max, eta_min } => {
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
    }
}

fn check_train(p: &mut Problems, train: &TrainConfig) {
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
            "applies to csv and idx datasets only; MNIST and Fashion-MNIST have 10",
        );
    }
}

fn check_checkpoint(p: &mut Problems, checkpoint: &CheckpointConfig) {
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
