import Detection
import IR

/// Runs any verified, flat graph with naive Double loops (`RefOps`): the oracle for every numeric
/// test. Values are flat row-major arrays; i32 values (labels) are stored as whole numbers.
public enum Interpreter {
    /// `values` holds every input and parameter (and may preset node values, such as dropout masks);
    /// returns every value of the graph by name.
    /// N must be bound (see `Scheduler.bind` or bind the inputs' types before verifying).
    public static func run(_ graph: Graph, _ values: [String: [Double]]) throws -> [String: [Double]] {
        var env = values
        var shapes: [String: [Int]] = [:]
        for (name, t) in graph.typeTable {
            guard let s = t.shape else { throw InterpreterError("'%\(name)' has unbound type \(t)") }
            shapes[name] = s
        }
        for i in graph.inputs where env[i.name] == nil { throw InterpreterError("missing input '%\(i.name)'") }
        for p in graph.params where env[p.name] == nil { throw InterpreterError("missing parameter '%\(p.name)'") }
        for n in graph.nodes where env[n.name] == nil {
            let xs = try n.operands.map { o -> [Double] in
                guard let v = env[o] else { throw InterpreterError("'%\(o)' has no value") }
                return v
            }
            let ss = n.operands.map { shapes[$0]! }
            env[n.name] = try evaluate(n, xs, ss, shapes[n.name]!)
        }
        return env
    }

