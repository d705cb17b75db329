import Shapes

/// Why a node's type could not be inferred; `operand` or `attribute` points at the culprit when known.
public struct InferenceError: Error {
    public var message: String
    public var operand: Int?
    public var attribute: String?
    /// The type waits for a named spatial size (`H`, `W`) to be bound: not an error, the node stays untyped.
    public var unbound = false
    public init(_ message: String, operand: Int? = nil, attribute: String? = nil) {
        self.message = message
        self.operand = operand
        self.attribute = attribute
    }
}

extension Op {
    /// The output type from operand types and attributes (defaults filled in). Calls are typed by the verifier.
    public func inferType(_ xs: [TensorType], _ a: Attrs) throws -> TensorType {
        switch self {
        case .conv2d:
            let x = try rank(xs[0], 4, 0), w = try rank(xs[1], 4, 1)
            let (sh, sw) = a.pair("stride"), (ph, pw) = a.pair("pad"), (dh, dw) = a.pair("dilation")
            let groups = a.int("groups")
            let c = try fixed(x.dims[1], "input channels", 0)
            let (o, cg, kh, kw) = (try fixed(w.dims[0], "", 1), try fixed(w.dims[1], "", 1),
                                   try fixed(w.dims[2], "", 1), try fixed(w.dims[3], "", 1))
            guard c == cg * groups else {
                throw InferenceError("conv2d: input \(x) has \(c) channels but weight \(w) with groups=\(groups) expects \(cg * groups)", operand: 1)
            }
            guard o % groups == 0 else {
                throw InferenceError("conv2d: \(o) output channels of weight \(w) are not divisible by groups=\(groups)", operand: 1)
            }
            if xs.count == 3 { try expectShape(xs[2], [.fixed(o)], "conv2d bias", 2) }
            let (h, wd) = try spatial(x)
            let oh = convOutputSize(input: h, kernel: kh, stride: sh, pad: ph, dilation: dh)
            let ow = convOutputSize(input: wd, kernel: kw, stride: sw, pad: pw, dilation: dw)
            guard oh >= 1, ow >= 1 else {
                throw InferenceError("conv2d: kernel \(kh)x\(kw) (dilation \(dh),\(dw)) does not fit input \(x) with padding \(ph),\(pw)", operand: 0)
            }
            return TensorType(.f32, [x.dims[0], .fixed(o), .fixed(oh), .fixed(ow)])

        case .maxPool, .avgPool:
            let x = try rank(xs[0], 4, 0)
            if a.bool("global") { return TensorType(.f32, [x.dims[0], x.dims[1], .fixed(1), .fixed(1)]) }
            let (kh, kw) = a.pair("kernel"), (sh, sw) = a.pair("stride"), (ph, pw) = a.pair("pad")
            let ceil = a.string("round") == "ceil"
            guard kh > 0, kw > 0 else { throw InferenceError("\(rawValue) needs attribute 'kernel' (or global=true)") }
            guard ph < kh, pw < kw else { throw InferenceError("\(rawValue): padding \(ph),\(pw) must be smaller than the kernel \(kh)x\(kw)", attribute: "pad") }
            let (h, w) = try spatial(x)
            guard h + 2 * ph >= kh, w + 2 * pw >= kw else {
                throw InferenceError("\(rawValue): kernel \(kh)x\(kw) is larger than the padded input \(x)", operand: 0)
            }
            return TensorType(.f32, [x.dims[0], x.dims[1],
                                     .fixed(poolOutputSize(input: h, kernel: kh, stride: sh, pad: ph, ceil: ceil)),
                                     .fixed(poolOutputSize(input: w, kernel: kw, stride: sw, pad: pw, ceil: ceil))])

        case .relu, .sigmoid, .tanh, .dropout, .affine:
            return xs[0]

        case .prelu:
            let x = try atLeastRank(xs[0], 2, 0)
            let s = try rank(xs[1], 1, 1)
            guard s.dims[0] == .fixed(1) || s.dims[0] == x.dims[1] else {
                throw InferenceError("prelu: slope \(s) must have 1 or \(x.dims[1]) elements for input \(x)", operand: 1)
            }
            return x

        case .flatten:
            let x = xs[0]
            let axis = try normAxis(a.int("axis"), x.rank, "axis")
            let end = try normAxis(a.int("end_axis"), x.rank, "end_axis")
            guard end >= axis else { throw InferenceError("flatten: end_axis \(end) is before axis \(axis)", attribute: "end_axis") }
            var n = 1
            for d in x.dims[axis...end] { n *= try fixed(d, "flattened dimension", 0) }
            return TensorType(x.dtype, Array(x.dims[..<axis]) + [.fixed(n)] + Array(x.dims[(end + 1)...]))

        case .reshape:
            return try reshapeType(xs[0], a.ints("shape"))

        case .transpose:
            let x = xs[0], perm = a.ints("perm")
            guard perm.sorted() == Array(0..<x.rank) else {
                throw InferenceError("transpose: perm \(perm) is not a permutation of the \(x.rank) axes of \(x)", attribute: "perm")
            }
            return TensorType(x.dtype, perm.map { x.dims[$0] })

        case .concat:
            let first = xs[0]
            let axis = try normAxis(a.int("axis"), first.rank, "axis")
            var total = 0
            for (k, x) in xs.enumerated() {
                guard x.rank == first.rank else { throw InferenceError("concat: operand \(k) is \(x) but operand 0 is \(first)", operand: k) }
                for d in 0..<x.rank where d != axis && x.dims[d] != first.dims[d] {
                    throw InferenceError("concat: operand \(k) is \(x) but operand 0 is \(first); only axis \(axis) may differ", operand: k)
                }
                total += try fixed(x.dims[axis], "concatenated dimension", k)
            }
            var dims = first.dims
            dims[axis] = .fixed(total)
            return TensorType(first.dtype, dims)

        case .slice:
            let x = xs[0]
            let axis = try normAxis(a.int("axis"), x.rank, "axis")
            let size = try fixed(x.dims[axis], "sliced dimension", 0)
            let start = a.int("start"), end = a.int("end")
            guard start >= 0, start < end, end <= size else {
                throw InferenceError("slice: range [\(start), \(end)) is not inside axis \(axis) of \(x)")
            }
            var dims = x.dims
            dims[axis] = .fixed(end - start)
            return TensorType(x.dtype, dims)

        case .channelReplicate:
            let x = try atLeastRank(xs[0], 2, 0)
            guard x.dims[1] == .fixed(1) else { throw InferenceError("channel_replicate: input \(x) must have 1 channel", operand: 0) }
            let count = a.int("count")
            guard count >= 1 else { throw InferenceError("channel_replicate: count must be positive") }
            var dims = x.dims
            dims[1] = .fixed(count)
            return TensorType(x.dtype, dims)

        case .resize:
            return try resized(xs[0], a)

        case .add, .sub, .mul, .div, .maximum:
            return try broadcast(xs[0], xs[1], rawValue)

        case .scale, .bias, .batchNorm:
            let x = try atLeastRank(xs[0], 2, 0)
            for k in 1..<xs.count { try expectShape(xs[k], [x.dims[1]], "\(rawValue) operand \(k)", k) }
            if self == .batchNorm, a.float("eps") < 0 { throw InferenceError("batch_norm: eps must be non-negative") }
            return x

        case .batchNormTrain:
            if a.float("eps") < 0 { throw InferenceError("batch_norm_train: eps must be non-negative") }
            return try atLeastRank(xs[0], 2, 0)

        case .batchMoments:
            let x = try atLeastRank(xs[0], 2, 0)
            return TensorType(.f32, [.fixed(2), x.dims[1]])

        case .lrn:
            let x = try rank(xs[0], 4, 0)
            let size = a.int("size")
            guard size > 0, size % 2 == 1 else { throw InferenceError("lrn: size must be a positive odd number, found \(size)", attribute: "size") }
            return x

        case .linear:
            let x = try rank(xs[0], 2, 0), w = try rank(xs[1], 2, 1)
            guard x.dims[1] == w.dims[1] else {
                throw InferenceError("linear: input \(x) has \(x.dims[1]) features but weight \(w) expects \(w.dims[1])", operand: 1)
            }
            if xs.count == 3 { try expectShape(xs[2], [w.dims[0]], "linear bias", 2) }
            return TensorType(.f32, [x.dims[0], w.dims[0]])

        case .softmax, .logSoftmax:
            _ = try normAxis(a.int("axis"), xs[0].rank, "axis")
            return xs[0]

        case .softmaxCrossEntropy:
            let x = try rank(xs[0], 2, 0), y = try rank(xs[1], 1, 1)
            guard x.dims[0] == y.dims[0] else {
                throw InferenceError("softmax_cross_entropy: logits \(x) and labels \(y) disagree on the batch size", operand: 1)
            }
            return TensorType(.f32, [])

        case .euclideanLoss:
            guard xs[0].dims == xs[1].dims else {
                throw InferenceError("euclidean_loss: operands must have one shape, found \(xs[0]) and \(xs[1])", operand: 1)
            }
            guard xs[0].rank >= 1 else { throw InferenceError("euclidean_loss: operands need a batch dimension", operand: 0) }
            return TensorType(.f32, [])

        case .mean, .sum:
            let x = xs[0]
            let axes = try a.ints("axes").map { try normAxis($0, x.rank, "axes") }
            guard Set(axes).count == axes.count else { throw InferenceError("\(rawValue): axes \(a.ints("axes")) repeat an axis", attribute: "axes") }
            if axes.isEmpty { return TensorType(.f32, []) }
            return TensorType(.f32, x.dims.enumerated().filter { !axes.contains($0.offset) }.map(\.element))

        case .call:
            preconditionFailure("calls are typed by the verifier")

        case .l2Normalize:
            _ = try atLeastRank(xs[0], 2, 0)
            guard a.float("eps") >= 0 else { throw InferenceError("l2_normalize: eps must be non-negative", attribute: "eps") }
            return xs[0]

        case .priorBox:
            let f = try rank(xs[0], 4, 0), image = try rank(xs[1], 4, 1)
            let spec = a.priorBoxSpec
            if let problem = spec.problem { throw InferenceError("prior_box: \(problem)") }
            let step = a.floats("step")
            guard step.isEmpty || (step.count == 2 && step.allSatisfy { $0 > 0 }) else {
                throw InferenceError("prior_box: step must be empty or two positive numbers, found \(step)", attribute: "step")
            }
            let (ih, iw) = a.pair("image_size")
            guard (ih == 0 && iw == 0) || (ih > 0 && iw > 0) else {
                throw InferenceError("prior_box: image_size must be [0, 0] (from operand 1) or positive, found [\(ih), \(iw)]", attribute: "image_size")
            }
            _ = try fixed(image.dims[2], "image height", 1)
            let h = try fixed(f.dims[2], "feature map height", 0), w = try fixed(f.dims[3], "feature map width", 0)
            return TensorType(.f32, [.fixed(1), .fixed(2), .fixed(h * w * spec.boxesPerCell * 4)])

        case .detectionOutput:
            let loc = try atLeastRank(xs[0], 2, 0), conf = try atLeastRank(xs[1], 2, 1), priors = try rank(xs[2], 3, 2)
            let spec = try a.detectionSpec()
            if let problem = spec.problem { throw InferenceError("detection_output: \(problem)") }
            guard priors.dims[0] == .fixed(1), priors.dims[1] == .fixed(2), let p4 = priors.dims[2].value, p4 % 4 == 0 else {
                throw InferenceError("detection_output: priors must be [1, 2, P*4] as prior_box makes them, found \(priors)", operand: 2)
            }
            let p = p4 / 4
            func perSample(_ t: TensorType, _ k: Int) throws -> Int {
                guard t.dims[0] == loc.dims[0] else { throw InferenceError("detection_output: \(t) and \(loc) disagree on the batch size", operand: k) }
                var n = 1
                for d in t.dims.dropFirst() { n *= try fixed(d, "a per-sample dimension", k) }
                return n
            }
            let locWant = p * 4 * (spec.shareLocation ? 1 : spec.numClasses), confWant = p * spec.numClasses
            guard try perSample(loc, 0) == locWant else {
                throw InferenceError("detection_output: locations \(loc) must hold \(locWant) values per sample (\(p) priors x \(spec.shareLocation ? "" : "\(spec.numClasses) classes x ")4)", operand: 0)
            }
            guard try perSample(conf, 1) == confWant else {
                throw InferenceError("detection_output: confidences \(conf) must hold \(confWant) values per sample (\(p) priors x \(spec.numClasses) classes)", operand: 1)
            }
            return TensorType(.f32, [loc.dims[0], .fixed(spec.rowsPerImage(priors: p)), .fixed(7)])

        case .conv2dBackwardData, .conv2dBackwardFilter, .maxPoolBackward, .avgPoolBackward, .reluBackward,
             .preluBackwardInput, .preluBackwardSlope, .sigmoidBackward, .tanhBackward, .softmaxBackward,
             .logSoftmaxBackward, .softmaxCrossEntropyBackward, .euclideanLossBackward, .maximumBackward,
             .lrnBackward, .batchNormBackward, .batchNormTrainBackward, .l2NormalizeBackward, .sliceBackward, .resizeBackward,
             .reduceBackward, .sumTo, .matmul, .dropoutMask, .fill:
            return try inferBackwardType(xs, a)
        }
    }
}

