#!/usr/bin/env bash
# Coverage-guided fuzzing of one of fn2e's readers with libFuzzer (AddressSanitizer on).
#
#   Tools/fuzz/run.sh TARGET SECONDS [libFuzzer flags...]   fuzz for SECONDS (0: only build and seed)
#   Tools/fuzz/run.sh TARGET merge                          minimise what was found into Tests/FuzzCorpus/TARGET
#   Tools/fuzz/run.sh list                                  the targets
#
# Targets (Sources/Driver/FuzzTargets.swift): ir, prototxt, caffemodel, dlib, onnx, safetensors, npy,
# image, settings, recipe, metrics. Seeds come from the repository's own files (graphs, goldens,
# fixtures, generated test models), never from ../shared/data. The working corpus lives in
# Tools/fuzz/.corpus/TARGET; crashes are written to Tools/fuzz/.crashes/. The test suite replays
# Tests/FuzzCorpus (FuzzCorpusTests).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
targets="ir prototxt caffemodel dlib onnx safetensors npy image settings recipe metrics"
target="${1:-}"
if [ "$target" = list ] || [ -z "$target" ]; then echo "$targets"; [ -n "$target" ]; exit; fi
case " $targets " in *" $target "*) ;; *) echo "unknown target '$target'; one of: $targets" >&2; exit 64 ;; esac
what="${2:?give SECONDS or merge}"
shift 2

# The fuzzer: fn2e built with coverage instrumentation and AddressSanitizer (FN2E_FUZZ_NO_BUILD=1
# reuses the last build, for long campaigns while the sources change).
build="${FN2E_FUZZ_BUILD:-$here/.build}"
bin="$build/release/fn2e-fuzz"
if [ -z "${FN2E_FUZZ_NO_BUILD:-}" ] || [ ! -x "$bin" ]; then
    swift build --package-path "$here" --build-path "$build" -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -g \
        -Xcc -fsanitize=fuzzer-no-link,address >&2
fi

seeds="$here/.seeds/$target"
if [ ! -d "$seeds" ]; then
    mkdir -p "$seeds"
    compile="$root/.build/release/fn2e-compile"
    [ -x "$compile" ] || compile="$root/.build/debug/fn2e-compile"
    [ -x "$compile" ] || { (cd "$root" && swift build --product fn2e-compile >&2); compile="$root/.build/debug/fn2e-compile"; }
    gen="$(mktemp -d)"
    for m in mini-vgg all-layers ssd-mini; do "$compile" import make-test-model "$m" -o "$gen" --name "$m" >/dev/null; done
    "$compile" import make-test-model mini-vgg --syntax v1 -o "$gen" --name mini-vgg.v1 >/dev/null
    "$compile" import make-test-model dlib-every-family -o "$gen" --name every-family >/dev/null
    case "$target" in
        ir) cp "$root"/Graphs/*.fn2e "$root"/Tests/Goldens/*.fn2e "$seeds"/ ;;
        prototxt) cp "$gen"/*.prototxt "$root"/Tests/Fixtures/Caffe/*.prototxt "$seeds"/ ;;
        caffemodel) cp "$gen"/*.caffemodel "$root"/Tests/Fixtures/Caffe/*.caffemodel "$seeds"/ ;;
        dlib) cp "$gen"/*.dat "$seeds"/ ;;
        onnx)  # the committed fixture and fn2e's own export of ExpNet48 (seeded weights)
            cp "$root"/Tests/Fixtures/Onnx/*.onnx "$seeds"/
            "$compile" export onnx "$root/Graphs/expnet48.fn2e" --random-weights 1 --bind K=7 -o "$seeds/expnet48.onnx" >/dev/null ;;
        safetensors) find "$root/Tests/Fixtures" -name '*.safetensors' -size -200k -exec cp {} "$seeds"/ \; ;;
        npy) cp "$root"/Tests/Fixtures/Kernels/*.npy "$seeds"/ ;;
        image)  # small drawings of our own (48x48 PNG) and the repository's charts
            "$(dirname "$compile")/fn2e-run" synthesize-faces "$gen/faces" >/dev/null
            mapfile -t faces < <(find "$gen/faces" -name '*.png' | sort)
            cp "${faces[@]:0:20}" "$seeds"/
            cp "$root"/docs/img/*.png "$seeds"/ ;;
        settings) cp "$root"/Graphs/*.train "$seeds"/ ;;
        recipe) cp "$root"/Graphs/*.recipe "$seeds"/ ;;
        metrics) printf '%s\n' '{"epoch":1,"loss":0.5,"step":10}' '{"accuracy":0.25,"epoch":1,"split":"test"}' > "$seeds/metrics.jsonl" ;;
    esac
    rm -rf "$gen"
fi
corpus="$here/.corpus/$target"
committed="$root/Tests/FuzzCorpus/$target"
mkdir -p "$corpus" "$committed" "$here/.crashes"
dict=()
[ -f "$here/dict/$target.dict" ] && dict=(-dict="$here/dict/$target.dict")

export FN2E_FUZZ_TARGET="$target"
export TMPDIR="${TMPDIR:-/dev/shm}"   # the path-only readers get their input through a file there
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0"
if [ "$what" = merge ]; then
    fresh="$(mktemp -d)"
    "$bin" -merge=1 "$fresh" "$committed" "$corpus" "$seeds" >&2
    # The repository keeps inputs of at most 16 KB (larger ones, mostly mutated seeds, stay in the
    # working corpus); inputs that once crashed (named crash-*) stay whatever their size or coverage.
    find "$fresh" -maxdepth 1 -type f -size +16k -delete
    find "$committed" -maxdepth 1 -name 'crash-*' -exec cp {} "$fresh"/ \;
    rm -rf "$committed" && mv "$fresh" "$committed"
    echo "$committed: $(ls "$committed" | wc -l) inputs, $(du -sh "$committed" | cut -f1)"
    exit 0
fi
[ "$what" = 0 ] && exit 0
# Every input is bounded by the largest seed plus a margin; 4 GB of RSS before libFuzzer calls it a leak of memory.
exec "$bin" "$corpus" "$committed" "$seeds" "${dict[@]}" -max_total_time="$what" -rss_limit_mb=4096 -timeout=20 \
    -artifact_prefix="$here/.crashes/$target-" -print_final_stats=1 "$@"
