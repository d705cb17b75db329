#!/usr/bin/env bash
# Prints the path of the environment of pytorch_models.py and opencv_check.py: the photo
# benchmark's peers (Tools/bench/peers_venv.sh: torch, torchvision, facenet-pytorch, OpenCV 4.12)
# with onnx 1.23.2 added, which torch.onnx's exporter needs to write a model, and onnxscript 0.7.2,
# which its default (dynamo) exporter needs.
# Usage: PY=$(bash Tools/onnx/torch_venv.sh)/bin/python
set -euo pipefail
dir="$(bash "$(cd "$(dirname "$0")/.." && pwd)/bench/peers_venv.sh")"
if ! "$dir/bin/python" -c 'import onnx, onnxscript' 2>/dev/null; then
  "$dir/bin/python" -m pip install -q onnx==1.23.2 onnxscript==0.7.2 >&2
fi
echo "$dir"
