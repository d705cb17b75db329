#!/usr/bin/env bash
# kill -9 soak of fn2e-run train: an uninterrupted reference run, then the same run killed with
# SIGKILL at random moments (some timed to land while a checkpoint is being written) and resumed
# each time from whatever checkpoint is on disk, until it finishes. Passes when every resume found
# an intact checkpoint (fn2e-run refuses a damaged one with an error) and the final model, the
# final checkpoint and metrics.jsonl (wall-clock fields left out) are bitwise those of the
# reference run.
#
# Then the same for `fn2e-run facenet2expnet` on the stand-in (one fold): killed RECIPE_KILLS times
# mid-recipe, each time while a second invocation on the same output waits for its lock
# (--wait-lock) and then carries on; the last one's table and every trained model must equal an
# uninterrupted recipe's, and `fn2e-run verify` must find no problem in the output.
#
#   Tools/soak/kill9.sh [KILLS] [RECIPE_KILLS]   (defaults 50 and 10; the release build; about 2 minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
kills="${1:-50}"
recipe_kills="${2:-10}"
[ -x .build/release/fn2e-run ] || swift build -c release --product fn2e-run >&2
bin="$(pwd)/.build/release/fn2e-run"
work="$(mktemp -d)"
trap '[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
"$bin" synthesize-faces "$work/data" >/dev/null
export OPENBLAS_NUM_THREADS=1 FN2E_THREADS=1
cat > "$work/soak.train" <<SETTINGS
# ExpNet48 from scratch on the synthetic stand-in, a checkpoint every 2 steps.
graph = $(pwd)/Graphs/expnet48_stage2.fn2e
data = $work/data/index.csv
group = subject
folds = 5
fold = 0
channels = 1
mirror = true
mean = 127.5
scale = 0.0078125
lr = 0.01
momentum = 0.9
batch = 16
epochs = 4
checkpoint_interval = 2
display = 1000
seed = 3
SETTINGS
args=(train "$work/soak.train")

start=$(date +%s.%N)
"$bin" "${args[@]}" --set output="$work/reference" >/dev/null 2>"$work/reference.log"
seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
echo "reference run: $seconds s"

out="$work/soak"
done_kills=0 in_write=0 resumes=0
while true; do
    extra=()
    if [ -f "$out/checkpoint.safetensors" ]; then extra=(--resume); resumes=$((resumes + 1)); else true; fi
    "$bin" "${args[@]}" --set output="$out" "${extra[@]}" >/dev/null 2>>"$work/soak.log" &
    pid=$!
    if [ "$done_kills" -lt "$kills" ]; then
        if [ $((done_kills % 3)) -eq 2 ]; then
            # Wait for a checkpoint's temporary file to appear, then kill while it is being written.
            for _ in $(seq 1 20000); do
                compgen -G "$out/checkpoint.safetensors.tmp-$pid" >/dev/null && break
                kill -0 "$pid" 2>/dev/null || break
            done
        else
            sleep "$(awk -v r="$RANDOM" -v s="$seconds" 'BEGIN { printf "%.3f", r / 32768 * s * 0.6 }')"
        fi
        if kill -9 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            done_kills=$((done_kills + 1))
            # The temporary file outlives the process only when the kill landed inside the write.
            # (fn2e-run removes such abandoned temporaries when it next starts.)
            [ -e "$out/checkpoint.safetensors.tmp-$pid" ] && in_write=$((in_write + 1))
            continue
        fi
    fi
    wait "$pid" || { echo "FAIL: a run exited with an error; its log:"; tail -5 "$work/soak.log"; exit 1; }
    [ "$done_kills" -ge "$kills" ] && break
    rm -rf "$out"   # finished before the kill landed: start over to keep killing
done
echo "kills: $done_kills ($in_write inside a checkpoint write); resumes: $resumes"
strip() { grep -v '^$' "$1" | sed -E 's/"(seconds|elapsed|time|images_per_second|wall)[a-z_]*":[^,}]*,?//g'; }
status=0
left=$(find "$out" -name '*.tmp-*' | wc -l)
if [ "$left" -eq 0 ]; then echo "abandoned temporary files: none left"; else echo "FAIL: $left abandoned temporary files left"; status=1; fi
for f in model.safetensors checkpoint.safetensors; do
    if cmp -s "$work/reference/$f" "$out/$f"; then echo "$f: bitwise equal"; else echo "FAIL: $f differs"; status=1; fi
