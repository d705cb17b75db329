#!/usr/bin/env python3
"""How equalized FER2013's images are, by OpenCV's equalizeHist (4.12.0.88): for every 20th
Training image and every 5th PublicTest image (index.csv order), the mean absolute change of
equalizing it (0 for an image already equalized exactly; JPEG noise makes it more) and the largest
change of equalizing the equalized image again (OpenCV's equalization is not exactly idempotent).

Usage: FN2E_DATA=../shared/data Tools/equalize/.venv/bin/python Tools/equalize/fer2013_check.py
(the venv: bash Tools/equalize/fixture.sh makes it)
"""
import csv, os, sys

import cv2
import numpy as np

data = os.environ.get("FN2E_DATA") or sys.exit("set FN2E_DATA to the shared data folder")
with open(os.path.join(data, "fer2013", "index.csv")) as f:
    rows = list(csv.DictReader(f))
for usage, every in (("Training", 20), ("PublicTest", 5)):
    chosen = [r for r in rows if r["usage"] == usage][::every]
    change, again = [], []
    for r in chosen:
        x = cv2.imread(os.path.join(data, "fer2013", r["path"]), cv2.IMREAD_GRAYSCALE)
        e = cv2.equalizeHist(x)
        change.append(np.abs(e.astype(int) - x).mean())
        again.append(np.abs(cv2.equalizeHist(e).astype(int) - e).max())
    print("%s: %d images (every %dth); mean |equalize(x) - x| %.2f levels; largest |equalize(equalize(x)) - equalize(x)| %d"
          % (usage, len(chosen), every, np.mean(change), max(again)))
