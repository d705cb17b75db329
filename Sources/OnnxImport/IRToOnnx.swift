// Export of an fn2e inference graph and its weights as an ONNX model (opset 13). Each fn2e op
// becomes the ONNX op(s) that compute it; parameters become initializers with their bytes
// unchanged; the batch N becomes the dynamic dimension "N" (other named sizes must be bound first).
// An op with no ONNX equivalent is an error naming the node.
import IR
import Tensors

public enum IRToOnnx {
    /// The default-domain operator set the exporter writes.
    public static let opset = 13

    /// fn2e ops the exporter writes (every op of an inference graph that ONNX can express).
    public static let exportedOps: [Op] = [
        .conv2d, .maxPool, .avgPool, .relu, .prelu, .sigmoid, .tanh, .dropout, .flatten, .reshape, .transpose, .concat,
        .slice, .channelReplicate, .resize, .add, .sub, .mul, .maximum, .affine, .scale, .bias, .batchNorm, .lrn, .linear,
        .softmax, .logSoftmax, .mean, .sum, .matmul, .fill,
    ]

    /// `graph` must be typed (verified), without calls, every size but N bound; `weights` holds a
    /// tensor for every parameter.
    public static func export(_ graph: Graph, weights: [String: Tensor], file: String = "<graph>") throws(OnnxError) -> OnnxModel {
        var e = Exporter(file: file, source: graph)
        try e.run(weights)
        var model = OnnxModel(irVersion: 7, opsets: ["": opset], graph: e.out)
        model.producerName = "fn2e"
        return model
    }
}

struct Exporter {
    let file: String
    let source: Graph
    var out: OnnxGraph
    var used: Set<String> = []
    var types: [String: TensorType] = [:]

    init(file: String, source: Graph) {
        self.file = file
        self.source = source
        out = OnnxGraph(name: source.name)
        types = source.typeTable
    }

    func fail(_ node: Node, _ message: String) -> OnnxError {
        OnnxError(file: file, "node '%\(node.name)' (\(node.op.rawValue)): \(message)")
    }

    func dims(_ t: TensorType) throws(OnnxError) -> [OnnxDim] {
        try t.dims.map { (d) throws(OnnxError) -> OnnxDim in
            switch d {
            case .fixed(let n): return .value(n)
            case .batch: return .param("N")
            case .symbol(let s): throw OnnxError(file: file, "the named size \(s) is unbound; bind it (--bind \(s)=VALUE) or give weights that fix it")
            }
        }
    }

    mutating func run(_ weights: [String: Tensor]) throws(OnnxError) {
        for i in source.inputs {
            guard i.type.dtype == .f32 else { throw OnnxError(file: file, "input %\(i.name) is \(i.type); ONNX export handles float32 inputs") }
            out.inputs.append(OnnxValueInfo(name: i.name, dims: try dims(i.type)))
            used.insert(i.name)
        }
        for p in source.params {
            guard let w = weights[p.name] else { throw OnnxError(file: file, "no weights for parameter %\(p.name)") }
            guard let shape = p.type.shape, shape == w.shape else {
                throw OnnxError(file: file, "parameter %\(p.name) is \(p.type) but its weights have shape \(w.shape)")
            }
            out.initializers.append(OnnxTensor(name: p.name, dims: shape, floats: w.data))
            used.insert(p.name)
        }
        for n in source.nodes { try export(n) }
        for o in source.outputs {
            guard let t = types[o] else { throw OnnxError(file: file, "output %\(o) has no type") }
            out.outputs.append(OnnxValueInfo(name: o, dims: try dims(t)))
        }
    }

    // MARK: Building

    func fresh(_ base: String) -> String { freshName(base, used) }

    /// Adds an ONNX node writing `output` (a fresh name derived from it when `output` is nil).
    @discardableResult
    mutating func add(_ opType: String, _ inputs: [String], _ attrs: [OnnxAttribute] = [], output: String) -> String {
        out.nodes.append(OnnxNode(name: output, opType: opType, inputs: inputs, outputs: [output], attributes: attrs))
        used.insert(output)
        return output
    }

    /// A constant initializer named after `base`.
    mutating func constant(_ base: String, floats: [Float], dims: [Int]) -> String {
        let name = fresh(base)
        out.initializers.append(OnnxTensor(name: name, dims: dims, floats: floats))
        used.insert(name)
        return name
    }

    mutating func constant(_ base: String, ints: [Int]) -> String {
        let name = fresh(base)
        out.initializers.append(OnnxTensor(name: name, dims: [ints.count], ints: ints.map(Int64.init)))
        used.insert(name)
        return name
    }

