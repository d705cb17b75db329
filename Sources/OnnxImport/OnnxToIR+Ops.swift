// ONNX ops onto fn2e's op table, one function per family. docs/ONNX.md lists what each accepts
// and what it refuses.
import IR
import Shapes

extension OnnxToIR {
    /// The ONNX op types (default domain) the importer converts.
    public static let supportedOps = [
        "Abs", "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Conv", "ConvTranspose",
        "Div", "Dropout", "Flatten", "Gather", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Identity", "LeakyRelu",
        "LogSoftmax", "LRN", "MatMul", "Max", "MaxPool", "Min", "Mul", "Neg", "Pad", "PRelu", "ReduceMean", "ReduceSum",
        "Relu", "Reshape", "Resize", "Shape", "Sigmoid", "Slice", "Softmax", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze",
    ]
}

extension OnnxConverter {
    mutating func convert(_ n: OnnxNode) throws(OnnxError) {
        guard n.domain.isEmpty || n.domain == "ai.onnx" else {
            throw fail("domain '\(n.domain)' is not ONNX's default domain; fn2e imports only default-domain ops")
        }
        if try foldConstant(n) { return }
        switch n.opType {
        case "Conv": try conv()
        case "ConvTranspose": try convTranspose()
        case "MaxPool", "AveragePool": try pool(max: n.opType == "MaxPool")
        case "GlobalAveragePool", "GlobalMaxPool":
            let (x, t) = try operand(0)
            guard t.rank == 4 else { throw fail("only rank-4 (NCHW) inputs are supported, found \(t)") }
            output(try emit(n.opType == "GlobalMaxPool" ? .maxPool : .avgPool, [x], ["global": .bool(true)]))
        case "Gemm": try gemm()
        case "MatMul": try matmul()
        case "Add", "Sub", "Mul", "Div": try arithmetic(n.opType)
        case "Max", "Min": try extremum(max: n.opType == "Max")
        case "Relu": output(try emit(.relu, [try operand(0).0]))
        case "LeakyRelu": output(try emit(.relu, [try operand(0).0], ["negative_slope": .float(decimal(float("alpha", 0.01)))]))
        case "Sigmoid": output(try emit(.sigmoid, [try operand(0).0]))
        case "Tanh": output(try emit(.tanh, [try operand(0).0]))
        case "Neg": output(try emit(.affine, [try operand(0).0], ["scale": .float(-1)]))
        case "Abs":
            let x = try operand(0).0
            output(try emit(.maximum, [x, try emit(.affine, [x], ["scale": .float(-1)], name: "\(n.outputs[0]).neg")]))
        case "PRelu": try prelu()
        case "Clip": try clip()
        case "Softmax", "LogSoftmax": try softmax(log: n.opType == "LogSoftmax")
        case "BatchNormalization": try batchNorm()
        case "LRN": try lrn()
        case "Concat":
            var xs: [String] = []
            for k in n.inputs.indices where has(k) { xs.append(try operand(k).0) }
            guard let first = xs.first else { throw fail("has no inputs") }
            let rank = types[first]!.rank
            output(try emit(.concat, xs, ["axis": .int(try axis(int("axis", 1), rank: rank))]))
        case "Reshape": try reshape()
        case "Flatten": try flatten()
        case "Transpose":
            let (x, t) = try operand(0)
            output(try emit(.transpose, [x], ["perm": .ints(ints("perm") ?? Array((0..<t.rank).reversed()))]))
        case "Squeeze", "Unsqueeze": try squeeze(un: n.opType == "Unsqueeze")
        case "Pad": try pad()
        case "Resize": try resize()
        case "Dropout": try dropout()
        case "Identity", "Cast":
            let (x, _) = try operand(0)
            if n.opType == "Cast", int("to", 1) != Int(OnnxDataType.float.rawValue) {
                throw fail("a Cast of a computed value to type \(int("to", 1)); fn2e computes in float32 only")
            }
            output(x)
        case "Shape":
            let (_, t) = try operand(0)
            throw fail("the shape of \(t) is not known at import time (N and named sizes are bound when compiling)")
        case "ReduceMean", "ReduceSum": try reduce(mean: n.opType == "ReduceMean")
        case "Slice": try slice()
        case "Gather": throw fail("Gather of a computed value: only Gather over constants (shape arithmetic) is computed at import time")
        default:
            throw fail("fn2e cannot import op type '\(n.opType)'; supported: " + OnnxToIR.supportedOps.joined(separator: ", "))
        }
        try onlyOutputs(1, "an extra output")
    }

    // MARK: Convolution and pooling

