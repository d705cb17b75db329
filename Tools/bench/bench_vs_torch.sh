#!/usr/bin/env bash
# fn2e against PyTorch (2 threads) on the same float32 work, in one invocation, alternating the two:
#   stage1: ExpNet stage-1 training step (trunk, Euclidean loss vs a fixed 512x7x7 target), batch 32
#   stage2: ExpNet stage-2 training step (trunk + fc6 + dropout + fc7, cross-entropy), batch 32
#   vgg:    VGG-Face forward, batch 8
#   expnet48: ExpNet48's training step at 48x48 (Graphs/expnet48_stage2.fn2e, K=7), batch 128
#   GRAPH.fn2e[:SIZE=N,...]: the training step of any graph file that returns %loss (the larger
#           48x48 student, a new net), at batch $BATCH48 after $WARMUP48 warm-up steps
# The graph workloads' PyTorch network is built from the same file (bench_torch.py graph, which reads
# it with fn2e_torch.py); both sides print their parameter count, and counts that differ fail the run.
# Every measurement is its own process (so peak RSS is per workload). Each round runs fn2e, PyTorch
# NCHW and PyTorch channels_last once each; the median step time over all rounds counts. Then one
# profiled fn2e run per workload (FN2E_PROFILE=1: time, GFLOP/s and % of the sgemm peak per kernel).
#
# The OpenBLAS core: fn2e picks one from the CPU flags when OPENBLAS_CORETYPE is unset. When the
# environment pins a different core, everything is measured twice, under the pinned core and under
# fn2e's own (this script unsets the variable for that pass; tests and CI never touch it).
# Usage: Tools/bench/bench_vs_torch.sh [ROUNDS] [STEPS]   (defaults 2 and 2; about 8 minutes a pass)
#        WORKLOADS=expnet48 Tools/bench/bench_vs_torch.sh 3 10   (the 48x48 step as issue 28 measures it)
# Env: WORKLOADS="stage1 stage2 vgg", BATCH48=128, WARMUP48=3, FN2E_RUN=path to fn2e-run (default: release build),
#      BEFORE=path to another fn2e-run (an earlier commit's build): timed in the same rounds, right after
#      fn2e, and compared step for step (a before/after table; "no step slower than before").
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
steps=${2:-2}
workloads=${WORKLOADS:-"stage1 stage2 vgg"}
batch48=${BATCH48:-128}
warmup48=${WARMUP48:-3}
graph_of() {  # workload -> GRAPH.fn2e[:SIZE=N,...] when it is a graph workload, else nothing
  case $1 in
    expnet48) echo "Graphs/expnet48_stage2.fn2e:K=7" ;;
    *.fn2e|*.fn2e:*) echo "$1" ;;
  esac
}
graph_args() {  # GRAPH.fn2e[:SIZE=N,...] -> the graph file and its --bind options
  local binds=()
  printf '%s' "${1%%:*}"
  [ "${1%%:*}" != "$1" ] && IFS=, read -ra binds <<< "${1#*:}"
  [ ${#binds[@]} -eq 0 ] || printf ' --bind %s' "${binds[@]}"
  echo
}
for w in $workloads; do  # every workload known, every graph file there, before anything is timed
  g=$(graph_of "$w")
  case $w in stage1|stage2|vgg) ;; *) [ -n "$g" ] && [ -f "${g%%:*}" ] || { echo "bench_vs_torch.sh: unknown workload or missing graph file: $w" >&2; exit 2; } ;; esac
done
PY=$(bash Tools/venv.sh)/bin/python   # Tools/.venv, created once and reused
RUN=$(bash Tools/bench/fn2e_run.sh)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