    static func evaluate(_ n: Node, _ xs: [[Double]], _ ss: [[Int]], _ out: [Int]) throws -> [Double] {
        let a = n.fullAttrs
        func axis(_ key: String, _ rank: Int) -> Int { a.int(key) < 0 ? a.int(key) + rank : a.int(key) }
        func activate(_ y: [Double]) -> [Double] {
            a.string("activation") == "relu" ? RefOps.relu(y, negativeSlope: a.float("negative_slope")) : y
        }
        func pool() -> ((Int, Int), (Int, Int), (Int, Int), Bool) {
            if a.bool("global") { return ((ss[0][2], ss[0][3]), (1, 1), (0, 0), false) }
            return (a.pair("kernel"), a.pair("stride"), a.pair("pad"), a.string("round") == "ceil")
        }
        switch n.op {
        case .conv2d:
            return activate(RefOps.conv2d(x: xs[0], xShape: ss[0], w: xs[1], wShape: ss[1], bias: xs.count > 2 ? xs[2] : nil,
                                          stride: a.pair("stride"), pad: a.pair("pad"), dilation: a.pair("dilation"),
                                          groups: a.int("groups")).out)
        case .linear:
            return activate(RefOps.linear(x: xs[0], n: ss[0][0], k: ss[0][1], w: xs[1], m: ss[1][0], bias: xs.count > 2 ? xs[2] : nil))
        case .maxPool:
            let (k, s, p, c) = pool()
            return RefOps.maxPool(x: xs[0], xShape: ss[0], kernel: k, stride: s, pad: p, ceil: c).out
        case .avgPool:
            let (k, s, p, c) = pool()
            return RefOps.avgPool(x: xs[0], xShape: ss[0], kernel: k, stride: s, pad: p, ceil: c).out
        case .relu: return RefOps.relu(xs[0], negativeSlope: a.float("negative_slope"))
        case .prelu: return RefOps.prelu(x: xs[0], shape: ss[0], slope: xs[1])
        case .sigmoid: return RefOps.sigmoid(xs[0])
        case .tanh: return RefOps.tanh(xs[0])
        case .dropout, .flatten, .reshape: return xs[0]
        case .affine: return RefOps.affine(xs[0], scale: a.float("scale"), shift: a.float("shift"))
        case .transpose: return RefOps.transpose(x: xs[0], shape: ss[0], perm: a.ints("perm")).out
        case .concat: return RefOps.concat(Array(zip(xs, ss)).map { (data: $0.0, shape: $0.1) }, axis: axis("axis", out.count)).out
        case .slice:
            return RefOps.slice(x: xs[0], shape: ss[0], axis: axis("axis", out.count), start: a.int("start"), end: a.int("end")).out
        case .channelReplicate: return RefOps.channelReplicate(x: xs[0], shape: ss[0], k: a.int("count")).out
        case .resize: return RefOps.resize(x: xs[0], shape: ss[0], oh: out[2], ow: out[3])
        case .add, .sub, .mul, .div, .maximum:
            return RefOps.binary(RefOps.BinaryOp(rawValue: n.op.rawValue)!, a: xs[0], aShape: ss[0], b: xs[1], bShape: ss[1]).out
        case .scale: return activate(RefOps.channelScale(x: xs[0], shape: ss[0], scale: xs[1], bias: xs.count > 2 ? xs[2] : nil))
        case .bias: return RefOps.channelBias(x: xs[0], shape: ss[0], bias: xs[1])
        case .batchNorm: return RefOps.batchNorm(x: xs[0], shape: ss[0], mean: xs[1], variance: xs[2], eps: a.float("eps"))
        case .batchNormTrain: return RefOps.batchNormTrain(x: xs[0], shape: ss[0], eps: a.float("eps"))
        case .batchMoments:
            let (m, v) = RefOps.batchMoments(x: xs[0], shape: ss[0])
            return m + v
        case .lrn:
            if a.string("region") == "within_channel" {
                return RefOps.lrnWithin(x: xs[0], shape: ss[0], size: a.int("size"), alpha: a.float("alpha"), beta: a.float("beta"))
            }
            return RefOps.lrnAcross(x: xs[0], shape: ss[0], size: a.int("size"), alpha: a.float("alpha"), beta: a.float("beta"), k: a.float("k"))
        case .l2Normalize:
            return RefOps.l2Normalize(x: xs[0], shape: ss[0], acrossSpatial: a.bool("across_spatial"), eps: a.float("eps"))
        case .priorBox:
            return a.priorBoxes(feature: ss[0], image: ss[1]).map(Double.init)
        case .detectionOutput:
            // The post-processing is exact-compare logic, not arithmetic to check: the reference
            // runs the one implementation (checked against OpenCV's) on single-precision inputs.
            let f = xs.map { $0.map(Float.init) }
            var y = [Float](repeating: 0, count: out.reduce(1, *))
            try f[0].withUnsafeBufferPointer { loc in try f[1].withUnsafeBufferPointer { conf in try f[2].withUnsafeBufferPointer { priors in
                DetectionOutput.run(try a.detectionSpec(), loc: loc.baseAddress!, conf: conf.baseAddress!, priors: priors.baseAddress!,
                                    batch: ss[0][0], priorCount: ss[2][2] / 4, out: &y)
            } } }
            return y.map(Double.init)
        case .softmax, .logSoftmax:
            let ax = axis("axis", out.count)
            let view = [out[..<ax].reduce(1, *), out[ax], out[(ax + 1)...].reduce(1, *)]
            return n.op == .softmax ? RefOps.softmax(x: xs[0], shape: view) : RefOps.logSoftmax(x: xs[0], shape: view)
        case .softmaxCrossEntropy:
            return [RefOps.softmaxCrossEntropy(logits: xs[0], n: ss[0][0], c: ss[0][1], labels: xs[1].map { Int32($0) }).loss]
        case .euclideanLoss: return [RefOps.euclideanLoss(a: xs[0], b: xs[1], batch: ss[0][0])]
        case .sum, .mean:
            let axes = a.ints("axes").map { $0 < 0 ? $0 + ss[0].count : $0 }
            let all: [Int]? = axes.isEmpty ? nil : axes
            return n.op == .sum ? RefOps.sum(x: xs[0], shape: ss[0], axes: all).out : RefOps.mean(x: xs[0], shape: ss[0], axes: all).out
        case .call:
            throw InterpreterError("inline calls before interpreting (node '%\(n.name)')")
        case .conv2dBackwardData, .conv2dBackwardFilter, .maxPoolBackward, .avgPoolBackward, .reluBackward,
             .preluBackwardInput, .preluBackwardSlope, .sigmoidBackward, .tanhBackward, .softmaxBackward,
             .logSoftmaxBackward, .softmaxCrossEntropyBackward, .euclideanLossBackward, .maximumBackward,
             .lrnBackward, .batchNormBackward, .batchNormTrainBackward, .l2NormalizeBackward, .sliceBackward, .resizeBackward,
             .reduceBackward, .sumTo, .matmul, .dropoutMask, .fill:
            return try evaluateBackward(n, a, xs, ss, out)
        }
    }

