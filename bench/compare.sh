#!/usr/bin/env bash
# kiln against PyTorch 2.9 on the reference experiments; writes bench/RESULTS.md.
# usage: KILN_DATA_DIR=../shared/data/mnist bench/compare.sh [--rounds R] [--only NAME...]
# Creates bench/.venv (PyTorch 2.9, torchvision, tensorboard) on first use: about 3 GB from
# PyPI, as pip's torch wheel carries its CUDA libraries even for CPU use.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bench/.venv/bin/python ] || ! bench/.venv/bin/python -c "import torch, torchvision, tensorboard" 2>/dev/null; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet "torch==2.9.*" "torchvision==0.24.*" tensorboard
fi
cargo build --release --quiet
exec bench/.venv/bin/python bench/compare.py "$@"