    /// A per-channel parameter [C] as an initializer [C, 1, ...] that broadcasts against axis 1 of
    /// rank `rank`: the parameter's own initializer reshaped when only per-channel operands use it,
    /// else a reshaped copy.
    mutating func channelShaped(_ node: Node, _ param: String, rank: Int) throws(OnnxError) -> String {
        guard let k = out.initializers.firstIndex(where: { $0.name == param }) else {
            throw fail(node, "operand %\(param) must be a parameter to export as a per-channel constant")
        }
        let dims = [out.initializers[k].count] + Array(repeating: 1, count: max(0, rank - 2))
        if out.initializers[k].dims == dims { return param }
        let perChannel: (Node) -> [String] = { n in
            if n.op == .scale { return Array(n.operands.dropFirst()) }
            return n.op == .prelu || n.op == .bias ? [n.operands[1]] : []
        }
        let otherUse = source.nodes.contains { n in n.operands.enumerated().contains { $0.element == param && !perChannel(n).contains(param) } }
            || source.outputs.contains(param)
        if !otherUse {
            out.initializers[k].dims = dims
            return param
        }
        var t = out.initializers[k]
        t.name = fresh("\(param).c")
        t.dims = dims
        out.initializers.append(t)
        used.insert(t.name)
        return t.name
    }

    // MARK: Ops

