/// Per-node and total counts of a flat graph: output shapes, parameters, multiply-adds, activation bytes.
public struct Summary {
    public struct Row {
        public var node: String
        public var op: String
        public var type: TensorType
        public var params: Int
        public var macs: Int
    }

    public var rows: [Row] = []
    public var totalParams = 0
    public var trainableParams = 0
    public var totalMACs = 0
    /// Bytes of every node output at the given batch size, with nothing reused.
    public var activationBytes = 0
    public var batch: Int

    /// `graph` must be verified and flat (see `Inliner`).
    public init(_ graph: Graph, batch: Int) {
        self.batch = batch
        let types = graph.typeTable
        var counted: Set<String> = []
        for p in graph.params {
            let n = p.type.count(batch: 1)
            totalParams += n
            if p.trainable { trainableParams += n }
        }
        for node in graph.nodes {
            guard let t = node.type?.bound(batch: batch) else { continue }
            var params = 0
            for o in node.operands where graph.param(o) != nil && counted.insert(o).inserted {
                params += types[o]!.count(batch: 1)
            }
            let macs = Summary.macs(node, types, batch: batch)
            rows.append(Row(node: node.name, op: node.op.rawValue, type: t, params: params, macs: macs))
            totalMACs += macs
            activationBytes += t.count(batch: batch) * t.dtype.size
        }
    }

    /// Multiply-accumulates of the dense ops (convolution, its two gradients, linear, matmul) by the
    /// direct algorithm; other ops count zero. The one count: the Scheduler's FLOPs (schedule
    /// printout, profiler) are twice it. A convolution's gradients cost what it costs.
    public static func macs(_ node: Node, _ types: [String: TensorType], batch: Int) -> Int {
        guard let out = node.type?.bound(batch: batch) else { return 0 }
        func shape(_ i: Int) -> [Int]? { types[node.operands[i]]?.bound(batch: batch).shape }
        switch node.op {
        case .conv2d:
            guard let w = shape(1) else { return 0 }
            return out.count(batch: batch) * w[1] * w[2] * w[3]
        case .conv2dBackwardData:
            // (dy, w): each dy value meets C/groups·KH·KW weights.
            guard let dy = shape(0), let w = shape(1) else { return 0 }
            return dy.reduce(1, *) * w[1] * w[2] * w[3]
        case .conv2dBackwardFilter:
            // (x, dy) → dw [O, C/groups, KH, KW].
            guard let dy = shape(1), let w = out.shape else { return 0 }
            return dy.reduce(1, *) * w[1] * w[2] * w[3]
        case .linear:
            guard let w = shape(1) else { return 0 }
            return out.count(batch: batch) * w[1]
        case .matmul:
            guard let a = shape(0) else { return 0 }
            return out.count(batch: batch) * (node.fullAttrs.bool("transpose_a") ? a[0] : a[1])
        case .maxPool, .avgPool, .relu, .prelu, .sigmoid, .tanh, .dropout, .flatten, .reshape, .transpose, .concat,
             .slice, .channelReplicate, .resize, .add, .sub, .mul, .div, .maximum, .affine, .scale, .bias, .batchNorm,
             .batchNormTrain, .batchMoments, .batchNormTrainBackward, .lrn, .l2Normalize, .softmax, .logSoftmax,
             .softmaxCrossEntropy, .euclideanLoss, .mean, .sum, .call,
             .priorBox, .detectionOutput, .maxPoolBackward,
             .avgPoolBackward, .reluBackward, .preluBackwardInput, .preluBackwardSlope, .sigmoidBackward,
             .tanhBackward, .softmaxBackward, .logSoftmaxBackward, .softmaxCrossEntropyBackward,
             .euclideanLossBackward, .maximumBackward, .lrnBackward, .batchNormBackward, .l2NormalizeBackward,
             .sliceBackward, .resizeBackward, .reduceBackward, .sumTo, .dropoutMask, .fill:
            return 0
        }
    }

    /// A fixed-width table followed by the totals.
    public func render(title: String) -> String {
        let num = thousands
        let w0 = max(4, rows.map(\.node.count).max() ?? 0)
        let w1 = max(2, rows.map(\.op.count).max() ?? 0)
        let w2 = max(6, rows.map(\.type.description.count).max() ?? 0)
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        func lpad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        var out = "\(title) (batch \(batch))\n"
        out += pad("node", w0) + "  " + pad("op", w1) + "  " + pad("output", w2) + "  " + lpad("params", 13) + "  " + lpad("mult-adds", 17) + "\n"
        for r in rows {
            out += pad(r.node, w0) + "  " + pad(r.op, w1) + "  " + pad(r.type.description, w2) + "  "
                + lpad(num(r.params), 13) + "  " + lpad(num(r.macs), 17) + "\n"
        }
        let gmacs = Double(totalMACs) / Double(max(batch, 1)) / 1e9
        out += "parameters: \(num(totalParams)) (trainable \(num(trainableParams)), frozen \(num(totalParams - trainableParams)))\n"
        out += "mult-adds: \(num(totalMACs)) (\(String(format2(gmacs))) G per image)\n"
        out += "activation memory: \(num(activationBytes)) bytes (\(format2(Double(activationBytes) / 1048576)) MiB, no reuse)\n"
        return out
    }
}

private func format2(_ v: Double) -> String {
    let r = (v * 100).rounded() / 100
    let whole = Int(r)
    let frac = Int(((r - Double(whole)) * 100).rounded())
    return "\(whole)." + (frac < 10 ? "0\(frac)" : "\(frac)")
}

/// `12681216` as `12,681,216` (summaries and schedules print counts this way).
public func thousands(_ n: Int) -> String {
    var out = ""
    for (k, c) in String(n.magnitude).reversed().enumerated() {
        if k > 0 && k % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + String(out.reversed())
}
