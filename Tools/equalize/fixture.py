#!/usr/bin/env python3
"""Writes the histogram-equalization fixture for Tests/TrainingTests (Tests/Fixtures/Equalize).

OpenCV (opencv-python-headless 4.12.0.88, an independent reference) equalizes a few generated 8-bit
gray images with cv2.equalizeHist; each input is written as NAME.png and OpenCV's output as
NAME.equalized.png, and manifest.json lists them with whether OpenCV's equalizeHist, applied again
to its own output, changes it (it need not be exactly idempotent: see the manifest's field).
Generated, so no data of FN2E_DATA is committed:

- noise: uniform 0-255 noise, 48x48;
- lowcontrast: normal noise around 120 (sd 8), 48x48 (a narrow histogram spread to the full range);
- darkbackground: a dark field (level 3) with a gradient disc, 48x48 (many pixels at the lowest level);
- twolevels: levels 40 and 200 only, 48x48;
- constant: every pixel 77 (OpenCV keeps a one-level image as it is);
- oblong: smooth waves plus noise, 37x53 (rows differ from columns).

Usage: bash Tools/equalize/fixture.sh   (creates Tools/equalize/.venv once, then runs this script in it)
"""
import json, os

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "Equalize")


def images():
    rng = np.random.default_rng(26)
    yield "noise", rng.integers(0, 256, (48, 48))
    yield "lowcontrast", np.clip(rng.normal(120, 8, (48, 48)).round(), 0, 255)
    y, x = np.mgrid[0:48, 0:48]
    disc = ((y - 24) ** 2 + (x - 20) ** 2) < 15 ** 2
    yield "darkbackground", np.where(disc, 30 + 5 * x + y, 3)
    yield "twolevels", np.where(rng.random((48, 48)) < 0.3, 200, 40)
    yield "constant", np.full((48, 48), 77)
    y, x = np.mgrid[0:37, 0:53]
    yield "oblong", np.clip(90 + 40 * np.sin(x / 6.0) + 30 * np.cos(y / 4.0) + rng.normal(0, 6, (37, 53)), 0, 255).round()


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {"opencv": cv2.__version__, "images": []}
    for name, pixels in images():
        img = np.ascontiguousarray(pixels.astype(np.uint8))
        eq = cv2.equalizeHist(img)
        again = cv2.equalizeHist(eq)
        cv2.imwrite(os.path.join(OUT, name + ".png"), img)
        cv2.imwrite(os.path.join(OUT, name + ".equalized.png"), eq)
        assert (cv2.imread(os.path.join(OUT, name + ".equalized.png"), cv2.IMREAD_UNCHANGED) == eq).all()
        changed = int((again != eq).sum())
        manifest["images"].append({"name": name, "height": img.shape[0], "width": img.shape[1],
                                   "levels_in": int(len(np.unique(img))), "equalized_again_changes_pixels": changed})
        print(f"{name}: {img.shape}, {len(np.unique(img))} levels; equalizeHist again changes {changed} pixels")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
