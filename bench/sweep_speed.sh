#!/usr/bin/env bash
# Wall time of a sweep of 8 fc_adam_l2 runs (2 epochs each) run one after another
# (--jobs 1, each run using every core) against in parallel (default --jobs), interleaved
# A/B/A/B; prints each time and the ratio of the medians. Needs KILN_DATA_DIR or the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
mkdir "$work/eight"
for i in 1 2 3 4 5 6 7 8; do
  sed "s/^name = \"fc_adam_l2\"/name = \"fc$i\"/" experiments/fc_adam_l2.toml > "$work/eight/fc$i.toml"
done
seq_times=(); par_times=()
for round in 1 2; do
  for mode in seq par; do
    args=(); [ "$mode" = seq ] && args=(--jobs 1)
    start=$(date +%s.%N)
    ./target/release/runner sweep "$work/eight" "${args[@]}" --set train.epochs=2 --logdir "$work/logs-$mode-$round" --quiet
    t=$(python3 -c "print(round($(date +%s.%N) - $start, 2))")
    echo "round $round $mode: $t s"
    if [ "$mode" = seq ]; then seq_times+=("$t"); else par_times+=("$t"); fi
  done
done
python3 - "${seq_times[*]}" "${par_times[*]}" <<'PY'
import statistics, sys
s = [float(x) for x in sys.argv[1].split()]; p = [float(x) for x in sys.argv[2].split()]
print(f"one after another: median {statistics.median(s):.2f} s; parallel: median {statistics.median(p):.2f} s; ratio {statistics.median(p) / statistics.median(s):.2f}")
PY
rm -rf "$work"
