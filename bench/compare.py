"""kiln against PyTorch on the reference experiments, interleaved, on this machine.

usage: compare.py [--rounds R] [--only NAME...] [--out bench/RESULTS.md]   (run by bench/compare.sh)

For each experiment, R rounds of: kiln, PyTorch tuned, PyTorch tutorial-style (A/B/C, A/B/C...),
each a fresh process training a few epochs and evaluating the test set after each. Reported:
the median training time per epoch (the first epoch excluded: it warms caches and allocators),
samples per second, time from process start to the end of the first optimizer step, peak
resident memory (the process's own, from wait4), and the final test accuracy of each (to show
the work was the same). Writes a markdown report with the machine's description.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "target", "release", "runner")

# Epochs per run, chosen so each run takes seconds to a minute; sigmoid_fullbatch "epochs" are
# full-batch steps.
# fc_adam_l2 runs 6 epochs: its Adam moments turn subnormal during the second and later
# epochs, which slows every epoch after the first on Intel cores unless subnormals are flushed;
# it is also timed with flushing off on both sides ("keep denormals").
EXPERIMENTS = {
    "fc_adam_l2": {"epochs": 6, "samples": 937 * 64, "keep_denormals": True},
    "cnn_bn": {"epochs": 3, "samples": 60000},
    "ann5_adam": {"epochs": 4, "samples": 60000},
    "sigmoid_fullbatch": {"epochs": 12, "samples": 60000},
}


def run_measured(cmd, env=None):
    """(stdout, launch time since the epoch, peak RSS in MB): reaps the child with os.wait4
    to read its own peak RSS (RUSAGE_CHILDREN would give the largest of all children)."""
    launched = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # Read the pipes to the end first (a full pipe would block the child), then reap.
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return out.decode(), launched, usage.ru_maxrss / 1024.0


def first_step_wall(run_dir):
    """Wall time of the first batch_loss event kiln wrote (the end of its first step)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(os.path.join(run_dir, "train"), size_guidance={"scalars": 0})
    acc.Reload()
    return acc.Scalars("batch_loss")[0].wall_time


def kiln(name, epochs, data, keep_denormals=False):
    logs = tempfile.mkdtemp(prefix="kiln-bench-")
    cmd = [
        RUNNER, os.path.join(ROOT, "experiments", f"{name}.toml"),
        "--set", f"train.epochs={epochs}", "--set", "log.batch_loss_every=1",
        "--logdir", logs,
    ] + (["--set", "train.flush_denormals=false"] if keep_denormals else [])
    env = dict(os.environ, KILN_DATA_DIR=data)
    out, launched, rss = run_measured(cmd, env)
    lines = [l for l in out.splitlines() if l.startswith("epoch ")]
    seconds = [float(re.search(r"(\d+\.\d+)s \(", l).group(1)) for l in lines]
    accuracy = float(re.search(r"test_acc (\d\.\d+)", lines[-1]).group(1))
    (run_dir,) = glob.glob(os.path.join(logs, name, "*"))
    first = first_step_wall(run_dir) - launched
    subprocess.run(["rm", "-rf", logs])
    return {"epoch_seconds": seconds, "first_step": first, "accuracy": accuracy, "rss_mb": rss}


def torch(name, style, epochs, data, raw, keep_denormals=False):
    cmd = [
        sys.executable, os.path.join(ROOT, "bench", "torch_ref.py"), name, style, str(epochs),
        "--data", data, "--raw", raw, "--threads", str(os.cpu_count()),
    ] + (["--keep-denormals"] if keep_denormals else [])
    out, launched, rss = run_measured(cmd)
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "epoch_seconds": result["epoch_seconds"],
        "first_step": result["first_step_wall"] - launched,
        "accuracy": result["test_accuracy"],
        "rss_mb": rss,
    }


def prepare_torchvision_root(data):
    """torchvision's MNIST reads uncompressed files from ROOT/MNIST/raw and would otherwise
    try to download them: unpack the local .gz files there once."""
    import gzip
    import shutil

    raw = os.path.join(ROOT, "bench", ".cache", "MNIST", "raw")
    os.makedirs(raw, exist_ok=True)
    for gz in glob.glob(os.path.join(data, "*-ubyte.gz")):
        target = os.path.join(raw, os.path.basename(gz)[:-3])
        if not os.path.exists(target):
            with gzip.open(gz, "rb") as src, open(target + ".tmp", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(target + ".tmp", target)
    return os.path.join(ROOT, "bench", ".cache")


def cpu_model():
    """The CPU's model name with its family and model numbers, which tell generations apart
    where a VM names only the brand ("AMD EPYC"): family 25 model 1 is Zen 3 (no AVX-512),
    family 25 model 17 Zen 4, Intel family 6 model 143 Sapphire Rapids."""
    fields = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown CPU"
    name = fields.get("model name", "unknown CPU")
    return f"{name} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"


def machine():
    cpu = cpu_model()
    mem = ""
    try:
        kb = int(open("/proc/meminfo").readline().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    import torch as t

    flags = open("/proc/cpuinfo").read()
    avx512 = "avx512f" in flags
    commit = subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}, AVX-512 {'yes' if avx512 else 'no'}; "
        f"{platform.system()} {platform.release()}; PyTorch {t.__version__} "
        f"({t.get_num_threads()} threads available), Python {platform.python_version()}; "
        f"kiln {commit} (flex backend, release build)"
    )


