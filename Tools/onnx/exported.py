"""The models fn2e exports for the checks of Tools/onnx (ONNX Runtime in fixtures.py, OpenCV in
opencv_check.py): ExpNet48 with seeded weights; with FN2E_DATA, the O-Net imported from
$FN2E_DATA/caffe/mtcnn/det3.* and ExpNet48 trained for a few steps on CK+48 by `fn2e-run train`
(Tests/Fixtures/Onnx/trained.train), exported from its run folder (left out, with a note, when
FN2E_DATA is unset)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPILE = os.path.join(ROOT, ".build", "release", "fn2e-compile")
RUN = os.path.join(ROOT, ".build", "release", "fn2e-run")


def export(tmp):
    """Exports each model into `tmp`; yields (name, model path, input shape)."""
    cases = [("expnet48", ["Graphs/expnet48.fn2e", "--random-weights", "1", "--bind", "K=7"], (3, 1, 48, 48))]
    data = os.environ.get("FN2E_DATA")
    if data:
        det3 = os.path.join(data, "caffe", "mtcnn", "det3")
        subprocess.run([COMPILE, "import", "caffe", det3 + ".prototxt", det3 + ".caffemodel", "-o", tmp, "--name", "onet"], check=True, cwd=ROOT)
        cases.append(("onet", [os.path.join(tmp, "onet.fn2e"), "--weights", os.path.join(tmp, "onet.safetensors")], (3, 3, 48, 48)))
        run = os.path.join(tmp, "trained")
        subprocess.run([RUN, "train", "Tests/Fixtures/Onnx/trained.train", "--set", "output=" + run], check=True, cwd=ROOT)
        cases.append(("trained", [run], (3, 1, 48, 48)))
    else:
        print("FN2E_DATA is unset: the O-Net and trained ExpNet48 cases are left out", file=sys.stderr)
    for name, args, shape in cases:
        model = os.path.join(tmp, name + ".onnx")
        subprocess.run([COMPILE, "export", "onnx"] + args + ["-o", model], check=True, cwd=ROOT)
        yield name, model, shape
