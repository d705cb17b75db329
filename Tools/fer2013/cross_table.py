#!/usr/bin/env python3
"""The cross-data-set table (markdown) of Tools/fer2013/cross_dataset.sh.

Reads OUT/runs.tsv (name, run folder, the data set it was trained on) and, per run, its own last test
evaluation (the run's metrics.jsonl) and every OUT/NAME/DATA/eval.json and eval.txt that
`fn2e-run eval --output` wrote. One row per model and other data set: the model's own test result,
then on the other data set the images scored (the classes both sides have), accuracy, mean
per-class accuracy, the majority class's share of the scored images (what always answering it
would score), the classes matched by alias and the classes on one side only; then whether `eval`
on the run's own test set repeats the run's own number, and what each model called the images of
a class it lacks. Standard library only.

Usage: python3 Tools/fer2013/cross_table.py OUT
"""
import json, os, sys

NAMES = {"finetune": "fine-tuned O-Net", "scratch": "ExpNet48 from scratch", "facenet2expnet": "FaceNet2ExpNet (ExpNet48)",
         "facenet2expnet-raw": "FaceNet2ExpNet, raw teacher"}
DATA = {"fer2013-publictest": "FER2013 PublicTest", "ckplus48": "CK+48 (all 981 crops)"}


def settings(run):
    out = {}
    with open(os.path.join(run, "settings.txt")) as f:
        for line in f:
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def own_test(run):
    last = None
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            row = json.loads(line) if line.strip() else {}
            if row.get("type") == "eval" and row.get("split") == "test":
                last = row
    return last


def majority(rows):
    total = sum(sum(r) for r in rows)
    return 100.0 * max(sum(r) for r in rows) / total if total else 0.0


def main(out):
    table = ["| model (seed) | trained on | own test: images, accuracy / mean per-class % | `fn2e-run eval` on | images scored | accuracy % | mean per-class % | majority class % | classes matched by alias | on one side only |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    notes, repeats = [], []
    with open(os.path.join(out, "runs.tsv")) as f:
        runs = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    for name, run, trained in runs:
        s = settings(run)
        model = "%s (%s)" % (NAMES.get(os.path.basename(run), os.path.basename(run)), s.get("seed", "?"))
        if trained == "fer2013":
            subset = s.get("train_subset", "0")
            where = "FER2013, %s Training images" % ("{:,}".format(int(subset)) if subset not in ("", "0") else "all")
            own_data, own = "fer2013-publictest", "PublicTest"
        else:
            where = "CK+48, 6 classes, folds 1-9 of 10 by subject"
            own_data, own = None, "held-out fold %s" % s.get("fold", "?")
        t = own_test(run)
        own_text = "%s: %d, %.2f / %.2f" % (own, t["count"], 100 * t["accuracy"], 100 * t["mean_class_accuracy"]) if t else "-"
        for data in sorted(os.listdir(os.path.join(out, name))):
            path = os.path.join(out, name, data, "eval.json")
            if not os.path.exists(path):
                continue
            with open(path) as f:
                e = json.load(f)
            if data == own_data:
                # The run's own test set again, through `eval --data`: the same preprocessing must give the same number.
                same = t is not None and e["correct"] == round(t["accuracy"] * t["count"]) and e["count"] == t["count"]
                repeats.append("%s: %s" % (model + ", " + where, "the same %d of %d" % (e["correct"], e["count"]) if same else
                               "DIFFERENT: eval %d of %d, the run %s" % (e["correct"], e["count"], own_text)))
                continue
            with open(os.path.join(out, name, data, "eval.txt")) as f:
                text = f.read().splitlines()
            alias = next((l.split(": ", 1)[1] for l in text if l.startswith("classes matched by alias: ")), "")
            counts = e["counts_by_data_class"]
            matched = [counts[i] for i, d in enumerate(e["data_classes"]) if d not in e["data_only"]]
            side = ["%s (data only, %d images)" % (d, sum(counts[e["data_classes"].index(d)])) for d in e["data_only"]]
            side += ["%s (model only)" % m for m in e["model_only"]]
            table.append("| %s | %s | %s | %s | %d | %.2f | %.2f | %.2f | %s | %s |" % (
                model, where, own_text, DATA.get(data, data), e["count"], 100 * e["accuracy"], 100 * e["mean_class_accuracy"],
                majority(matched), alias, "; ".join(side)))
            notes += ["- %s on %s: %s" % (model, DATA.get(data, data), l.strip()) for l in text if "not in the accuracy" in l]
    print("\n".join(table))
    if repeats:
        print("\n`fn2e-run eval --data` on the run's own test set, against the run's own evaluation (correct of all):\n")
        print("\n".join("- " + r for r in repeats))
    if notes:
        print("\nImages of a class the model lacks (not in the accuracy), and what the model called them:\n")
        print("\n".join(notes))
    print("\nRun folders:\n")
    print("\n".join("- %s: `%s`" % (name, run) for name, run, _ in runs))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