// MARK: Backward ops

/// A shape attribute of a backward op, where 0 stands for the batch dimension N.
public func dimsFromShapeAttr(_ shape: [Int]) -> [Dim] { shape.map { $0 == 0 ? .batch : .fixed($0) } }

/// The inverse of `dimsFromShapeAttr`.
public func shapeAttr(_ dims: [Dim]) -> [Int] { dims.map { $0.value ?? 0 } }

extension Op {
    /// Types of the backward section of the table: each result is checked against the forward
    /// shapes its attributes describe, so a wrong `input_size` or `shape` is caught here.
    fileprivate func inferBackwardType(_ xs: [TensorType], _ a: Attrs) throws -> TensorType {
        func same(_ k: Int, _ j: Int) throws {
            guard xs[k].dims == xs[j].dims else {
                throw InferenceError("\(rawValue): operand \(j) is \(xs[j]) but operand \(k) is \(xs[k])", operand: j)
            }
        }
        switch self {
        case .conv2dBackwardData:
            let dy = try rank(xs[0], 4, 0), w = try rank(xs[1], 4, 1)
            let (h, wd) = a.pair("input_size"), (kh, kw) = (try fixed(w.dims[2], "", 1), try fixed(w.dims[3], "", 1))
            let x = TensorType(.f32, [dy.dims[0], .fixed(try fixed(w.dims[1], "", 1) * a.int("groups")), .fixed(h), .fixed(wd)])
            let y = try Op.conv2d.inferType([x, w], a)
            guard y == dy else { throw InferenceError("conv2d_backward_data: conv2d of \(x) by \(w) (kernel \(kh)x\(kw)) gives \(y), not \(dy)", operand: 0) }
            return x
        case .conv2dBackwardFilter:
            let x = try rank(xs[0], 4, 0), dy = try rank(xs[1], 4, 1)
            let (kh, kw) = a.pair("kernel"), groups = a.int("groups")
            let c = try fixed(x.dims[1], "input channels", 0)
            guard c % groups == 0 else { throw InferenceError("conv2d_backward_filter: \(c) channels of \(x) are not divisible by groups=\(groups)", operand: 0) }
            let w = TensorType(.f32, [dy.dims[1], .fixed(c / groups), .fixed(kh), .fixed(kw)])
            let y = try Op.conv2d.inferType([x, w], a)
            guard y == dy else { throw InferenceError("conv2d_backward_filter: conv2d of \(x) by \(w) gives \(y), not \(dy)", operand: 1) }
            return w
        case .maxPoolBackward:
            let y = try Op.maxPool.inferType([xs[0]], a)
            guard y == xs[1] else { throw InferenceError("max_pool_backward: max_pool of \(xs[0]) gives \(y), not \(xs[1])", operand: 1) }
            return xs[0]
        case .avgPoolBackward:
            let dy = try rank(xs[0], 4, 0)
            let (h, w) = a.pair("input_size")
            let x = TensorType(.f32, [dy.dims[0], dy.dims[1], .fixed(h), .fixed(w)])
            let y = try Op.avgPool.inferType([x], a)
            guard y == dy else { throw InferenceError("avg_pool_backward: avg_pool of \(x) gives \(y), not \(dy)", operand: 0) }
            return x
        case .reluBackward, .sigmoidBackward, .tanhBackward, .softmaxBackward, .logSoftmaxBackward:
            try same(0, 1)
            if self == .softmaxBackward || self == .logSoftmaxBackward { _ = try normAxis(a.int("axis"), xs[0].rank, "axis") }
            return xs[0]
        case .preluBackwardInput:
            _ = try Op.prelu.inferType([xs[0], xs[1]], a)
            try same(0, 2)
            return xs[0]
        case .preluBackwardSlope:
            let x = try atLeastRank(xs[0], 2, 0)
            try same(0, 1)
            return TensorType(.f32, [a.bool("channel_shared") ? .fixed(1) : x.dims[1]])
        case .softmaxCrossEntropyBackward:
            _ = try Op.softmaxCrossEntropy.inferType([xs[0], xs[1]], a)
            try expectShape(xs[2], [], "softmax_cross_entropy_backward dloss", 2)
            return xs[0]
        case .euclideanLossBackward:
            _ = try Op.euclideanLoss.inferType([xs[0], xs[1]], a)
            try expectShape(xs[2], [], "euclidean_loss_backward dloss", 2)
            return xs[0]
        case .maximumBackward:
            let y = try broadcast(xs[0], xs[1], rawValue)
            guard y.dims == xs[2].dims else { throw InferenceError("maximum_backward: maximum gives \(y), not \(xs[2])", operand: 2) }
            guard a.int("operand") == 0 || a.int("operand") == 1 else { throw InferenceError("maximum_backward: operand must be 0 or 1") }
            return y
        case .lrnBackward:
            _ = try Op.lrn.inferType([xs[0]], a)
            try same(0, 1)
            try same(0, 2)
            return xs[0]
        case .batchNormBackward:
            let dy = try atLeastRank(xs[1], 2, 1)
            try expectShape(xs[0], [dy.dims[1]], "batch_norm_backward variance", 0)
            return dy
        case .batchNormTrainBackward:
            _ = try Op.batchNormTrain.inferType([xs[0]], a)
            try same(0, 1)
            return xs[0]
        case .l2NormalizeBackward:
            _ = try Op.l2Normalize.inferType([xs[0]], a)
            try same(0, 1)
            return xs[0]
        case .sliceBackward:
            let dy = xs[0]
            let axis = try normAxis(a.int("axis"), dy.rank, "axis")
            let size = a.int("size"), start = a.int("start"), end = a.int("end")
            guard start >= 0, start < end, end <= size, dy.dims[axis] == .fixed(end - start) else {
                throw InferenceError("slice_backward: range [\(start), \(end)) of an axis of size \(size) does not give \(dy)", operand: 0)
            }
            var dims = dy.dims
            dims[axis] = .fixed(size)
            return TensorType(.f32, dims)
        case .resizeBackward:
            return try resized(xs[0], a)
        case .reduceBackward:
            let x = TensorType(.f32, dimsFromShapeAttr(a.ints("shape")))
            let y = try Op.sum.inferType([x], a)
            guard y == xs[0] else { throw InferenceError("reduce_backward: reducing \(x) over axes \(a.ints("axes")) gives \(y), not \(xs[0])", operand: 0) }
            return x
        case .sumTo:
            let dy = xs[0], target = dimsFromShapeAttr(a.ints("shape"))
            guard target.count <= dy.rank,
                  zip(target, dy.dims.suffix(target.count)).allSatisfy({ $0 == $1 || $0 == .fixed(1) }) else {
                throw InferenceError("sum_to: \(dy) cannot be summed to \(TensorType(.f32, target)) (it must broadcast to it)", operand: 0)
            }
            return TensorType(.f32, target)
        case .matmul:
            let x = try rank(xs[0], 2, 0), y = try rank(xs[1], 2, 1)
            let (m, k1) = a.bool("transpose_a") ? (x.dims[1], x.dims[0]) : (x.dims[0], x.dims[1])
            let (k2, n) = a.bool("transpose_b") ? (y.dims[1], y.dims[0]) : (y.dims[0], y.dims[1])
            guard k1 == k2 else { throw InferenceError("matmul: contracted dimensions of \(x) and \(y) differ (\(k1) and \(k2))", operand: 1) }
            return TensorType(.f32, [m, n])
        case .dropoutMask:
            return xs[0]
        case .fill:
            return TensorType(.f32, dimsFromShapeAttr(a.ints("shape")))
        case .conv2d, .maxPool, .avgPool, .relu, .prelu, .sigmoid, .tanh, .dropout, .flatten, .reshape, .transpose,
             .concat, .slice, .channelReplicate, .resize, .add, .sub, .mul, .div, .maximum, .affine, .scale, .bias, .batchNorm, .lrn,
             .batchNormTrain, .batchMoments, .linear, .softmax, .logSoftmax, .softmaxCrossEntropy, .euclideanLoss, .mean, .sum, .call, .l2Normalize,
             .priorBox, .detectionOutput:
            preconditionFailure("\(rawValue) is typed by inferType")
        }
    }
}