    /// The backward ops that Autodiff emits, naively.
    static func evaluateBackward(_ n: Node, _ a: Attrs, _ xs: [[Double]], _ ss: [[Int]], _ out: [Int]) throws -> [Double] {
        let count = out.reduce(1, *)
        func axis(_ rank: Int) -> Int { a.int("axis") < 0 ? a.int("axis") + rank : a.int("axis") }
        func pool(_ input: [Int]) -> ((Int, Int), (Int, Int), (Int, Int), Bool) {
            if a.bool("global") { return ((input[2], input[3]), (1, 1), (0, 0), false) }
            return (a.pair("kernel"), a.pair("stride"), a.pair("pad"), a.string("round") == "ceil")
        }
        /// x broadcast to `shape` (NumPy rules).
        func expand(_ x: [Double], _ xShape: [Int], _ shape: [Int]) -> [Double] {
            RefOps.binary(.add, a: x, aShape: xShape, b: [Double](repeating: 0, count: shape.reduce(1, *)), bShape: shape).out
        }
        switch n.op {
        case .conv2dBackwardData:
            return RefOps.conv2dBackwardData(dy: xs[0], w: xs[1], wShape: ss[1], xShape: out, stride: a.pair("stride"),
                                             pad: a.pair("pad"), dilation: a.pair("dilation"), groups: a.int("groups"))
        case .conv2dBackwardFilter:
            return RefOps.conv2dBackwardFilter(dy: xs[1], x: xs[0], xShape: ss[0], wShape: out, stride: a.pair("stride"),
                                               pad: a.pair("pad"), dilation: a.pair("dilation"), groups: a.int("groups"))
        case .maxPoolBackward:
            let (k, s, p, c) = pool(ss[0])
            let dx = RefOps.maxPoolBackward(dy: xs[1], x: xs[0], xShape: ss[0], kernel: k, stride: s, pad: p, ceil: c)
            // relu_mask: relu_backward(x, dx) fused in (x is the ReLU's output).
            return a.bool("relu_mask") ? RefOps.reluBackward(dy: dx, x: xs[0], negativeSlope: 0) : dx
        case .avgPoolBackward:
            let (k, s, p, c) = pool(out)
            return RefOps.avgPoolBackward(dy: xs[0], xShape: out, kernel: k, stride: s, pad: p, ceil: c)
        case .reluBackward: return RefOps.reluBackward(dy: xs[1], x: xs[0], negativeSlope: a.float("negative_slope"))
        case .preluBackwardInput: return RefOps.preluBackward(dy: xs[2], x: xs[0], shape: ss[0], slope: xs[1]).dx
        case .preluBackwardSlope:
            return RefOps.preluBackward(dy: xs[1], x: xs[0], shape: ss[0], slope: [Double](repeating: 1, count: count)).dslope
        case .sigmoidBackward: return RefOps.sigmoidBackward(dy: xs[1], y: xs[0])
        case .tanhBackward: return RefOps.tanhBackward(dy: xs[1], y: xs[0])
        case .softmaxBackward, .logSoftmaxBackward:
            let ax = axis(out.count)
            let view = [out[..<ax].reduce(1, *), out[ax], out[(ax + 1)...].reduce(1, *)]
            return n.op == .softmaxBackward ? RefOps.softmaxBackward(dy: xs[1], y: xs[0], shape: view)
                : RefOps.logSoftmaxBackward(dy: xs[1], y: xs[0], shape: view)
        case .softmaxCrossEntropyBackward:
            let (b, c) = (ss[0][0], ss[0][1]), labels = xs[1].map { Int32($0) }
            let probs = RefOps.softmaxCrossEntropy(logits: xs[0], n: b, c: c, labels: labels).probs
            return RefOps.softmaxCrossEntropyBackward(probs: probs, n: b, c: c, labels: labels, upstream: xs[2][0])
        case .euclideanLossBackward:
            return RefOps.euclideanLossBackward(a: xs[0], b: xs[1], batch: ss[0][0], upstream: xs[2][0])
        case .maximumBackward:
            let (ea, eb) = (expand(xs[0], ss[0], out), expand(xs[1], ss[1], out))
            let first = a.int("operand") == 0
            return (0..<count).map { (first ? ea[$0] >= eb[$0] : eb[$0] > ea[$0]) ? xs[2][$0] : 0 }
        case .l2NormalizeBackward:
            return RefOps.l2NormalizeBackward(dy: xs[1], x: xs[0], shape: ss[0], acrossSpatial: a.bool("across_spatial"), eps: a.float("eps"))
        case .lrnBackward:
            guard a.string("region") == "across_channels" else { throw InterpreterError("lrn_backward supports across_channels only") }
            return RefOps.lrnAcrossBackward(dy: xs[2], x: xs[0], shape: out, size: a.int("size"), alpha: a.float("alpha"),
                                            beta: a.float("beta"), k: a.float("k"))
        case .batchNormBackward:
            let inv = xs[0].map { 1 / ($0 + a.float("eps")).squareRoot() }
            return RefOps.channelScale(x: xs[1], shape: out, scale: inv, bias: nil)
        case .batchNormTrainBackward: return RefOps.batchNormTrainBackward(dy: xs[1], x: xs[0], shape: out, eps: a.float("eps"))
        case .resizeBackward: return RefOps.resizeBackward(dy: xs[0], dyShape: ss[0], h: out[2], w: out[3])
        case .sliceBackward:
            return RefOps.sliceBackward(dy: xs[0], xShape: out, axis: axis(out.count), start: a.int("start"), length: a.int("end") - a.int("start"))
        case .reduceBackward:
            let axes = a.ints("axes").map { $0 < 0 ? $0 + out.count : $0 }
            let all = axes.isEmpty ? Array(out.indices) : axes
            let kept = out.enumerated().map { all.contains($0.offset) ? 1 : $0.element }
            let factor = a.bool("mean") ? 1 / Double(all.reduce(1) { $0 * out[$1] }) : 1
            return expand(xs[0], kept, out).map { $0 * factor }
        case .sumTo:
            return RefOps.reduceToShape(xs[0], gShape: ss[0], to: out)
        case .matmul:
            let (ta, tb) = (a.bool("transpose_a"), a.bool("transpose_b"))
            let (m, nn) = (out[0], out[1]), k = ta ? ss[0][0] : ss[0][1]
            var c = [Double](repeating: 0, count: m * nn)
            for i in 0..<m { for j in 0..<nn {
                var acc = 0.0
                for p in 0..<k {
                    acc += xs[0][ta ? p * m + i : i * k + p] * xs[1][tb ? j * k + p : p * nn + j]
                }
                c[i * nn + j] = acc
            } }
            return c
        case .dropoutMask:
            throw InterpreterError("'%\(n.name)': dropout masks are random; give the interpreter the mask as a value")
        case .fill:
            return [Double](repeating: a.float("value"), count: count)
        case .conv2d, .maxPool, .avgPool, .relu, .prelu, .sigmoid, .tanh, .dropout, .flatten, .reshape, .transpose,
             .concat, .slice, .channelReplicate, .resize, .add, .sub, .mul, .div, .maximum, .affine, .scale, .bias,
             .batchNorm, .batchNormTrain, .batchMoments, .lrn, .l2Normalize, .linear, .softmax, .logSoftmax, .softmaxCrossEntropy, .euclideanLoss,
             .mean, .sum, .call, .priorBox, .detectionOutput:
            throw InterpreterError("'%\(n.name)': \(n.op.rawValue) is not a backward op")
        }
    }
}

public struct InterpreterError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}
