#!/usr/bin/env bash
# The test suite under a sanitizer, in its own build folder (release: the numeric tests are slow
# unoptimised, and more so instrumented).
#
#   bash Tools/sanitize.sh address     AddressSanitizer (+ LeakSanitizer)
#   bash Tools/sanitize.sh thread      ThreadSanitizer (the data prefetch thread, parallel kernels, the recipe's job board)
#   extra arguments go to swift test, e.g. --filter TrainingTests
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:?address or thread}"
shift
case "$kind" in address|thread) ;; *) echo "address or thread" >&2; exit 64 ;; esac
export LSAN_OPTIONS="suppressions=$(pwd)/Tools/fuzz/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
export ASAN_OPTIONS="detect_leaks=1"
mpi="DataParallelTests|DistributedRecipeTests"
if [ "$kind" = address ] && [ $# -eq 0 ]; then
    # Open MPI's plugins are unloaded at MPI_Finalize with their allocations still live, and their
    # frames then have no name a suppression could match: the MPI tests run without leak
    # detection (memory errors are still caught), everything else with it.
    swift test -c release --sanitize=address --build-path ".build-address" --skip "$mpi"
    ASAN_OPTIONS="detect_leaks=0" exec swift test -c release --sanitize=address --build-path ".build-address" --filter "$mpi"
fi
exec swift test -c release --sanitize="$kind" --build-path ".build-$kind" "$@"
