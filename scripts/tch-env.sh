# Source this before building or running kiln with the `tch` feature:
#   source scripts/tch-env.sh && cargo build --release --features tch
# It makes a virtual environment with PyTorch 2.9 from PyPI if KILN_TORCH_VENV (default .venv,
# the one .ci/run uses) lacks it, then points torch-sys at that PyTorch (LIBTORCH_USE_PYTORCH)
# and the dynamic loader at its libraries, which `runner` needs at run time too.
_kiln_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_kiln_venv=${KILN_TORCH_VENV:-$_kiln_root/.venv}
if [ ! -x "$_kiln_venv/bin/python" ] || ! "$_kiln_venv/bin/python" -c "import torch" 2>/dev/null; then
  python3 -m venv "$_kiln_venv"
  "$_kiln_venv/bin/pip" install --quiet --disable-pip-version-check "torch==2.9.*"
fi
export LIBTORCH_USE_PYTORCH=1
export PATH="$_kiln_venv/bin:$PATH"
_kiln_torch_lib=$("$_kiln_venv/bin/python" -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
export LD_LIBRARY_PATH="$_kiln_torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Guard against torch-sys's ABI check tripping over pip's PyTorch build flags.
export LIBTORCH_BYPASS_VERSION_CHECK=${LIBTORCH_BYPASS_VERSION_CHECK:-0}
unset _kiln_root _kiln_venv _kiln_torch_lib