    mutating func export(_ node: Node) throws(OnnxError) {
        let a = node.fullAttrs
        let x = node.operands.first ?? ""
        let xt = types[x]
        let y = node.name
        used.insert(y)
        func pads() -> OnnxAttribute { let p = a.pair("pad"); return .ints("pads", [p.0, p.1, p.0, p.1]) }
        func pair(_ name: String, _ onnx: String) -> OnnxAttribute { let p = a.pair(name); return .ints(onnx, [p.0, p.1]) }
        // conv2d, linear and scale may carry a fused activation: the op, then Relu or LeakyRelu.
        let activation = Op.fusableProducers.contains(node.op) ? a.string("activation") : "none"
        let raw = activation == "none" ? y : fresh("\(y).raw")
        switch node.op {
        case .conv2d:
            guard let w = types[node.operands[1]], w.rank == 4 else { throw fail(node, "weight must be rank 4") }
            add("Conv", node.operands, [.ints("kernel_shape", [w.dims[2].value!, w.dims[3].value!]), pair("stride", "strides"), pads(),
                                        pair("dilation", "dilations"), .int("group", a.int("groups"))], output: raw)
        case .maxPool, .avgPool:
            let maxPool = node.op == .maxPool
            if a.bool("global") {
                add(maxPool ? "GlobalMaxPool" : "GlobalAveragePool", [x], output: y)
            } else {
                if a.string("round") == "ceil", let xt, let sizes = node.type?.dims[2...].compactMap(\.value), sizes.count == 2 {
                    let (k, s, p) = (a.pair("kernel"), a.pair("stride"), a.pair("pad"))
                    for (d, (kk, ss, pp)) in [(k.0, s.0, p.0), (k.1, s.1, p.1)].enumerated() {
                        guard let size = xt.dims[2 + d].value, onnxCeilPoolSize(size, kk, ss, pp) == sizes[d] else {
                            throw fail(node, "ceil rounding gives \(sizes[d]) windows along spatial axis \(d), which ONNX's ceil_mode does not (its last window would start past the input)")
                        }
                    }
                }
                var attrs = [pair("kernel", "kernel_shape"), pair("stride", "strides"), pads(), .int("ceil_mode", a.string("round") == "ceil" ? 1 : 0)]
                if !maxPool { attrs.append(.int("count_include_pad", 1)) }
                add(maxPool ? "MaxPool" : "AveragePool", [x], attrs, output: y)
            }
        case .relu:
            let slope = a.float("negative_slope")
            if slope == 0 { add("Relu", [x], output: y) } else { add("LeakyRelu", [x], [.float("alpha", Float(slope))], output: y) }
        case .prelu:
            add("PRelu", [x, try channelShaped(node, node.operands[1], rank: xt?.rank ?? 4)], output: y)
        case .sigmoid: add("Sigmoid", [x], output: y)
        case .tanh: add("Tanh", [x], output: y)
        case .dropout:
            add("Dropout", [x, constant("\(y).ratio", floats: [Float(a.float("ratio"))], dims: [])], output: y)
        case .flatten:
            if a.int("axis") == 1 && (a.int("end_axis") == -1 || a.int("end_axis") == (xt?.rank ?? 0) - 1) {
                add("Flatten", [x], [.int("axis", 1)], output: y)
            } else {
                try reshape(node, to: node.type!)
            }
        case .reshape:
            add("Reshape", [x, constant("\(y).shape", ints: a.ints("shape"))], output: y)
        case .transpose:
            add("Transpose", [x], [.ints("perm", a.ints("perm"))], output: y)
        case .concat:
            if let (value, fill, first, axis, extent) = padding(node) {
                // A value and a constant block: the value padded with the constant (no batch-sized constant for OpenCV to size).
                let rank = types[value]!.rank
                var pads = [Int](repeating: 0, count: 2 * rank)
                pads[axis + (first ? 0 : rank)] = extent
                add("Pad", [value, constant("\(y).pads", ints: pads), constant("\(y).value", floats: [Float(fill.fullAttrs.float("value"))], dims: [])],
                    [.string("mode", "constant")], output: y)
            } else {
                add("Concat", node.operands, [.int("axis", a.int("axis"))], output: y)
            }
        case .fill:
            // Not written when every use is a concat written as Pad.
            if !source.outputs.contains(y), source.nodes.allSatisfy({ !$0.operands.contains(y) || padding($0) != nil }) { return }
            // ConstantOfShape; a leading N (0 in the shape) is read from an input that has it.
            let shape = a.ints("shape"), value = Float(a.float("value"))
            var dims = ""
            if !shape.contains(0) {
                dims = constant("\(y).shape", ints: shape)
            } else {
                guard shape.lastIndex(of: 0) == 0, let n = source.inputs.first(where: { $0.type.dims.first == .batch }) else {
                    throw fail(node, "a shape with N other than on axis 0, or no input with N to read it from")
                }
                let s = add("Shape", [n.name], output: fresh("\(y).input_shape"))
                let b = add("Slice", [s, constant("\(y).zero", ints: [0]), constant("\(y).one", ints: [1])], output: fresh("\(y).n"))
                dims = add("Concat", [b, constant("\(y).rest", ints: Array(shape.dropFirst()))], [.int("axis", 0)], output: fresh("\(y).shape"))
            }
            let zeros = add("ConstantOfShape", [dims], output: value == 0 ? y : fresh("\(y).zeros"))
            if value != 0 { add("Add", [zeros, constant("\(y).value", floats: [value], dims: [])], output: y) }
        case .slice:
            add("Slice", [x, constant("\(y).starts", ints: [a.int("start")]), constant("\(y).ends", ints: [a.int("end")]),
                          constant("\(y).axes", ints: [a.int("axis")])], output: y)
        case .channelReplicate:
            add("Concat", Array(repeating: x, count: a.int("count")), [.int("axis", 1)], output: y)
        case .resize:
            guard let xt, let h = xt.dims[2].value, let w = xt.dims[3].value else { throw fail(node, "needs a fixed H and W") }
            let size = a.ints("size")
            let scales = constant("\(y).scales", floats: [1, 1, Float(size[0]) / Float(h), Float(size[1]) / Float(w)], dims: [4])
            add("Resize", [x, "", scales], [.string("mode", "nearest"), .string("coordinate_transformation_mode", "asymmetric"),
                                             .string("nearest_mode", "floor")], output: y)
        case .add, .sub, .mul, .div: add(node.op.rawValue.capitalized, node.operands, output: y)
        case .maximum: add("Max", node.operands, output: y)
        case .affine:
            let scale = Float(a.float("scale")), shift = Float(a.float("shift"))
            var v = x
            if scale != 1 || shift == 0 {
                v = add("Mul", [v, constant("\(y).scale", floats: [scale], dims: [])], output: shift == 0 ? y : fresh("\(y).scaled"))
            }
            if shift != 0 { add("Add", [v, constant("\(y).shift", floats: [shift], dims: [])], output: y) }
        case .scale:
            let rank = xt?.rank ?? 4
            let scaled = node.operands.count == 3 ? fresh("\(y).scaled") : raw
            add("Mul", [x, try channelShaped(node, node.operands[1], rank: rank)], output: scaled)
            if node.operands.count == 3 { add("Add", [scaled, try channelShaped(node, node.operands[2], rank: rank)], output: raw) }
        case .bias:
            add("Add", [x, try channelShaped(node, node.operands[1], rank: xt?.rank ?? 4)], output: y)
        case .batchNorm:
            guard let c = xt?.dims[1].value else { throw fail(node, "needs a fixed channel count") }
            let ones = constant("\(y).gamma", floats: Array(repeating: 1, count: c), dims: [c])
            let zeros = constant("\(y).beta", floats: Array(repeating: 0, count: c), dims: [c])
            add("BatchNormalization", [x, ones, zeros, node.operands[1], node.operands[2]], [.float("epsilon", Float(a.float("eps")))], output: y)
        case .lrn:
            guard a.string("region") == "across_channels" else { throw fail(node, "region=within_channel has no ONNX equivalent (ONNX's LRN is across channels)") }
            add("LRN", [x], [.int("size", a.int("size")), .float("alpha", Float(a.float("alpha"))), .float("beta", Float(a.float("beta"))),
                             .float("bias", Float(a.float("k")))], output: y)
        case .linear:
            add("Gemm", node.operands, [.int("transB", 1)], output: raw)
        case .softmax: add("Softmax", [x], [.int("axis", a.int("axis"))], output: y)
        case .logSoftmax: add("LogSoftmax", [x], [.int("axis", a.int("axis"))], output: y)
        case .mean, .sum:
            let axes = a.ints("axes")
            let attrs: [OnnxAttribute] = [.int("keepdims", 0)] + (axes.isEmpty ? [] : [.ints("axes", axes)])
            if node.op == .mean || axes.isEmpty {
                add(node.op == .mean ? "ReduceMean" : "ReduceSum", [x], attrs.filter { $0.name == "keepdims" || node.op == .mean }, output: y)
            } else {
                add("ReduceSum", [x, constant("\(y).axes", ints: axes)], [.int("keepdims", 0)], output: y)
            }
        case .matmul:
            var (l, r) = (x, node.operands[1])
            if a.bool("transpose_a") { l = add("Transpose", [l], [.ints("perm", [1, 0])], output: fresh("\(y).a")) }
            if a.bool("transpose_b") { r = add("Transpose", [r], [.ints("perm", [1, 0])], output: fresh("\(y).b")) }
            add("MatMul", [l, r], output: y)
        case .l2Normalize, .call, .priorBox, .detectionOutput, .softmaxCrossEntropy, .euclideanLoss, .dropoutMask,
             .batchNormTrain, .batchMoments, .batchNormTrainBackward,
             .conv2dBackwardData, .conv2dBackwardFilter, .maxPoolBackward, .avgPoolBackward, .reluBackward, .preluBackwardInput,
             .preluBackwardSlope, .sigmoidBackward, .tanhBackward, .softmaxBackward, .logSoftmaxBackward, .softmaxCrossEntropyBackward,
             .euclideanLossBackward, .maximumBackward, .lrnBackward, .batchNormBackward, .l2NormalizeBackward, .sliceBackward,
             .resizeBackward, .reduceBackward, .sumTo:
            throw fail(node, "fn2e's \(node.op.rawValue) has no ONNX equivalent in the exporter; exported ops: "
                       + IRToOnnx.exportedOps.map(\.rawValue).joined(separator: ", "))
        }
        if activation == "relu" {
            let slope = a.float("negative_slope")
            if slope == 0 { add("Relu", [raw], output: y) } else { add("LeakyRelu", [raw], [.float("alpha", Float(slope))], output: y) }
        }
    }

