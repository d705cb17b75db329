"""The photo pipeline against the peers a user would pick, on one folder, in one run, alternating.
Driven by Tools/bench/photos_vs_peers.sh (which builds fn2e-run and the peers' venv); standard
library only. Each round runs, each in its own process:

  fn2e predict     fn2e-run predict RUN FOLDER --detect   (MTCNN, alignment, the run's classifier)
  fer              the `fer` package, Haar detector + its emotion classifier
  fer-mtcnn        the `fer` package with mtcnn=True (facenet-pytorch's MTCNN) + its classifier
  fn2e detect      fn2e-run detect FOLDER                 (MTCNN alone)
  facenet-pytorch  facenet-pytorch's MTCNN alone

and fn2e-run once more on the folder's first photo only, so that fn2e's fixed cost (start, loading
and compiling the nets, the first photo) can be told from its rate on the rest. For every tool:
photos/s over the whole process (start to exit, decoding included), photos/s on photos 2..N (the
peers time each photo in-process; fn2e: (N - 1) / (folder run - one-photo run)), the fixed cost,
faces found, how many of the faces the composer pasted were found (a box whose centre lies in a
pasted face's box; faces.csv), other boxes, and peak RSS. Medians over the rounds. Last, one more
fn2e run with FN2E_PROFILE=1 says where its time went, stage by stage.
"""
import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def run_measured(argv, stdout_path=None, env=None):
    """(wall seconds, the child's own peak RSS in bytes from wait4, its stdout) of one process;
    exits with its stderr's tail when it fails."""
    with tempfile.TemporaryFile("w+") as err, tempfile.TemporaryFile("w+") as pipe:
        out = open(stdout_path, "w") if stdout_path else pipe
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if stdout_path:
            out.close()
        if p.returncode != 0:
            err.seek(0)
            sys.exit(f"failed ({p.returncode}): {' '.join(argv)}\n{err.read()[-3000:]}")
        pipe.seek(0)
        return wall, usage.ru_maxrss * 1024, pipe.read()


def read_boxes(path, columns=("x1", "y1", "x2", "y2")):
    """{photo file name: [[x1, y1, x2, y2], ...]} from a CSV with a photo column."""
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(os.path.basename(row["photo"]), []).append([float(row[c]) for c in columns])
    return out


def matched(truth, found):
    """How many true boxes have a found box whose centre lies inside them (each box used once)."""
    hits = 0
    for photo, boxes in truth.items():
        free = list(found.get(photo, []))
        for x1, y1, x2, y2 in boxes:
            for k, (a, b, c, d) in enumerate(free):
                if x1 <= (a + c) / 2 <= x2 and y1 <= (b + d) / 2 <= y2:
                    hits += 1
                    del free[k]
                    break
    return hits