def median_epoch(result):
    times = result["epoch_seconds"]
    return statistics.median(times[1:] if len(times) > 1 else times)


def growth(result):
    """The last epoch's time over the second's: 1 when epochs stay flat (subnormals flushed
    or never produced), larger when they slow the run down as it goes."""
    times = result["epoch_seconds"]
    return times[-1] / times[1] if len(times) > 2 else 1.0


def summarise(runs):
    """Medians over rounds of each measure."""
    return {
        "epoch": statistics.median(median_epoch(r) for r in runs),
        "growth": statistics.median(growth(r) for r in runs),
        "first_step": statistics.median(r["first_step"] for r in runs),
        "rss_mb": statistics.median(r["rss_mb"] for r in runs),
        "accuracy": statistics.median(r["accuracy"] for r in runs),
    }


def implementations(spec):
    """The contenders of one experiment, interleaved in this order in every round: label ->
    (who, torch style or None, keep denormals)."""
    impls = {
        "kiln": ("kiln", None, False),
        "torch tuned": ("torch", "tuned", False),
        "torch tutorial": ("torch", "tutorial", False),
    }
    if spec.get("keep_denormals"):
        impls["kiln, keep denormals"] = ("kiln", None, True)
        impls["torch tuned, keep denormals"] = ("torch", "tuned", True)
    return impls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=list(EXPERIMENTS))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results.json"))
    args = ap.parse_args()
    data = os.environ.get("KILN_DATA_DIR")
    if not data or not os.path.isdir(data):
        sys.exit("set KILN_DATA_DIR to the folder holding MNIST's four .gz files")
    data = os.path.abspath(data)
    raw = prepare_torchvision_root(data)

    results = {}
    for name in args.only:
        spec = EXPERIMENTS[name]
        impls = implementations(spec)
        runs = {impl: [] for impl in impls}
        for r in range(args.rounds):
            for impl, (who, style, keep) in impls.items():
                print(f"[{name}] round {r + 1}/{args.rounds}: {impl}", file=sys.stderr, flush=True)
                if who == "kiln":
                    res = kiln(name, spec["epochs"], data, keep)
                else:
                    res = torch(name, style, spec["epochs"], data, raw, keep)
                runs[impl].append(res)
                print(f"    {json.dumps(res)}", file=sys.stderr, flush=True)
        results[name] = {impl: summarise(rs) for impl, rs in runs.items()}
        results[name]["_raw"] = runs

    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    report = render(results, args.rounds)
    with open(args.out, "w") as f:
        f.write(report)
    print(report)


def render(results, rounds):
    lines = [
        "# kiln against PyTorch",
        "",
        "Generated by `bench/compare.sh` on "
        + datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        + ". Machine: "
        + machine()
        + ".",
        "",
        f"Each experiment ran {rounds} rounds of kiln, PyTorch tuned (data preloaded as tensors,"
        " batches sliced by a permutation) and PyTorch in the tutorials' style (torchvision"
        " dataset + DataLoader), interleaved, each a fresh process with the same network, init,"
        " optimizer, batch size, float32 and thread count. Per-epoch time: the median over"
        " epochs 2.. of a run (training steps only, the test evaluation excluded, the loss read"
        " back every step in both), then the median over rounds. First step: from launching the"
        " process to the end of its first optimizer step (data cached). Memory: the process's peak"
        " resident set. Accuracy: test accuracy after the last epoch (runs are short; it shows"
        " the work is the same, not the final accuracy of the experiment). sigmoid_fullbatch's"
        " epochs are single full-batch steps.",
        "",
        "| experiment | implementation | s / epoch | last / 2nd epoch | samples / s | kiln / this | first step (s) | peak RSS (MB) | test acc |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, by_impl in results.items():
        samples = EXPERIMENTS[name]["samples"]
        k = by_impl["kiln"]["epoch"]
        for impl in implementations(EXPERIMENTS[name]):
            s = by_impl[impl]
            ratio = "" if impl == "kiln" else f"{k / s['epoch']:.2f}x"
            lines.append(
                f"| {name} | {impl} | {s['epoch']:.3f} | {s['growth']:.2f} "
                f"| {samples / s['epoch']:,.0f} | {ratio} "
                f"| {s['first_step']:.2f} | {s['rss_mb']:.0f} | {s['accuracy']:.4f} |"
            )
    lines += [
        "",
        "`kiln / this` is kiln's epoch time (subnormals flushed, its default) divided by that"
        " implementation's: below 1 means kiln is faster. `torch tuned` flushes subnormals"
        " (`torch.set_flush_denormal(True)`); the tutorial style keeps PyTorch's defaults, as"
        " the tutorials do; `keep denormals` rows turn flushing off on either side"
        " (`train.flush_denormals = false`). `last / 2nd epoch` is the last epoch's time over"
        " the second's (1.00: flat). Per-epoch times of every run: `bench/results.json`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