    /// Symmetric spatial padding [ph, pw] from `pads` ([h_begin, w_begin, h_end, w_end]) or `auto_pad`.
    func spatialPads(_ x: TensorType, kernel: [Int], strides: [Int], dilations: [Int]) throws(OnnxError) -> [Int] {
        let autoPad = string("auto_pad", "NOTSET")
        switch autoPad {
        case "NOTSET":
            let pads = ints("pads") ?? [0, 0, 0, 0]
            guard pads.count == 4 else { throw fail("pads \(pads) must have 4 values for a 2-D op") }
            guard pads[0] == pads[2], pads[1] == pads[3] else {
                throw fail("asymmetric pads \(pads) (begin and end differ); fn2e pads both sides of an axis alike")
            }
            return [pads[0], pads[1]]
        case "VALID":
            return [0, 0]
        case "SAME_UPPER", "SAME_LOWER":
            var out: [Int] = []
            for k in 0..<2 {
                guard let size = x.dims[2 + k].value else { throw fail("auto_pad \(autoPad) needs a fixed spatial size, found \(x)") }
                let outSize = (size + strides[k] - 1) / strides[k]
                let total = max(0, (outSize - 1) * strides[k] + (kernel[k] - 1) * dilations[k] + 1 - size)
                guard total % 2 == 0 else {
                    throw fail("auto_pad \(autoPad) pads \(total) along spatial axis \(k), unevenly; fn2e pads both sides of an axis alike")
                }
                out.append(total / 2)
            }
            return out
        default:
            throw fail("auto_pad '\(autoPad)' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
        }
    }

    /// A 2-D attribute (`d` twice when absent) whose values are at least `least` (strides, dilations: 1).
    func pair(_ name: String, _ d: Int, least: Int = 1) throws(OnnxError) -> [Int] {
        let v = ints(name) ?? [d, d]
        guard v.count == 2 else { throw fail("\(name) \(v) must have 2 values: fn2e's convolutions and pools are 2-D") }
        guard v.allSatisfy({ $0 >= least }) else { throw fail("\(name) \(v) must be at least \(least)") }
        return v
    }

    mutating func conv() throws(OnnxError) {
        let (x, xt) = try operand(0)
        guard xt.rank == 4 else { throw fail("only 2-D convolution (a rank-4 NCHW input) is supported, found \(xt)") }
        let (w, wt) = try operand(1, trainable: true)
        guard wt.rank == 4, let kh = wt.dims[2].value, let kw = wt.dims[3].value else { throw fail("weight \(wt) must be [O, C/group, KH, KW]") }
        if let k = ints("kernel_shape"), k != [kh, kw] { throw fail("kernel_shape \(k) differs from the weight's \([kh, kw])") }
        let strides = try pair("strides", 1), dilations = try pair("dilations", 1)
        let pads = try spatialPads(xt, kernel: [kh, kw], strides: strides, dilations: dilations)
        var operands = [x, w]
        if has(2) { operands.append(try operand(2, trainable: true).0) }
        output(try emit(.conv2d, operands, ["stride": .ints(strides), "pad": .ints(pads), "dilation": .ints(dilations), "groups": .int(int("group", 1))]))
    }

    /// ConvTranspose is the gradient of a convolution with respect to its input: fn2e's
    /// conv2d_backward_data with the output size given, plus a per-channel bias.
    mutating func convTranspose() throws(OnnxError) {
        let (x, xt) = try operand(0)
        guard xt.rank == 4, let h = xt.dims[2].value, let wd = xt.dims[3].value else { throw fail("only 2-D transposed convolution of a fixed-size NCHW input is supported, found \(xt)") }
        let (w, wt) = try operand(1, trainable: true)
        guard wt.rank == 4, let kh = wt.dims[2].value, let kw = wt.dims[3].value else { throw fail("weight \(wt) must be [C, O/group, KH, KW]") }
        guard string("auto_pad", "NOTSET") == "NOTSET" else { throw fail("auto_pad \(string("auto_pad", "")) is not supported for ConvTranspose; give pads") }
        let strides = try pair("strides", 1), dilations = try pair("dilations", 1)
        let extra = try pair("output_padding", 0, least: 0)
        let kernel = [kh, kw], input = [h, wd]
        var pads = try spatialPads(xt, kernel: kernel, strides: strides, dilations: dilations)
        // The size before padding: stride (in - 1) + output_padding + the dilated kernel.
        var full: [Int] = []
        for k in 0..<2 {
            let span: Int = (kernel[k] - 1) * dilations[k] + 1
            full.append(strides[k] * (input[k] - 1) + extra[k] + span)
        }
        var size = [full[0] - 2 * pads[0], full[1] - 2 * pads[1]]
        if let shape = ints("output_shape") {
            let wanted = Array(shape.suffix(2))
            for k in 0..<2 {
                let total = full[k] - wanted[k]
                guard total >= 0, total % 2 == 0 else { throw fail("output_shape \(shape) needs uneven padding; fn2e pads both sides alike") }
                pads[k] = total / 2
            }
            size = wanted
        }
        var y = try emit(.conv2dBackwardData, [x, w], ["stride": .ints(strides), "pad": .ints(pads), "dilation": .ints(dilations),
                                                        "groups": .int(int("group", 1)), "input_size": .ints(size)],
                         name: has(2) ? "\(node.outputs[0]).nobias" : nil)
        if has(2) { y = try emit(.bias, [y, try operand(2, trainable: true).0]) }
        output(y)
    }

    mutating func pool(max: Bool) throws(OnnxError) {
        let (x, xt) = try operand(0)
        guard xt.rank == 4 else { throw fail("only 2-D pooling (a rank-4 NCHW input) is supported, found \(xt)") }
        guard let kernel = ints("kernel_shape"), kernel.count == 2, kernel.allSatisfy({ $0 >= 1 }) else {
            throw fail("kernel_shape \(ints("kernel_shape") ?? []) must have 2 values of at least 1")
        }
        let strides = try pair("strides", 1)
        guard try pair("dilations", 1) == [1, 1] else { throw fail("dilations \(ints("dilations")!) are not supported: fn2e's pools are dense") }
        let pads = try spatialPads(xt, kernel: kernel, strides: strides, dilations: [1, 1])
        let excludePad = !max && pads != [0, 0] && int("count_include_pad", 0) == 0
        try onlyOutputs(1, "the indices of the maxima")
        var round = "floor"
        if int("ceil_mode", 0) == 1 {
            // ONNX drops a last window that starts past the input even without padding; fn2e (Caffe)
            // only when it starts in the padding. Where the sizes differ, ONNX's equals floor's.
            round = "ceil"
            for k in 0..<2 {
                guard let size = xt.dims[2 + k].value else { continue }
                let onnx = onnxCeilPoolSize(size, kernel[k], strides[k], pads[k])
                if onnx != poolOutputSize(input: size, kernel: kernel[k], stride: strides[k], pad: pads[k], ceil: true) {
                    guard onnx == poolOutputSize(input: size, kernel: kernel[k], stride: strides[k], pad: pads[k], ceil: false) else {
                        throw fail("ceil_mode gives \(onnx) windows along spatial axis \(k), which fn2e's ceil and floor rounding do not")
                    }
                    round = "floor"
                }
            }
        }
        let y = try emit(max ? .maxPool : .avgPool, [x], ["kernel": .ints(kernel), "stride": .ints(strides), "pad": .ints(pads),
                                                          "round": .word(round)], name: excludePad ? "\(node.outputs[0]).padded" : nil)
        guard excludePad else { return output(y) }
        // count_include_pad=0: fn2e divides by the window clipped to the padded input (Caffe); each
        // output is rescaled by that divisor over the count of real pixels, a constant [OH, OW] map.
        let yt = types[y]!
        guard let h = xt.dims[2].value, let w = xt.dims[3].value, let oh = yt.dims[2].value, let ow = yt.dims[3].value else {
            throw fail("count_include_pad=0 with pads \(pads) needs fixed spatial sizes, found \(xt)")
        }
        func counts(_ i: Int, _ k: Int, _ size: Int) -> (caffe: Int, real: Int) {
            let start = i * strides[k] - pads[k], end = start + kernel[k]
            return (Swift.min(end, size + pads[k]) - start, Swift.max(0, Swift.min(end, size) - Swift.max(start, 0)))
        }
        var factor: [Float] = []
        for i in 0..<oh {
            let (ch, rh) = counts(i, 0, h)
            for j in 0..<ow {
                let (cw, rw) = counts(j, 1, w)
                factor.append(Float(ch * cw) / Float(Swift.max(1, rh * rw)))
            }
        }
        let f = try param(OnnxTensor(name: "", dims: [1, 1, oh, ow], floats: factor), purpose: "count")
        output(try emit(.mul, [y, f.0]))
    }

    // MARK: Dense layers

    mutating func gemm() throws(OnnxError) {
        let alpha = float("alpha", 1), beta = float("beta", 1)
        var (a, _) = try operand(0)
        if int("transA", 0) == 1 { a = try emit(.transpose, [a], ["perm": .ints([1, 0])], name: "\(node.outputs[0]).a") }
        let transB = int("transB", 0) == 1
        if let b = constant(1), b.dims.count == 2 {
            // linear's weight is [O, I]: B as stored when transB=1, else transposed.
            let (o, i) = transB ? (b.dims[0], b.dims[1]) : (b.dims[1], b.dims[0])
            let w = try operand(1, trainable: true, shape: [o, i], transform: { t in
                let v = t.asFloats
                let out = transB ? v : (0..<o * i).map { v[($0 % i) * o + $0 / i] }
                return alpha == 1 ? out : out.map { $0 * alpha }
            }, purpose: transB && alpha == 1 ? "" : "linear")
            var operands = [a, w.0]
            var addC = false
            if let c = constant(2) {
                if c.count == o && (c.dims == [o] || c.dims == [1, o]) || c.count == 1 {
                    operands.append(try operand(2, trainable: true, shape: [o], transform: { t in
                        let v = t.asFloats.map { $0 * beta }
                        return v.count == 1 ? Array(repeating: v[0], count: o) : v
                    }, purpose: c.dims == [o] && beta == 1 ? "" : "bias").0)
                } else {
                    addC = true
                }
            } else if has(2) {
                addC = true
            }
            var y = try emit(.linear, operands, name: addC ? "\(node.outputs[0]).ab" : nil)
            if addC { y = try addBias(y, beta) }
            output(y)
            return
        }
        let (b, _) = try operand(1)
        let out = node.outputs[0]
        var y = try emit(.matmul, [a, b], ["transpose_b": .bool(transB)], name: alpha != 1 || has(2) ? "\(out).ab" : nil)
        if alpha != 1 { y = try emit(.affine, [y], ["scale": .float(decimal(alpha))], name: has(2) ? "\(out).alpha" : nil) }
        if has(2) { y = try addBias(y, beta) }
        output(y)
    }

    /// y + beta * C, C (Gemm's input 2) broadcast.
    mutating func addBias(_ y: String, _ beta: Float) throws(OnnxError) -> String {
        var c = try operand(2, transform: { t in t.asFloats.map { $0 * beta } }, purpose: beta == 1 ? "" : "beta").0
        if beta != 1, constant(2) == nil { c = try emit(.affine, [c], ["scale": .float(decimal(beta))], name: "\(node.outputs[0]).c") }
        return try emit(.add, [y, c])
    }

    mutating func matmul() throws(OnnxError) {
        let (a, at) = try operand(0)
        guard at.rank == 2 else { throw fail("MatMul of a rank-\(at.rank) input \(at): fn2e multiplies rank-2 matrices only") }
        if let b = constant(1), b.dims.count == 2 {
            let (i, o) = (b.dims[0], b.dims[1])
            let w = try operand(1, trainable: true, shape: [o, i], transform: { t in
                let v = t.asFloats
                return (0..<o * i).map { v[($0 % i) * o + $0 / i] }
            }, purpose: "linear")
            output(try emit(.linear, [a, w.0]))
            return
        }
        let (b, bt) = try operand(1)
        guard bt.rank == 2 else { throw fail("MatMul with a rank-\(bt.rank) operand \(bt): fn2e multiplies rank-2 matrices only") }
        output(try emit(.matmul, [a, b]))
    }

    // MARK: Elementwise

    /// Add, Sub, Mul, Div with NumPy broadcasting. A scalar constant becomes `affine` (a divisor: times
    /// its reciprocal); a constant of shape [C, 1, ...] against axis 1 becomes `scale` (Mul) or `bias`
    /// (Add); any other operands, constants as frozen parameters, `add`, `sub`, `mul` or `div`.
    mutating func arithmetic(_ op: String) throws(OnnxError) {
        let c0 = constant(0), c1 = constant(1)
        if op == "Div", let c = [c0, c1].compactMap({ $0 }).first(where: { $0.type?.isInteger ?? false }) {
            throw fail("Div of integers (constant '\(c.name)' is \(c.type!)) truncates; fn2e divides in float32")
        }
        if c0 == nil || c1 == nil, let c = c1 ?? c0 {
            let k = c1 != nil ? 1 : 0
            let (x, xt) = try operand(1 - k)
            let values = c.asFloats
            if c.count == 1 && c.dims.count <= xt.rank && (op != "Div" || k == 1) {
                let v = decimal(values[0])
                let attrs: [String: AttrValue]
                switch (op, k) {
                case ("Add", _): attrs = ["shift": .float(v)]
                case ("Mul", _): attrs = ["scale": .float(v)]
                case ("Sub", 1): attrs = ["shift": .float(-v)]
                case ("Sub", _): attrs = ["scale": .float(-1), "shift": .float(v)]
                default: attrs = ["scale": .float(decimal(1 / values[0]))]
                }
                return output(try emit(.affine, [x], attrs))
            }
            if (op == "Mul" || op == "Add"), xt.rank >= 2, let ch = xt.dims[1].value, channelShaped(c.dims, rank: xt.rank, channels: ch) {
                let p = try operand(k, trainable: true, shape: [ch], purpose: "c")
                return output(try emit(op == "Mul" ? .scale : .bias, [x, p.0]))
            }
        }
        let a = try operand(0).0, b = try operand(1).0
        output(try emit(Op(rawValue: op.lowercased())!, [a, b]))
    }

    /// Whether a constant of shape `dims` broadcast against rank `rank` varies only along axis 1 with `channels` values.
    func channelShaped(_ dims: [Int], rank: Int, channels: Int) -> Bool {
        guard dims.count <= rank, dims.count >= rank - 1 else { return false }
        let aligned = Array(repeating: 1, count: rank - dims.count) + dims
        return aligned[1] == channels && aligned.enumerated().allSatisfy { $0.offset == 1 || $0.element == 1 }
    }

    /// Max and Min of any number of inputs, pairwise; min(a, b) = -max(-a, -b).
    mutating func extremum(max: Bool) throws(OnnxError) {
        var xs: [String] = []
        for k in node.inputs.indices where has(k) {
            let x = try operand(k).0
            xs.append(max ? x : try emit(.affine, [x], ["scale": .float(-1)], name: "\(node.outputs[0]).neg\(k)"))
        }
        guard var y = xs.first else { throw fail("has no inputs") }
        for (k, x) in xs.dropFirst().enumerated() {
            y = try emit(.maximum, [y, x], name: max && k == xs.count - 2 ? nil : "\(node.outputs[0]).max\(k)")
        }
        output(max ? y : try emit(.affine, [y], ["scale": .float(-1)]))
    }

    mutating func prelu() throws(OnnxError) {
        let (x, xt) = try operand(0)
        guard let s = constant(1) else { throw fail("the slope must be a constant (an initializer)") }
        if s.count == 1 { return output(try emit(.prelu, [x, try operand(1, trainable: true, shape: [1]).0])) }
        guard xt.rank >= 2, let ch = xt.dims[1].value, channelShaped(s.dims, rank: xt.rank, channels: ch) else {
            throw fail("slope of shape \(s.dims) for input \(xt): fn2e's prelu has one slope per channel (shape [C, 1, 1]) or one in all")
        }
        output(try emit(.prelu, [x, try operand(1, trainable: true, shape: [ch]).0]))
    }

    /// Clip(x, lo, hi) = min(max(x, lo), hi); max(x, 0) is relu, min(y, hi) = -max(-y, -hi).
    mutating func clip() throws(OnnxError) {
        func bound(_ k: Int, _ attribute: String) throws(OnnxError) -> Float? {
            if has(k) {
                guard let c = constant(k), c.count == 1 else { throw fail("its bound (input \(k)) must be a scalar constant") }
                return c.asFloats[0]
            }
            return attr(attribute)?.f
        }
        var (y, _) = try operand(0)
        let lo = try bound(1, "min"), hi = try bound(2, "max")
        let out = node.outputs[0]
        if let lo {
            y = lo == 0 ? try emit(.relu, [y], name: hi == nil ? nil : "\(out).lo")
                        : try emit(.maximum, [y, try scalarParam(lo, "min")], name: hi == nil ? nil : "\(out).lo")
        }
        if let hi {
            let negated = try emit(.affine, [y], ["scale": .float(-1)], name: "\(out).neg")
            let m = try emit(.maximum, [negated, try scalarParam(-hi, "negmax")], name: "\(out).hi")
            y = try emit(.affine, [m], ["scale": .float(-1)])
        }
        if lo == nil && hi == nil { y = try emit(.affine, [y]) }
        output(y)
    }

    /// Softmax over one axis (opset 13) or, before opset 13, over all axes from `axis` on (the input
    /// flattened to 2-D there and reshaped back).
    mutating func softmax(log: Bool) throws(OnnxError) {
        let (x, xt) = try operand(0)
        let op: Op = log ? .logSoftmax : .softmax
        let a = try axis(int("axis", opset >= 13 ? -1 : 1), rank: xt.rank)
        if opset >= 13 || a == xt.rank - 1 { return output(try emit(op, [x], ["axis": .int(a)])) }
        guard a >= 1, xt.dims[a...].allSatisfy({ $0.value != nil }) else {
            throw fail("softmax over axes \(a)... of \(xt) (opset \(opset) flattens them): fn2e needs them fixed and after N")
        }
        let out = node.outputs[0]
        let flat = try emit(.flatten, [x], ["axis": .int(a)], name: "\(out).flat")
        let y = try emit(op, [flat], ["axis": .int(a)], name: "\(out).\(op.rawValue)")
        output(try emit(.reshape, [y], ["shape": .ints((0..<xt.rank).map { $0 < a ? 0 : xt.dims[$0].value! })]))
    }

    mutating func batchNorm() throws(OnnxError) {
        guard int("training_mode", 0) == 0 else { throw fail("training_mode=1 (statistics of the batch) is not supported; fn2e imports inference graphs") }
        try onlyOutputs(1, "running statistics of training mode")
        let (x, xt) = try operand(0)
        guard xt.rank >= 2, let ch = xt.dims[1].value else { throw fail("input \(xt) needs a fixed channel axis 1") }
        for k in 1...4 {
            guard let c = constant(k), c.count == ch else { throw fail("input \(k) must be a constant of \(ch) values (one per channel)") }
        }
        let out = node.outputs[0]
        let mean = try operand(3, shape: [ch]).0, variance = try operand(4, shape: [ch]).0
        let gamma = constant(1)!.asFloats, beta = constant(2)!.asFloats
        let affine = gamma.contains { $0 != 1 } || beta.contains { $0 != 0 }
        let y = try emit(.batchNorm, [x, mean, variance], ["eps": .float(decimal(float("epsilon", 1e-5)))], name: affine ? "\(out).norm" : nil)
        guard affine else { return output(y) }
        output(try emit(.scale, [y, try operand(1, trainable: true, shape: [ch]).0, try operand(2, trainable: true, shape: [ch]).0]))
    }

    mutating func lrn() throws(OnnxError) {
        let (x, _) = try operand(0)
        let size = int("size", 0)
        guard size > 0, size % 2 == 1 else { throw fail("size \(size): fn2e's lrn needs an odd size (a window centred on each channel)") }
        output(try emit(.lrn, [x], ["size": .int(size), "alpha": .float(decimal(float("alpha", 1e-4))),
                                    "beta": .float(decimal(float("beta", 0.75))), "k": .float(decimal(float("bias", 1)))]))
    }

    mutating func dropout() throws(OnnxError) {
        let (x, _) = try operand(0)
        if let t = constant(2), t.values.first ?? 0 != 0 { throw fail("training_mode=true is not supported; fn2e imports inference graphs") }
        guard !has(2) || constant(2) != nil else { throw fail("training_mode must be a constant") }
        try onlyOutputs(1, "the dropout mask")
        var ratio = decimal(float("ratio", 0.5))
        if has(1) {
            guard let r = constant(1)?.values.first else { throw fail("ratio must be a constant") }
            ratio = r
        }
        output(try emit(.dropout, [x], ["ratio": .float(ratio)]))
    }

    mutating func reduce(mean: Bool) throws(OnnxError) {
        let (x, xt) = try operand(0)
        var axes = ints("axes")
        if has(1) { axes = try constantInts(1, "axes") }
        if axes?.isEmpty ?? true, int("noop_with_empty_axes", 0) == 1 { return output(try emit(.affine, [x])) }
        let all = axes?.isEmpty ?? true
        let normalized = try (axes ?? []).map { (a) throws(OnnxError) in try axis(a, rank: xt.rank, "axes") }
        let keep = int("keepdims", 1) == 1
        let out = node.outputs[0]
        let y = try emit(mean ? .mean : .sum, [x], ["axes": .ints(normalized)], name: keep ? "\(out).reduced" : nil)
        guard keep else { return output(y) }
        let dims = xt.dims.enumerated().map { all || normalized.contains($0.offset) ? Dim.fixed(1) : $0.element }
        output(try reshape(y, from: types[y]!, to: dims))
    }

    // MARK: Shapes

    /// A reshape of `x` to `dims`: fixed sizes as they are, a symbolic size copied (0) from the same
    /// position of `x`, as fn2e's reshape requires.
    mutating func reshape(_ x: String, from xt: TensorType, to dims: [Dim], name: String? = nil) throws(OnnxError) -> String {
        var spec: [Int] = []
        for (k, d) in dims.enumerated() {
            if let v = d.value { spec.append(v); continue }
            guard k < xt.rank, xt.dims[k] == d else { throw fail("\(xt) to \(TensorType(.f32, dims)) moves the symbolic size \(d) to another axis, which fn2e's reshape cannot") }
            spec.append(0)
        }
        return try emit(.reshape, [x], ["shape": .ints(spec)], name: name)
    }

    mutating func reshape() throws(OnnxError) {
        let (x, xt) = try operand(0)
        let dims = try constantDims(1, "the shape")
        // A size read by Shape from a symbolic dimension: copied (0) from the same axis of x.
        var shape = try dims.enumerated().map { (e) throws(OnnxError) -> Int in
            let (k, d) = (e.offset, e.element)
            if let v = d.value { return v }
            guard k < xt.rank, xt.dims[k] == d else { throw fail("shape \(dims) puts the symbolic size \(d) of \(xt) on axis \(k), another axis; fn2e's reshape keeps symbolic sizes in place") }
            return 0
        }
        if int("allowzero", 0) == 1, dims.contains(.fixed(0)) { throw fail("allowzero=1 with a 0 in \(dims): fn2e has no empty tensors") }
        // A -1 or a literal in N's place: fn2e keeps N by copying it (0), when the rest fits.
        if xt.dims.first == .batch, let first = shape.first, first != 0 {
            let rest = shape.dropFirst()
            let perItem = xt.dims.dropFirst().reduce(1) { $0 * ($1.value ?? 0) }
            if !rest.contains(-1), rest.reduce(1, *) == perItem { shape[0] = 0 }
            else if first != -1 { throw fail("shape \(shape) sets the batch dimension N of \(xt) to \(first); export with a dynamic batch (-1 or 0 there)") }
        }
        output(try emit(.reshape, [x], ["shape": .ints(shape)]))
    }

    mutating func flatten() throws(OnnxError) {
        let (x, xt) = try operand(0)
        let given = int("axis", 1)
        let a = try axis(given < 0 ? given + xt.rank : given, rank: xt.rank + 1)
        if a == 1, xt.rank >= 2 { return output(try emit(.flatten, [x])) }
        guard let shape = xt.shape else { throw fail("Flatten at axis \(a) of \(xt) would merge the batch dimension N") }
        let outer = shape[..<a].reduce(1, *), inner = shape[a...].reduce(1, *)
        output(try emit(.reshape, [x], ["shape": .ints([outer, inner])]))
    }

    mutating func squeeze(un: Bool) throws(OnnxError) {
        let (x, xt) = try operand(0)
        var axes = ints("axes")
        if has(1) { axes = try constantInts(1, "axes") }
        var dims = xt.dims
        if un {
            guard let axes else { throw fail("needs axes") }
            let rank = xt.rank + axes.count
            let normalized = try axes.map { (a) throws(OnnxError) in try axis(a, rank: rank, "axes") }.sorted()
            for a in normalized { dims.insert(.fixed(1), at: a) }
        } else {
            let normalized = try (axes ?? xt.dims.indices.filter { xt.dims[$0] == .fixed(1) }).map { (a) throws(OnnxError) in try axis(a, rank: xt.rank, "axes") }
            for a in normalized where xt.dims[a] != .fixed(1) { throw fail("axis \(a) of \(xt) is not of size 1") }
            dims = xt.dims.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
        }
        output(try reshape(x, from: xt, to: dims))
    }

    /// Slice's starts, ends, axes and steps (inputs 1-4), axes normalised against `rank`.
    func sliceSpec(rank: Int) throws(OnnxError) -> [(axis: Int, start: Int, end: Int, step: Int)] {
        let starts = try constantInts(1, "starts"), ends = try constantInts(2, "ends")
        let axes = has(3) ? try constantInts(3, "axes") : Array(0..<starts.count)
        let steps = has(4) ? try constantInts(4, "steps") : Array(repeating: 1, count: starts.count)
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
            throw fail("starts \(starts), ends \(ends), axes \(axes) and steps \(steps) differ in length")
        }
        return try starts.indices.map { (k) throws(OnnxError) -> (axis: Int, start: Int, end: Int, step: Int) in
            guard steps[k] != 0 else { throw fail("a step of 0") }
            return (try axis(axes[k], rank: rank, "axes"), starts[k], ends[k], steps[k])
        }
    }