key() { echo "$1" | tr -c 'A-Za-z0-9_\n' _; }  # a workload as a file name
fn2e() {  # workload -> JSON line
  local g; g=$(graph_of "$1")
  if [ -n "$g" ]; then
    # shellcheck disable=SC2046
    "$RUN" bench-train $(graph_args "$g") --batch "$batch48" --steps "$steps" --warmup "$warmup48"
    return
  fi
  case $1 in
    stage1) "$RUN" bench-train Tools/bench/expnet_stage1_trunk.fn2e --batch 32 --steps "$steps" --lr 1e-6 ;;
    stage2) "$RUN" bench-train Graphs/expnet_stage2.fn2e --batch 32 --steps "$steps" ;;
    vgg)    "$RUN" bench-train Graphs/vgg_face.fn2e --forward --batch 8 --steps $((steps + 1)) ;;
  esac
}
torch_run() {  # workload layout -> JSON line
  local g; g=$(graph_of "$1")
  if [ -n "$g" ]; then
    # shellcheck disable=SC2046
    "$PY" Tools/bench/bench_torch.py graph --graph $(graph_args "$g") --layout "$2" --batch "$batch48" --steps "$steps" --warmup "$warmup48"
    return
  fi
  local batch=32; [ "$1" = vgg ] && batch=8
  local s=$steps; [ "$1" = vgg ] && s=$((steps + 1))
  "$PY" Tools/bench/bench_torch.py "$1" --layout "$2" --batch $batch --steps $s
}
peak() { "$RUN" bench-train Graphs/vgg_face.fn2e --forward --batch 1 --steps 1 --warmup 0 --peak 2>/dev/null; }

echo "# Tools/bench/bench_vs_torch.sh $rounds $steps, $(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs"
own=$(env -u OPENBLAS_CORETYPE "$RUN" bench-train Graphs/vgg_face.fn2e --forward --batch 1 --steps 1 --warmup 0 2>/dev/null \
      | "$PY" -c 'import json,sys; print(json.loads(sys.stdin.read())["core"])')
passes=("${OPENBLAS_CORETYPE:-}")
if [ -n "${OPENBLAS_CORETYPE:-}" ] && [ "$OPENBLAS_CORETYPE" != "$own" ]; then
  echo "# the environment pins OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE; fn2e's own choice is $own: both are measured"
  passes+=("")
fi

for core in "${passes[@]}"; do
  if [ -n "$core" ]; then export OPENBLAS_CORETYPE="$core"; else unset OPENBLAS_CORETYPE; fi
  echo
  echo "## OpenBLAS core: ${core:-chosen by fn2e ($own)}"
  echo "measuring the sgemm peak (fn2e, BLAS.measurePeakGFLOPS)..." >&2
  peak > "$out/peak.json"
  for w in $workloads; do
    k=$(key "$w")
    rm -f "$out/$k.fn2e" "$out/$k.nchw" "$out/$k.cl" "$out/$k.before" "$out/$k.nobefore"
    for r in $(seq "$rounds"); do
      echo "[$w round $r] fn2e" >&2;            fn2e "$w" 2>/dev/null >> "$out/$k.fn2e"
      if [ -n "${BEFORE:-}" ] && [ ! -f "$out/$k.nobefore" ]; then  # an older build may not know a newer graph's ops
        echo "[$w round $r] fn2e before ($BEFORE)" >&2
        RUN=$BEFORE fn2e "$w" 2>/dev/null >> "$out/$k.before" || { echo "  the BEFORE build cannot run $w: not compared" >&2; rm -f "$out/$k.before"; touch "$out/$k.nobefore"; }
      fi
      echo "[$w round $r] torch nchw" >&2;      torch_run "$w" nchw >> "$out/$k.nchw"
      echo "[$w round $r] torch channels_last" >&2; torch_run "$w" cl >> "$out/$k.cl"
    done
  done
  peak > "$out/peak2.json"

  # shellcheck disable=SC2046
  "$PY" - "$out" $(for w in $workloads; do echo "$(key "$w")=$w"; done) <<'PYEOF'
import json, statistics, sys
out, workloads = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
def load(path):
    return [json.loads(l) for l in open(path) if l.strip().startswith("{")]
