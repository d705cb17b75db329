#!/usr/bin/env bash
# The FER2013 learning curve (issue 26): FaceNet2ExpNet, ExpNet48 from scratch and the fine-tuned
# O-Net (Graphs/fer2013.recipe), each trained on nested, stratified subsets of FER2013's Training
# rows (--train-subset: the same rows for every method and seed, because the recipe fixes
# split_seed) and tested on PublicTest; validation rows (val_fraction) come out of Training first.
#
# In the background, and resumable: every training is a run folder the recipe reuses once it has
# finished, so `start` after a stop (or a crash, or a reboot) continues where it was. After each
# size, the table in DOC and the plot PNG are rewritten from every size finished so far
# (Tools/fer2013/curve_table.py, then `fn2e-run plot --lines`).
#
# Usage: FN2E_DATA=../shared/data bash Tools/fer2013/learning_curve.sh start|run|status|stop
#   start   runs `run` in the background (its own process group), log in OUT/curve.log
#   run     the experiments in the foreground
#   status  whether it runs, and the log's last lines
#   stop    ends the background run (its process group) and the trainings it started
# Environment (defaults): SIZES="500 1000 3000 10000" (a size `all`: every Training row but the
#   validation ones), SEEDS=1,2,3, METHODS=facenet2expnet,scratch,finetune, JOBS=2,
#   OUT=runs/fer2013-curve, DOC=docs/fer2013-learning-curve.md, PNG=docs/img/fer2013-learning-curve.png
#   (accuracy against size per method, `fn2e-run plot --lines`), EXTRA (more facenet2expnet flags,
#   e.g. EXTRA="--set all.iterations=3" for a quick check of the plumbing), RECIPE=Graphs/fer2013.recipe
#   (or a variant: RECIPE=Graphs/fer2013_vgg48.recipe SIZES=all METHODS=facenet2expnet,scratch is the
#   big student's full-set table; give it its own OUT, DOC and PNG).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${FN2E_DATA:?set FN2E_DATA to the shared data folder (../shared/data)}"
SIZES=${SIZES:-"500 1000 3000 10000"}
SEEDS=${SEEDS:-1,2,3}
METHODS=${METHODS:-facenet2expnet,scratch,finetune}
JOBS=${JOBS:-2}
OUT=${OUT:-runs/fer2013-curve}
DOC=${DOC:-docs/fer2013-learning-curve.md}
PNG=${PNG:-docs/img/fer2013-learning-curve.png}
EXTRA=${EXTRA:-}
RECIPE=${RECIPE:-Graphs/fer2013.recipe}
BIN=${FN2E_BIN:-.build/release}
mkdir -p "$OUT"

case "${1:-}" in
start)
  if [[ -f "$OUT/curve.pid" ]] && kill -0 "$(cat "$OUT/curve.pid")" 2>/dev/null; then
    echo "already running (pid $(cat "$OUT/curve.pid")); log: $OUT/curve.log"; exit 0
  fi
  SIZES="$SIZES" SEEDS="$SEEDS" METHODS="$METHODS" JOBS="$JOBS" OUT="$OUT" DOC="$DOC" PNG="$PNG" EXTRA="$EXTRA" RECIPE="$RECIPE" \
    setsid nohup bash "$0" run >> "$OUT/curve.log" 2>&1 < /dev/null &
  echo $! > "$OUT/curve.pid"
  echo "started (pid $!); log: $OUT/curve.log; table: $DOC"
  ;;
status)
  if [[ -f "$OUT/curve.pid" ]] && kill -0 "$(cat "$OUT/curve.pid")" 2>/dev/null; then echo "running (pid $(cat "$OUT/curve.pid"))"; else echo "not running"; fi
  tail -n 5 "$OUT/curve.log" 2>/dev/null || true
  ;;
stop)
  # The background run leads its own process group (setsid); each training the recipe starts is a
  # child of the recipe in a group of its own: it gets SIGINT (it writes its checkpoint and exits;
  # it would get it from the recipe's end anyway, being tied to it), then the group ends. A training
  # stopped before it finished resumes from its checkpoint on the next start.
  if [[ -f "$OUT/curve.pid" ]] && kill -0 "$(cat "$OUT/curve.pid")" 2>/dev/null; then
    group=$(cat "$OUT/curve.pid")
    for p in $(pgrep -g "$group"); do
      for c in $(pgrep -P "$p"); do kill -INT "$c" 2>/dev/null || true; done
    done
    kill -TERM -- "-$group" && echo "stopped"
  else
    echo "not running"
  fi
  rm -f "$OUT/curve.pid"
  ;;
run)
  [[ -x "$BIN/fn2e-run" && -x "$BIN/fn2e-compile" ]] || { echo "build first: swift build -c release (or set FN2E_BIN)"; exit 1; }
  echo "$(date -u +%FT%TZ) learning curve: $RECIPE, sizes $SIZES, seeds $SEEDS, methods $METHODS, $JOBS jobs, into $OUT"
  if [[ ! -f "$OUT/face-onet/onet.safetensors" ]]; then
    "$BIN/fn2e-compile" import caffe "$FN2E_DATA/caffe/mtcnn/det3.prototxt" "$FN2E_DATA/caffe/mtcnn/det3.caffemodel" -o "$OUT/face-onet" --name onet
  fi
  for n in $SIZES; do
    subset=()
    [[ "$n" != all ]] && subset=(--train-subset "$n")
    echo "$(date -u +%FT%TZ) size $n"
    start=$(date +%s)
    # shellcheck disable=SC2086  # EXTRA is a list of flags
    "$BIN/fn2e-run" facenet2expnet --face-net "$OUT/face-onet" --recipe "$RECIPE" \
      --data "$FN2E_DATA/fer2013/index.csv" --split usage:Training/PublicTest "${subset[@]}" \
      --seeds "$SEEDS" --methods "$METHODS" --jobs "$JOBS" --output "$OUT/n$n" \
      --set "frozen_store=$OUT/frozen-store" $EXTRA > "$OUT/n$n.txt"
    echo "$(date -u +%FT%TZ) size $n done in $(( $(date +%s) - start )) s"
    RECIPE="$RECIPE" python3 Tools/fer2013/curve_table.py "$OUT" "$DOC" "fn2e-run facenet2expnet --recipe $RECIPE ... --split usage:Training/PublicTest --train-subset N --seeds $SEEDS --methods $METHODS $EXTRA"
    # The plot's x is log10 of the size: `all` alone gives it no row (the table has it).
    if [[ $(wc -l < "$OUT/curve.csv") -gt 1 ]]; then
      "$BIN/fn2e-run" plot --lines "$OUT/curve.csv" --output "$PNG" --title "FER2013 PublicTest, mean and range over seeds $SEEDS" \
        --x-label "log10(training images)" --y-label "accuracy %"
    fi
  done
  echo "$(date -u +%FT%TZ) learning curve finished"
  ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 64
  ;;
esac