    /// The indices ONNX's Slice takes from an axis of `size` (starts and ends clamped as ONNX does).
    func sliceIndices(_ start: Int, _ end: Int, _ step: Int, size: Int) -> [Int] {
        func clamp(_ v: Int, _ lo: Int, _ hi: Int) -> Int { Swift.min(Swift.max(v < 0 ? v + size : v, lo), hi) }
        if step > 0 { return Array(stride(from: clamp(start, 0, size), to: clamp(end, 0, size), by: step)) }
        return Array(stride(from: clamp(start, 0, size - 1), to: clamp(end, -1, size - 1), by: step))
    }

    /// Slice of a computed value with steps of 1: fn2e's slice per axis that is cut.
    mutating func slice() throws(OnnxError) {
        let (x, xt) = try operand(0)
        var y = x
        let spec = try sliceSpec(rank: xt.rank)
        for (k, s) in spec.enumerated() {
            guard s.step == 1 else { throw fail("step \(s.step) on axis \(s.axis): fn2e's slice takes contiguous ranges") }
            guard let size = xt.dims[s.axis].value else {
                if s.start == 0, s.end >= Int(Int32.max) { continue }
                throw fail("slicing axis \(s.axis) of \(xt), a symbolic size")
            }
            let idx = sliceIndices(s.start, s.end, 1, size: size)
            guard let first = idx.first else { throw fail("[\(s.start), \(s.end)) leaves nothing of axis \(s.axis) of \(xt); fn2e has no empty tensors") }
            if idx.count == size { continue }
            y = try emit(.slice, [y], ["axis": .int(s.axis), "start": .int(first), "end": .int(first + idx.count)],
                         name: spec[(k + 1)...].isEmpty ? nil : "\(node.outputs[0]).axis\(s.axis)")
        }
        output(y == x ? try emit(.affine, [x]) : y)
    }

