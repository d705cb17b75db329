#!/usr/bin/env python3
"""A second opinion on the Caffe importer: generated test models (both syntaxes) run through
OpenCV 4.12's own Caffe importer (cv2.dnn.readNetFromCaffe, fusion off) and through fn2e
(`fn2e-compile import caffe-outputs`); every layer both sides name is compared.

Usage: python3 Tools/caffe/opencv_check.py   (creates Tools/caffe/.venv on first use)
Known OpenCV deviation: OpenCV 4.12 ignores Caffe's lrn_param.k (it uses k = 1), so the
generated models keep k = 1; with k = 2 fn2e matches Caffe's formula (k + alpha/n sum x^2)^-beta
to 6e-8 while OpenCV is off by 0.27. OpenCV 4.12 also ignores inner_product_param.transpose
(it reads the [K, M] blob as [M, K]); the all-layers model's `ip` (transpose: true) and the layers
after it are listed as that known deviation and not counted (fn2e's `ip` equals x @ W_km + b exactly).
Exit status 1 when any layer differs by more than 1e-4 relative to its norm.
"""
import os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(HERE, ".venv")

if os.environ.get("FN2E_OPENCV_VENV") != "1":
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([py, "-m", "pip", "install", "-q", "opencv-python-headless==4.12.0.88", "numpy"])
    os.environ["FN2E_OPENCV_VENV"] = "1"
    os.execv(py, [py] + sys.argv)

import cv2
import numpy as np

BIN = os.environ.get("FN2E_COMPILE", os.path.join(ROOT, ".build", "debug", "fn2e-compile"))
if not os.path.exists(BIN):
    subprocess.check_call(["swift", "build", "--product", "fn2e-compile"], cwd=ROOT)

MODELS = [("mini-vgg", "current", [2, 3, 12, 12]), ("mini-vgg", "v1", [2, 3, 12, 12]), ("all-layers", "current", [2, 4, 10, 10])]


def main():
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for net, syntax, shape in MODELS:
            name = f"{net}.{syntax}"
            subprocess.check_call([BIN, "import", "make-test-model", net, "--syntax", syntax, "--seed", "3", "-o", tmp, "--name", name],
                                  stdout=subprocess.DEVNULL)
            proto, model = os.path.join(tmp, name + ".prototxt"), os.path.join(tmp, name + ".caffemodel")
            x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            np.save(os.path.join(tmp, name + ".input.npy"), x)
            out = os.path.join(tmp, name + ".fn2e-out")
            subprocess.check_call([BIN, "import", "caffe-outputs", proto, model, "--input", os.path.join(tmp, name + ".input.npy"), "-o", out],
                                  stdout=subprocess.DEVNULL)
            cv = cv2.dnn.readNetFromCaffe(proto, model)
            cv.enableFusion(False)
            cv.setInput(x)
            names = [n for n in cv.getLayerNames() if os.path.exists(os.path.join(out, n + ".npy"))]
            outs = cv.forward(names)
            print(f"{name}: {len(names)} layers compared")
            known = {"ip", "leaky", "prob"} if net == "all-layers" else set()
            for n, want in zip(names, outs):
                got = np.load(os.path.join(out, n + ".npy"))
                want = want.reshape(got.shape)
                rel = float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))
                if n in known:
                    flag = "  (known OpenCV deviation: ignores InnerProduct transpose)"
                else:
                    worst = max(worst, rel)
                    flag = "" if rel < 1e-4 else "  <-- MISMATCH"
                print(f"  {n:12s} {str(list(got.shape)):18s} rel {rel:.2e}  max {float(np.abs(got - want).max()):.2e}{flag}")
    print(f"worst relative difference: {worst:.2e}")
    return 0 if worst < 1e-4 else 1


sys.exit(main())
