#!/usr/bin/env python3
"""Times facenet-pytorch's MTCNN (CPU, 2 threads) on photos: one detection to warm up, then --runs
timed ones; prints one JSON line per photo with the median seconds. A folder stands for its photos
(.jpg, .jpeg, .png, .bmp, sorted by name), as for fn2e-run detect. --write-collage DIR writes the
parity fixture's 640x480 collage there as collage640.png (needs FN2E_DATA) and exits.

Usage: python3 Tools/mtcnn/bench_facenet.py [--runs N] PHOTO|FOLDER...   (creates Tools/mtcnn/.venv once)
"""
import argparse, json, os, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from venv_setup import enter_venv  # noqa: E402

enter_venv()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from facenet_pytorch import MTCNN  # noqa: E402
from PIL import Image  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photos", nargs="*")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write-collage")
    a = ap.parse_args()
    if a.write_collage:
        from parity_fixture import pictures
        data = os.environ.get("FN2E_DATA") or sys.exit("set FN2E_DATA to the shared data folder")
        path = os.path.join(a.write_collage, "collage640.png")
        Image.fromarray(pictures(data)["collage640"]).save(path)
        print(path)
        return
    torch.set_num_threads(a.threads)
    mtcnn = MTCNN(keep_all=True, device="cpu")
    photos = []
    for arg in a.photos:
        if os.path.isdir(arg):
            photos += sorted(os.path.join(arg, n) for n in os.listdir(arg) if n.lower().endswith((".jpg", ".jpeg", ".png", ".bmp")))
        else:
            photos.append(arg)
    for photo in photos:
        img = np.asarray(Image.open(photo).convert("RGB"))
        with torch.no_grad():
            boxes, _ = mtcnn.detect(img)
            seconds = []
            for _ in range(max(1, a.runs)):
                t0 = time.perf_counter()
                mtcnn.detect(img)
                seconds.append(time.perf_counter() - t0)
        seconds.sort()
        print(json.dumps({"photo": photo, "width": img.shape[1], "height": img.shape[0], "faces": 0 if boxes is None else len(boxes),
                          "seconds": round(seconds[len(seconds) // 2], 5), "runs": len(seconds), "torch": torch.__version__,
                          "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
