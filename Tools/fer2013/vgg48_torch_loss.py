#!/usr/bin/env python3
"""VGG48 (Graphs/vgg48.fn2e: four stages of two 3x3 convolutions with batch normalization, 2x2 max
pools, 1024-1024 fully connected with dropout 0.5) trained in PyTorch as fn2e trains it, printing
the training loss per epoch: an independent answer to "is VGG48's slow start on FER2013 fn2e's or
the network's?". 1,000 FER2013 Training images (a seeded draw), no augmentation, inputs
(x - 127.5) / 128, SGD lr 0.01, momentum 0.9, weight decay 5e-4, cosine schedule with 20 warmup
steps, batch 64, one thread; He-normal weights, fc7 normal(0.01), as the graph's initializers.

Usage: PY=$(bash Tools/bench/peers_venv.sh)/bin/python; FN2E_DATA=../shared/data $PY Tools/fer2013/vgg48_torch_loss.py EPOCHS
Compare with fn2e-run train on a settings file of the same (docs/RESULTS.md gives both commands).
"""
import csv, math, os, random, sys
import numpy as np
import torch
import torch.nn as nn
from PIL import Image

torch.set_num_threads(1)
torch.manual_seed(1)
random.seed(1)
data = os.environ["FN2E_DATA"] + "/fer2013/"
index = list(csv.DictReader(open(data + "index.csv")))
classes = sorted({r["label"] for r in index})
rows = [r for r in index if r["usage"] == "Training"]
random.shuffle(rows)
rows = rows[:1000]
x = np.stack([np.asarray(Image.open(data + r["path"]).convert("L"), dtype=np.float32) for r in rows])[:, None]
x = torch.tensor((x - 127.5) / 128)
y = torch.tensor([classes.index(r["label"]) for r in rows])


def block(i, o):
    return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o, momentum=0.1), nn.ReLU()]


layers = []
for i, o in [(1, 64), (64, 128), (128, 256), (256, 512)]:
    layers += block(i, o) + block(o, o) + [nn.MaxPool2d(2)]
net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(4608, 1024), nn.ReLU(), nn.Dropout(),
                    nn.Linear(1024, 1024), nn.ReLU(), nn.Dropout(), nn.Linear(1024, 7))
for m in net.modules():
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    if isinstance(m, nn.Linear):
        nn.init.zeros_(m.bias)
nn.init.normal_(net[-1].weight, std=0.01)
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
epochs, per_epoch, batch = int(sys.argv[1]), 16, 64
total, step = epochs * per_epoch, 0
for e in range(epochs):
    order = torch.randperm(len(rows))
    order = torch.cat([order, order])  # the last batch of an epoch wraps around
    losses = []
    for s in range(per_epoch):
        idx = order[s * batch:(s + 1) * batch]
        lr = 0.01 * min(1, (step + 1) / 20) * 0.5 * (1 + math.cos(math.pi * step / total))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        losses.append(loss.item())
    print(f"epoch {e + 1} mean loss {np.mean(losses):.4f} last {losses[-1]:.4f}", flush=True)
