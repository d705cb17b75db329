#!/usr/bin/env bash
# The README's main job: the FaceNet2ExpNet recipe end to end (stage 1, stage 2 and both baselines,
# on the first FOLDS folds of a subject-independent 10-fold split, EPOCHS epochs per stage).
# On CK+48 with the MTCNN O-Net when FN2E_DATA points at them; otherwise on a stand-in the project
# generates (synthetic expression drawings and an O-Net-shaped face net with random weights).
#
# `bash Tools/main_job.sh fer2013` instead trains the photo model of the README ("Photo in, expressions
# out"): FaceNet2ExpNet on FER2013 (Graphs/fer2013.recipe: the MTCNN O-Net fine-tuned, ExpNet48's
# convolutions regress it, then all of ExpNet48; the recipe's best model so far by validation
# accuracy) on the Training rows, tested on PublicTest, then labels PHOTO if one is given.
# Environment (defaults): SUBSET (all: every Training row but the validation ones; a number for a
# stratified subset, e.g. 10000), SEED (3), METHOD (facenet2expnet; finetune for the fine-tuned
# O-Net, scratch for ExpNet48 alone), RECIPE (Graphs/fer2013.recipe), JOBS
# (1: one training with both cores), PHOTO (none), OUT (runs/main_job). Needs FN2E_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${FN2E_BIN:-.build/release}
out=${OUT:-runs/main_job}
mkdir -p "$out"
if [ "${1:-}" = fer2013 ]; then
  [ -n "${FN2E_DATA:-}" ] && [ -f "$FN2E_DATA/fer2013/index.csv" ] || { echo "main job fer2013: set FN2E_DATA to the folder that holds fer2013/index.csv"; exit 1; }
  subset=${SUBSET:-all} seed=${SEED:-3} method=${METHOD:-facenet2expnet}
  [ -f "$out/face/onet.safetensors" ] ||
    "$bin/fn2e-compile" import caffe "$FN2E_DATA/caffe/mtcnn/det3.prototxt" "$FN2E_DATA/caffe/mtcnn/det3.caffemodel" -o "$out/face" --name onet
  size=()
  [ "$subset" = all ] || size=(--train-subset "$subset")
  start=$(date +%s)
  "$bin/fn2e-run" facenet2expnet --face-net "$out/face" --recipe "${RECIPE:-Graphs/fer2013.recipe}" --data "$FN2E_DATA/fer2013/index.csv" \
    --split usage:Training/PublicTest "${size[@]}" --seeds "$seed" --methods "$method" --jobs "${JOBS:-1}" --output "$out/fer2013-$subset"
  model="$out/fer2013-$subset/7classes/seed$seed/fold0/$method"
  echo "main job fer2013: $(( $(date +%s) - start )) s; the model: $model"
  if [ -n "${PHOTO:-}" ]; then
    "$bin/fn2e-run" predict "$model" "$PHOTO" --detect --annotate "$out/photo_expressions.png"
    echo "main job fer2013: $out/photo_expressions.png"
  fi
  exit 0
fi
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