    /// Pad in constant mode: each padded axis is fn2e's slice_backward (the value placed in a zero
    /// tensor), a negative pad a slice; a non-zero value v pads x - v and adds v back.
    mutating func pad() throws(OnnxError) {
        let (x, xt) = try operand(0)
        guard string("mode", "constant") == "constant" else { throw fail("mode '\(string("mode", ""))': fn2e pads with a constant only") }
        let pads = try constantInts(1, "pads")
        var axes = Array(0..<xt.rank)
        if has(3) { axes = try constantInts(3, "axes").map { (a) throws(OnnxError) in try axis(a, rank: xt.rank, "axes") } }
        guard pads.count == 2 * axes.count else { throw fail("pads \(pads) must have 2 values per axis of \(axes)") }
        guard pads.allSatisfy({ $0.magnitude < 1 << 24 }) else { throw fail("pads \(pads) are beyond 2^24 elements") }
        var value: Float = 0
        if has(2) {
            guard let c = constant(2), c.count == 1 else { throw fail("constant_value must be a scalar constant") }
            value = c.asFloats[0]
        }
        let out = node.outputs[0]
        var y = value == 0 ? x : try emit(.affine, [x], ["shift": .float(-decimal(value))], name: "\(out).shifted")
        for (k, a) in axes.enumerated() {
            let (begin, end) = (pads[k], pads[k + axes.count])
            guard begin != 0 || end != 0 else { continue }
            guard let size = types[y]!.dims[a].value else { throw fail("padding axis \(a) of \(xt), a symbolic size") }
            if begin < 0 || end < 0 {
                let start = Swift.max(0, -begin), stop = size - Swift.max(0, -end)
                guard start < stop else { throw fail("pads \(pads) leave nothing of axis \(a)") }
                y = try emit(.slice, [y], ["axis": .int(a), "start": .int(start), "end": .int(stop)], name: "\(out).crop\(a)")
            }
            let inner = types[y]!.dims[a].value!
            let b = Swift.max(0, begin), e = Swift.max(0, end)
            if b > 0 || e > 0 {
                y = try emit(.sliceBackward, [y], ["axis": .int(a), "start": .int(b), "end": .int(b + inner), "size": .int(b + inner + e)], name: "\(out).pad\(a)")
            }
        }
        output(value == 0 && y != x ? y : try emit(.affine, [y], ["shift": .float(decimal(value))]))
    }

