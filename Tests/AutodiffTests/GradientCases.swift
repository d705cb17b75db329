import Autodiff
import Foundation
import IR
import Reference
import Runtime
import Scheduler
import Tensors

/// Deterministic numbers for test values and random shapes (SplitMix64).
struct TestRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi), rounded to Float so the Float fast path sees exactly the same values.
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double {
        Double(Float(lo + (hi - lo) * Double(next() >> 11) / Double(1 << 53)))
    }
    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    mutating func pick<T>(_ xs: [T]) -> T { xs[int(0...xs.count - 1)] }
}

/// One small graph to differentiate. Every tensor that should get a gradient is a parameter; the
/// body's last value is `%loss` (a loss op) or `%y`, which is then reduced to a scalar as
/// `sum(y * r)` with a random input `%loss.r` so that every output element gets its own upstream gradient.
struct GradCase {
    var name: String
    var params: [String]
    var body: [String]
    /// Extra graph inputs, e.g. `%label: i32[2]`.
    var inputs: [String] = []
    /// Parameters frozen (batch_norm statistics).
    var frozen: Set<String> = []
    /// Parameters and inputs drawn from [0.5, 1.5] instead of [-1, 1] (variances).
    var positive: Set<String> = []
    /// Label inputs and their class counts.
    var classes: [String: Int] = [:]
}

/// A case built: the flat forward graph, its gradient graph and the values to run both with.
struct BuiltCase {
    var name: String
    var forward: Graph
    var grad: Graph
    var values: [String: [Double]]
    /// Shapes of every value of the gradient graph.
    var shapes: [String: [Int]]
}

enum GradCases {
    static let file = "/gradcheck.fn2e"

    static func text(_ c: GradCase, extraInput: String? = nil, tail: [String] = []) -> String {
        let inputs = (c.inputs + (extraInput.map { [$0] } ?? [])).joined(separator: ", ")
        var s = "fn2e 1\n# \(c.name)\ngraph @gradcheck(\(inputs)) {\n"
        for p in c.params {
            let name = String(p.split(separator: ":")[0].dropFirst())
            s += "  param \(p) = zeros" + (c.frozen.contains(name) ? " {trainable=false}" : "") + "\n"
        }
        for line in c.body + tail { s += "  \(line)\n" }
        let out = (c.body + tail).last!.split(separator: " ")[0]
        return s + "  return \(out)\n}\n"
    }

    /// Loads the case (adding the `sum(y * r)` loss where it ends in `%y`), differentiates it, and
    /// draws its values.
    static func build(_ c: GradCase, seed: UInt64) throws -> BuiltCase {
        var src = text(c)
        let endsInLoss = c.body.last!.hasPrefix("%loss ")
        var extra: String?
        if !endsInLoss {
            let g = try Loader.load(text: src, file: file).graph()!
            let shape = g.node("y")!.type!.shape!
            extra = "%loss.r: f32[\(shape.map(String.init).joined(separator: ","))]"
            src = text(c, extraInput: extra, tail: ["%loss.prod = mul(%y, %loss.r)", "%loss = sum(%loss.prod)"])
        }
        let forward = try Loader.load(text: src, file: file).graph()!
        return try build(name: c.name, forward: forward, positive: c.positive, classes: c.classes, seed: seed)
    }

    /// Differentiates a flat graph with bound shapes and draws its inputs and parameters.
    static func build(name: String, forward: Graph, positive: Set<String> = [], classes: [String: Int] = [:],
                      seed: UInt64) throws -> BuiltCase {
        let grad = try Autodiff.gradient(of: forward, loss: "loss")
        var rng = TestRNG(seed)
        var values: [String: [Double]] = [:]
        var shapes: [String: [Int]] = [:]
        for (name, t) in grad.typeTable { shapes[name] = t.shape! }
        for i in grad.inputs {
            let n = shapes[i.name]!.reduce(1, *)
            if let k = classes[i.name] {
                values[i.name] = (0..<n).map { _ in Double(rng.int(0...k - 1)) }
            } else {
                values[i.name] = (0..<n).map { _ in positive.contains(i.name) ? rng.uniform(0.5, 1.5) : rng.uniform(-1, 1) }
            }
        }
        for p in forward.params {
            let n = p.type.shape!.reduce(1, *)
            values[p.name] = (0..<n).map { _ in positive.contains(p.name) ? rng.uniform(0.5, 1.5) : rng.uniform(-1, 1) }
        }
        return BuiltCase(name: name, forward: forward, grad: grad, values: values, shapes: shapes)
    }

