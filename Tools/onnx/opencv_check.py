"""OpenCV's ONNX importer (cv2.dnn.readNetFromONNX, OpenCV 4.12) on the models fn2e exports
(ExpNet48, the O-Net: Tools/onnx/exported.py), fed the inputs of Tests/Fixtures/Onnx/export.io.safetensors.
Each output is compared with ONNX Runtime's (stored in that fixture) and with fn2e's own: the
exported file imported back (`fn2e-compile import onnx`) and run (`fn2e-run infer`). Prints the
largest absolute and relative differences; exits 1 when one is above 1e-5 relative
(|a - b| / max(1, |b|), as the Swift tests measure).

With `--big DIR` it checks instead the dlib ResNet and VGG-Face that Tools/onnx/big_models.py
wrote into DIR, against ONNX Runtime's and fn2e's outputs stored in DIR/NAME.io.safetensors.

Usage: PY=$(bash Tools/onnx/torch_venv.sh)/bin/python; FN2E_DATA=... $PY Tools/onnx/opencv_check.py [--big DIR]
Needs .build/release/fn2e-compile and fn2e-run.
"""
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

import exported
import safetensors_io

RUN = os.path.join(exported.ROOT, ".build", "release", "fn2e-run")
FIXTURE = os.path.join(exported.ROOT, "Tests", "Fixtures", "Onnx", "export.io.safetensors")


def fn2e_outputs(model, name, x, tmp):
    """fn2e's outputs of an ONNX file: imported, then run by fn2e-run infer."""
    subprocess.run([exported.COMPILE, "import", "onnx", model, "-o", tmp, "--name", name + "_back"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    np.save(os.path.join(tmp, name + "_x.npy"), x)
    out = os.path.join(tmp, name + "_out")
    subprocess.run([RUN, "infer", os.path.join(tmp, name + "_back.fn2e"), "--weights", os.path.join(tmp, name + "_back.safetensors"),
                    "--input", os.path.join(tmp, name + "_x.npy"), "--output", out], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {f[:-4]: np.load(os.path.join(out, f)) for f in os.listdir(out)}


def compare(what, got, want):
    d = np.abs(got.astype(np.float64) - want)
    rel = float((d / np.maximum(1, np.abs(want))).max())
    print(f"{what}: max |difference| {d.max():.3g}, max relative {float((d / np.maximum(np.abs(want), 1e-30)).max()):.3g}, "
          f"tested {rel:.3g}")
    return rel <= 1e-5


def opencv_outputs(model, feed, x, names):
    net = cv2.dnn.readNetFromONNX(model)
    net.setInput(x, feed)
    return dict(zip(names, net.forward(names)))


def big(directory):
    ok = True
    for name in ["dlib_face", "vgg_face"]:
        io = safetensors_io.read(os.path.join(directory, name + ".io.safetensors"))
        (feed, x), = [(k.split(":", 1)[1], v) for k, v in io.items() if k.startswith("input:")]
        ort = {k.split(":", 1)[1]: v for k, v in io.items() if k.startswith("output:")}
        outs = opencv_outputs(os.path.join(directory, name + ".onnx"), feed, x, sorted(ort))
        for o in sorted(ort):
            ok &= compare(f"{name} {o}: OpenCV against ONNX Runtime", outs[o], ort[o])
            ok &= compare(f"{name} {o}: OpenCV against fn2e", outs[o], io["fn2e:" + o])
    return ok


def main():
    print(f"OpenCV {cv2.__version__}")
    if sys.argv[1:2] == ["--big"]:
        sys.exit(0 if big(sys.argv[2]) else 1)
    fixture = safetensors_io.read(FIXTURE)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, _ in exported.export(tmp):
            (feed, x), = [(k.split(":", 1)[1], v) for k, v in fixture.items() if k.startswith(name + "/input:")]
            ort = {k.split(":", 1)[1]: v for k, v in fixture.items() if k.startswith(name + "/output:")}
            names = sorted(ort)
            outs = opencv_outputs(model, feed, x, names)
            ours = fn2e_outputs(model, name, x, tmp)
            for o in names:
                ok &= compare(f"{name} {o}: OpenCV against ONNX Runtime", outs[o], ort[o])
                ok &= compare(f"{name} {o}: OpenCV against fn2e", outs[o], ours[o])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