    /// Resize in nearest mode, imported when ONNX's source index of every output pixel (for the
    /// node's coordinate transformation and rounding) equals fn2e's `i * H / OH`.
    mutating func resize() throws(OnnxError) {
        let (x, xt) = try operand(0)
        guard xt.rank == 4, let h = xt.dims[2].value, let w = xt.dims[3].value else { throw fail("only NCHW inputs with fixed H and W are supported, found \(xt)") }
        let mode = string("mode", "nearest")
        guard mode == "nearest" else { throw fail("mode '\(mode)': fn2e's resize is nearest-neighbour only") }
        guard int("antialias", 0) == 0 else { throw fail("antialias=1 is not supported") }
        guard ints("axes") == nil else { throw fail("the axes attribute is not supported; give sizes or scales for all 4 axes") }
        var scales: [Double]
        var size: [Int]
        if let sizes = constant(3), sizes.count > 0 {
            let s = sizes.integers
            guard s.count == 4, s[0] == xt.dims[0].value ?? s[0], s[1] == xt.dims[1].value ?? s[1] else { throw fail("sizes \(s) must keep N and C of \(xt)") }
            size = [s[2], s[3]]
            scales = [Double(s[2]) / Double(h), Double(s[3]) / Double(w)]
        } else if let sc = constant(2), sc.count > 0 {
            let s = sc.values
            guard s.count == 4, s[0] == 1, s[1] == 1 else { throw fail("scales \(s) must be 1 for N and C") }
            guard s[2...].allSatisfy({ $0 > 0 && $0 <= 4096 }) else { throw fail("scales \(s) must be in (0, 4096]") }
            scales = [Double(Float(s[2])), Double(Float(s[3]))]
            size = [Int((Double(h) * s[2]).rounded(.down)), Int((Double(w) * s[3]).rounded(.down))]
        } else {
            throw fail("needs constant scales or sizes")
        }
        let ctm = string("coordinate_transformation_mode", "half_pixel"), rounding = string("nearest_mode", "round_prefer_floor")
        for (k, (inSize, outSize)) in [(h, size[0]), (w, size[1])].enumerated() {
            guard outSize > 0, outSize <= 1 << 20 else { throw fail("output size \(size) is empty or larger than 2^20") }
            for i in 0..<outSize {
                guard let src = nearestSource(i, inSize: inSize, outSize: outSize, scale: scales[k], ctm: ctm, rounding: rounding) else {
                    throw fail("coordinate_transformation_mode '\(ctm)' or nearest_mode '\(rounding)' is not supported")
                }
                guard src == i * inSize / outSize else {
                    throw fail("\(ctm) coordinates with \(rounding) rounding take output \(i) of \(outSize) from input \(src) of \(inSize); fn2e's resize takes it from \(i * inSize / outSize) (floor(i * H / OH))")
                }
            }
        }
        output(try emit(.resize, [x], ["size": .ints(size)]))
    }

