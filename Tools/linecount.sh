#!/usr/bin/env bash
# Lines of code per module (tinygrad's sz.py): lines that are neither blank nor only a comment,
# under Sources/<module>, the generated protobuf code left out. `--check` fails when the core (IR,
# Shapes, Autodiff, Scheduler, Runtime, Kernels) is over its budget; CI runs it before building.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

budget=6200
core=(IR Shapes Autodiff Scheduler Runtime Kernels CKernels)

count() {  # code lines of the Swift and C files under a folder
    find "$1" -type f \( -name '*.swift' -o -name '*.c' -o -name '*.h' \) ! -name '*.pb-c.*' -print0 |
        xargs -0 -r cat | grep -cvE '^[[:space:]]*($|//)' || true
}

total=0 core_total=0
printf '%-14s %6s\n' module lines
for dir in Sources/*/; do
    m=$(basename "$dir")
    n=$(count "$dir")
    total=$((total + n))
    for c in "${core[@]}"; do [ "$m" = "$c" ] && core_total=$((core_total + n)); done
    printf '%-14s %6d\n' "$m" "$n"
done
printf '%-14s %6d\n' total "$total"
printf 'core (%s): %d of a budget of %d lines\n' "${core[*]}" "$core_total" "$budget"
if [ "${1:-}" = "--check" ] && [ "$core_total" -gt "$budget" ]; then
    echo "linecount: the core has $core_total lines, over its budget of $budget: make it smaller, or raise the budget in Tools/linecount.sh and the README with a reason" >&2
    exit 1
fi
