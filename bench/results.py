"""Writes RESULTS.md from the event files of the reference experiments' runs.

usage: python bench/results.py [LOGDIR] [--previous RESULTS.md] > NEW.md   (LOGDIR defaults to logs)
Needs the `tensorboard` package (.ci/run puts it in .venv). For each experiment it reads the
newest run folder under LOGDIR/<name>/ and compares its test accuracy with the reference's.
With --previous, the sigmoid initialisation study's section of that file is carried over,
marked as such, when LOGDIR holds no run of the study (it takes about an hour of both cores).
"""
import argparse
import glob
import os
import platform
import statistics
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import cpu_model  # noqa: E402

# The step count of tutorial 2's claim (above 99% test accuracy).
CLAIMED_STEPS = 50_000

# The references' published test (or validation) accuracy by epoch; None where they gave none.
REFERENCES = {
    "fc_adam_l2": ("PyTorch MLP, Adam + L2 (tutorial 1)", None, "reports 'high accuracy' without a figure"),
    "sigmoid_fullbatch": (
        "sigmoid MLP, full-batch GD (tutorial 2)",
        None,
        "the author claims above 99% after 50,000 GPU steps; kiln runs 1,000",
    ),
    "sigmoid_fullbatch_bn": (
        "the same with BatchNorm1d (tutorial 2)",
        None,
        "reported: BatchNorm speeds training up dramatically",
    ),
    "cnn_bn": (
        "CNN with BatchNorm (tutorial 3)",
        [0.9729, 0.9773, 0.9791, 0.9845, 0.983, 0.9859, 0.9867, 0.9872, 0.9865, 0.9869],
        "",
    ),
    "ann5_adam": ("Keras 5-layer MLP (tutorial 4)", [0.9542, 0.9654, 0.9702, 0.9690, 0.9676], ""),
    "fc_best": (
        "kiln's best fully connected network",
        None,
        "target: at least 0.985 in under 10 minutes, no convolutions",
    ),
}


def newest_run(logdir, name):
    runs = sorted(glob.glob(os.path.join(logdir, name, "*", "test")))
    return os.path.dirname(runs[-1]) if runs else None


def step_seconds(run):
    """Wall seconds from one epoch's test accuracy to the next's: training and evaluation."""
    acc = scalars(run, "test", "epoch_accuracy")
    return [b.wall_time - a.wall_time for a, b in zip(acc, acc[1:])]


def scalars(run, split, tag):
    acc = EventAccumulator(os.path.join(run, split), size_guidance={"scalars": 0})
    acc.Reload()
    return acc.Scalars(tag) if tag in acc.Tags()["scalars"] else []


def machine():
    return f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


def claims(logdir):
    """What the runs say about tutorial 2's claims, in sentences built from the numbers."""
    finals = {}
    for name in ("sigmoid_fullbatch", "sigmoid_fullbatch_bn"):
        run = newest_run(logdir, name)
        if run:
            values = [e.value for e in scalars(run, "test", "epoch_accuracy")]
            finals[name] = values
    lines = []
    for name, values in finals.items():
        verdict = "holds" if max(values) >= 0.99 else "does not hold"
        lines.append(
            f"- Above 99% test accuracy ({name}): {verdict} here: {values[-1]:.4f} after "
            f"{len(values)} full-batch steps (best {max(values):.4f}); the reference ran {CLAIMED_STEPS:,} steps."
        )
        if len(values) < CLAIMED_STEPS:
            step = statistics.median(step_seconds(newest_run(logdir, name)))
            lines.append(
                f"  Not run to {CLAIMED_STEPS:,} steps: at {step:.2f} s a step here (evaluation included),"
                f" that is {step * CLAIMED_STEPS / 3600:.1f} hours of this machine."
            )
    if len(finals) == 2:
        plain, bn = finals["sigmoid_fullbatch"], finals["sigmoid_fullbatch_bn"]
        n = min(len(plain), len(bn))
        target = 0.8
        reach = lambda v: next((i + 1 for i, a in enumerate(v[:n]) if a >= target), None)
        rp, rb = reach(plain), reach(bn)
        lines.append(
            f"- BatchNorm speeds training up: after {n} steps {bn[n - 1]:.4f} with BatchNorm against "
            f"{plain[n - 1]:.4f} without; {target:.0%} test accuracy reached at step "
            f"{rb if rb else 'never'} with BatchNorm, {rp if rp else 'never (within these steps)'} without."
        )
    return lines or ["- tutorial 2's runs are missing"]


