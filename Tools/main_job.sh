#!/usr/bin/env bash
# The README's main job: the FaceNet2ExpNet recipe end to end (stage 1, stage 2 and both baselines,
# on the first FOLDS folds of a subject-independent 10-fold split, EPOCHS epochs per stage).
# On CK+48 with the MTCNN O-Net when FN2E_DATA points at them; otherwise on a stand-in the project
# generates (synthetic expression drawings and an O-Net-shaped face net with random weights).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release
out=${OUT:-runs/main_job}
mkdir -p "$out"
if [ -n "${FN2E_DATA:-}" ] && [ -f "$FN2E_DATA/ckplus48/index.csv" ] && [ -f "$FN2E_DATA/caffe/mtcnn/det3.caffemodel" ]; then
  echo "main job: CK+48 crops and the MTCNN O-Net from $FN2E_DATA"
  "$bin/fn2e-compile" import caffe "$FN2E_DATA/caffe/mtcnn/det3.prototxt" "$FN2E_DATA/caffe/mtcnn/det3.caffemodel" -o "$out/face" --name onet
  data="$FN2E_DATA/ckplus48/index.csv"
  settings=(--set epochs="${EPOCHS:-3}")
else
  if [ -n "${FN2E_DATA:-}" ]; then
    echo "main job: FN2E_DATA=$FN2E_DATA lacks ckplus48/index.csv or caffe/mtcnn/det3.caffemodel, so this runs on a stand-in."
  else
    echo "main job: FN2E_DATA is not set, so this runs on a generated stand-in (synthetic drawings, a face net"
    echo "with random weights): it shows the pipeline working, and its numbers say nothing about CK+."
  fi
  echo "main job: to run on real data, point FN2E_DATA at the folder that holds ckplus48/index.csv and"
  echo "caffe/mtcnn/det3.{prototxt,caffemodel}:  FN2E_DATA=/path/to/shared/data bash Tools/main_job.sh"
  "$bin/fn2e-run" synthesize-faces "$out/synthetic" >/dev/null
  "$bin/fn2e-compile" import make-test-model Tools/standin/onet_standin.prototxt -o "$out/face" --name onet_standin >/dev/null
  "$bin/fn2e-compile" import caffe "$out/face/onet_standin.caffemodel" -o "$out/face" --name onet
  data="$out/synthetic/index.csv"
  # Random face-net features are far larger than the O-Net's: stage 1 needs a smaller step.
  settings=(--set epochs="${EPOCHS:-20}" --set stage1.lr=0.00001)
fi
"$bin/fn2e-run" facenet2expnet --face-net "$out/face" --data "$data" --folds 10 --fold-limit "${FOLDS:-2}" \
  "${settings[@]}" --output "$out/recipe"
