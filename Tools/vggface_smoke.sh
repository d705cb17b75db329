#!/usr/bin/env bash
# The 224x224 VGG-Face pipeline end to end on a few CK+ crops upsampled to 224: VGG-Face weights
# generated in Caffe's V1 format (a ~580 MB VGG_FACE.caffemodel stand-in, seeded random weights)
# from VGG_FACE_deploy.v1.prototxt, imported, then every stage of Graphs/vgg_face.recipe for a few
# steps on two folds. Needs FN2E_DATA and a release build; takes a few minutes and ~4 GB of memory.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FN2E_DATA:?set FN2E_DATA to the shared data folder}"
bin=.build/release
out=${OUT:-runs/vggface_smoke}
mkdir -p "$out"
if [ ! -f "$out/face/vgg_face.safetensors" ]; then
  "$bin/fn2e-compile" import make-test-model "$FN2E_DATA/caffe/vgg_face/VGG_FACE_deploy.v1.prototxt" --syntax v1 -o "$out/face" --name VGG_FACE
  ls -l "$out/face/VGG_FACE.caffemodel"
  "$bin/fn2e-compile" import caffe "$out/face/VGG_FACE.caffemodel" -o "$out/face" --name vgg_face
fi
# A few subjects' crops (every image of the 15 lowest subject ids, and of 5 subjects showing
# contempt so that all 7 classes occur), paths relative to the CK+ folder.
subjects=$( (tail -n +2 "$FN2E_DATA/ckplus48/index.csv" | cut -d, -f3 | sort -u | head -15
             grep ',contempt,' "$FN2E_DATA/ckplus48/index.csv" | cut -d, -f3 | sort -u | head -5) | sort -u | paste -sd'|')
{ head -1 "$FN2E_DATA/ckplus48/index.csv"
  grep -E ",($subjects)," "$FN2E_DATA/ckplus48/index.csv" || true
} > "$out/index.csv"
"$bin/fn2e-run" facenet2expnet --recipe Graphs/vgg_face.recipe --face-net "$out/face" --data "$out/index.csv" \
  --set root="$FN2E_DATA/ckplus48" --folds 4 --fold-limit 2 --jobs 1 --set iterations=2 --set batch=4 \
  --set mean=127.5 --set scale=0.0078125 --set stage1.lr=0.00000001 --output "$out/recipe"
# (random weights give large features: inputs are scaled down and stage 1 takes tiny steps so that
# the smoke run stays finite; it checks that every stage runs, not what it learns)
