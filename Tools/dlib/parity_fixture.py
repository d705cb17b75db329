#!/usr/bin/env python3
"""Writes the dlib parity fixture for Tests/DlibImportTests (Tests/Fixtures/Dlib/parity.json).

dlib itself (the PyPI wheel dlib-bin, an independent reference) computes 128-D face descriptors with
dlib_face_recognition_resnet_model_v1.dat from $FN2E_DATA/dlib on face chips that the Swift test
rebuilds bit for bit from the CK+ crops in $FN2E_DATA/ckplus48, so no image data is committed (the
fixture holds paths relative to FN2E_DATA and descriptors only):

- chip: the 48x48 grayscale crop upscaled to 150x150 by integer nearest neighbour,
  chip[y][x] = gray[(y * 48) // 150][(x * 48) // 150], the gray value in R, G and B;
- descriptor: dlib.face_recognition_model_v1(model).compute_face_descriptor(chip) (an aligned
  150x150 chip, no jitter), written as the shortest text that reads back as the same float32.

Parity chips: the first image (index.csv order) of each of the first 24 subjects (sorted by id).
Verification sample: the last frame of each of the 327 sequences; every pair of them, same subject
or not, judged by dlib's rule (Euclidean distance < 0.6 = same person); dlib's own counts are stored
so the Swift test can compare fn2e's with them.

Usage: FN2E_DATA=../shared/data python3 Tools/dlib/parity_fixture.py   (creates Tools/dlib/.venv once)
"""
import csv, hashlib, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(HERE, ".venv")
PINS = ["dlib-bin==20.0.1.post1", "numpy==2.4.6", "pillow==13.0.0"]

if os.environ.get("FN2E_DLIB_VENV") != "1":
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([py, "-m", "pip", "install", "-q"] + PINS)
    os.environ["FN2E_DLIB_VENV"] = "1"
    os.execv(py, [py] + sys.argv)

import dlib
import numpy as np
from PIL import Image

DATA = os.environ.get("FN2E_DATA") or sys.exit("set FN2E_DATA to the shared data folder")
MODEL = os.path.join(DATA, "dlib", "dlib_face_recognition_resnet_model_v1.dat")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "Dlib", "parity.json")
PARITY_SUBJECTS = 24
THRESHOLD = 0.6


def chip(relative):
    gray = np.asarray(Image.open(os.path.join(DATA, "ckplus48", relative)))
    assert gray.shape == (48, 48) and gray.dtype == np.uint8, (relative, gray.shape, gray.dtype)
    src = (np.arange(150) * 48) // 150
    up = gray[src][:, src]
    return np.ascontiguousarray(np.stack([up, up, up], axis=-1))


def main():
    with open(os.path.join(DATA, "ckplus48", "index.csv")) as f:
        rows = list(csv.DictReader(f))
    model = dlib.face_recognition_model_v1(MODEL)

    def describe(paths):
        return np.array([np.array(model.compute_face_descriptor(chip(p)), dtype=np.float32) for p in paths])

    first = {}
    for r in rows:
        first.setdefault(r["subject"], r["path"])
    parity_paths = [first[s] for s in sorted(first)[:PARITY_SUBJECTS]]
    parity = describe(parity_paths)

    last = {}
    for r in rows:
        key = (r["subject"], r["sequence"])
        if key not in last or int(r["frame"]) > int(last[key]["frame"]):
            last[key] = r
    sample = [last[k] for k in sorted(last)]
    d = describe([r["path"] for r in sample])
    subjects = np.array([r["subject"] for r in sample])
    dist = np.linalg.norm(d[:, None, :] - d[None, :, :], axis=-1)
    i, j = np.triu_indices(len(sample), k=1)
    same = subjects[i] == subjects[j]
    accept = dist[i, j] < THRESHOLD
    counts = {
        "same_pairs": int(same.sum()), "same_accepted": int((same & accept).sum()),
        "different_pairs": int((~same).sum()), "different_rejected": int((~same & ~accept).sum()),
    }

    with open(MODEL, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    fixture = {
        "generator": "Tools/dlib/parity_fixture.py",
        "dlib": dlib.__version__,
        "model": "dlib/dlib_face_recognition_resnet_model_v1.dat",
        "model_sha256": sha,
        "chip": "150x150 RGB, chip[y][x][c] = gray[(y*48)/150][(x*48)/150] (integer division)",
        # str(np.float32) is the shortest text that reads back as the same float32.
        "parity": [{"path": "ckplus48/" + p, "descriptor": [float(str(np.float32(v))) for v in desc]}
                   for p, desc in zip(parity_paths, parity)],
        "verification": {
            "sample": "the last frame of each sequence in ckplus48/index.csv, all pairs",
            "threshold": THRESHOLD, "images": len(sample), **counts,
        },
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1)  # one number a line: diffs stay readable
        f.write("\n")
    norms = np.linalg.norm(parity, axis=1)
    tar, tnr = counts["same_accepted"] / counts["same_pairs"], counts["different_rejected"] / counts["different_pairs"]
    print(f"wrote {OUT}: {len(parity_paths)} parity chips (descriptor norms {norms.min():.3f}-{norms.max():.3f})")
    print(f"dlib verification at {THRESHOLD}: {len(sample)} images, same-subject pairs accepted {tar:.4f} "
          f"({counts['same_accepted']}/{counts['same_pairs']}), different-subject pairs rejected {tnr:.4f} "
          f"({counts['different_rejected']}/{counts['different_pairs']}), balanced accuracy {(tar + tnr) / 2:.4f}")


if __name__ == "__main__":
    main()