peaks = [load(f"{out}/{p}")[0] for p in ("peak.json", "peak2.json")]
peak = max(p["peak_gflops"] for p in peaks)
core, threads = peaks[0]["core"], peaks[0]["threads"]
torch_version = None
names = {"stage1": "ExpNet stage-1 step, b32", "stage2": "ExpNet stage-2 step, b32", "vgg": "VGG-Face forward, b8"}
print(f"BLAS core {core}, {threads} OpenBLAS threads; sgemm peak {peak:.1f} GFLOP/s (1024^3, best of the pass's two measurements)")
print()
print("| workload | fn2e img/s | torch NCHW | torch CL | fn2e/NCHW | fn2e/CL | fn2e GF/s | % peak | RSS fn2e | RSS NCHW | RSS CL | RSS fn2e/NCHW | RSS fn2e/CL |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
mismatched = []
for k, w in workloads:
    f, n, c = load(f"{out}/{k}.fn2e"), load(f"{out}/{k}.nchw"), load(f"{out}/{k}.cl")
    if f[0].get("parameters") != n[0].get("parameters"):
        mismatched.append(f"{w}: fn2e {f[0].get('parameters')} parameters, PyTorch {n[0].get('parameters')}")
    torch_version = n[0]["torch"]
    med = lambda runs: statistics.median(t for r in runs for t in r["times"])
    batch = f[0]["batch"]
    tf, tn, tc = med(f), med(n), med(c)
    gf = f[0]["flops"] / tf / 1e9
    rss = lambda runs: max(r["peak_rss"] for r in runs) / 2**20
    name = names.get(w, f"{w} step, b{batch}")
    print(f"| {name} | {batch/tf:.2f} | {batch/tn:.2f} | {batch/tc:.2f} | {tn/tf:.2f} | {tc/tf:.2f} | {gf:.1f} | {100*gf/peak:.0f}% "
          f"| {rss(f):.0f}M | {rss(n):.0f}M | {rss(c):.0f}M | {rss(f)/rss(n):.2f} | {rss(f)/rss(c):.2f} |")
print()
print(f"PyTorch {torch_version}, torch.set_num_threads(2). Ratios >1: fn2e faster; RSS ratios <1: fn2e smaller.")
print("GF/s counts the direct-convolution FLOPs of the fn2e schedule (2 per multiply-add) whatever the algorithm,")
print("so Winograd layers can exceed the sgemm peak; median step time over all passes.")
import os
befores = [(k, w) for k, w in workloads if os.path.exists(f"{out}/{k}.before")]
if befores:
    print()
    print("| workload | fn2e img/s | fn2e before img/s | after/before | RSS after | RSS before |")
    print("|---|---|---|---|---|---|")
    for k, w in befores:
        f, b = load(f"{out}/{k}.fn2e"), load(f"{out}/{k}.before")
        tf = statistics.median(t for r in f for t in r["times"])
        tb = statistics.median(t for r in b for t in r["times"])
        rss = lambda runs: max(r["peak_rss"] for r in runs) / 2**20
        print(f"| {names.get(w, w)} | {f[0]['batch']/tf:.2f} | {b[0]['batch']/tb:.2f} | {tb/tf:.2f} | {rss(f):.0f}M | {rss(b):.0f}M |")
    print()
    print("after/before > 1: the current build is faster (median step times of the same rounds).")
if mismatched:
    sys.exit("the two sides did not build the same network (parameter counts differ), so the rows above compare nothing:\n" + "\n".join(mismatched))
PYEOF

  echo
  echo "### fn2e profile (FN2E_PROFILE=1, one timed step after one warm-up, graph workloads three after $warmup48; kernel kinds, slowest first)"
  for w in $workloads; do
    echo
    echo "$w:"
    echo '```'
    case $w in
      stage1) FN2E_PROFILE=1 "$RUN" bench-train Tools/bench/expnet_stage1_trunk.fn2e --batch 32 --steps 1 --lr 1e-6 2>&1 >/dev/null ;;
      stage2) FN2E_PROFILE=1 "$RUN" bench-train Graphs/expnet_stage2.fn2e --batch 32 --steps 1 2>&1 >/dev/null ;;
      vgg)    FN2E_PROFILE=1 "$RUN" bench-train Graphs/vgg_face.fn2e --forward --batch 8 --steps 1 2>&1 >/dev/null ;;
      # shellcheck disable=SC2046
      *) FN2E_PROFILE=1 "$RUN" bench-train $(graph_args "$(graph_of "$w")") --batch "$batch48" --steps 3 --warmup "$warmup48" 2>&1 >/dev/null ;;
    esac | grep -v '^step ' | grep -v '^  #' || true
    echo '```'
  done
done
