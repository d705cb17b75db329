#!/usr/bin/env bash
# Regenerates Models/mtcnn, MTCNN's det1-det3 (Zhang et al. 2016, MIT licence) in fn2e's format, from
# the release's Caffe files: each net imported with `fn2e-compile import caffe` (a canonical
# detK.fn2e and a checksummed detK.safetensors), and the release's LICENSE beside them.
# Tests/FacesTests/ShippedNetsTests.swift checks the committed files against a fresh import.
#
#   Tools/mtcnn/regenerate.sh [MTCNN_DIR]   (default: $FN2E_DATA/caffe/mtcnn)
set -euo pipefail
cd "$(dirname "$0")/../.."
src="${1:-${FN2E_DATA:?set FN2E_DATA to the shared data folder or pass the folder of det1-det3}/caffe/mtcnn}"
compile=.build/release/fn2e-compile
[ -x "$compile" ] || swift build -c release --product fn2e-compile >&2
mkdir -p Models/mtcnn
for k in 1 2 3; do
    "$compile" import caffe "$src/det$k.prototxt" "$src/det$k.caffemodel" -o Models/mtcnn --name "det$k" >/dev/null
done
cp "$src/LICENSE" Models/mtcnn/LICENSE && chmod 644 Models/mtcnn/LICENSE
ls -l Models/mtcnn
