#!/usr/bin/env bash
# Creates (once) and prints the path of the virtual environment of the Tools/onnx scripts:
# onnx 1.23.2 (its onnx.proto and backend node test cases), onnxruntime (the oracle of exported
# models) and NumPy. Usage: PY=$(bash Tools/onnx/venv.sh)/bin/python
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/.venv"
if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import onnx, onnxruntime, numpy' 2>/dev/null; then
  python3 -m venv "$dir" >&2
  "$dir/bin/pip" install -q --upgrade pip >&2
  "$dir/bin/pip" install -q onnx==1.23.2 onnxruntime numpy >&2
fi
echo "$dir"