def main():
    work = tempfile.mkdtemp(prefix="fn2e-photos-")
    try:
        measure(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the composed photos, the quick run, the boxes


def measure(work):
    ap = argparse.ArgumentParser()
    ap.add_argument("--fn2e-run", required=True)
    ap.add_argument("--python", required=True, help="the peers' venv python")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--run", help="a trained run folder (default: train ExpNet48 on CK+48 for --epochs)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--folder", help="a folder of photos (default: composed by compose_photos.py)")
    ap.add_argument("--tools", default="fn2e-predict,fer,fer-mtcnn,fn2e-detect,facenet")
    a = ap.parse_args()
    if not os.environ.get("FN2E_DATA"):
        sys.exit("set FN2E_DATA to the shared data folder (the MTCNN nets, the sample photos, CK+48)")
    tools = a.tools.split(",")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2", TF_CPP_MIN_LOG_LEVEL="2")
    pin = ["taskset", "-c", "0,1"] if os.cpu_count() >= 2 and subprocess.call(["sh", "-c", "command -v taskset"], stdout=subprocess.DEVNULL) == 0 else []

    folder = a.folder
    if not folder:
        folder = os.path.join(work, "photos")
        print(f"composing {a.count} photos in {folder}...", file=sys.stderr)
        run_measured([a.python, os.path.join(HERE, "compose_photos.py"), folder, "--count", str(a.count)], env=env)
    photos = sorted(n for n in os.listdir(folder) if n.lower().endswith(PHOTO_EXTENSIONS))
    n = len(photos)
    if n < 2:
        sys.exit(f"{folder}: {n} photos; the benchmark needs at least 2")
    truth_path = os.path.join(folder, "faces.csv")
    truth = read_boxes(truth_path) if os.path.exists(truth_path) else None
    run_dir = a.run
    if not run_dir and any(t.startswith("fn2e-predict") for t in tools):
        run_dir = os.path.join(work, "run")
        print(f"training ExpNet48 on CK+48 for {a.epochs} epochs into {run_dir}...", file=sys.stderr)
        run_measured([a.fn2e_run, "train", os.path.join(ROOT, "Graphs", "ckplus_scratch.train"), "--set", "fold=-1",
                      "--set", f"epochs={a.epochs}", "--set", f"output={run_dir}"], env=env)
    first = os.path.join(folder, photos[0])
    fn2e = {
        "fn2e-predict": lambda p: [a.fn2e_run, "predict", run_dir, p, "--detect"],
        "fn2e-detect": lambda p: [a.fn2e_run, "detect", p],
    }
    core = json.loads(run_measured([a.fn2e_run, "detect", first, "--time", "1"], env=env)[2].splitlines()[0])["core"]

    results = {t: {"wall": [], "one": [], "rest": [], "rss": [], "faces": None, "found": None} for t in tools}
    versions = {}
    for r in range(a.rounds):
        for t in tools:
            print(f"[round {r + 1}] {t}", file=sys.stderr)
            boxes = os.path.join(work, f"{t}.csv")
            res = results[t]
            if t in fn2e:
                wall, rss, _ = run_measured(pin + fn2e[t](folder), stdout_path=boxes, env=env)
                one, _, _ = run_measured(pin + fn2e[t](first), stdout_path=os.devnull, env=env)
                res["one"].append(one)
            else:
                wall, rss, text = run_measured(pin + [a.python, os.path.join(HERE, "photo_peers.py"), t, folder, "--boxes", boxes], env=env)
                rec = json.loads(text.strip().splitlines()[-1])
                versions[t] = rec["version"]
                res["rest"].append(sum(rec["seconds"][1:]))
            res["wall"].append(wall)
            res["rss"].append(rss)
            found = read_boxes(boxes)
            res["faces"] = sum(len(b) for b in found.values())
            res["found"] = matched(truth, found) if truth else None

    names = {"fn2e-predict": "fn2e-run predict --detect", "fer": "fer (Haar)", "fer-mtcnn": "fer (mtcnn=True)",
             "fn2e-detect": "fn2e-run detect", "facenet": "facenet-pytorch MTCNN"}
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    pasted = sum(len(b) for b in truth.values()) if truth else None
    print(f"# Tools/bench/photos_vs_peers.sh, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu}, {os.cpu_count()} CPUs")
    print(f"{n} photos in {folder if a.folder else 'a folder composed by compose_photos.py (seed 1)'}"
          + (f", {pasted} faces pasted" if truth else "") + f"; rounds: {a.rounds}, alternating; fn2e's OpenBLAS core {core}, 2 threads")
    print(f"run: {a.run or f'ExpNet48 trained on CK+48 by this benchmark (epochs: {a.epochs})'}")
    for t, v in versions.items():
        print(f"{t}: {v}")
    print()
    print("| tool | photos/s (whole process) | photos/s (photos 2..N) | fixed cost s | faces found | pasted faces found | other boxes | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    rate = {}
    for t in tools:
        res = results[t]
        wall = statistics.median(res["wall"])
        rest = statistics.median(res["rest"]) if res["rest"] else wall - statistics.median(res["one"])
        fixed = wall - rest
        rate[t] = (n / wall, (n - 1) / rest)
        hits = f"{res['found']}/{pasted}" if truth else "-"
        other = res["faces"] - res["found"] if truth else "-"
        print(f"| {names[t]} | {n / wall:.2f} | {(n - 1) / rest:.2f} | {fixed:.2f} | {res['faces']} | {hits} | {other} "
              f"| {max(res['rss']) / 2**20:.0f} MiB |")
    print()
    for mine, theirs in (("fn2e-predict", "fer"), ("fn2e-predict", "fer-mtcnn"), ("fn2e-detect", "facenet")):
        if mine in rate and theirs in rate:
            print(f"{names[mine]} / {names[theirs]}: {rate[mine][0] / rate[theirs][0]:.2f}x whole process, "
                  f"{rate[mine][1] / rate[theirs][1]:.2f}x on photos 2..N")
    print("Whole process: start to exit (loading, the first photo and decoding included), median over the rounds.")
    print("Photos 2..N: the peers time each photo in-process; fn2e's is (N - 1) / (folder run - one-photo run).")
    # Where fn2e's time goes: one more run with FN2E_PROFILE=1 (stage seconds summed over its workers).
    mine = next((t for t in ("fn2e-predict", "fn2e-detect") if t in tools), None)
    if mine:
        p = subprocess.run(pin + fn2e[mine](folder), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           env=dict(env, FN2E_PROFILE="1"))
        stages = p.stderr[p.stderr.find("photo pipeline"):] if "photo pipeline" in p.stderr else "(no stage profile printed)\n"
        print(f"\n{names[mine]}, FN2E_PROFILE=1, one more run:\n```\n{stages.rstrip()}\n```")


if __name__ == "__main__":
    main()