// MARK: Helpers

private func rank(_ t: TensorType, _ r: Int, _ operand: Int) throws -> TensorType {
    guard t.rank == r else { throw InferenceError("expected a rank-\(r) operand, found \(t)", operand: operand) }
    return t
}

private func atLeastRank(_ t: TensorType, _ r: Int, _ operand: Int) throws -> TensorType {
    guard t.rank >= r else { throw InferenceError("expected an operand of rank \(r) or more, found \(t)", operand: operand) }
    return t
}

private func fixed(_ d: Dim, _ what: String, _ operand: Int) throws -> Int {
    guard let v = d.value else {
        throw InferenceError("the \(d == .batch ? "batch dimension N" : "named size \(d)") cannot be used as \(what.isEmpty ? "a weight dimension" : "the \(what)")"
                             + (d == .batch ? "" : " (only where a size passes through unchanged; give a number here)"), operand: operand)
    }
    return v
}

/// Height and width of an NCHW operand; a named size there defers the node's type until it is bound.
private func spatial(_ x: TensorType) throws -> (Int, Int) {
    guard let h = x.dims[2].value, let w = x.dims[3].value else {
        if case .symbol = x.dims[2] { var e = InferenceError("height \(x.dims[2]) is not bound yet"); e.unbound = true; throw e }
        if case .symbol = x.dims[3] { var e = InferenceError("width \(x.dims[3]) is not bound yet"); e.unbound = true; throw e }
        return (try fixed(x.dims[2], "height", 0), try fixed(x.dims[3], "width", 0))
    }
    return (h, w)
}

