"""Reads an fn2e graph file (docs/IR.md's grammar: header, imports, graphs, params, nodes, calls) and
builds the same network in PyTorch, so the benchmarks time both frameworks on one description.

    flat = load("Graphs/expnet48_stage2.fn2e", sizes={"K": 7})   # calls inlined, dead nodes dropped
    model = GraphModule(flat)                                     # nn.Module; model(inputs) -> values

Calls are inlined as fn2e's Inliner does (callee values renamed PREFIX.name, `frozen`,
`frozen_through`); only the nodes the graph's outputs need are kept. The parameter count is the sum
of the declared shapes, so a benchmark can check it against `fn2e-compile summary`. An op without a
PyTorch mapping below is an error naming the file, line and op, never a silent skip.
"""
import math
import os
import re

import torch
import torch.nn as nn
import torch.nn.functional as F


class GraphError(Exception):
    pass


_TOKEN = re.compile(r"""
    (?P<space>[ \t\r]+) | (?P<comment>(\#|//)[^\n]*) | (?P<newline>\n)
  | (?P<value>%("([^"\\]|\\.)*"|[A-Za-z0-9_./-]+)) | (?P<global>@("([^"\\]|\\.)*"|[A-Za-z0-9_./-]+))
  | (?P<string>"([^"\\]|\\.)*")
  | (?P<number>[+-]?(\d+(\.\d+)?([eE][+-]?\d+)?|inf)(?![A-Za-z0-9_])|nan)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*) | (?P<punct>[()\[\]{},:=])
""", re.X)


