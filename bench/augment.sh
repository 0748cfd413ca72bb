#!/usr/bin/env bash
# Training throughput of a CIFAR-shaped conv net (experiments/cifar10_cnn.toml) with and
# without [data.augment], on files of CIFAR-10's binary layout written here (random pictures:
# the real CIFAR-10 is not in the package registries; throughput does not depend on content).
# Prints each run's samples/s (training steps only, from the console's epoch line) and the
# median per configuration, runs interleaved. Usage: bench/augment.sh [RUNNER] [REPEATS]
set -euo pipefail
runner=${1:-target/release/runner}
repeats=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/fake_cifar.py "$work/cifar-10-batches-bin"
base=experiments/cifar10_cnn.toml
sets=(--set "data.dir=$work" --set train.epochs=1 --set data.limit_train=10000 --set data.limit_test=1000)
# Without augmentation: the experiment less its [data.augment] table.
sed '/^\[data.augment\]/,/^$/d' "$base" > "$work/none.toml"
cp "$base" "$work/crop_flip.toml"
{ cat "$work/none.toml"; printf '\n'; } | sed 's/^\[model\]/[data.augment]\nrandom_crop = { size = 32, padding = 4 }\nhorizontal_flip = true\nrotation = 15\ntranslate = 0.1\ncutout = { size = 8 }\nmixup = 0.2\ncutmix = 1.0\n\n[model]/' > "$work/all.toml"
declare -A results
for r in $(seq "$repeats"); do
  for config in none crop_flip all; do
    line=$("$runner" "$work/$config.toml" "${sets[@]}" --logdir "$work/logs" | grep '^epoch' | tail -1)
    rate=$(echo "$line" | sed -E 's/.*\(([0-9]+) samples\/s\).*/\1/')
    echo "$config run $r: $rate samples/s"
    results[$config]+="$rate "
  done
done
for config in none crop_flip all; do
  median=$(echo ${results[$config]} | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "median $config: $median samples/s"
done
