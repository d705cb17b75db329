"""Exports the two big face nets to ONNX and runs them in ONNX Runtime, into a folder outside git
(the files are 22 MB and 580 MB, too big for fixtures):

  dlib_face   dlib's face-recognition ResNet, imported from
              $FN2E_DATA/dlib/dlib_face_recognition_resnet_model_v1.dat (input [2,3,150,150])
  vgg_face    VGG-Face from $FN2E_DATA/caffe/vgg_face/VGG_FACE_deploy.prototxt with seeded weights
              written as a caffemodel (`fn2e-compile import make-test-model`, as
              Tools/vggface_smoke.sh does), imported (input [2,3,224,224])

For each NAME it writes DIR/NAME.fn2e and .safetensors (fn2e's import), DIR/NAME.onnx (the export)
and DIR/NAME.io.safetensors: the seeded input (input:NAME), ONNX Runtime's outputs (output:NAME) and
fn2e's own outputs of its import (`fn2e-run infer`, fn2e:NAME). ExportTests.testBigModelsMatchOnnxRuntime
(FN2E_ONNX_BIG=DIR) compares fn2e with ONNX Runtime; Tools/onnx/opencv_check.py --big DIR runs
OpenCV's readNetFromONNX on the same files.

Usage: PY=$(bash Tools/onnx/venv.sh)/bin/python; FN2E_DATA=... $PY Tools/onnx/big_models.py DIR
Needs .build/release/fn2e-compile and fn2e-run.
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort

import exported
import safetensors_io

RUN = os.path.join(exported.ROOT, ".build", "release", "fn2e-run")


def fn2e(*args):
    subprocess.run([exported.COMPILE, *args], check=True, cwd=exported.ROOT, stdout=subprocess.DEVNULL)


def main(out):
    data = os.environ.get("FN2E_DATA")
    if not data:
        sys.exit("set FN2E_DATA to the shared data folder")
    os.makedirs(out, exist_ok=True)
    fn2e("import", "dlib", os.path.join(data, "dlib", "dlib_face_recognition_resnet_model_v1.dat"), "-o", out, "--name", "dlib_face")
    fn2e("import", "make-test-model", os.path.join(data, "caffe", "vgg_face", "VGG_FACE_deploy.prototxt"), "-o", out, "--name", "VGG_FACE")
    # fc8 (the logits) is an output too: with seeded weights prob is nearly uniform, so it alone would
    # hide an error in the layers before the softmax.
    fn2e("import", "caffe", os.path.join(out, "VGG_FACE.caffemodel"), "-o", out, "--name", "vgg_face", "--outputs", "fc8,prob")
    os.remove(os.path.join(out, "VGG_FACE.caffemodel"))
    for name, shape in [("dlib_face", (2, 3, 150, 150)), ("vgg_face", (2, 3, 224, 224))]:
        base = os.path.join(out, name)
        fn2e("export", "onnx", base + ".fn2e", "--weights", base + ".safetensors", "-o", base + ".onnx")
        onnx.checker.check_model(base + ".onnx", full_check=True)
        session = ort.InferenceSession(base + ".onnx", providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0].name
        x = np.random.default_rng(len(name)).uniform(-1, 1, shape).astype(np.float32)
        names = [o.name for o in session.get_outputs()]
        tensors = [("input:" + feed, x)] + [("output:" + k, v) for k, v in zip(names, session.run(names, {feed: x}))]
        np.save(base + "_x.npy", x)
        subprocess.run([RUN, "infer", base + ".fn2e", "--weights", base + ".safetensors", "--input", base + "_x.npy",
                        "--output", base + "_fn2e"], check=True, cwd=exported.ROOT, stdout=subprocess.DEVNULL)
        for k in names:
            tensors.append(("fn2e:" + k, np.load(os.path.join(base + "_fn2e", k + ".npy"))))
        safetensors_io.write(base + ".io.safetensors", tensors, {"made_by": "Tools/onnx/big_models.py", "onnxruntime": ort.__version__})
        for k in names:
            want, got = dict(tensors)["output:" + k], dict(tensors)["fn2e:" + k]
            d = np.abs(got.astype(np.float64) - want)
            print(f"{name} {k} {want.shape}: fn2e against ONNX Runtime: max |difference| {d.max():.3g}, "
                  f"max relative {float((d / np.maximum(np.abs(want), 1e-30)).max()):.3g}, "
                  f"tested {float((d / np.maximum(1, np.abs(want))).max()):.3g}, largest |value| {float(np.abs(want).max()):.3g}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__))