def study(logdir):
    """The sigmoid initialisation study (runner sweep experiments/sigmoid_init/), if it ran."""
    root = os.path.join(logdir, "sigmoid_init")
    runs = {}
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        run = newest_run(root, name)
        if run:
            acc = [e.value for e in scalars(run, "test", "epoch_accuracy")]
            loss = [e.value for e in scalars(run, "train", "epoch_loss")]
            if acc and loss:
                runs[name] = (acc, loss)
    if not runs:
        return []
    steps = min(len(a) for a, _ in runs.values())
    at = lambda v, i: v[min(i, len(v)) - 1]
    lines = [
        STUDY_HEADING,
        "",
        f"`runner sweep experiments/sigmoid_init/` ({steps:,} full-batch steps each; the reference analysis",
        "ran many more). Base: 784-100-30-10 sigmoid, normal(0.01, 0.1)",
        "weights, zero biases, inputs (x - 127.5) / 255, SGD lr 0.1. Train loss and test accuracy:",
        "",
        "| variant | loss at step 10 | loss at step 100 | final loss | final test accuracy |",
        "|---|---|---|---|---|",
    ]
    for name, (acc, loss) in sorted(runs.items(), key=lambda kv: -kv[1][0][-1]):
        lines.append(f"| {name} | {at(loss, 10):.4f} | {at(loss, 100):.4f} | {loss[-1]:.4f} | {acc[-1]:.4f} |")
    verdicts = []

    def compare(claim, variant, reference, worse):
        if variant not in runs or reference not in runs:
            return
        va, vl = runs[variant]
        ra, rl = runs[reference]
        held = worse(va, vl, ra, rl)
        verdicts.append(
            f"- {claim}: {'confirmed' if held else 'not confirmed'} here ({variant}: final loss {vl[-1]:.4f}, "
            f"test accuracy {va[-1]:.4f}; {reference}: {rl[-1]:.4f}, {ra[-1]:.4f})."
        )

    stalls = lambda va, vl, ra, rl: vl[-1] > rl[-1] and va[-1] < ra[-1]
    compare("Large initial weights saturate the sigmoids and stall the loss", "std1.0", "std0.1", stalls)
    compare("A wider hidden layer saturates and learns slower", "wide300", "mean0.01_std0.1", stalls)
    compare("All-positive initial weights cause trouble", "uniform_positive", "std0.1", stalls)
    compare("Centring the inputs matters", "uncentred", "mean0.01_std0.1", stalls)
    compare("A non-zero init mean (0.01) matters", "mean0.01_std0.1", "std0.1", lambda va, vl, ra, rl: abs(va[-1] - ra[-1]) > 0.02)
    compare("BatchNorm speeds training up greatly", "mean0.01_std0.1", "batchnorm", stalls)
    lines += ["", "What the runs say about the analysis' claims:", ""] + verdicts + [""]
    return lines


STUDY_HEADING = "## Sigmoid initialisation study"
CARRIED_NOTE = (
    "*Carried over from the previous RESULTS.md: this generation's log folder held no run of"
    " the study, so its figures are from an earlier kiln and machine.*"
)


def carried_study(previous):
    """The study's section of an earlier RESULTS.md, marked as not regenerated."""
    text = open(previous).read()
    if STUDY_HEADING not in text:
        return []
    section = text[text.index(STUDY_HEADING) + len(STUDY_HEADING) :]
    # Carried over more than once: one note.
    section = section.replace(CARRIED_NOTE, "").strip("\n")
    return [STUDY_HEADING, "", CARRIED_NOTE, "", section, ""]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("logdir", nargs="?", default="logs")
    ap.add_argument("--previous", help="an earlier RESULTS.md, for the study's section")
    args = ap.parse_args()
    logdir, previous = args.logdir, args.previous
    out = [
        "# Results",
        "",
        f"Generated by `bench/results.py {logdir}` from the event files of each experiment's newest run",
        f"(`runner experiments/<name>.toml`, flex backend). Machine: {machine()}.",
        "Accuracy is test-set accuracy after each epoch; the references report theirs on the same",
        "10,000 test images (tutorial 4 calls it validation accuracy). `s per epoch` is the median wall time",
        "from one epoch's end to the next's, evaluation included, on a machine that may have been busy;",
        "bench/RESULTS.md has the speed measured against PyTorch.",
        "",
        "| experiment | reference | epochs | reference final | kiln at that epoch | kiln best | within 0.5 pt | s per epoch | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    details = []
    for name, (label, reference, note) in REFERENCES.items():
        run = newest_run(logdir, name)
        if run is None:
            out.append(f"| {name} | {label} | not run | | | | | | run `runner experiments/{name}.toml` |")
            continue
        values = [e.value for e in scalars(run, "test", "epoch_accuracy")]
        times = step_seconds(run)
        per_epoch = f"{statistics.median(times):.2f}" if times else ""
        epochs = len(values)
        if reference:
            at = min(epochs, len(reference))
            ref_final = reference[at - 1]
            kiln = values[at - 1]
            ok = "yes" if kiln >= ref_final - 0.005 else "no"
            ref_txt, kiln_txt = f"{ref_final:.4f} (epoch {at})", f"{kiln:.4f}"
        else:
            ref_txt, kiln_txt, ok = "-", f"{values[-1]:.4f} (final)", "-"
        out.append(
            f"| {name} | {label} | {epochs} | {ref_txt} | {kiln_txt} | {max(values):.4f} | {ok} | {per_epoch} | {note} |"
        )
        if reference:
            rows = " | ".join(f"{i + 1}: {v:.4f} / {r:.4f}" for i, (v, r) in enumerate(zip(values, reference)))
            details.append(f"- {name}, kiln / reference by epoch: {rows}")
        else:
            marks = sorted({1, 10, 100, epochs} | {m for m in (250, 500, 1000) if m <= epochs})
            rows = ", ".join(f"{m}: {values[m - 1]:.4f}" for m in marks if m <= epochs)
            details.append(f"- {name}, kiln test accuracy at epoch {rows}")
    out += ["", "## Claims", ""] + claims(logdir) + ["", "## By epoch", ""] + details + [""]
    out += study(logdir) or (carried_study(previous) if previous else [])
    print("\n".join(out))


if __name__ == "__main__":
    main()
