//! The sweep's table of runs: printed, and written as summary.md and summary.csv in the
//! sweep's log folder, sorted by final test accuracy.

use super::Outcome;

/// How a run ended, in the table's words: `ok`, `stopped at epoch 3 by ASHA`, ...
fn status(o: &Outcome) -> String {
    match &o.result {
        Ok(r) => match (&r.stopped_by, r.stopped_early_after) {
            (Some(by), _) => format!("stopped at epoch {} by {by}", r.epochs),
            (None, Some(epoch)) => format!("stopped early after epoch {epoch}"),
            (None, None) => "ok".into(),
        },
        Err(why) => format!("failed: {why}"),
    }
}

pub fn accuracy(o: &Outcome) -> f64 {
    o.result
        .as_ref()
        .map_or(f64::NEG_INFINITY, |r| r.test_accuracy)
}

/// One line for the console as a run ends.
pub fn describe(o: &Outcome) -> String {
    match &o.result {
        Ok(r) => {
            let stopped = match status(o).as_str() {
                "ok" => String::new(),
                other => format!(", {other}"),
            };
            format!(
                "{}: test accuracy {:.4} after {} epochs ({:.1}s){stopped}",
                r.name, r.test_accuracy, r.epochs, o.seconds
            )
        }
        Err(why) => format!("{}: FAILED, {why}", o.label),
    }
}

pub fn markdown(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| rank | run | test accuracy | test loss | train loss | epochs | seconds | status |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (i, o) in outcomes.iter().enumerate() {
        let status = status(o).replace('|', "/");
        out.push_str(&match &o.result {
            Ok(r) => format!(
                "| {} | {} | {:.4} | {:.4} | {:.4} | {} | {:.1} | {status} |\n",
                i + 1,
                r.name,
                r.test_accuracy,
                r.test_loss,
                r.train_loss,
                r.epochs,
                o.seconds
            ),
            Err(_) => format!(
                "| {} | {} | | | | | {:.1} | {status} |\n",
                i + 1,
                o.label,
                o.seconds,
            ),
        });
    }
    out
}

pub fn csv(outcomes: &[Outcome]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from(
        "run,source,test_accuracy,test_loss,train_loss,epochs,seconds,status,run_dir\n",
    );
    for o in outcomes {
        let file = quote(&o.label);
        let status = quote(&status(o));
        out.push_str(&match &o.result {
            Ok(r) => format!(
                "{},{file},{},{},{},{},{:.3},{status},{}\n",
                quote(&r.name),
                r.test_accuracy,
                r.test_loss,
                r.train_loss,
                r.epochs,
                o.seconds,
                quote(&r.run_dir.display().to_string())
            ),
            Err(_) => format!(",{file},,,,,{:.3},{status},\n", o.seconds),
        });
    }
    out
}
