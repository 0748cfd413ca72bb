#!/usr/bin/env bash
# ResNet-20 training throughput on CIFAR-shaped input, kiln against PyTorch, interleaved.
# kiln trains experiments/cifar10_resnet20.toml (batch 128, SGD momentum 0.9, weight decay
# 1e-4) for 2 epochs of 2,560 random pictures in CIFAR-10's binary layout (the real CIFAR-10
# is not in the package registries; speed does not depend on content), without augmentation
# or validation split, and reports the second epoch's samples/s (training steps only);
# bench/torch_resnet.py trains the same network on the same batch size, 20 steps after 3 of
# warm-up. Prints each run and the medians. Usage:
#   bench/resnet.sh [RUNNER] [PYTHON] [REPEATS] [EXPERIMENT]
set -euo pipefail
runner=${1:-target/release/runner}
python=${2:-.venv/bin/python}
repeats=${3:-3}
experiment=${4:-experiments/cifar10_resnet20.toml}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/fake_cifar.py "$work/cifar-10-batches-bin"
# The experiment without [data.augment] and its validation split.
sed -e '/^\[data.augment\]/,/^$/d' -e '/^validation = /d' "$experiment" > "$work/resnet.toml"
sets=(--set "data.dir=$work" --set train.epochs=2 --set data.limit_train=2560
      --set data.limit_test=256)
kiln=() torch=()
for r in $(seq "$repeats"); do
  line=$("$runner" "$work/resnet.toml" "${sets[@]}" --logdir "$work/logs" 2>/dev/null | grep '^epoch' | tail -1)
  rate=$(echo "$line" | sed -E 's/.*\(([0-9]+) samples\/s\).*/\1/')
  echo "kiln run $r: $rate images/s"
  kiln+=("$rate")
  rate=$("$python" bench/torch_resnet.py | sed -E 's/.*"images_per_s": ([0-9.]+).*/\1/')
  echo "torch run $r: $rate images/s"
  torch+=("$rate")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mk=$(median "${kiln[@]}") mt=$(median "${torch[@]}")
echo "median kiln: $mk images/s; median torch: $mt images/s; kiln/torch: $(python3 -c "print(round($mk/$mt, 2))")"
