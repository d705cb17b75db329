#!/usr/bin/env python3
"""Writes the FER2013 learning-curve table (markdown) from the recipe results found so far.

Reads OUT/nSIZE/7classes/results.json (written by `fn2e-run facenet2expnet`, one per training-set
size) and writes DOC: per size and method, test accuracy and mean per-class accuracy on PublicTest
(mean ± std over seeds), the training time, and the paired differences FaceNet2ExpNet − scratch,
FaceNet2ExpNet − finetune and those of the raw-teacher ablation with their 95% intervals. Also writes OUT/curve.csv (series,x,y,low,high:
per method, log10 of the training-set size, the mean accuracy over seeds and its least and greatest
seed) for `fn2e-run plot --lines`. Standard library only.

Usage: python3 Tools/fer2013/curve_table.py OUT DOC [COMMAND]
"""
import glob, json, math, os, re, sys, time


# The pairs the table shows: the method against each baseline, and the raw-teacher ablation (the face
# net as imported for a teacher instead of the fine-tuned one) against the method and against scratch.
SHOWN_PAIRS = {("facenet2expnet", "scratch"), ("facenet2expnet", "finetune"),
               ("facenet2expnet", "facenet2expnet-raw"), ("facenet2expnet-raw", "scratch")}


def main(out, doc, command=""):
    rows = []
    for path in glob.glob(os.path.join(out, "n*", "*classes", "results.json")):
        size = re.match(r"n(.+)", os.path.basename(os.path.dirname(os.path.dirname(path)))).group(1)
        with open(path) as f:
            rows.append((int(size) if size.isdigit() else 10**9, size, json.load(f)))
    rows.sort(key=lambda r: r[0])
    lines = ["# FER2013 learning curve", "",
             "Written by `Tools/fer2013/learning_curve.sh` as sizes finish (%s). Test set: PublicTest (7 classes);"
             % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
             "training rows: nested stratified subsets of Training (`--train-subset`, `split_seed = 1`), validation rows",
             "(10%% of each class) held out first. Settings: `%s` (learning rates and epochs chosen on the"
             % os.environ.get("RECIPE", "Graphs/fer2013.recipe"),
             "validation rows, see docs/RESULTS.md). A run reused from an earlier invocation counts 0 s of training time.", "",
             "Command: `%s`" % command if command else "", "",
             "| training images | method | runs | accuracy % (mean ± std over seeds) | mean per-class % | training time (s, all runs) |",
             "|---|---|---|---|---|---|"]
    pairs = []
    for _, size, r in rows:
        for method in ("facenet2expnet", "facenet2expnet-raw", "scratch", "finetune"):
            m = r.get(method)
            if not m:
                continue
            runs = len(m["accuracy_by_seed"])
            spread = lambda mean, std: "%.2f ± %.2f" % (mean, std) if runs > 1 else "%.2f (one seed: no spread)" % mean
            lines.append("| %s | %s | %d | %s | %s | %.0f |" % (
                size, method, runs, spread(m["accuracy_mean"], m["accuracy_std"]),
                spread(m["mean_class_accuracy_mean"], m["mean_class_accuracy_std"]), m["train_seconds"]))
        for p in r.get("paired", []):
            if (p["first"], p["second"]) in SHOWN_PAIRS:
                interval = "[%+.2f, %+.2f]" % tuple(p["ci95"]) if p["n"] > 1 else "none (one seed)"
                pairs.append("| %s | %s − %s | %d | %+.2f | %s | %d/%d/%d |" % (
                    size, p["first"], p["second"], p["n"], p["mean"], interval, p["wins"], p["ties"], p["losses"]))
    if pairs:
        lines += ["", "Paired differences over the same seeds (percentage points):", "",
                  "| training images | pair | n | mean | 95% interval | wins/ties/losses |", "|---|---|---|---|---|---|"] + pairs
    curve = ["series,x,y,low,high"]
    for method in ("facenet2expnet", "facenet2expnet-raw", "scratch", "finetune"):
        for n, size, r in rows:
            if method in r and size.isdigit():
                a = r[method]["accuracy_by_seed"]
                a = list(a.values()) if isinstance(a, dict) else a
                curve.append("%s,%.4f,%.3f,%.3f,%.3f" % (method, math.log10(n), r[method]["accuracy_mean"], min(a), max(a)))
    with open(os.path.join(out, "curve.csv.tmp"), "w") as f:
        f.write("\n".join(curve) + "\n")
    os.replace(os.path.join(out, "curve.csv.tmp"), os.path.join(out, "curve.csv"))
    tmp = doc + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, doc)
    print("wrote %s (%d sizes)" % (doc, len(rows)))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:4])
