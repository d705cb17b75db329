"""PyTorch side of Tools/bench/bench_vs_torch.sh: one workload, one memory layout, one process.

Workloads (float32, the same shapes and work as the fn2e side):
  stage1  ExpNet trunk (five conv3x3+ReLU+maxpool2 blocks) on [N,1,224,224], Euclidean loss
          (Caffe's: sum of squares / 2N) against a fixed [N,512,7,7] target, SGD momentum step.
  stage2  trunk + fc6 256 + ReLU + dropout + fc7 7, softmax cross-entropy, SGD momentum step.
  vgg     VGG-Face forward (13 conv + 3 fc + softmax) on [N,3,224,224], no grad.
  graph   the training step of any fn2e graph file that returns %loss (--graph FILE, --bind K=7), read
          by fn2e_torch.py: the network fn2e-run bench-train times, built from the same description;
          float inputs uniform in [0, 1), class labels uniform over the classes of the cross-entropy
          that reads them, as fn2e's side draws them.
Prints one JSON line: median seconds per step, images/s, peak RSS, parameter count.

`bench_torch.py check` tests the graph reader against the hand-written networks above: the ExpNet
stage-1 trunk, stage 2 and VGG-Face read from their .fn2e files get the hand-written modules'
weights, in order, and must give the same outputs (float32 tolerance) with the same parameter count.
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn

import fn2e_torch


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


def check():
    """The graph reader against the hand-written networks (see the module's docstring)."""
    torch.manual_seed(0)
    cases = [("Tools/bench/expnet_stage1_trunk.fn2e", trunk(), "exp_pool5", [1, 1, 224, 224]),
             ("Graphs/expnet_stage2.fn2e", nn.Sequential(trunk(), nn.Flatten(), nn.Linear(512 * 7 * 7, 256), nn.ReLU(),
                                                         nn.Dropout(), nn.Linear(256, 7)), "fc7", [1, 1, 224, 224]),
             ("Graphs/vgg_face.fn2e", vgg_face(), "prob", [1, 3, 224, 224])]
    for path, hand, output, shape in cases:
        flat = fn2e_torch.load(path)
        graph = fn2e_torch.GraphModule(flat).eval()
        hand.eval()
        ours, theirs = list(graph.parameters()), list(hand.parameters())
        counts = fn2e_torch.parameter_count(flat), sum(p.numel() for p in theirs)
        if counts[0] != counts[1] or [p.shape for p in ours] != [p.shape for p in theirs]:
            raise SystemExit(f"{path}: {counts[0]} parameters read, {counts[1]} hand-written, or their shapes differ")
        with torch.no_grad():
            for a, b in zip(ours, theirs):
                a.copy_(b)
            x = torch.rand(shape)
            values = graph({flat["inputs"][0][0]: x, "target": torch.zeros(1, 512, 7, 7), "label": torch.zeros(1, dtype=torch.int32)})
            y, z = values[output], hand(x)
        err = ((y - z).abs().max() / z.abs().max()).item()
        if not err < 1e-5:
            raise SystemExit(f"{path}: %{output} differs from the hand-written network's output by {err:.2e} (relative)")
        print(f"{path}: {counts[0]} parameters, %{output} within {err:.1e} of the hand-written network")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["stage1", "stage2", "vgg", "graph", "check"])
    ap.add_argument("--graph", help="graph file for the graph workload")
    ap.add_argument("--bind", action="append", default=[], help="a named size, e.g. K=7 (repeatable)")
    ap.add_argument("--layout", choices=["nchw", "cl"], default="nchw")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.workload == "check":
        return check()
    torch.manual_seed(0)
    fmt = torch.channels_last if args.layout == "cl" else torch.contiguous_format
    n = args.batch

    if args.workload == "graph":
        if not args.graph:
            ap.error("the graph workload needs --graph FILE")
        sizes = {}
        for b in args.bind:
            name, _, value = b.partition("=")
            if not value.isdigit():
                ap.error(f"--bind {b}: expected NAME=INTEGER")
            sizes[name] = int(value)
        flat = fn2e_torch.load(args.graph, sizes=sizes)
        model = fn2e_torch.GraphModule(flat).train().to(memory_format=fmt)
        inputs = {}
        for name, (dtype, dims) in flat["inputs"]:
            shape = [n if d == "N" else d for d in dims]
            if dtype == "i32":
                inputs[name] = torch.zeros(shape, dtype=torch.int64)
            else:
                inputs[name] = torch.rand(shape).to(memory_format=fmt) if len(shape) == 4 else torch.rand(shape)
        with torch.no_grad():  # one forward pass with labels 0 finds each label input's class count
            values = model(inputs)
        for node in flat["nodes"]:
            if node["op"] == "softmax_cross_entropy":
                labels = node["operands"][1]
                inputs[labels] = torch.randint(0, values[node["operands"][0]].shape[1], inputs[labels].shape)
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)

        def step():
            opt.zero_grad(set_to_none=True)
            model(inputs)["loss"].backward()
            opt.step()
    elif args.workload == "vgg":
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
        "parameters": sum(p.numel() for p in model.parameters()),
    }))


if __name__ == "__main__":
    main()
