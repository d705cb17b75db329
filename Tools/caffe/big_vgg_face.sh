#!/usr/bin/env bash
# Opt-in check (FN2E_BIG_TESTS=1): a full-size V1 VGG-Face (~580 MB, seeded random weights) is
# generated into /tmp (never committed), then imported; reports wall time and peak RSS of the
# import and fails when the peak exceeds twice the caffemodel's size.
# Usage: FN2E_BIG_TESTS=1 FN2E_DATA=../shared/data Tools/caffe/big_vgg_face.sh
set -euo pipefail
if [[ "${FN2E_BIG_TESTS:-}" != "1" ]]; then echo "skipped: set FN2E_BIG_TESTS=1 to run the 580 MB VGG-Face import check"; exit 0; fi
: "${FN2E_DATA:?set FN2E_DATA to the shared data folder (e.g. ../shared/data)}"
cd "$(dirname "$0")/../.."
swift build -c release --product fn2e-compile >/dev/null
BIN=.build/release/fn2e-compile
DIR=${TMPDIR:-/tmp}/fn2e-big-vgg-face
mkdir -p "$DIR"
if [[ ! -f "$DIR/vgg_face.v1.caffemodel" ]]; then
  echo "generating $DIR/vgg_face.v1.caffemodel ..."
  "$BIN" import make-test-model "$FN2E_DATA/caffe/vgg_face/VGG_FACE_deploy.v1.prototxt" --syntax v1 --seed 1 -o "$DIR" --name vgg_face.v1
fi
SIZE=$(stat -c %s "$DIR/vgg_face.v1.caffemodel")
rm -rf "$DIR/out"
/usr/bin/time -v "$BIN" import caffe "$FN2E_DATA/caffe/vgg_face/VGG_FACE_deploy.v1.prototxt" "$DIR/vgg_face.v1.caffemodel" \
  -o "$DIR/out" --name vgg_face 2> "$DIR/time.txt" || { cat "$DIR/time.txt"; exit 1; }
PEAK_KB=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$DIR/time.txt")
WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$DIR/time.txt")
PEAK=$((PEAK_KB * 1024))
echo "caffemodel: $SIZE bytes; import wall time: $WALL; peak RSS: $PEAK bytes ($(awk "BEGIN{printf \"%.2f\", $PEAK/$SIZE}")x the file)"
ls -l "$DIR/out"
if (( PEAK >= 2 * SIZE )); then echo "FAIL: peak RSS is not under 2x the file size"; exit 1; fi
echo "PASS"