    /// A concat of two operands of which exactly one is a `fill` of a fixed size along the axis: the
    /// other operand, the fill, whether the fill comes first, the axis and the fill's size along it.
    func padding(_ n: Node) -> (String, Node, Bool, Int, Int)? {
        guard n.op == .concat, n.operands.count == 2, let rank = types[n.name]?.rank else { return nil }
        let fills = n.operands.map { o in source.node(o).flatMap { $0.op == .fill ? $0 : nil } }
        guard (fills[0] == nil) != (fills[1] == nil) else { return nil }
        let k = fills[0] != nil ? 0 : 1, axis = (n.fullAttrs.int("axis") + rank) % rank
        guard let extent = types[n.operands[k]]?.dims[axis].value else { return nil }
        return (n.operands[1 - k], fills[k]!, k == 0, axis, extent)
    }

    /// A Reshape to `type`: fixed sizes as they are, N copied (0) from the same axis.
    mutating func reshape(_ node: Node, to type: TensorType) throws(OnnxError) {
        let spec = try type.dims.enumerated().map { (k, d) throws(OnnxError) -> Int in
            if let v = d.value { return v }
            guard d == .batch, types[node.operands[0]]?.dims.indices.contains(k) == true, types[node.operands[0]]!.dims[k] == .batch else {
                throw fail(node, "moves the batch dimension N to another axis")
            }
            return 0
        }
        add("Reshape", [node.operands[0], constant("\(node.name).shape", ints: spec)], output: node.name)
    }
}
