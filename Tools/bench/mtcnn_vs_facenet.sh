#!/usr/bin/env bash
# MTCNN face detection, fn2e (`fn2e-run detect --time`) against facenet-pytorch's MTCNN (PyTorch on
# the CPU), on the same 2 cores (taskset -c 0,1), 2 threads each, in one invocation, alternating the
# two. Photos: the parity fixture's 640x480 collage (made from the release's sample photos) and
# test1.jpg (450x344). Each round times every photo RUNS times after one warm-up detection; the
# median of the rounds' medians counts. Prints each measurement, then one line per photo with the
# ratio (facenet-pytorch seconds / fn2e seconds: above 1 means fn2e is faster) and fn2e's BLAS core.
# Photos and folders given after ROUNDS and RUNS replace the two photos; a folder (such as the one
# Tools/bench/compose_photos.py writes) is summed: photos/s (sum of the per-photo medians) and faces
# found by each.
# Usage: FN2E_DATA=../shared/data Tools/bench/mtcnn_vs_facenet.sh [ROUNDS] [RUNS] [PHOTO|FOLDER...]
#        (defaults 3, 10 and the collage + test1.jpg; 200 photos of 640x480 at RUNS=3: about 2 min a round)
# Env: FN2E_RUN=path to fn2e-run (default: the release build).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${FN2E_DATA:?set FN2E_DATA to the shared data folder}"
rounds=${1:-3}
runs=${2:-10}
shift $(($# < 2 ? $# : 2))
RUN=$(bash Tools/bench/fn2e_run.sh)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pin=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then pin="taskset -c 0,1"; fi
export OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2
python3 Tools/mtcnn/bench_facenet.py --write-collage "$out" >/dev/null
photos=("$out/collage640.png" "$FN2E_DATA/caffe/mtcnn/test1.jpg")
[ $# -gt 0 ] && photos=("$@")
for r in $(seq "$rounds"); do
  $pin "$RUN" detect "${photos[@]}" --time "$runs" | sed 's/^/fn2e /' | tee -a "$out/all.txt"
  $pin python3 Tools/mtcnn/bench_facenet.py --runs "$runs" "${photos[@]}" | sed 's/^/torch /' | tee -a "$out/all.txt"
done
python3 - "$out/all.txt" "${photos[@]}" <<'PY'
import json, statistics, sys, os
folders = [os.path.normpath(a) for a in sys.argv[2:] if os.path.isdir(a)]
rows, faces = {}, {}
core = "?"
for line in open(sys.argv[1]):
    side, rec = line.split(" ", 1)
    r = json.loads(rec)
    key = (r["photo"], f'{r["width"]}x{r["height"]}')
    rows.setdefault(key, {}).setdefault(side, []).append(r["seconds"])
    faces.setdefault(key, {})[side] = r["faces"]
    if side == "fn2e": core = r["core"]
groups = {}
for (photo, size), t in rows.items():
    folder = os.path.normpath(os.path.dirname(photo))
    if folder in folders:
        g = groups.setdefault(folder, {"n": 0, "fn2e": 0.0, "torch": 0.0, "faces fn2e": 0, "faces torch": 0})
        g["n"] += 1
        for side in ("fn2e", "torch"):
            g[side] += statistics.median(t[side])
            g["faces " + side] += faces[(photo, size)][side]
        continue
    f, p = statistics.median(t["fn2e"]), statistics.median(t["torch"])
    print(f"{os.path.basename(photo)} ({size}): fn2e {f * 1000:.1f} ms, facenet-pytorch {p * 1000:.1f} ms, ratio {p / f:.2f} (BLAS core {core}, 2 threads)")
for folder, g in groups.items():
    print(f"{folder} ({g['n']} photos): fn2e {g['n'] / g['fn2e']:.2f} photos/s ({g['faces fn2e']} faces), "
          f"facenet-pytorch {g['n'] / g['torch']:.2f} photos/s ({g['faces torch']} faces), ratio {g['torch'] / g['fn2e']:.2f} "
          f"(sum of per-photo medians, decoding excluded; BLAS core {core}, 2 threads)")
PY
