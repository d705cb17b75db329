"""The peers of Tools/bench/photos_vs_peers.py, one per process, run as a user would run them on a
folder of photos (decoding included), 2 threads:

  fer        the `fer` package, FER().detect_emotions(cv2.imread(photo)): its Haar detector, then its
             emotion classifier (its defaults: TensorFlow Lite model, faces >= 50 px)
  fer-mtcnn  the same with FER(mtcnn=True): facenet-pytorch's MTCNN finds the faces
  facenet    facenet-pytorch's MTCNN alone, MTCNN(keep_all=True).detect(PIL RGB photo)

Writes one CSV row per face found (photo,x1,y1,x2,y2) to --boxes and prints one JSON line: seconds
from the start of the process to the model being ready, then each photo's seconds in order (the
first includes any lazy set-up), faces found, peak RSS. Runs in Tools/bench/.venv (peers_venv.sh).

Usage: python photo_peers.py fer|fer-mtcnn|facenet FOLDER --boxes OUT.csv
"""
import time

START = time.perf_counter()

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def photos(folder):
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.lower().endswith(PHOTO_EXTENSIONS))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tool", choices=["fer", "fer-mtcnn", "facenet"])
    ap.add_argument("folder")
    ap.add_argument("--boxes", required=True)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    if a.tool == "facenet":
        from facenet_pytorch import MTCNN
        from PIL import Image
        mtcnn = MTCNN(keep_all=True, device="cpu")
        version = "facenet-pytorch 2.6.0, torch " + torch.__version__

        def find(path):
            with torch.no_grad():
                boxes, _ = mtcnn.detect(Image.open(path).convert("RGB"))
            return [] if boxes is None else [list(map(float, b)) for b in boxes]
    else:
        if a.tool == "fer-mtcnn":
            # FER(mtcnn=True) imports facenet-pytorch after TensorFlow, and PyPI's torchvision (a CUDA
            # build) loaded after TensorFlow 2.21 aborts the process ("LLVM ERROR: inconsistency in
            # registered CommandLine options"); loaded first, both work.
            import facenet_pytorch  # noqa: F401
        import cv2
        import tensorflow as tf
        from fer.fer import FER
        import fer as fer_package
        cv2.setNumThreads(a.threads)
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        detector = FER(mtcnn=a.tool == "fer-mtcnn")
        version = f"fer {fer_package.__version__}, TensorFlow {tf.__version__}, OpenCV {cv2.__version__}, torch {torch.__version__}"

        def find(path):
            return [[x, y, x + w, y + h] for x, y, w, h in (f["box"] for f in detector.detect_emotions(cv2.imread(path)))]
    ready = time.perf_counter() - START
    seconds, rows = [], []
    for path in photos(a.folder):
        t0 = time.perf_counter()
        found = find(path)
        seconds.append(time.perf_counter() - t0)
        rows += [[os.path.basename(path)] + [f"{v:.1f}" for v in b] for b in found]
    with open(a.boxes, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["photo", "x1", "y1", "x2", "y2"])
        w.writerows(rows)
    print(json.dumps({"tool": a.tool, "version": version, "ready_s": ready, "seconds": seconds, "faces": len(rows),
                      "threads": a.threads, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
