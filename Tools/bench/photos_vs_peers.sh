#!/usr/bin/env bash
# Photos per second and faces found, fn2e against the `fer` package (Haar and MTCNN pipelines) and
# facenet-pytorch's MTCNN, on one folder of photos, in one run, alternating (photos_vs_peers.py
# says what is timed and how). By default the folder is composed at run time (compose_photos.py:
# 200 photos of 640x480 with 1-4 faces each, seeded; nothing of it is kept) and the fn2e run that
# classifies the faces is ExpNet48 trained on CK+48 for 3 epochs by the script.
# Usage: FN2E_DATA=../shared/data Tools/bench/photos_vs_peers.sh [--rounds 3] [--count 200]
#          [--run RUN_FOLDER] [--epochs 3] [--folder PHOTOS] [--tools fn2e-predict,fer,fer-mtcnn,fn2e-detect,facenet]
#        (the first call builds fn2e-run and Tools/bench/.venv; then about 1.5 min a round plus a minute)
# Env: FN2E_RUN=path to fn2e-run (default: the release build).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${FN2E_DATA:?set FN2E_DATA to the shared data folder}"
RUN=$(bash Tools/bench/fn2e_run.sh)
PY=$(bash Tools/bench/peers_venv.sh)/bin/python
exec python3 Tools/bench/photos_vs_peers.py --fn2e-run "$RUN" --python "$PY" "$@"
