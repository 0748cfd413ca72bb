"""A/B of two (or more) runner builds on one experiment, interleaved: time to the first step,
peak RSS and per-epoch time, measured as bench/compare.py measures kiln.

usage: KILN_DATA_DIR=../shared/data/mnist bench/.venv/bin/python bench/ab.py NAME ROUNDS EPOCHS RUNNER...
e.g.   ... bench/ab.py sigmoid_fullbatch 4 3 /tmp/runner-before target/release/runner
(copy the baseline's target/release/runner aside before rebuilding)."""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    name, rounds, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if epochs < 2:
        sys.exit("EPOCHS must be at least 2 (the first epoch is left out of the epoch time)")
    data = os.environ.get("KILN_DATA_DIR")
    if not data:
        sys.exit("set KILN_DATA_DIR")
    runners = [os.path.abspath(r) for r in sys.argv[4:]]
    results = {r: [] for r in runners}
    for _ in range(rounds):
        for runner in runners:
            compare.RUNNER = runner
            r = compare.kiln(name, epochs, os.path.abspath(data))
            results[runner].append(r)
            epochs_s = [round(s, 3) for s in r["epoch_seconds"]]
            print(f"{runner}: first step {r['first_step']:.3f} s, peak RSS {r['rss_mb']:.0f} MB, epochs {epochs_s}", flush=True)
    for runner, rs in results.items():
        first = statistics.median(r["first_step"] for r in rs)
        rss = statistics.median(r["rss_mb"] for r in rs)
        later = statistics.median(s for r in rs for s in r["epoch_seconds"][1:])
        print(f"{runner}: median first step {first:.3f} s, peak RSS {rss:.0f} MB, epoch {later:.3f} s")


if __name__ == "__main__":
    main()
