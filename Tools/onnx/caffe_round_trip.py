"""The issue's round trip for Caffe models: MTCNN's det1-det3 (P-, R-, O-Net) from
$FN2E_DATA/caffe/mtcnn imported into fn2e (`fn2e-compile import caffe`), exported to ONNX
(`fn2e-compile export onnx`) and run in ONNX Runtime on the inputs of
$FN2E_DATA/caffe/mtcnn/reference, whose outputs OpenCV 4.12's Caffe importer
(cv2.dnn.readNetFromCaffe) computed from the original files. Each case's net is imported with its
input size (the prototxt's four `input_dim` lines set to the case's shape, so the P-Net also runs
on the 47x31 photo crop). Prints, per net output, the largest
absolute and relative differences; exits 1 when one is above 1e-5 relative (|a - b| / max(1, |b|)).

Usage: PY=$(bash Tools/onnx/venv.sh)/bin/python; FN2E_DATA=... $PY Tools/onnx/caffe_round_trip.py
Needs .build/release/fn2e-compile.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

import exported


def main():
    data = os.environ.get("FN2E_DATA") or sys.exit("set FN2E_DATA to the shared data folder")
    mtcnn = os.path.join(data, "caffe", "mtcnn")
    reference = os.path.join(mtcnn, "reference")
    cases = json.load(open(os.path.join(reference, "manifest.json")))["cases"]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for case, spec in sorted(cases.items()):
            net = spec["net"]
            if net not in ("det1", "det2", "det3"):
                continue
            model = os.path.join(tmp, case + ".onnx")
            lines = open(os.path.join(mtcnn, net + ".prototxt")).read().split("\n")
            dims = iter(spec["input"]["shape"])
            prototxt = os.path.join(tmp, case + ".prototxt")
            with open(prototxt, "w") as f:
                f.write("\n".join(f"input_dim: {next(dims)}" if line.startswith("input_dim:") else line for line in lines))
            quiet = dict(check=True, cwd=exported.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run([exported.COMPILE, "import", "caffe", prototxt, os.path.join(mtcnn, net + ".caffemodel"), "-o", tmp, "--name", case], **quiet)
            subprocess.run([exported.COMPILE, "export", "onnx", os.path.join(tmp, case + ".fn2e"), "--weights",
                            os.path.join(tmp, case + ".safetensors"), "-o", model], **quiet)
            x = np.fromfile(os.path.join(reference, case, spec["input"]["file"]), "<f4").reshape(spec["input"]["shape"])
            session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
            names = [o.name for o in session.get_outputs()]
            outs = dict(zip(names, session.run(names, {session.get_inputs()[0].name: x})))
            layers = {layer["name"]: layer for layer in spec["layers"]}
            for name in names:
                layer = layers[name]
                want = np.fromfile(os.path.join(reference, case, layer["file"]), "<f4").reshape(layer["shape"]).astype(np.float64)
                d = np.abs(outs[name] - want)
                tested = float((d / np.maximum(1, np.abs(want))).max())
                print(f"{case} {name} {list(want.shape)}: ONNX Runtime on fn2e's export against OpenCV's Caffe import: "
                      f"max |difference| {d.max():.3g}, max relative {float((d / np.maximum(np.abs(want), 1e-30)).max()):.3g}, tested {tested:.3g}")
                ok &= tested <= 1e-5
    print(f"onnxruntime {ort.__version__}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
