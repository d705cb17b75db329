"""Writes the ONNX fixtures of Tests/OnnxImportTests (small, committed), with ONNX Runtime as the
independent reference:

  ops.onnx, ops.io.safetensors    a model of our own over most imported ops, built with onnx.helper
                                  (seeded weights); its input and ONNX Runtime's outputs
  export.io.safetensors           inputs and ONNX Runtime's outputs of models fn2e exports
                                  (ExpNet48 with seeded weights; the O-Net imported from
                                  $FN2E_DATA/caffe/mtcnn/det3.*, when FN2E_DATA is set)

Usage: PY=$(bash Tools/onnx/venv.sh)/bin/python; $PY Tools/onnx/fixtures.py [ops|export]...
Needs .build/release/fn2e-compile for `export`. Tensors are named input:NAME / output:NAME.
"""
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import exported
import safetensors_io

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "Onnx")


def run_ort(model_path, feeds):
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return list(zip(names, session.run(names, feeds)))


def ops_model():
    rng = np.random.default_rng(30)
    def w(name, *shape, scale=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)
    inits = [
        w("c1.w", 8, 3, 3, 3), w("c1.b", 8),
        numpy_helper.from_array((rng.random(8) + 0.5).astype(np.float32), "bn.scale"), w("bn.bias", 8),
        w("bn.mean", 8), numpy_helper.from_array((rng.random(8) + 0.5).astype(np.float32), "bn.var"),
        w("pr.slope", 8, 1, 1), w("c2.w", 8, 4, 3, 3), w("c2.b", 8),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"), numpy_helper.from_array(np.array(6.0, np.float32), "six"),
        numpy_helper.from_array(np.array([], np.float32), "roi"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
        numpy_helper.from_array(np.array(0.5, np.float32), "padv"),
        w("fc.w", 8 * 4 * 4 * 2, 10, scale=0.05), w("fc.b", 10),
        numpy_helper.from_array(np.array(1.5, np.float32), "k"),
        numpy_helper.from_array(np.array([0, 5, 2], np.int64), "shape3"),
        w("sc", 1, 5, 1),
    ]
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "c1.w", "c1.b"], ["c1"], pads=[1, 1, 1, 1]),                       # [N,8,12,12]
        n("BatchNormalization", ["c1", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["bn"], epsilon=1e-3),
        n("PRelu", ["bn", "pr.slope"], ["pr"]),
        n("MaxPool", ["pr"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),    # [N,8,6,6]
        n("Conv", ["mp", "c2.w", "c2.b"], ["c2"], group=2, dilations=[2, 2], pads=[2, 2, 2, 2]),
        n("Clip", ["c2", "zero", "six"], ["clip"]),
        n("AveragePool", ["clip"], ["ap"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),  # [N,8,3,3]
        n("Resize", ["ap", "roi", "scales"], ["up"], mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),  # 6x6
        n("Pad", ["up", "pads", "padv"], ["pad"], mode="constant"),                        # [N,8,8,8]
        n("MaxPool", ["pad"], ["mp2"], kernel_shape=[2, 2], strides=[2, 2]),                # [N,8,4,4]
        n("LRN", ["mp2"], ["lrn"], size=3, alpha=1e-3, beta=0.75, bias=2.0),
        n("Sigmoid", ["mp2"], ["sig"]),
        n("Concat", ["lrn", "sig"], ["cat"], axis=1),                                      # [N,16,4,4]
        n("Flatten", ["cat"], ["flat"]),
        n("Gemm", ["flat", "fc.w", "fc.b"], ["fc"], alpha=0.5),
        n("LeakyRelu", ["fc"], ["lr"], alpha=0.2),
        n("Mul", ["lr", "k"], ["mul"]),
        n("Sub", ["mul", "k"], ["sub"]),
        n("Tanh", ["sub"], ["tanh"]),
        n("Softmax", ["tanh"], ["prob"], axis=1),
        n("Reshape", ["fc", "shape3"], ["r3"]),                                            # [N,5,2]
        n("Mul", ["r3", "sc"], ["r3s"]),
        n("LogSoftmax", ["r3s"], ["logp"], axis=1),
        n("GlobalAveragePool", ["c2"], ["gap"]),
        n("Transpose", ["gap"], ["gapt"], perm=[0, 2, 3, 1]),
        n("Squeeze", ["gapt", "axes12"], ["sq"]),
    ]
    inits.append(numpy_helper.from_array(np.array([1, 2], np.int64), "axes12"))
    # PyTorch's x.view(x.size(0), -1) with a dynamic batch: Shape, Gather, Unsqueeze, Concat, Reshape.
    nodes += [
        n("Shape", ["c2"], ["shp"]),
        n("Gather", ["shp", "i0"], ["n0"], axis=0),
        n("Unsqueeze", ["n0", "axes0"], ["n0u"]),
        n("Concat", ["n0u", "minus1"], ["flatshape"], axis=0),
        n("Reshape", ["c2", "flatshape"], ["flat2"]),                                      # [N,288]
        n("Slice", ["flat2", "starts", "ends", "axes1"], ["sl"]),                          # [N,40]
        n("AveragePool", ["clip"], ["apx"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),  # count_include_pad=0
        # Div of two computed values, and of a constant by a computed value (divisors in [1.5, 2.5]).
        n("Add", ["sig", "k"], ["sigk"]),
        n("Div", ["mp2", "sigk"], ["dv"]),
        n("Div", ["k", "sigk"], ["rdv"]),
        n("Add", ["dv", "rdv"], ["dvs"]),                                                  # [N,8,4,4]
    ]
    inits += [numpy_helper.from_array(np.array(0, np.int64), "i0"), numpy_helper.from_array(np.array([0], np.int64), "axes0"),
              numpy_helper.from_array(np.array([-1], np.int64), "minus1"), numpy_helper.from_array(np.array([10], np.int64), "starts"),
              numpy_helper.from_array(np.array([50], np.int64), "ends"), numpy_helper.from_array(np.array([1], np.int64), "axes1")]
    graph = helper.make_graph(nodes, "ops", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 12, 12])],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 10]), helper.make_tensor_value_info("logp", TensorProto.FLOAT, ["N", 5, 2]), helper.make_tensor_value_info("sq", TensorProto.FLOAT, ["N", 8]),
                               helper.make_tensor_value_info("sl", TensorProto.FLOAT, ["N", 40]), helper.make_tensor_value_info("apx", TensorProto.FLOAT, ["N", 8, 3, 3]),
                               helper.make_tensor_value_info("dvs", TensorProto.FLOAT, ["N", 8, 4, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="fn2e-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(OUT, "ops.onnx")
    onnx.save(model, path)
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 12)).astype(np.float32)
    outs = run_ort(path, {"x": x})
    safetensors_io.write(os.path.join(OUT, "ops.io.safetensors"), [("input:x", x)] + [("output:" + k, v) for k, v in outs],
                      {"made_by": "Tools/onnx/fixtures.py ops", "onnxruntime": ort.__version__})
    print("wrote", path, [(k, v.shape) for k, v in outs])


def export_fixtures():
    tensors = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, shape in exported.export(tmp):
            onnx.checker.check_model(onnx.load(model), full_check=True)
            session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
            x = np.random.default_rng(len(name)).uniform(-1, 1, shape).astype(np.float32)
            feed = session.get_inputs()[0].name
            tensors.append((f"{name}/input:{feed}", x))
            for k, v in run_ort(model, {feed: x}):
                tensors.append((f"{name}/output:{k}", v))
                print(name, k, v.shape)
    safetensors_io.write(os.path.join(OUT, "export.io.safetensors"), tensors,
                         {"made_by": "Tools/onnx/fixtures.py export", "onnxruntime": ort.__version__})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for what in sys.argv[1:] or ["ops", "export"]:
        {"ops": ops_model, "export": export_fixtures}[what]()