def _tokens(text, path):
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise GraphError(f"{path}:{line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind == "newline":
            yield "newline", "\n", line
            line += 1
        elif kind not in ("space", "comment"):
            yield kind, m.group(), line
        pos = m.end()
    yield "end", "", line


def _name(token):
    body = token[1:]
    return body[1:-1] if body.startswith('"') else body


class _Parser:
    def __init__(self, path):
        self.path = path
        with open(path, encoding="utf-8") as f:
            self.toks = list(_tokens(f.read(), path))
        self.i = 0

    def peek(self, skip_newlines=False):
        j = self.i
        while skip_newlines and self.toks[j][0] == "newline":
            j += 1
        return self.toks[j]

    def take(self, kind=None, text=None, skip_newlines=False):
        if skip_newlines:
            while self.toks[self.i][0] == "newline":
                self.i += 1
        tok = self.toks[self.i]
        if (kind and tok[0] != kind) or (text is not None and tok[1] != text):
            raise GraphError(f"{self.path}:{tok[2]}: expected {text or kind}, found {tok[1]!r}")
        self.i += 1
        return tok

    def type_(self):
        dtype = self.take("word")[1]
        self.take("punct", "[")
        dims = []
        while self.peek()[1] != "]":
            kind, text, _ = self.take()
            dims.append(int(text) if kind == "number" else text)
            if self.peek()[1] == ",":
                self.take()
        self.take("punct", "]")
        return dtype, dims

    def number(self):
        text = self.take("number")[1]
        return float(text) if re.search(r"[.eEna]", text) else int(text)

    def attrs(self):
        out = {}
        if self.peek()[1] != "{":
            return out
        self.take("punct", "{")
        while self.peek(True)[1] != "}":
            key = self.take("word", skip_newlines=True)[1]
            self.take("punct", "=")
            kind, text, _ = self.peek()
            if kind == "punct" and text == "[":
                self.take()
                items = []
                while self.peek()[1] != "]":
                    items.append(self.number())
                    if self.peek()[1] == ",":
                        self.take()
                self.take()
                out[key] = items
            elif kind == "number":
                out[key] = self.number()
            elif kind == "string":
                out[key] = self.take()[1][1:-1]
            else:
                word = self.take("word")[1]
                out[key] = {"true": True, "false": False}.get(word, word)
            if self.peek(True)[1] == ",":
                self.take(skip_newlines=True)
        self.take("punct", "}", skip_newlines=True)
        return out

    def file(self):
        """(imports, graphs) of the file: graphs as dicts in the order written."""
        self.take("word", "fn2e", skip_newlines=True)
        self.take("number")
        imports, graphs = [], []
        while True:
            kind, text, line = self.take(skip_newlines=True)
            if kind == "end":
                return imports, graphs
            if text == "import":
                imports.append(os.path.join(os.path.dirname(self.path), self.take("string")[1][1:-1]))
            elif text == "graph":
                graphs.append(self.graph(line))
            else:
                raise GraphError(f"{self.path}:{line}: expected import or graph, found {text!r}")

    def graph(self, line):
        g = {"name": _name(self.take("global")[1]), "file": self.path, "line": line,
             "inputs": [], "params": [], "nodes": [], "outputs": []}
        self.take("punct", "(")
        while self.peek(True)[1] != ")":
            name = _name(self.take("value", skip_newlines=True)[1])
            self.take("punct", ":")
            g["inputs"].append((name, self.type_()))
            if self.peek(True)[1] == ",":
                self.take(skip_newlines=True)
        self.take("punct", ")", skip_newlines=True)
        self.take("punct", "{")
        while True:
            kind, text, line = self.take(skip_newlines=True)
            if text == "}":
                return g
            if text == "param":
                name = _name(self.take("value")[1])
                self.take("punct", ":")
                _, shape = self.type_()
                self.take("punct", "=")
                init, args = self.take("word")[1], []
                if self.peek()[1] == "(":
                    self.take()
                    while self.peek()[1] != ")":
                        args.append(self.number())
                        if self.peek()[1] == ",":
                            self.take()
                    self.take()
                attrs = self.attrs()
                g["params"].append({"name": name, "shape": shape, "init": init, "args": args,
                                    "trainable": attrs.get("trainable", True), "line": line})
            elif text == "return":
                g["outputs"].append(_name(self.take("value")[1]))
                while self.peek()[1] == ",":
                    self.take()
                    g["outputs"].append(_name(self.take("value")[1]))
            elif kind == "value":
                self.take("punct", "=")
                if self.peek()[1] in ("f32", "i32") and self.toks[self.i + 1][1] == "[":
                    self.type_()
                op = self.take("word")[1]
                callee = _name(self.take("global")[1]) if self.peek()[0] == "global" else None
                self.take("punct", "(")
                operands = []
                while self.peek(True)[1] != ")":
                    operands.append(_name(self.take("value", skip_newlines=True)[1]))
                    if self.peek(True)[1] == ",":
                        self.take(skip_newlines=True)
                self.take("punct", ")", skip_newlines=True)
                g["nodes"].append({"name": _name(text), "op": op, "callee": callee, "operands": operands,
                                   "attrs": self.attrs(), "where": f"{self.path}:{line}"})
            else:
                raise GraphError(f"{self.path}:{line}: expected param, a node or return, found {text!r}")


def _read(path, graphs, seen):
    path = os.path.normpath(path)
    if path in seen:
        return None
    seen.add(path)
    imports, own = _Parser(path).file()
    for imp in imports:
        _read(imp, graphs, seen)
    for g in own:
        graphs[g["name"]] = g
    return own[-1] if own else None


def _dependencies(g, value):
    """The parameters `value` is computed from, within graph g."""
    producers = {n["name"]: n for n in g["nodes"]}
    params = {p["name"] for p in g["params"]}
    out, stack, seen = set(), [value], set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in params:
            out.add(v)
        elif v in producers:
            stack += producers[v]["operands"]
    return out


def _inline(g, graphs):
    """g with every call replaced by the callee's nodes, renamed as fn2e's Inliner does."""
    out = dict(g, params=[dict(p) for p in g["params"]], nodes=[])
    rename = {}
    for node in g["nodes"]:
        node = dict(node, operands=[rename.get(o, o) for o in node["operands"]])
        if node["op"] != "call":
            out["nodes"].append(node)
            continue
        if node["callee"] not in graphs:
            raise GraphError(f"{node['where']}: no graph @{node['callee']}")
        callee = _inline(graphs[node["callee"]], graphs)
        a = node["attrs"]
        prefix = a.get("prefix") or node["name"]
        chosen = a.get("output") or callee["outputs"][0]
        frozen = {p["name"] for p in callee["params"]} if a.get("frozen") else set()
        if a.get("frozen_through"):
            frozen |= _dependencies(callee, a["frozen_through"])
        inner = {name: arg for (name, _), arg in zip(callee["inputs"], node["operands"])}
        for p in callee["params"]:
            q = dict(p, name=prefix + "." + p["name"])
            if p["name"] in frozen:
                q["trainable"] = False
            inner[p["name"]] = q["name"]
            out["params"].append(q)
        for n in callee["nodes"]:
            n = dict(n, operands=[inner.get(o, o) for o in n["operands"]])
            new = node["name"] if n["name"] == chosen else prefix + "." + n["name"]
            inner[n["name"]] = new
            out["nodes"].append(dict(n, name=new))
        if inner[chosen] != node["name"]:
            rename[node["name"]] = inner[chosen]
    out["outputs"] = [rename.get(o, o) for o in g["outputs"]]
    return out


def load(path, graph=None, sizes=None):
    """The graph (default: the file's last) flat, its named sizes bound, only what its outputs need."""
    graphs = {}
    last = _read(path, graphs, set())
    g = graphs.get(graph) if graph else last
    if g is None:
        raise GraphError(f"{path}: no graph {'@' + graph if graph else ''}")
    flat = _inline(g, graphs)
    producers = {n["name"]: n for n in flat["nodes"]}
    needed, stack = set(), list(flat["outputs"])
    while stack:
        v = stack.pop()
        if v not in needed:
            needed.add(v)
            stack += producers[v]["operands"] if v in producers else []
    flat["nodes"] = [n for n in flat["nodes"] if n["name"] in needed]
    flat["params"] = [p for p in flat["params"] if p["name"] in needed]
    sizes = dict(sizes or {})

    def bind(dims, where):
        out = []
        for d in dims:
            if isinstance(d, str) and d != "N":
                if d not in sizes:
                    raise GraphError(f"{where}: the size {d} is not bound (--bind {d}=...)")
                d = sizes[d]
            out.append(d)
        return out
    for p in flat["params"]:
        p["shape"] = bind(p["shape"], f"{flat['file']}: %{p['name']}")
    flat["inputs"] = [(n, (t, bind(d, f"{flat['file']}: %{n}"))) for n, (t, d) in flat["inputs"]]
    return flat


def parameter_count(flat):
    return sum(math.prod(p["shape"]) for p in flat["params"])


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _init(p):
    shape, args = p["shape"], p["args"]
    fan_in = math.prod(shape) // shape[0] if shape else 1
    t = torch.empty(shape)
    kind = p["init"]
    if kind == "zeros":
        return t.zero_()
    if kind == "constant":
        return t.fill_(args[0])
    if kind == "gaussian":
        return t.normal_(0, args[0])
    if kind == "uniform":
        return t.uniform_(args[0], args[1])
    if kind == "xavier":
        r = math.sqrt(3 / fan_in)
        return t.uniform_(-r, r)
    if kind == "msra":
        return t.normal_(0, math.sqrt(2 / fan_in))
    raise GraphError(f"%{p['name']}: initializer {kind} has no PyTorch mapping")


def _epilogue(y, a):
    if a.get("activation", "none") == "relu":
        slope = a.get("negative_slope", 0.0)
        return F.leaky_relu(y, slope) if slope else F.relu(y)
    return y


def _channel(v, x):
    return v.view(1, -1, *([1] * (x.dim() - 2)))


def _pool(x, a, avg):
    if a.get("global"):
        return F.adaptive_avg_pool2d(x, 1) if avg else F.adaptive_max_pool2d(x, 1)
    k, s, pad = _pair(a["kernel"]), _pair(a.get("stride", 1)), _pair(a.get("pad", 0))
    ceil = a.get("round", "floor") == "ceil"
    if avg:
        return F.avg_pool2d(x, k, s, pad, ceil_mode=ceil, count_include_pad=True)
    return F.max_pool2d(x, k, s, pad, ceil_mode=ceil)


def _reshape(x, shape):
    dims = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(dims)


def _batch_norm(x, mean, var, gamma, beta, a, training):
    """docs/IR.md's batch_norm: the given statistics, or with momentum < 1 in training the batch's
    (and mean, var kept as running averages: running = momentum running + (1 - momentum) batch)."""
    momentum = a.get("momentum", 1.0)
    return F.batch_norm(x, mean, var, gamma, beta, training=training and momentum < 1, momentum=1 - momentum,
                        eps=a.get("eps", 1e-5))


def _resize(x, size):
    h, w = x.shape[2:]
    rows = torch.arange(size[0]) * h // size[0]
    cols = torch.arange(size[1]) * w // size[1]
    return x[:, :, rows][:, :, :, cols]


# op -> f(operands, attrs, training); docs/IR.md gives each op's semantics.
OPS = {
    "conv2d": lambda v, a, t: _epilogue(F.conv2d(v[0], v[1], v[2] if len(v) > 2 else None, _pair(a.get("stride", 1)),
                                                 _pair(a.get("pad", 0)), _pair(a.get("dilation", 1)), a.get("groups", 1)), a),
    "linear": lambda v, a, t: _epilogue(F.linear(v[0], v[1], v[2] if len(v) > 2 else None), a),
    "max_pool": lambda v, a, t: _pool(v[0], a, avg=False),
    "avg_pool": lambda v, a, t: _pool(v[0], a, avg=True),
    "relu": lambda v, a, t: F.leaky_relu(v[0], a["negative_slope"]) if a.get("negative_slope") else F.relu(v[0]),
    "prelu": lambda v, a, t: F.prelu(v[0], v[1]),
    "sigmoid": lambda v, a, t: torch.sigmoid(v[0]),
    "tanh": lambda v, a, t: torch.tanh(v[0]),
    "dropout": lambda v, a, t: F.dropout(v[0], a.get("ratio", 0.5), training=t),
    "flatten": lambda v, a, t: torch.flatten(v[0], a.get("axis", 1), a.get("end_axis", -1)),
    "reshape": lambda v, a, t: _reshape(v[0], a["shape"]),
    "transpose": lambda v, a, t: v[0].permute(*a["perm"]),
    "concat": lambda v, a, t: torch.cat(v, a.get("axis", 1)),
    "slice": lambda v, a, t: v[0].narrow(a.get("axis", 1), a["start"], a["end"] - a["start"]),
    "channel_replicate": lambda v, a, t: v[0].expand(-1, a.get("count", 3), *v[0].shape[2:]),
    "resize": lambda v, a, t: _resize(v[0], a["size"]),
    "add": lambda v, a, t: v[0] + v[1],
    "sub": lambda v, a, t: v[0] - v[1],
    "mul": lambda v, a, t: v[0] * v[1],
    "maximum": lambda v, a, t: torch.maximum(v[0], v[1]),
    "affine": lambda v, a, t: v[0] * a.get("scale", 1.0) + a.get("shift", 0.0),
    "scale": lambda v, a, t: v[0] * _channel(v[1], v[0]) + (_channel(v[2], v[0]) if len(v) > 2 else 0),
    "bias": lambda v, a, t: v[0] + _channel(v[1], v[0]),
    "batch_norm": lambda v, a, t: _batch_norm(v[0], v[1], v[2], None, None, a, t),
    "softmax": lambda v, a, t: F.softmax(v[0], a.get("axis", 1)),
    "log_softmax": lambda v, a, t: F.log_softmax(v[0], a.get("axis", 1)),
    "softmax_cross_entropy": lambda v, a, t: F.cross_entropy(v[0], v[1].long()),
    "euclidean_loss": lambda v, a, t: ((v[0] - v[1]) ** 2).sum() / (2 * v[0].shape[0]),
    "mean": lambda v, a, t: v[0].mean(dim=a.get("axes") or None),
    "sum": lambda v, a, t: v[0].sum(dim=a.get("axes") or None),
}


# The attributes each mapping above understands; any other (an op grown a new mode) stops the run.
ATTRS = {
    "conv2d": {"stride", "pad", "dilation", "groups", "activation", "negative_slope"},
    "linear": {"activation", "negative_slope"},
    "max_pool": {"kernel", "stride", "pad", "round", "global"}, "avg_pool": {"kernel", "stride", "pad", "round", "global"},
    "relu": {"negative_slope"}, "dropout": {"ratio"}, "flatten": {"axis", "end_axis"}, "reshape": {"shape"},
    "transpose": {"perm"}, "concat": {"axis"}, "slice": {"axis", "start", "end"}, "channel_replicate": {"count"},
    "resize": {"size"}, "affine": {"scale", "shift"}, "batch_norm": {"eps", "momentum"}, "softmax": {"axis"},
    "log_softmax": {"axis"}, "mean": {"axes"}, "sum": {"axes"},
}


class GraphModule(nn.Module):
    """A flat graph from load() as a module: forward(inputs: {name: tensor}) -> {name: tensor} of
    every value computed; parameters are registered under their fn2e names ('.' -> '__')."""

    def __init__(self, flat):
        super().__init__()
        for n in flat["nodes"]:
            if n["op"] not in OPS:
                raise GraphError(f"{n['where']}: op {n['op']} has no PyTorch mapping in Tools/bench/fn2e_torch.py")
            unknown = set(n["attrs"]) - ATTRS.get(n["op"], set())
            if unknown:
                raise GraphError(f"{n['where']}: {n['op']} with {', '.join(sorted(unknown))}: no PyTorch mapping in Tools/bench/fn2e_torch.py")
        self.flat = flat
        # batch_norm read only by a scale (gamma, beta) runs as one F.batch_norm with weight and bias,
        # as a PyTorch user's BatchNorm2d would.
        readers = {}
        for n in flat["nodes"]:
            for o in n["operands"]:
                readers.setdefault(o, []).append(n)
        self.fused = {}
        for n in flat["nodes"]:
            r = readers.get(n["name"], [])
            if n["op"] == "batch_norm" and len(r) == 1 and r[0]["op"] == "scale" and r[0]["operands"][0] == n["name"] \
                    and n["name"] not in flat["outputs"]:
                self.fused[r[0]["name"]] = n
        self.skipped = {n["name"] for n in self.fused.values()}
        for p in flat["params"]:
            self.register_parameter(p["name"].replace(".", "__"), nn.Parameter(_init(p), requires_grad=p["trainable"]))

    def forward(self, inputs):
        values = dict(inputs)
        for p in self.flat["params"]:
            values[p["name"]] = getattr(self, p["name"].replace(".", "__"))
        for n in self.flat["nodes"]:
            if n["name"] in self.skipped:
                continue
            bn = self.fused.get(n["name"])
            if bn:
                x, mean, var = (values[o] for o in bn["operands"])
                gamma, beta = (values[o] for o in n["operands"][1:]) if len(n["operands"]) == 3 else (values[n["operands"][1]], None)
                values[n["name"]] = _batch_norm(x, mean, var, gamma, beta, bn["attrs"], self.training)
            else:
                values[n["name"]] = OPS[n["op"]]([values[o] for o in n["operands"]], n["attrs"], self.training)
        return values
