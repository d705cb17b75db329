#!/usr/bin/env python3
"""Writes the PyTorch parity fixture for the autodiff tests (Tests/AutodiffTests/TorchParityTests.swift).

A small ExpNet-shaped network (two conv + relu + max-pool blocks, then linear + relu and linear) with
fixed seeded weights and inputs, differentiated by PyTorch in float64 for two losses:
- stage 2: softmax cross-entropy of the logits against integer labels (mean over the batch);
- stage 1: Caffe's euclidean loss sum((a - b)^2) / (2N) between the conv trunk output and a fixed
  random target.
Inputs and weights are rounded to float32 first, so fn2e sees exactly the values PyTorch used.

Writes Tests/Fixtures/Autodiff/torch_parity.safetensors (inputs, weights, both losses and every
gradient as F32, labels as I32) and the matching graphs, Tests/Fixtures/Autodiff/torch_parity.fn2e.
Usage: PY=$(bash Tools/venv.sh)/bin/python; $PY Tools/autodiff/torch_parity.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

N, CLASSES = 2, 3
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "Autodiff")

GRAPHS = """fn2e 1

# The PyTorch parity nets (written by Tools/autodiff/torch_parity.py): an ExpNet-shaped trunk, and
# its two losses. The inlined parameters (net.*) are the tensor names of torch_parity.safetensors.
graph @trunk(%data: f32[N,1,16,16]) {
  param %conv1.weight: f32[4,1,3,3] = msra
  param %conv1.bias: f32[4] = zeros
  param %conv2.weight: f32[8,4,3,3] = msra
  param %conv2.bias: f32[8] = zeros
  param %fc1.weight: f32[16,128] = xavier
  param %fc1.bias: f32[16] = zeros
  param %fc2.weight: f32[3,16] = xavier
  param %fc2.bias: f32[3] = zeros
  %conv1 = f32[N,4,16,16] conv2d(%data, %conv1.weight, %conv1.bias) {pad=1}
  %relu1 = f32[N,4,16,16] relu(%conv1)
  %pool1 = f32[N,4,8,8] max_pool(%relu1) {kernel=2, stride=2}
  %conv2 = f32[N,8,8,8] conv2d(%pool1, %conv2.weight, %conv2.bias) {pad=1}
  %relu2 = f32[N,8,8,8] relu(%conv2)
  %pool2 = f32[N,8,4,4] max_pool(%relu2) {kernel=2, stride=2}
  %flat = f32[N,128] flatten(%pool2)
  %fc1 = f32[N,16] linear(%flat, %fc1.weight, %fc1.bias)
  %relu3 = f32[N,16] relu(%fc1)
  %fc2 = f32[N,3] linear(%relu3, %fc2.weight, %fc2.bias)
  return %fc2, %pool2
}

# Stage 2: classify with softmax cross-entropy.
graph @stage2(%data: f32[N,1,16,16], %label: i32[N]) {
  %logits = f32[N,3] call @trunk(%data) {output="fc2", prefix="net"}
  %loss = f32[] softmax_cross_entropy(%logits, %label)
  return %loss
}

# Stage 1: regress a fixed target with the conv trunk's output.
graph @stage1(%data: f32[N,1,16,16], %target: f32[N,8,4,4]) {
  %features = f32[N,8,4,4] call @trunk(%data) {output="pool2", prefix="net"}
  %loss = f32[] euclidean_loss(%features, %target)
  return %loss
}
"""


def f32(x):
    """Rounds to float32 and back, so both sides start from identical values."""
    return torch.tensor(np.asarray(x, dtype=np.float32), dtype=torch.float64)


def main():
    rng = np.random.default_rng(20240601)
    shapes = {
        "conv1.weight": (4, 1, 3, 3), "conv1.bias": (4,),
        "conv2.weight": (8, 4, 3, 3), "conv2.bias": (8,),
        "fc1.weight": (16, 128), "fc1.bias": (16,),
        "fc2.weight": (3, 16), "fc2.bias": (3,),
    }
    params = {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 4
        std = np.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.1
        params[name] = f32(rng.normal(0, std, shape)).requires_grad_(True)
    data = f32(rng.normal(0, 1, (N, 1, 16, 16)))
    label = torch.tensor(rng.integers(0, CLASSES, N), dtype=torch.int64)
    target = f32(rng.normal(0, 0.5, (N, 8, 4, 4)))

    def trunk():
        p = params
        x = F.max_pool2d(F.relu(F.conv2d(data, p["conv1.weight"], p["conv1.bias"], padding=1)), 2, 2)
        x = F.max_pool2d(F.relu(F.conv2d(x, p["conv2.weight"], p["conv2.bias"], padding=1)), 2, 2)
        h = F.relu(F.linear(x.flatten(1), p["fc1.weight"], p["fc1.bias"]))
        return F.linear(h, p["fc2.weight"], p["fc2.bias"]), x

    out = {"data": data.numpy().astype(np.float32), "label": label.numpy().astype(np.int32),
           "target": target.numpy().astype(np.float32)}
    for name, p in params.items():
        out["net." + name] = p.detach().numpy().astype(np.float32)

    logits, _ = trunk()
    loss2 = F.cross_entropy(logits, label)  # mean over the batch, as softmax_cross_entropy
    grads2 = torch.autograd.grad(loss2, list(params.values()))
    _, features = trunk()
    loss1 = ((features - target) ** 2).sum() / (2 * N)  # Caffe EuclideanLoss
    used1 = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]
    grads1 = torch.autograd.grad(loss1, [params[n] for n in used1])

    out["stage2.loss"] = np.array(loss2.item(), dtype=np.float32)
    out["stage1.loss"] = np.array(loss1.item(), dtype=np.float32)
    for name, g in zip(params, grads2):
        out["stage2.grad.net." + name] = g.numpy().astype(np.float32)
    for name, g in zip(used1, grads1):
        out["stage1.grad.net." + name] = g.numpy().astype(np.float32)

    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "torch_parity.safetensors")
    save_file(out, path, metadata={"generator": "Tools/autodiff/torch_parity.py", "torch": torch.__version__})
    with open(os.path.join(OUT, "torch_parity.fn2e"), "w") as f:
        f.write(GRAPHS)
    print(f"wrote {path} ({os.path.getsize(path)} bytes): stage2 loss {loss2.item():.6f}, stage1 loss {loss1.item():.6f}")


if __name__ == "__main__":
    main()
