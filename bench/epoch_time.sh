#!/usr/bin/env bash
# Seconds per training epoch of an experiment (default fc_adam_l2), logging on, as `runner`
# reports them: the median over N epochs (the first, which warms caches, excluded).
# usage: bench/epoch_time.sh [EXPERIMENT.toml] [EPOCHS]   (needs KILN_DATA_DIR or the cache)
set -euo pipefail
cd "$(dirname "$0")/.."
exp=${1:-experiments/fc_adam_l2.toml}
epochs=${2:-6}
cargo build --release --quiet
logs=$(mktemp -d)
start=$(date +%s.%N)
./target/release/runner "$exp" --set train.epochs="$epochs" --logdir "$logs" > "$logs/out.txt"
end=$(date +%s.%N)
grep '^epoch' "$logs/out.txt"
python3 - "$logs/out.txt" "$start" "$end" "$epochs" <<'PY'
import re, statistics, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("epoch")]
secs = [float(re.search(r"(\d+\.\d+)s \(", l).group(1)) for l in lines]
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"training epoch: median {statistics.median(secs[1:]):.3f} s over epochs 2..{len(secs)} "
      f"(min {min(secs[1:]):.3f}, max {max(secs[1:]):.3f}); "
      f"whole command {wall:.2f} s for {sys.argv[4]} epochs incl. start-up and test evaluation")
PY
rm -rf "$logs"