private func expectShape(_ t: TensorType, _ dims: [Dim], _ what: String, _ operand: Int) throws {
    guard t.dims == dims else {
        throw InferenceError("\(what) must be \(TensorType(.f32, dims)), found \(t)", operand: operand)
    }
}

private func normAxis(_ axis: Int, _ rank: Int, _ name: String) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0, a < rank else { throw InferenceError("\(name) \(axis) is out of range for rank \(rank)", attribute: name) }
    return a
}

private func broadcast(_ a: TensorType, _ b: TensorType, _ op: String) throws -> TensorType {
    guard let dims = broadcastShapes(a.dims, b.dims, one: Dim.fixed(1)) else {
        throw InferenceError("\(op): shapes \(a) and \(b) do not broadcast", operand: 1)
    }
    return TensorType(.f32, dims)
}

/// Caffe's reshape: 0 copies the input dimension at that position, -1 is inferred from the rest.
private func reshapeType(_ x: TensorType, _ spec: [Int]) throws -> TensorType {
    var dims: [Dim] = []
    var inferAt: Int?
    for (k, s) in spec.enumerated() {
        switch s {
        case 0:
            guard k < x.rank else { throw InferenceError("reshape: 0 at position \(k) copies a dimension \(x) does not have", attribute: "shape") }
            dims.append(x.dims[k])
        case -1:
            guard inferAt == nil else { throw InferenceError("reshape: only one -1 may be inferred in \(AttrValue.ints(spec))", attribute: "shape") }
            inferAt = k
            dims.append(.fixed(1))
        case let v where v > 0: dims.append(.fixed(v))
        default: throw InferenceError("reshape: invalid size \(s) in \(AttrValue.ints(spec))", attribute: "shape")
        }
    }
    // Element counts as N^k * c; N must appear as often on both sides.
    func count(_ ds: [Dim]) throws -> (Int, Int) {
        var (n, c) = (0, 1)
        for d in ds {
            guard let v = d.value else { n += 1; continue }
            let (p, overflow) = c.multipliedReportingOverflow(by: v)
            if overflow { throw InferenceError("reshape: \(AttrValue.ints(spec)) is too large", attribute: "shape") }
            c = p
        }
        return (n, c)
    }
    let (nIn, cIn) = try count(x.dims), (nOut, cOut) = try count(dims)
    guard nIn == nOut else { throw InferenceError("reshape: \(AttrValue.ints(spec)) must keep the batch dimension N of \(x) (use 0 to copy it)", attribute: "shape") }
    if let k = inferAt {
        guard cOut > 0, cIn % cOut == 0 else { throw InferenceError("reshape: cannot infer -1 in \(AttrValue.ints(spec)) for \(x)", attribute: "shape") }
        dims[k] = .fixed(cIn / cOut)
    } else if cIn != cOut {
        throw InferenceError("reshape: \(x) has \(cIn) elements per batch item but \(AttrValue.ints(spec)) has \(cOut)", attribute: "shape")
    }
    return TensorType(x.dtype, dims)
}

/// `resize` and `resize_backward`: NCHW with the spatial size replaced by `size`.
private func resized(_ x: TensorType, _ a: Attrs) throws -> TensorType {
    let x = try rank(x, 4, 0)
    let size = a.ints("size")
    guard size.allSatisfy({ $0 >= 1 }) else { throw InferenceError("resize: size \(size) must be positive", attribute: "size") }
    return TensorType(x.dtype, [x.dims[0], x.dims[1], .fixed(size[0]), .fixed(size[1])])
}
