"""Writes ONNX's backend node test cases (onnx.backend.test.case.node.collect_testcases(), the
conformance cases ONNX Runtime and OpenCV run) in the usual layout, into a folder outside git:

  DIR/<case>/model.onnx
  DIR/<case>/test_data_set_<k>/input_<i>.pb, output_<j>.pb   (serialized TensorProto)

Usage: PY=$(bash Tools/onnx/venv.sh)/bin/python; $PY Tools/onnx/backend_cases.py DIR
Then: fn2e-compile onnx-backend DIR (or FN2E_ONNX_BACKEND=DIR swift test --filter BackendTests).
"""
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases


def main(out):
    os.makedirs(out, exist_ok=True)
    cases = collect_testcases()
    written = 0
    for case in cases:
        folder = os.path.join(out, case.name)
        os.makedirs(folder, exist_ok=True)
        onnx.save(case.model, os.path.join(folder, "model.onnx"))
        for k, (inputs, outputs) in enumerate(case.data_sets or []):
            data = os.path.join(folder, f"test_data_set_{k}")
            os.makedirs(data, exist_ok=True)
            graph = case.model.graph
            for i, value in enumerate(inputs):
                write(os.path.join(data, f"input_{i}.pb"), value, graph.input[i].name if i < len(graph.input) else "")
            for j, value in enumerate(outputs):
                write(os.path.join(data, f"output_{j}.pb"), value, graph.output[j].name if j < len(graph.output) else "")
        written += 1
    with open(os.path.join(out, "README.txt"), "w") as f:
        f.write(f"{written} ONNX backend node cases of onnx {onnx.__version__}, written by Tools/onnx/backend_cases.py\n")
    print(f"wrote {written} cases to {out} (onnx {onnx.__version__})")


def write(path, value, name):
    if isinstance(value, np.ndarray) or np.isscalar(value):
        tensor = numpy_helper.from_array(np.asarray(value), name)
        with open(path, "wb") as f:
            f.write(tensor.SerializeToString())
    # Sequences and optionals (a few cases) are left out: fn2e has neither.


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "onnx-backend-cases")
