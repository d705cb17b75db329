#!/usr/bin/env bash
# fn2e against PyTorch (2 threads) on the same float32 work, in one invocation, alternating the two:
#   stage1: ExpNet stage-1 training step (trunk, Euclidean loss vs a fixed 512x7x7 target), batch 32
#   stage2: ExpNet stage-2 training step (trunk + fc6 + dropout + fc7, cross-entropy), batch 32
#   vgg:    VGG-Face forward, batch 8
# Every measurement is its own process (so peak RSS is per workload). Each round runs fn2e, PyTorch
# NCHW and PyTorch channels_last once each; the median step time over all rounds counts. Then one
# profiled fn2e run per workload (FN2E_PROFILE=1: time, GFLOP/s and % of the sgemm peak per kernel).
#
# The OpenBLAS core: fn2e picks one from the CPU flags when OPENBLAS_CORETYPE is unset. When the
# environment pins a different core, everything is measured twice, under the pinned core and under
# fn2e's own (this script unsets the variable for that pass; tests and CI never touch it).
# Usage: Tools/bench/bench_vs_torch.sh [ROUNDS] [STEPS]   (defaults 2 and 2; about 8 minutes a pass)
# Env: WORKLOADS="stage1 stage2 vgg", FN2E_RUN=path to fn2e-run (default: release build).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
steps=${2:-2}
workloads=${WORKLOADS:-"stage1 stage2 vgg"}
PY=$(bash Tools/venv.sh)/bin/python   # Tools/.venv, created once and reused
RUN=$(bash Tools/bench/fn2e_run.sh)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

fn2e() {  # workload -> JSON line
  case $1 in
    stage1) "$RUN" bench-train Tools/bench/expnet_stage1_trunk.fn2e --batch 32 --steps "$steps" --lr 1e-6 ;;
    stage2) "$RUN" bench-train Graphs/expnet_stage2.fn2e --batch 32 --steps "$steps" ;;
    vgg)    "$RUN" bench-train Graphs/vgg_face.fn2e --forward --batch 8 --steps $((steps + 1)) ;;
  esac
}
torch_run() {  # workload layout -> JSON line
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
    rm -f "$out/$w.fn2e" "$out/$w.nchw" "$out/$w.cl"
    for r in $(seq "$rounds"); do
      echo "[$w round $r] fn2e" >&2;            fn2e "$w" 2>/dev/null >> "$out/$w.fn2e"
      echo "[$w round $r] torch nchw" >&2;      torch_run "$w" nchw >> "$out/$w.nchw"
      echo "[$w round $r] torch channels_last" >&2; torch_run "$w" cl >> "$out/$w.cl"
    done
  done
  peak > "$out/peak2.json"

  "$PY" - "$out" $workloads <<'PYEOF'
import json, statistics, sys
out, workloads = sys.argv[1], sys.argv[2:]
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
for w in workloads:
    f, n, c = load(f"{out}/{w}.fn2e"), load(f"{out}/{w}.nchw"), load(f"{out}/{w}.cl")
    torch_version = n[0]["torch"]
    med = lambda runs: statistics.median(t for r in runs for t in r["times"])
    batch = f[0]["batch"]
    tf, tn, tc = med(f), med(n), med(c)
    gf = f[0]["flops"] / tf / 1e9
    rss = lambda runs: max(r["peak_rss"] for r in runs) / 2**20
    print(f"| {names[w]} | {batch/tf:.2f} | {batch/tn:.2f} | {batch/tc:.2f} | {tn/tf:.2f} | {tc/tf:.2f} | {gf:.1f} | {100*gf/peak:.0f}% "
          f"| {rss(f):.0f}M | {rss(n):.0f}M | {rss(c):.0f}M | {rss(f)/rss(n):.2f} | {rss(f)/rss(c):.2f} |")
print()
print(f"PyTorch {torch_version}, torch.set_num_threads(2). Ratios >1: fn2e faster; RSS ratios <1: fn2e smaller.")
print("GF/s counts the direct-convolution FLOPs of the fn2e schedule (2 per multiply-add) whatever the algorithm,")
print("so Winograd layers can exceed the sgemm peak; median step time over all passes.")
PYEOF

  echo
  echo "### fn2e profile (FN2E_PROFILE=1, one timed step after one warm-up; kernel kinds, slowest first)"
  for w in $workloads; do
    echo
    echo "$w:"
    echo '```'
    case $w in
      stage1) FN2E_PROFILE=1 "$RUN" bench-train Tools/bench/expnet_stage1_trunk.fn2e --batch 32 --steps 1 --lr 1e-6 2>&1 >/dev/null ;;
      stage2) FN2E_PROFILE=1 "$RUN" bench-train Graphs/expnet_stage2.fn2e --batch 32 --steps 1 2>&1 >/dev/null ;;
      vgg)    FN2E_PROFILE=1 "$RUN" bench-train Graphs/vgg_face.fn2e --forward --batch 8 --steps 1 2>&1 >/dev/null ;;
    esac | grep -v '^step ' | grep -v '^  #' || true
    echo '```'
  done
done
