#!/usr/bin/env bash
# Data-parallel scaling: the step time of an ExpNet48 training (Graphs/ckplus_scratch.train) on 1
# process and on 2 mpirun ranks at the same global batch, one thread each (FN2E_THREADS=1,
# OPENBLAS_NUM_THREADS=1), and the all-reduce's share of a 2-rank step, from the trainer's own
# "step time:" line (rank 0: forward + backward + all-reduce + update; FN2E_PROFILE=1 puts a barrier
# before the all-reduce, so the line also says how much of it was waiting for the slower rank).
# Runs alternate, REPEATS times each; the fastest of each counts.
# On CK+ when FN2E_DATA holds ckplus48/index.csv, otherwise on generated 48x48 stand-in faces.
#   bash Tools/bench/mpi_scaling.sh            # STEPS=60 BATCH=32 REPEATS=2 by default
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
steps=${STEPS:-60} batch=${BATCH:-32} repeats=${REPEATS:-2}
bin=.build/release
[ -x "$bin/fn2e-run" ] || swift build -c release
command -v mpirun >/dev/null || { echo "mpi_scaling: mpirun not found; install Open MPI (bash Tools/system_packages.sh)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -n "${FN2E_DATA:-}" ] && [ -f "$FN2E_DATA/ckplus48/index.csv" ]; then
    data="CK+48 ($FN2E_DATA/ckplus48)"
else
    "$bin/fn2e-run" synthesize-faces "$work/ckplus48" --subjects 40 --per-subject 7 >/dev/null
    export FN2E_DATA=$work
    data="stand-in: 280 generated faces (FN2E_DATA has no ckplus48)"
fi
export FN2E_THREADS=1 OPENBLAS_NUM_THREADS=1 FN2E_PROFILE=1
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
core=$("$bin/fn2e-run" infer Graphs/expnet48.fn2e --batch 1 --verbose 2>&1 >/dev/null | grep -o 'BLAS core [^,]*' || echo "BLAS core ?")

# One training; prints its "step time:" line.
train() {
    local ranks=$1 out=$work/run$1
    local cmd=("$bin/fn2e-run" train Graphs/ckplus_scratch.train --set "batch=$batch" --set "iterations=$steps"
               --set "eval_interval=$steps" --set "checkpoint_interval=$steps" --set display=100000 --set "output=$out")
    rm -rf "$out"
    if [ "$ranks" -eq 1 ]; then "${cmd[@]}" 2>"$work/log" >/dev/null; else mpirun --oversubscribe -np "$ranks" "${cmd[@]}" 2>"$work/log" >/dev/null; fi \
        || { cat "$work/log" >&2; exit 1; }
    grep '^step time:' "$work/log"
}

echo "$core; one thread per rank; ExpNet48 training (Graphs/expnet48_stage2.fn2e), global batch $batch, $steps steps; $data"
best1= best2= share=
for r in $(seq "$repeats"); do
    l1=$(train 1); l2=$(train 2)
    echo "  1 rank:  $l1"
    echo "  2 ranks: $l2"
    t1=$(awk '{print $3}' <<<"$l1"); t2=$(awk '{print $3}' <<<"$l2")
    if [ -z "$best1" ] || awk "BEGIN{exit !($t1 < $best1)}"; then best1=$t1; fi
    if [ -z "$best2" ] || awk "BEGIN{exit !($t2 < $best2)}"; then best2=$t2; share=$(grep -o 'all-reduce .*' <<<"$l2"); fi
done
awk -v a="$best1" -v b="$best2" -v n="$batch" -v s="$share" 'BEGIN {
    printf "ranks  s/step   img/s   speed-up\n"
    printf "1      %.4f  %6.1f  1.00\n", a, n / a
    printf "2      %.4f  %6.1f  %.2f   %s\n", b, n / b, a / b, s }'
