#!/usr/bin/env bash
# How far each data set's models carry to the other (issue 26): FER2013 models and CK+ models, each
# evaluated with `fn2e-run eval RUN --data INDEX` on the other data set's labelled images, classes
# matched through the alias table (angry = anger, sad = sadness; a class on one side only is reported
# and left out of the accuracy), beside each model's own test result.
#
#   FER2013 models (FER_RUNS): on FER2013 PublicTest (`--where usage=PublicTest`; equalized as the run's
#     settings say, so this must repeat the run's own test number) and on all of CK+48 (7 labels; the
#     FER2013 models have no contempt, so 927 images of 6 classes are scored; CK+'s crops are not
#     equalized, and the run equalizes them as it does every image).
#   CK+ models (trained here unless finished in CK_OUT, niced): the O-Net recipe's fine-tuned O-Net and
#     ExpNet48 from scratch, one seed, 6 classes, trained on folds 1-9 of its 10-fold subject split:
#     their own number is the held-out fold 0 (from metrics.jsonl); on FER2013 PublicTest (whose
#     neutral faces the 6-class models lack) as the images come, since CK+ models do not equalize.
#
# Writes OUT/<name>/<data>/{eval.txt,eval.json,confusion.png}, the table OUT/cross.md (printed too;
# Tools/fer2013/cross_table.py) and the commands run, OUT/commands.txt.
#
# Usage: FN2E_DATA=../shared/data bash Tools/fer2013/cross_dataset.sh
# Environment (defaults):
#   FER_RUNS    FER2013 run folders, space separated (default: every finished seedN/fold0/METHOD of
#               $FER_CURVE/n1000/7classes: a run folder with model.safetensors that no process is
#               training now)
#   FER_CURVE   runs/fer2013-curve (Tools/fer2013/learning_curve.sh's OUT)
#   CK_OUT      runs/ckplus-cross (the CK+ recipe's output folder; finished runs are reused)
#   CK_METHODS  finetune,scratch
#   OUT         runs/cross-dataset
#   FN2E_BIN    .build/release
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${FN2E_DATA:?set FN2E_DATA to the shared data folder (../shared/data)}"
BIN=${FN2E_BIN:-.build/release}
FER_CURVE=${FER_CURVE:-runs/fer2013-curve}
CK_OUT=${CK_OUT:-runs/ckplus-cross}
CK_METHODS=${CK_METHODS:-finetune,scratch}
OUT=${OUT:-runs/cross-dataset}
FER_INDEX=$FN2E_DATA/fer2013/index.csv
CK_INDEX=$FN2E_DATA/ckplus48/index.csv
[[ -x "$BIN/fn2e-run" && -x "$BIN/fn2e-compile" ]] || { echo "build first: swift build -c release (or set FN2E_BIN)" >&2; exit 1; }
mkdir -p "$OUT"
: > "$OUT/commands.txt"
: > "$OUT/runs.tsv"
run() {  # logs the command, then runs it niced
  echo "$*" >> "$OUT/commands.txt"
  nice -n 19 "$@"
}

if [[ -z "${FER_RUNS:-}" ]]; then
  FER_RUNS=$(find "$FER_CURVE/n1000/7classes" -mindepth 3 -maxdepth 3 -path '*/fold0/*' -type d 2>/dev/null | sort |
             while read -r d; do
               # Finished (a model) and not being trained again now (its run.lock free).
               [[ -f "$d/model.safetensors" && "$(basename "$d")" != stage1 ]] || continue
               [[ ! -e "$d/run.lock" ]] || flock -n "$d/run.lock" true || continue
               echo "$d"
             done || true)
fi
[[ -n "$FER_RUNS" ]] || { echo "no finished FER2013 run: set FER_RUNS or FER_CURVE" >&2; exit 1; }

# The CK+ models: one seed, fold 0 of 10 held out (subject-independent), 6 classes.
if [[ ! -f "$CK_OUT/face/onet.safetensors" ]]; then
  run "$BIN/fn2e-compile" import caffe "$FN2E_DATA/caffe/mtcnn/det3.prototxt" "$FN2E_DATA/caffe/mtcnn/det3.caffemodel" -o "$CK_OUT/face" --name onet
fi
start=$(date +%s)
run "$BIN/fn2e-run" facenet2expnet --face-net "$CK_OUT/face" --data "$CK_INDEX" --folds 10 --fold-limit 1 --seeds 1 \
  --classes anger,disgust,fear,happy,sadness,surprise --methods "$CK_METHODS" --jobs 2 --output "$CK_OUT" > "$OUT/ckplus-recipe.txt"
echo "CK+ recipe: $(( $(date +%s) - start )) s (finished runs reused); its table: $OUT/ckplus-recipe.txt" >&2

name() { echo "$1" | awk -F/ '{ print $(NF-4) "-" $(NF-3) "-" $(NF-2) "-" $NF }'; }  # n1000-7classes-seed1-finetune
for r in $FER_RUNS; do
  n="fer2013-$(name "$r")"
  printf '%s\t%s\t%s\n' "$n" "$r" fer2013 >> "$OUT/runs.tsv"
  run "$BIN/fn2e-run" eval "$r" --data "$FER_INDEX" --where usage=PublicTest --output "$OUT/$n/fer2013-publictest" > /dev/null
  run "$BIN/fn2e-run" eval "$r" --data "$CK_INDEX" --output "$OUT/$n/ckplus48" > /dev/null
done
IFS=, read -r -a methods <<< "$CK_METHODS"
for m in "${methods[@]}"; do
  r="$CK_OUT/6classes/seed1/fold0/$m"
  n="ckplus48-$(name "$r")"
  printf '%s\t%s\t%s\n' "$n" "$r" ckplus48 >> "$OUT/runs.tsv"
  run "$BIN/fn2e-run" eval "$r" --data "$FER_INDEX" --where usage=PublicTest --output "$OUT/$n/fer2013-publictest" > /dev/null
done
python3 Tools/fer2013/cross_table.py "$OUT" | tee "$OUT/cross.md"
