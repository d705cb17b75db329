#!/usr/bin/env bash
# Creates (once) and prints the path of the virtual environment of the Tools/onnx scripts:
# onnx (its onnx.proto and backend test cases), onnxruntime (the oracle of exported models),
# NumPy, and PyTorch with torchvision (models exported by torch.onnx). Usage: PY=$(bash Tools/onnx/venv.sh)/bin/python
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/.venv"
if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import onnx, onnxruntime, numpy' 2>/dev/null; then
  python3 -m venv "$dir" >&2
  "$dir/bin/pip" install -q --upgrade pip >&2
  "$dir/bin/pip" install -q onnx==1.23.2 onnxruntime numpy >&2
fi
if [ "${1:-}" = torch ] && ! "$dir/bin/python" -c 'import torch, torchvision' 2>/dev/null; then
  "$dir/bin/pip" install -q torch torchvision >&2
fi
echo "$dir"
