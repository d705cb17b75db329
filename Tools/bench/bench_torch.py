"""PyTorch side of Tools/bench/bench_vs_torch.sh: one workload, one memory layout, one process.

Workloads (float32, the same shapes and work as the fn2e side):
  stage1  ExpNet trunk (five conv3x3+ReLU+maxpool2 blocks) on [N,1,224,224], Euclidean loss
          (Caffe's: sum of squares / 2N) against a fixed [N,512,7,7] target, SGD momentum step.
  stage2  trunk + fc6 256 + ReLU + dropout + fc7 7, softmax cross-entropy, SGD momentum step.
  vgg     VGG-Face forward (13 conv + 3 fc + softmax) on [N,3,224,224], no grad.
Prints one JSON line: median seconds per step, images/s, peak RSS.
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn


def trunk():
    layers, c = [], 1
    for out in (64, 128, 256, 512, 512):
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2)]
        c = out
    return nn.Sequential(*layers)


def vgg_face():
    layers, c = [], 3
    for block in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        for out in block:
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU()]
            c = out
        layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
    layers += [nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
               nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 2622), nn.Softmax(dim=1)]
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["stage1", "stage2", "vgg"])
    ap.add_argument("--layout", choices=["nchw", "cl"], default="nchw")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    fmt = torch.channels_last if args.layout == "cl" else torch.contiguous_format
    n = args.batch

    if args.workload == "vgg":
        model = vgg_face().eval().to(memory_format=fmt)
        x = torch.rand(n, 3, 224, 224).to(memory_format=fmt)

        def step():
            with torch.no_grad():
                model(x)
    else:
        if args.workload == "stage1":
            model = trunk()
            target = torch.rand(n, 512, 7, 7).to(memory_format=fmt)

            def loss_fn(out):
                return ((out - target) ** 2).sum() / (2 * n)
        else:
            model = nn.Sequential(trunk(), nn.Flatten(), nn.Linear(512 * 7 * 7, 256), nn.ReLU(), nn.Dropout(),
                                  nn.Linear(256, 7))
            labels = torch.randint(0, 7, (n,))
            ce = nn.CrossEntropyLoss()

            def loss_fn(out):
                return ce(out, labels)
        model = model.train().to(memory_format=fmt)
        x = torch.rand(n, 1, 224, 224).to(memory_format=fmt)
        opt = torch.optim.SGD(model.parameters(), lr=1e-6 if args.workload == "stage1" else 0.001, momentum=0.9)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x))
            loss.backward()
            opt.step()

    times = []
    for k in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        step()
        dt = time.perf_counter() - t0
        if k >= args.warmup:
            times.append(dt)
    med = statistics.median(times)
    print(json.dumps({
        "workload": args.workload, "layout": args.layout, "batch": n, "seconds": med, "times": times,
        "images_per_s": n / med, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
