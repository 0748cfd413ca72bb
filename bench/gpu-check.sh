#!/usr/bin/env bash
# The GPU check, prepared for a machine with an NVIDIA GPU: fc_adam_l2 and cnn_bn, 2 epochs
# each, on cuda, tch-cuda and flex; one line per run with the test accuracy and the seconds of
# each training epoch (the first includes compiling the GPU kernels), then nvidia-smi's view.
#
# usage: bench/gpu-check.sh [BACKEND...]       (default: cuda tch-cuda flex)
#   KILN_DATA_DIR   the MNIST folder (required where nothing can be downloaded)
#   KILN_RUNNER     a runner built elsewhere with `--features cuda,tch` (a GPU machine without
#                   Rust or internet); without it the script builds one, which needs
#                   scripts/cuda-env.sh's LLVM and scripts/tch-env.sh's PyTorch.
#   EPOCHS          epochs per run (default 2)
# A backend the runner cannot start says why on its line and the others go on.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then backends=("$@"); else backends=(cuda tch-cuda flex); fi
epochs=${EPOCHS:-2}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null ||
  echo "gpu-check: nvidia-smi found no GPU; the GPU backends will say why they cannot start"
runner=${KILN_RUNNER:-}
if [ -z "$runner" ]; then
  started=$(date +%s)
  # shellcheck source=/dev/null
  source scripts/cuda-env.sh && source scripts/tch-env.sh || exit 1
  cargo build --release --quiet -p kiln-runner --features cuda,tch || exit 1
  echo "gpu-check: build took $(($(date +%s) - started)) s"
  runner=target/release/runner
fi
"$runner" backends

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
printf '%-9s %-11s %9s  %s\n' backend experiment test_acc "s per epoch"
for backend in "${backends[@]}"; do
  for exp in fc_adam_l2 cnn_bn; do
    out="$logs/$backend-$exp.txt"
    if "$runner" "experiments/$exp.toml" --set train.epochs="$epochs" --set backend="$backend" \
      --logdir "$logs/$backend" >"$out" 2>&1; then
      python3 - "$out" "$backend" "$exp" <<'PY'
import re, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("epoch")]
secs = [re.search(r"(\d+\.\d+)s \(", l).group(1) for l in lines]
acc = re.search(r"test_acc (\S+)", lines[-1]).group(1)
print(f"{sys.argv[2]:<9} {sys.argv[3]:<11} {acc:>9}  {' '.join(secs)}")
PY
    else
      printf '%-9s %-11s failed: %s\n' "$backend" "$exp" "$(grep -m1 '^error' "$out" || tail -1 "$out")"
    fi
  done
done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null || true
