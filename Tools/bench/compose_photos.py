"""Composes the photo benchmark's folder at run time (nothing of it is committed): COUNT photos of
640x480, each with 1-4 faces at random positions and scales on a random background, seeded.

Faces: the faces facenet-pytorch's MTCNN finds (probability >= 0.95) in the MTCNN release's sample
photos ($FN2E_DATA/caffe/mtcnn/test1.jpg, test2.jpg) and in scikit-image's public-domain astronaut
picture. Each is cut as a square 1.8 times its box, mirrored at random, scaled so the face box is
36-200 px wide (log-uniform), brightness x0.7-1.3, and blended in through a feathered elliptical
mask, never overlapping another face's square. Backgrounds: random crops of scikit-image's
textures and scenes without faces (brick, grass, gravel, coffee, rocket, motorcycle, page, text,
coins, hubble_deep_field) resized to 640x480.

Writes FOLDER/photo_NNN.jpg (JPEG quality 92) and FOLDER/faces.csv (photo,x1,y1,x2,y2: where each
pasted face's box went), then prints FOLDER. Runs in Tools/bench/.venv (peers_venv.sh).

Usage: FN2E_DATA=../shared/data python compose_photos.py FOLDER [--count 200] [--seed 1]
"""
import argparse
import csv
import importlib.util
import math
import os
import sys

import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

BACKGROUNDS = ["brick.png", "grass.png", "gravel.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
               "page.png", "text.png", "coins.png", "hubble_deep_field.jpg"]
W, H = 640, 480


def skimage_data(name):
    """A picture shipped in scikit-image's wheel, read without importing scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None:
        sys.exit("scikit-image is not installed in this environment (Tools/bench/peers_venv.sh installs it)")
    return Image.open(os.path.join(spec.submodule_search_locations[0], "data", name)).convert("RGB")


def source_faces(data):
    """[(picture as float32 HxWx3, face box x1,y1,x2,y2)] from the sample photos and the astronaut."""
    mtcnn = MTCNN(keep_all=True, device="cpu")
    pictures = [Image.open(os.path.join(data, "caffe", "mtcnn", n)).convert("RGB") for n in ("test1.jpg", "test2.jpg")]
    pictures.append(skimage_data("astronaut.png"))
    out = []
    for pic in pictures:
        with torch.no_grad():
            boxes, probs = mtcnn.detect(pic)
        for box, p in zip(boxes if boxes is not None else [], probs if probs is not None else []):
            if p >= 0.95:
                out.append((np.asarray(pic, np.float32), [float(v) for v in box]))
    if len(out) < 3:
        sys.exit(f"only {len(out)} source faces found; expected the sample photos' and the astronaut's")
    return out


def cut(picture, box, rng):
    """The face's square patch (float HxWx3) and the face box within it, mirrored at random."""
    x1, y1, x2, y2 = box
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, 1.8 * max(x2 - x1, y2 - y1)
    h, w = picture.shape[:2]
    px1, py1 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
    px2, py2 = min(w, int(cx + side / 2)), min(h, int(cy + side / 2))
    patch = picture[py1:py2, px1:px2]
    face = [x1 - px1, y1 - py1, x2 - px1, y2 - py1]
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
        face = [patch.shape[1] - face[2], face[1], patch.shape[1] - face[0], face[3]]
    return patch, face


def feather(h, w):
    """An elliptical mask, 1 inside, falling to 0 over the outer fifth."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.sqrt(((xx + 0.5) / w - 0.5) ** 2 + ((yy + 0.5) / h - 0.5) ** 2) * 2
    return np.clip((1 - r) / 0.2, 0, 1)[..., None]


def background(pictures, rng):
    pic = pictures[rng.integers(len(pictures))]
    pw, ph = pic.size
    scale = rng.uniform(max(W / pw, H / ph), max(W / pw, H / ph) * 2)
    big = pic.resize((max(W, round(pw * scale)), max(H, round(ph * scale))), Image.BILINEAR)
    x, y = rng.integers(big.width - W + 1), rng.integers(big.height - H + 1)
    return np.asarray(big.crop((x, y, x + W, y + H)), np.float32).copy()


def compose(faces, backgrounds, rng):
    """One photo (uint8 HxWx3) and the boxes of the faces pasted in it."""
    canvas = background(backgrounds, rng)
    placed, boxes = [], []
    for _ in range(rng.integers(1, 5)):
        picture, box = faces[rng.integers(len(faces))]
        patch, face = cut(picture, box, rng)
        width = math.exp(rng.uniform(math.log(36), math.log(200)))
        s = width / (face[2] - face[0])
        ph, pw = max(1, round(patch.shape[0] * s)), max(1, round(patch.shape[1] * s))
        if pw > W or ph > H:
            continue
        for _try in range(20):
            x, y = int(rng.integers(W - pw + 1)), int(rng.integers(H - ph + 1))
            if all(x + pw <= a or a + b <= x or y + ph <= c or c + d <= y for a, c, b, d in placed):
                break
        else:
            continue
        small = np.asarray(Image.fromarray(patch.astype(np.uint8)).resize((pw, ph), Image.BILINEAR), np.float32)
        small = np.clip(small * rng.uniform(0.7, 1.3), 0, 255)
        m = feather(ph, pw)
        canvas[y:y + ph, x:x + pw] = canvas[y:y + ph, x:x + pw] * (1 - m) + small * m
        placed.append((x, y, pw, ph))
        boxes.append([x + face[0] * s, y + face[1] * s, x + face[2] * s, y + face[3] * s])
    return canvas.round().astype(np.uint8), boxes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    data = os.environ.get("FN2E_DATA") or sys.exit("set FN2E_DATA to the shared data folder")
    torch.set_num_threads(2)
    rng = np.random.default_rng(a.seed)
    faces = source_faces(data)
    backgrounds = [skimage_data(n) for n in BACKGROUNDS]
    os.makedirs(a.folder, exist_ok=True)
    rows = []
    for k in range(a.count):
        boxes = []
        while not boxes:
            photo, boxes = compose(faces, backgrounds, rng)
        name = f"photo_{k:03d}.jpg"
        Image.fromarray(photo).save(os.path.join(a.folder, name), quality=92)
        rows += [[name] + [f"{v:.1f}" for v in b] for b in boxes]
    tmp = os.path.join(a.folder, "faces.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["photo", "x1", "y1", "x2", "y2"])
        w.writerows(rows)
    os.replace(tmp, os.path.join(a.folder, "faces.csv"))
    print(f"{a.count} photos, {len(rows)} faces from {len(faces)} source faces", file=sys.stderr)
    print(a.folder)


if __name__ == "__main__":
    main()