done
if diff <(strip "$work/reference/metrics.jsonl") <(strip "$out/metrics.jsonl") >/dev/null; then
    echo "metrics.jsonl: equal ($(wc -l < "$out/metrics.jsonl") lines, wall-clock fields left out)"
else
    echo "FAIL: metrics.jsonl differs"; diff <(strip "$work/reference/metrics.jsonl") <(strip "$out/metrics.jsonl") | head; status=1
fi

# The recipe: a stand-in face net (random weights) and one fold of the synthetic data.
compile="$(pwd)/.build/release/fn2e-compile"
[ -x "$compile" ] || swift build -c release --product fn2e-compile >&2
"$compile" import make-test-model Tools/standin/onet_standin.prototxt -o "$work/face" --name onet_standin >/dev/null
"$compile" import caffe "$work/face/onet_standin.caffemodel" -o "$work/face" --name onet >/dev/null 2>&1
recipe=(facenet2expnet --face-net "$work/face" --data "$work/data/index.csv" --folds 5 --fold-limit 1 --seeds 1
        --set epochs=3 --set stage1.lr=0.00001 --set checkpoint_interval=5)
start=$(date +%s.%N)
"$bin" "${recipe[@]}" --output "$work/recipe-reference" >/dev/null 2>&1
seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
echo "reference recipe: $seconds s"
# Each round: a second invocation on the same output waits for the lock (--wait-lock) while the
# first runs; the first is killed at a random moment, and the second takes over (reusing only runs
# with a completion marker; a training of the killed recipe gets SIGINT from its death and holds its
# run folder's lock until it has written its checkpoint, the new one's training of that run waits
# for it and resumes from that checkpoint). The last one runs to the end.
lock="$work/recipe/run.lock"
done_kills=0 waits=0
"$bin" "${recipe[@]}" --output "$work/recipe" >/dev/null 2>"$work/recipe-0.log" &
holder=$!
while true; do
    for _ in $(seq 1 6000); do
        grep -qx "pid $holder" "$lock" 2>/dev/null && break
        kill -0 "$holder" 2>/dev/null || break
        sleep 0.01
    done
    [ "$done_kills" -lt "$recipe_kills" ] || break
    log="$work/recipe-$((done_kills + 1)).log"
    "$bin" "${recipe[@]}" --output "$work/recipe" --wait-lock >/dev/null 2>"$log" &
    waiter=$!
    for _ in $(seq 1 6000); do
        grep -q "waiting for $work/recipe, in use by pid $holder" "$log" 2>/dev/null && { waits=$((waits + 1)); break; }
        kill -0 "$holder" 2>/dev/null || break
        sleep 0.01
    done
    sleep "$(awk -v r="$RANDOM" -v s="$seconds" 'BEGIN { printf "%.3f", r / 32768 * s * 0.9 }')"
    if kill -9 "$holder" 2>/dev/null; then
        wait "$holder" 2>/dev/null || true
        done_kills=$((done_kills + 1))
        holder=$waiter
        continue
    fi
    # The holder finished before the kill: the waiter reuses its runs.
    wait "$holder" || { echo "FAIL: the recipe exited with an error:"; tail -5 "$work"/recipe-*.log; exit 1; }
    holder=$waiter
    break
done
wait "$holder" || { echo "FAIL: the recipe exited with an error:"; tail -5 "$work"/recipe-*.log; exit 1; }
echo "recipe kills: $done_kills, each while a second invocation waited for the lock ($waits waits seen)"
if "$bin" verify "$work/recipe" >"$work/verify.txt"; then echo "fn2e-run verify: $(tail -1 "$work/verify.txt")"; else echo "FAIL: fn2e-run verify:"; grep error "$work/verify.txt" | head; status=1; fi
models=0
while IFS= read -r f; do
    models=$((models + 1))
    cmp -s "$work/recipe-reference/$f" "$work/recipe/$f" || { echo "FAIL: $f differs"; status=1; }
done < <(cd "$work/recipe-reference" && find . -name model.safetensors | sort)
echo "recipe models compared: $models"
for t in $(cd "$work/recipe-reference" && find . -name results.txt | sort); do
    if diff "$work/recipe-reference/$t" "$work/recipe/$t" >/dev/null; then echo "$t: equal"; else echo "FAIL: $t differs"; status=1; fi
done
exit $status
