#!/usr/bin/env python3
"""Writes the MTCNN parity fixture for Tests/FacesTests (Tests/Fixtures/MTCNN/parity.json).

facenet-pytorch (an independent implementation of the MTCNN cascade whose wheel ships P-Net, R-Net
and O-Net weights converted from the release's Caffe files) detects the faces of the release's two
sample photos in $FN2E_DATA/caffe/mtcnn and of three pictures made from them by integer steps the
Swift test repeats exactly, so no image is committed (the fixture holds recipes and detections):

- test1, test2: the photos as they are;
- mirror1: test1 mirrored left-right;
- half2: test2 halved by 2x2 block means, (a + b + c + d + 2) // 4, its odd last row dropped;
- collage640: a 640x480 picture of gray 128 with test1 at x 0, y 136 and half2's columns 20..209
  at x 450, y 0 (every face and the square around it inside the picture: facenet-pytorch resizes
  only the part of a box inside the picture where the release pads the rest with zeros, so a face
  cut by the border is not a fair comparison).

Settings: facenet-pytorch's defaults, which are the release's (minimum face 20, factor 0.709,
thresholds 0.6, 0.7, 0.7), keep_all. Boxes are x1, y1, x2, y2; landmarks five (x, y) pairs.

Usage: FN2E_DATA=../shared/data python3 Tools/mtcnn/parity_fixture.py   (creates Tools/mtcnn/.venv once)
"""
import json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "MTCNN", "parity.json")

sys.path.insert(0, HERE)
from venv_setup import enter_venv  # noqa: E402

enter_venv()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import facenet_pytorch  # noqa: E402
from facenet_pytorch import MTCNN  # noqa: E402
from PIL import Image  # noqa: E402


def pictures(data):
    """The fixture's pictures (H x W x 3 uint8), built as the docstring says."""
    d = os.path.join(data, "caffe", "mtcnn")
    t1 = np.asarray(Image.open(os.path.join(d, "test1.jpg")).convert("RGB"))
    t2 = np.asarray(Image.open(os.path.join(d, "test2.jpg")).convert("RGB"))
    h2 = t2[: t2.shape[0] // 2 * 2, : t2.shape[1] // 2 * 2].astype(np.int32)
    half = (h2[0::2, 0::2] + h2[1::2, 0::2] + h2[0::2, 1::2] + h2[1::2, 1::2] + 2) // 4
    collage = np.full((480, 640, 3), 128, np.uint8)
    collage[136:136 + t1.shape[0], 0:t1.shape[1]] = t1
    half = half.astype(np.uint8)
    collage[0:half.shape[0], 450:640] = half[:, 20:210]
    return {"test1": t1, "test2": t2, "mirror1": t1[:, ::-1], "half2": half, "collage640": collage}


def main():
    data = os.environ.get("FN2E_DATA") or sys.exit("set FN2E_DATA to the shared data folder")
    torch.set_num_threads(2)
    mtcnn = MTCNN(keep_all=True, post_process=False, device="cpu")
    out = {"facenet_pytorch": facenet_pytorch.__version__ if hasattr(facenet_pytorch, "__version__") else "2.6.0",
           "torch": torch.__version__, "images": []}
    for name, img in pictures(data).items():
        boxes, probs, points = mtcnn.detect(np.ascontiguousarray(img), landmarks=True)
        faces = []
        for b, p, pts in zip(boxes if boxes is not None else [], probs if probs is not None else [], points if points is not None else []):
            faces.append({"box": [round(float(v), 3) for v in b], "score": round(float(p), 6),
                          "landmarks": [[round(float(x), 3), round(float(y), 3)] for x, y in pts]})
        print(f"{name}: {img.shape[1]}x{img.shape[0]}, {len(faces)} faces", file=sys.stderr)
        out["images"].append({"name": name, "width": int(img.shape[1]), "height": int(img.shape[0]), "faces": faces})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(OUT + ".tmp", OUT)
    print(OUT)


if __name__ == "__main__":
    main()