    /// Every differentiable forward op, on small shapes; conv and pooling attributes are drawn from `seed`.
    static func all(seed: UInt64 = 20240601) -> [GradCase] {
        var rng = TestRNG(seed)
        var cases: [GradCase] = []

        // conv2d: strides 1 and 2, padding, dilation, groups (depthwise included), bias or not,
        // and the fused activations the scheduler creates.
        let convShapes: [(groups: String, activation: String)] = [
            ("1", ""), ("1", ""), ("2", ""), ("depthwise", ""), ("1", "relu"), ("2", "leaky"),
        ]
        for (k, spec) in convShapes.enumerated() {
            let c = spec.groups == "depthwise" ? 3 : rng.pick([2, 4])
            let groups = spec.groups == "depthwise" ? c : Int(spec.groups)!
            let o = spec.groups == "depthwise" ? 2 * c : groups * rng.int(1...2)
            let (kh, kw) = (rng.int(1...3), rng.int(1...3))
            let stride = [k % 2 + 1, rng.int(1...2)]
            let pad = [rng.int(0...1), rng.int(0...(kw > 1 ? 1 : 0))]
            let dilation = [rng.int(1...2), rng.int(1...2)]
            let (h, w) = (rng.int(5...6), rng.int(5...6))
            let bias = k % 3 != 1
            var attrs = "stride=[\(stride[0]),\(stride[1])], pad=[\(pad[0]),\(pad[1])], dilation=[\(dilation[0]),\(dilation[1])], groups=\(groups)"
            if spec.activation == "relu" { attrs += ", activation=relu" }
            if spec.activation == "leaky" { attrs += ", activation=relu, negative_slope=0.1" }
            cases.append(GradCase(
                name: "conv2d \(k) g\(groups) \(spec.activation)",
                params: ["%x: f32[2,\(c),\(h),\(w)]", "%w: f32[\(o),\(c / groups),\(kh),\(kw)]"] + (bias ? ["%b: f32[\(o)]"] : []),
                body: ["%y = conv2d(%x, %w\(bias ? ", %b" : "")) {\(attrs)}"]))
        }

        // Pooling: kernels, strides, padding, both roundings, and global.
        for k in 0..<5 {
            for op in ["max_pool", "avg_pool"] {
                let kernel = [rng.int(2...3), rng.int(1...3)]
                let stride = [rng.int(1...2), rng.int(1...2)]
                let pad = [rng.int(0...kernel[0] - 1), k == 0 ? 0 : rng.int(0...kernel[1] - 1)]
                let round = k % 2 == 0 ? "ceil" : "floor"
                let (h, w) = (rng.int(4...6), rng.int(4...6))
                cases.append(GradCase(
                    name: "\(op) \(k) \(round)", params: ["%x: f32[2,2,\(h),\(w)]"],
                    body: ["%y = \(op)(%x) {kernel=[\(kernel[0]),\(kernel[1])], stride=[\(stride[0]),\(stride[1])], pad=[\(pad[0]),\(pad[1])], round=\(round)}"]))
            }
        }
        for op in ["max_pool", "avg_pool"] {
            cases.append(GradCase(name: "\(op) global", params: ["%x: f32[2,3,3,4]"], body: ["%y = \(op)(%x) {global=true}"]))
        }

        let x4 = "%x: f32[2,3,3,4]"
        cases += [
            GradCase(name: "relu", params: [x4], body: ["%y = relu(%x)"]),
            GradCase(name: "relu leaky", params: [x4], body: ["%y = relu(%x) {negative_slope=0.1}"]),
            GradCase(name: "relu negative slope", params: [x4], body: ["%y = relu(%x) {negative_slope=-0.5}"]),
            GradCase(name: "prelu shared", params: [x4, "%s: f32[1]"], body: ["%y = prelu(%x, %s)"]),
            GradCase(name: "prelu per channel", params: [x4, "%s: f32[3]"], body: ["%y = prelu(%x, %s)"]),
            GradCase(name: "sigmoid", params: [x4], body: ["%y = sigmoid(%x)"]),
            GradCase(name: "tanh", params: [x4], body: ["%y = tanh(%x)"]),
            GradCase(name: "flatten", params: [x4], body: ["%y = flatten(%x)"]),
            GradCase(name: "flatten axes", params: [x4], body: ["%y = flatten(%x) {axis=2, end_axis=3}"]),
            GradCase(name: "reshape", params: [x4], body: ["%y = reshape(%x) {shape=[0,4,-1]}"]),
            GradCase(name: "transpose", params: [x4], body: ["%y = transpose(%x) {perm=[2,0,3,1]}"]),
            GradCase(name: "concat", params: [x4, "%a: f32[2,1,3,4]", "%b: f32[2,2,3,4]"], body: ["%y = concat(%x, %a, %b)"]),
            GradCase(name: "concat last axis", params: [x4, "%a: f32[2,3,3,2]"], body: ["%y = concat(%a, %x) {axis=-1}"]),
            GradCase(name: "concat fan-out", params: [x4], body: ["%y = concat(%x, %x) {axis=2}"]),
            GradCase(name: "slice", params: [x4], body: ["%y = slice(%x) {axis=2, start=1, end=3}"]),
            GradCase(name: "slice channels", params: [x4], body: ["%y = slice(%x) {start=0, end=2}"]),
            GradCase(name: "channel_replicate", params: ["%x: f32[2,1,3,4]"], body: ["%y = channel_replicate(%x) {count=3}"]),
            GradCase(name: "resize up", params: ["%x: f32[2,2,3,4]"], body: ["%y = resize(%x) {size=[5,10]}"]),
            GradCase(name: "resize down", params: ["%x: f32[1,2,5,6]"], body: ["%y = resize(%x) {size=[2,4]}"]),
            GradCase(name: "affine", params: [x4], body: ["%y = affine(%x) {scale=-1.5, shift=0.25}"]),
            GradCase(name: "scale", params: [x4, "%g: f32[3]"], body: ["%y = scale(%x, %g)"]),
            GradCase(name: "scale bias", params: [x4, "%g: f32[3]", "%b: f32[3]"], body: ["%y = scale(%x, %g, %b)"]),
            GradCase(name: "scale rank 2", params: ["%x: f32[2,5]", "%g: f32[5]", "%b: f32[5]"], body: ["%y = scale(%x, %g, %b)"]),
            GradCase(name: "bias", params: [x4, "%b: f32[3]"], body: ["%y = bias(%x, %b)"]),
            GradCase(name: "batch_norm", params: [x4, "%m: f32[3]", "%v: f32[3]"], body: ["%y = batch_norm(%x, %m, %v) {eps=0.001}"],
                     frozen: ["m", "v"], positive: ["v"]),
            GradCase(name: "lrn", params: ["%x: f32[2,5,2,3]"], body: ["%y = lrn(%x) {size=3, alpha=0.5, beta=0.75, k=2.0}"]),
            GradCase(name: "lrn default", params: ["%x: f32[2,7,2,2]"], body: ["%y = lrn(%x)"]),
            GradCase(name: "l2_normalize", params: ["%x: f32[2,3,2,3]"], body: ["%y = l2_normalize(%x)"]),
            GradCase(name: "l2_normalize per position", params: ["%x: f32[2,4,3,2]", "%s: f32[4]"],
                     body: ["%n = l2_normalize(%x) {across_spatial=false, eps=0.01}", "%y = scale(%n, %s)"]),
            // prior_box is a constant of its operands' shapes: the gradient reaches x through mul only.
            GradCase(name: "prior_box", params: ["%x: f32[2,3,2,3]"],
                     body: ["%p = prior_box(%x, %x) {min_sizes=[2.0], max_sizes=[3.0], aspect_ratios=[2.0], clip=true}",
                            "%m = mean(%p)", "%y = mul(%x, %m)"]),
            GradCase(name: "linear", params: ["%x: f32[2,5]", "%w: f32[3,5]"], body: ["%y = linear(%x, %w)"]),
            GradCase(name: "linear bias", params: ["%x: f32[2,5]", "%w: f32[3,5]", "%b: f32[3]"], body: ["%y = linear(%x, %w, %b)"]),
            GradCase(name: "linear relu", params: ["%x: f32[3,5]", "%w: f32[4,5]", "%b: f32[4]"], body: ["%y = linear(%x, %w, %b) {activation=relu}"]),
            GradCase(name: "softmax", params: ["%x: f32[2,5]"], body: ["%y = softmax(%x)"]),
            GradCase(name: "softmax axis", params: ["%x: f32[2,3,4]"], body: ["%y = softmax(%x) {axis=-1}"]),
            GradCase(name: "log_softmax", params: ["%x: f32[2,5]"], body: ["%y = log_softmax(%x)"]),
            GradCase(name: "log_softmax axis", params: ["%x: f32[2,3,4]"], body: ["%y = log_softmax(%x) {axis=0}"]),
            GradCase(name: "mean axes", params: [x4], body: ["%y = mean(%x) {axes=[1,3]}"]),
            GradCase(name: "mean all", params: [x4], body: ["%loss = mean(%x)"]),
            GradCase(name: "sum axes", params: [x4], body: ["%y = sum(%x) {axes=[0,-1]}"]),
            GradCase(name: "softmax_cross_entropy", params: ["%x: f32[3,5]"], body: ["%loss = softmax_cross_entropy(%x, %label)"],
                     inputs: ["%label: i32[3]"], classes: ["label": 5]),
            GradCase(name: "euclidean_loss", params: ["%a: f32[3,2,2]", "%b: f32[3,2,2]"], body: ["%loss = euclidean_loss(%a, %b)"]),
            GradCase(name: "matmul", params: ["%a: f32[2,3]", "%b: f32[3,4]"], body: ["%y = matmul(%a, %b)"]),
            GradCase(name: "matmul ta", params: ["%a: f32[3,2]", "%b: f32[3,4]"], body: ["%y = matmul(%a, %b) {transpose_a=true}"]),
            GradCase(name: "matmul tb", params: ["%a: f32[2,3]", "%b: f32[4,3]"], body: ["%y = matmul(%a, %b) {transpose_b=true}"]),
            GradCase(name: "matmul ta tb", params: ["%a: f32[3,2]", "%b: f32[4,3]"], body: ["%y = matmul(%a, %b) {transpose_a=true, transpose_b=true}"]),
        ]
        // Broadcasting binary ops, each operand broadcast somewhere.
        for op in ["add", "sub", "mul", "div", "maximum"] {
            // div's divisors are drawn from [0.5, 1.5], away from its pole.
            let positive: Set<String> = op == "div" ? ["a", "b"] : []
            cases.append(GradCase(name: "\(op) broadcast", params: ["%a: f32[2,3,4]", "%b: f32[3,1]"], body: ["%y = \(op)(%a, %b)"], positive: positive))
            cases.append(GradCase(name: "\(op) broadcast both", params: ["%a: f32[2,1,4]", "%b: f32[3,1]"], body: ["%y = \(op)(%b, %a)"], positive: positive))
            cases.append(GradCase(name: "\(op) same", params: ["%a: f32[2,3]", "%b: f32[2,3]"], body: ["%y = \(op)(%a, %b)"], positive: positive))
        }
        cases.append(GradCase(name: "mul self", params: ["%a: f32[2,3]"], body: ["%y = mul(%a, %a)"]))
        cases.append(GradCase(name: "div self", params: ["%a: f32[2,3]"], body: ["%y = div(%a, %a)"], positive: ["a"]))
        // ExpNet-like chains: fan-out, fused activations, dropout (masks preset), frozen branches.
        cases.append(GradCase(
            name: "stage2 small",
            params: ["%x: f32[2,1,8,8]", "%c1.w: f32[2,1,3,3]", "%c1.b: f32[2]", "%c2.w: f32[4,2,3,3]", "%c2.b: f32[4]",
                     "%fc6.w: f32[6,16]", "%fc6.b: f32[6]", "%fc7.w: f32[3,6]", "%fc7.b: f32[3]"],
            body: ["%c1 = conv2d(%x, %c1.w, %c1.b) {pad=1}", "%r1 = relu(%c1)", "%p1 = max_pool(%r1) {kernel=2, stride=2}",
                   "%c2 = conv2d(%p1, %c2.w, %c2.b) {pad=1}", "%r2 = relu(%c2)", "%p2 = max_pool(%r2) {kernel=3, stride=2, round=ceil}",
                   "%f = flatten(%p2)", "%fc6 = linear(%f, %fc6.w, %fc6.b)", "%r6 = relu(%fc6)", "%d6 = dropout(%r6)",
                   "%fc7 = linear(%d6, %fc7.w, %fc7.b)", "%loss = softmax_cross_entropy(%fc7, %label)"],
            inputs: ["%label: i32[2]"], classes: ["label": 3]))
        cases.append(GradCase(
            name: "stage1 small",
            params: ["%x: f32[2,1,6,6]", "%f.w: f32[2,3,3,3]", "%c1.w: f32[2,1,3,3]", "%c1.b: f32[2]"],
            body: ["%rgb = channel_replicate(%x)", "%fc = conv2d(%rgb, %f.w) {pad=1}", "%fr = relu(%fc)",
                   "%fp = max_pool(%fr) {kernel=2, stride=2}", "%c1 = conv2d(%x, %c1.w, %c1.b) {pad=1}", "%r1 = relu(%c1)",
                   "%p1 = max_pool(%r1) {kernel=2, stride=2}", "%loss = euclidean_loss(%p1, %fp)"],
            frozen: ["f.w"]))
        // Batch norm with the batch's statistics (last, so the cases above keep their seeds); training
        // mode lowers batch_norm to batch_norm_train (+ batch_moments for the running averages).
        cases += [
            GradCase(name: "batch_norm_train", params: [x4], body: ["%y = batch_norm_train(%x) {eps=0.001}"]),
            GradCase(name: "batch_norm_train rank 2", params: ["%x: f32[4,5]"], body: ["%y = batch_norm_train(%x)"]),
            GradCase(name: "batch_norm training",
                     params: ["%x: f32[3,2,2,3]", "%w: f32[2,2,1,1]", "%g: f32[2]", "%b: f32[2]", "%m: f32[2]", "%v: f32[2]"],
                     body: ["%c = conv2d(%x, %w)", "%n = batch_norm(%c, %m, %v) {eps=0.01, momentum=0.9}", "%y = scale(%n, %g, %b)"],
                     frozen: ["m", "v"], positive: ["v"]),
        ]
        return cases
    }

    /// Dropout masks (0 or 1/(1 - ratio)) for every `dropout_mask` node, drawn from `seed`.
    static func masks(_ grad: Graph, _ shapes: [String: [Int]], seed: UInt64) -> [String: [Double]] {
        var rng = TestRNG(seed)
        var out: [String: [Double]] = [:]
        for n in grad.nodes where n.op == .dropoutMask {
            let ratio = n.fullAttrs.float("ratio")
            out[n.name] = (0..<shapes[n.name]!.reduce(1, *)).map { _ in rng.uniform(0, 1) < ratio ? 0 : 1 / (1 - ratio) }
        }
        return out
    }
}