    /// ONNX's nearest source index (Resize-11 and later), or nil for a mode it does not know.
    func nearestSource(_ i: Int, inSize: Int, outSize: Int, scale: Double, ctm: String, rounding: String) -> Int? {
        let x = Double(i), n = Double(inSize)
        let original: Double
        switch ctm {
        case "half_pixel": original = (x + 0.5) / scale - 0.5
        case "pytorch_half_pixel": original = outSize > 1 ? (x + 0.5) / scale - 0.5 : 0
        case "asymmetric": original = x / scale
        case "tf_half_pixel_for_nn": original = (x + 0.5) / scale
        case "align_corners": original = outSize == 1 ? 0 : x * (n - 1) / Double(outSize - 1)
        default: return nil
        }
        let r: Double
        switch rounding {
        case "round_prefer_floor": r = original == original.rounded(.down) + 0.5 ? original.rounded(.down) : original.rounded()
        case "round_prefer_ceil": r = original == original.rounded(.down) + 0.5 ? original.rounded(.up) : original.rounded()
        case "floor": r = original.rounded(.down)
        case "ceil": r = original.rounded(.up)
        default: return nil
        }
        return Swift.min(Swift.max(Int(r), 0), inSize - 1)
    }

    // MARK: Constants

    /// Constant, and ops whose inputs are all constants among Identity, Cast, Reshape, Squeeze,
    /// Unsqueeze, Concat, Gather and Shape of a fixed shape: computed at import time.
    mutating func foldConstant(_ n: OnnxNode) throws(OnnxError) -> Bool {
        if n.opType == "Constant" {
            guard let a = n.attributes.first else { throw fail("has no value attribute") }
            switch a.name {
            case "value": outputConstant(a.t ?? OnnxTensor(name: "", dims: [], floats: []))
            case "value_float": outputConstant(OnnxTensor(name: "", dims: [], floats: [a.f]))
            case "value_floats": outputConstant(OnnxTensor(name: "", dims: [a.floats.count], floats: a.floats))
            case "value_int": outputConstant(OnnxTensor(name: "", dims: [], ints: [a.i]))
            case "value_ints": outputConstant(OnnxTensor(name: "", dims: [a.ints.count], ints: a.ints))
            default: throw fail("a Constant given as '\(a.name)' is not supported")
            }
            return true
        }
        if n.opType == "Shape", has(0), let dims = values[n.inputs[0]].map({ types[$0]!.dims }) ?? constants[n.inputs[0]]?.dims.map(Dim.fixed) {
            // A symbolic size (N, a named size) becomes a sentinel only Reshape's shape accepts.
            let rank = dims.count
            let clampAxis = { (a: Int) in Swift.min(Swift.max(a < 0 ? a + rank : a, 0), rank) }
            let start = clampAxis(int("start", 0)), end = clampAxis(int("end", rank))
            var part: [Int64] = []
            for d in start < end ? Array(dims[start..<end]) : [] { part.append(d.value.map(Int64.init) ?? sentinel(d)) }
            outputConstant(OnnxTensor(name: "", dims: [part.count], ints: part))
            return true
        }
        let inputs = n.inputs.filter { !$0.isEmpty }
        guard ["Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze", "Concat", "Gather", "Slice"].contains(n.opType),
              !inputs.isEmpty, inputs.allSatisfy({ constants[$0] != nil }) else { return false }
        let x = constants[inputs[0]]!
        var y = x
        switch n.opType {
        case "Identity": break
        case "Cast":
            let to = int("to", 1)
            let values = x.values
            if to == Int(OnnxDataType.float.rawValue), !x.ints.contains(where: { symbolicSize($0) != nil }) { y = OnnxTensor(name: "", dims: x.dims, floats: values.map(Float.init)) }
            else if let t = OnnxDataType(rawValue: Int32(to)), t.isInteger { y = OnnxTensor(name: "", dims: x.dims, ints: x.integers.map(Int64.init), type: t) }
            else { return false }
        case "Reshape", "Squeeze", "Unsqueeze":
            // Only the dims change; computed like a tensor's reshape in the other branches.
            var dims = x.dims
            if n.opType == "Reshape" {
                let spec = try constantInts(1, "the shape")
                dims = spec.enumerated().map { $0.element == 0 && $0.offset < x.dims.count ? x.dims[$0.offset] : $0.element }
                if let k = dims.firstIndex(of: -1) { dims[k] = x.count / Swift.max(1, dims.filter { $0 != -1 }.reduce(1, *)) }
            } else {
                let axes = has(1) ? try constantInts(1, "axes") : ints("axes")
                if n.opType == "Squeeze" {
                    let drop = Set((axes ?? x.dims.indices.filter { x.dims[$0] == 1 }).map { $0 < 0 ? $0 + x.dims.count : $0 })
                    dims = x.dims.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
                } else {
                    let rank = x.dims.count + (axes?.count ?? 0)
                    for a in (axes ?? []).map({ $0 < 0 ? $0 + rank : $0 }).sorted() {
                        guard a >= 0, a <= dims.count else { throw fail("axes \(axes ?? []) are out of range for rank \(rank)") }
                        dims.insert(1, at: a)
                    }
                }
            }
            guard dims.reduce(1, *) == x.count else { throw fail("shape \(dims) does not fit the \(x.count) values of a constant") }
            y.dims = dims
        case "Concat":
            let parts = inputs.map { constants[$0]! }
            guard parts.allSatisfy({ $0.dims.count == 1 && $0.dataType == x.dataType }) else { return false }
            y = x
            y.floats = parts.flatMap(\.floats)
            y.ints = parts.flatMap(\.ints)
            y.doubles = parts.flatMap(\.doubles)
            y.dims = [parts.map { $0.dims[0] }.reduce(0, +)]
        case "Gather":
            guard x.dims.count == 1, int("axis", 0) == 0, inputs.count == 2 else { return false }
            let idx = constants[inputs[1]]!
            let picked = try idx.integers.map { (v) throws(OnnxError) -> Int in
                let i = v < 0 ? v + x.count : v
                guard i >= 0, i < x.count else { throw fail("index \(v) is out of range for \(x.count) values") }
                return i
            }
            y = x.picking(picked, dims: idx.dims)
        case "Slice":
            guard x.dims.count == 1, let s = try sliceSpec(rank: 1).first else { return false }
            let picked = sliceIndices(s.start, s.end, s.step, size: x.count)
            y = x.picking(picked, dims: [picked.count])
        default: return false
        }
        outputConstant(y)
        return true
    }
}

/// ONNX's pooled size with ceil_mode=1: ceil((in + 2 pad - k) / s) + 1, one less when the last
/// window would start at or past the input's end plus the leading padding.
func onnxCeilPoolSize(_ size: Int, _ k: Int, _ s: Int, _ pad: Int) -> Int {
    var out = (size + 2 * pad - k + s - 1) / s + 1
    if (out - 1) * s >= size + pad { out -= 1 }
    return out
}
