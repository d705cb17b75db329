#!/usr/bin/env bash
# Creates (once) and prints the path of the virtual environment the Tools/ scripts share:
# PyTorch (CPU work only), NumPy, safetensors. Usage: PY=$(bash Tools/venv.sh)/bin/python
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/.venv"
if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import torch, numpy, safetensors' 2>/dev/null; then
  python3 -m venv "$dir" >&2
  "$dir/bin/pip" install -q --upgrade pip >&2
  "$dir/bin/pip" install -q torch numpy safetensors >&2
fi
echo "$dir"
