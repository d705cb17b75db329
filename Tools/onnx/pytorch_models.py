"""Exports models made with PyTorch as ONNX with torch.onnx and writes PyTorch's own outputs beside
them, for `PyTorchModelTests` (fn2e's import of each model against PyTorch, within 1e-5):

  DIR/<name>.onnx             torch.onnx's TorchScript exporter (dynamo=False), opset 17, the batch
                              dynamic ("N"; the P-Net's H and W too)
  DIR/<name>.dynamo.onnx      torch.onnx's default exporter (dynamo=True, through onnxscript), opset
                              18, the same dynamic dimensions
  DIR/<name>.io.safetensors   input:<input name> and output:<output name> (PyTorch's outputs)

Models: torchvision's ResNet-18 and MobileNetV2 with random weights (torch.manual_seed(0); batch
norm statistics made non-trivial so that the folding the exporter does is tested), and
facenet-pytorch's MTCNN P-Net, R-Net and O-Net with the weights its wheel ships. Inputs are seeded:
uniform in [-1, 1], the MTCNN nets' input range ((pixel - 127.5) / 128).

Usage: PY=$(bash Tools/onnx/torch_venv.sh)/bin/python; $PY Tools/onnx/pytorch_models.py DIR
Then:  FN2E_ONNX_PYTORCH=DIR swift test -c release --filter PyTorchModelTests
"""
import os
import sys
import warnings

import numpy as np
import torch
import torchvision
from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

import safetensors_io

warnings.filterwarnings("ignore", category=DeprecationWarning)


def randomized(model):
    """Seeded random weights, with batch norm statistics and affine parameters away from 0 and 1."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.2, 0.2)
    return model


def models():
    torch.manual_seed(0)
    yield "resnet18", randomized(torchvision.models.resnet18(weights=None)), (2, 3, 224, 224), ["logits"], {}
    torch.manual_seed(0)
    yield "mobilenet_v2", randomized(torchvision.models.mobilenet_v2(weights=None)), (2, 3, 224, 224), ["logits"], {}
    yield "pnet", PNet(pretrained=True), (2, 3, 31, 37), ["reg", "prob"], {2: "H", 3: "W"}
    yield "rnet", RNet(pretrained=True), (3, 3, 24, 24), ["reg", "prob"], {}
    yield "onet", ONet(pretrained=True), (3, 3, 48, 48), ["reg", "landmarks", "prob"], {}


def main(out):
    os.makedirs(out, exist_ok=True)
    for k, (name, model, shape, outputs, spatial) in enumerate(models()):
        model.eval()
        x = torch.from_numpy(np.random.default_rng(k).uniform(-1, 1, shape).astype(np.float32))
        path = os.path.join(out, name + ".onnx")
        axes = {"input": {0: "N", **spatial}, **{o: {0: "N"} for o in outputs}}
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17, input_names=["input"],
                          output_names=outputs, dynamic_axes=axes)
        dims = {0: torch.export.Dim("N")} | {k: torch.export.Dim(v) for k, v in spatial.items()}
        torch.onnx.export(model, (x,), os.path.join(out, name + ".dynamo.onnx"), dynamo=True, opset_version=18,
                          input_names=["input"], output_names=outputs, dynamic_shapes=({**dims},), external_data=False, verbose=False)
        with torch.no_grad():
            ys = model(x)
        ys = ys if isinstance(ys, tuple) else (ys,)
        tensors = [("input:input", x.numpy())] + [("output:" + o, y.numpy()) for o, y in zip(outputs, ys)]
        safetensors_io.write(os.path.join(out, name + ".io.safetensors"), tensors,
                             {"made_by": "Tools/onnx/pytorch_models.py", "torch": torch.__version__})
        print(name, path, os.path.getsize(path), "bytes;", ", ".join(f"{o} {list(y.shape)}" for o, y in zip(outputs, ys)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "onnx-pytorch-models")
