#!/usr/bin/env bash
# Prints the fn2e-run the benchmarks time: $FN2E_RUN, else the release build (built first).
# Usage (from the checkout's root): RUN=$(bash Tools/bench/fn2e_run.sh)
set -euo pipefail
if [ -n "${FN2E_RUN:-}" ]; then echo "$FN2E_RUN"; exit 0; fi
swift build -c release --product fn2e-run >&2
echo "$(swift build -c release --show-bin-path)/fn2e-run"
