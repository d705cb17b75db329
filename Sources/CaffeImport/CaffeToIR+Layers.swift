import IR

/// The layers `GraphBuilder.add` imports, one function per family. Each returns false for a layer
/// it does not handle, so that `add` can name the supported types.
extension GraphBuilder {
    /// Inputs: one graph input per top.
    mutating func addInput(_ layer: CaffeLayer) throws(CaffeError) -> Bool {
        switch (layer.type, layer.typeParams) {
        case ("Input", _):
            for (i, input) in layerInputs(layer).enumerated() {
                guard !input.shape.isEmpty else { throw fail(layer, "input '\(input.name)' has no shape; give input_shape or input_dim") }
                let name = fresh(input.name)
                let dims: [Dim] = input.shape.enumerated().map { $0.offset == 0 ? .batch : .fixed($0.element) }
                deployBatches.insert(input.shape[0])
                graph.inputs.append(Input(name: name, type: TensorType(.f32, dims), loc: loc(layer)))
                used.insert(name)
                types[name] = TensorType(.f32, dims)
                values[layer.tops[i]] = name
            }
        default:
            return false
        }
        return true
    }

    /// Convolution, pooling and inner product: the spatial and dense layers with their parameters.
    mutating func addWeighted(_ layer: CaffeLayer) throws(CaffeError) -> Bool {
        switch (layer.type, layer.typeParams) {
        case ("Convolution", .convolution(let p)):
            let (x, t) = try one(layer)
            guard p.axis == 1, t.rank == 4 else { throw fail(layer, "only 2-D convolution over NCHW (axis 1) is supported, input is \(t)") }
            let c = try channels(layer, t)
            guard p.group >= 1, c % p.group == 0, p.numOutput % p.group == 0 else {
                throw fail(layer, "group \(p.group) must divide the \(c) input and \(p.numOutput) output channels")
            }
            let w = param(layer, "weight", [p.numOutput, c / p.group, p.kernel.h, p.kernel.w], .msra, index: 0)
            var operands = [x, w]
            if p.biasTerm { operands.append(param(layer, "bias", [p.numOutput], .zeros, index: 1)) }
            let n = try node(layer, layer.name, .conv2d, operands,
                             ["stride": pair(p.stride), "pad": pair(p.pad), "dilation": pair(p.dilation), "groups": .int(p.group)])
            try top(layer, 0, n)
        case ("Pooling", .pooling(let p)):
            let (x, _) = try one(layer)
            let op: Op
            switch p.method {
            case .max: op = .maxPool
            case .average: op = .avgPool
            case .stochastic: throw fail(layer, "STOCHASTIC pooling is not supported (use MAX or AVE)")
            }
            let attrs: [String: AttrValue] = p.global ? ["global": .bool(true)] : [
                "kernel": pair(p.kernel), "stride": pair(p.stride), "pad": pair(p.pad), "round": .word(p.ceil ? "ceil" : "floor"),
            ]
            try top(layer, 0, try node(layer, layer.name, op, [x], attrs))
        case ("InnerProduct", .innerProduct(let p)):
            var (x, t) = try one(layer)
            let axis = p.axis < 0 ? p.axis + t.rank : p.axis
            guard axis == 1 else { throw fail(layer, "only axis 1 is supported (the batch stays on axis 0), found \(p.axis)") }
            if t.rank > 2 {
                x = try node(layer, "\(layer.name).flatten", .flatten, [x])
                t = types[x]!
            }
            guard t.rank == 2, let k = t.dims[1].value else { throw fail(layer, "needs an input of rank 2 or more, found \(t)") }
            let w = param(layer, "weight", [p.numOutput, k], .msra, index: 0,
                          stored: p.transpose ? [k, p.numOutput] : nil, transform: p.transpose ? .transpose2D : .none)
            var operands = [x, w]
            if p.biasTerm { operands.append(param(layer, "bias", [p.numOutput], .zeros, index: 1)) }
            try top(layer, 0, try node(layer, layer.name, .linear, operands))
        default:
            return false
        }
        return true
    }

    /// Activations and other one-in one-out layers: ReLU, PReLU, sigmoid, tanh, dropout, softmax, LRN.
    mutating func addActivation(_ layer: CaffeLayer) throws(CaffeError) -> Bool {
        switch (layer.type, layer.typeParams) {
        case ("ReLU", .relu(let slope)):
            let (x, _) = try one(layer)
            try top(layer, 0, try node(layer, layer.name, .relu, [x], ["negative_slope": .float(decimal(slope))]))
        case ("PReLU", .prelu(let shared)):
            let (x, t) = try one(layer)
            let c = shared ? 1 : try channels(layer, t)
            let s = param(layer, "slope", [c], .constant(0.25), index: 0)
            try top(layer, 0, try node(layer, layer.name, .prelu, [x, s]))
        case ("Sigmoid", _), ("TanH", _):
            let (x, _) = try one(layer)
            try top(layer, 0, try node(layer, layer.name, layer.type == "Sigmoid" ? .sigmoid : .tanh, [x]))
        case ("Dropout", .dropout(let ratio)):
            let (x, _) = try one(layer)
            try top(layer, 0, try node(layer, layer.name, .dropout, [x], ["ratio": .float(decimal(ratio))]))
        case ("Softmax", .softmax(let axis)):
            let (x, _) = try one(layer)
            try top(layer, 0, try node(layer, layer.name, .softmax, [x], ["axis": .int(axis)]))
        case ("LRN", .lrn(let p)):
            let (x, _) = try one(layer)
            try top(layer, 0, try node(layer, layer.name, .lrn, [x], [
                "size": .int(p.localSize), "alpha": .float(decimal(p.alpha)), "beta": .float(decimal(p.beta)),
                "k": .float(decimal(p.k)), "region": .word(p.region == .acrossChannels ? "across_channels" : "within_channel"),
            ]))
        default:
            return false
        }
        return true
    }

    /// Layers that join or split blobs: Eltwise, Concat, Slice, Split.
    mutating func addCombining(_ layer: CaffeLayer) throws(CaffeError) -> Bool {
        switch (layer.type, layer.typeParams) {
        case ("Eltwise", .eltwise(let op, let coeffs)):
            guard layer.bottoms.count >= 2, layer.tops.count == 1 else { throw fail(layer, "expects two or more bottoms and one top") }
            guard coeffs.isEmpty || (op == .sum && coeffs.count == layer.bottoms.count) else {
                throw fail(layer, "coefficients need operation SUM and one per bottom (\(layer.bottoms.count)), found \(coeffs.count)")
            }
            var xs: [String] = []
            for k in layer.bottoms.indices {
                var (x, _) = try bottom(layer, k)
                if !coeffs.isEmpty, coeffs[k] != 1 {
                    x = try node(layer, "\(layer.name).coeff\(k)", .affine, [x], ["scale": .float(decimal(coeffs[k]))])
                }
                xs.append(x)
            }
            let irOp: Op = op == .sum ? .add : op == .product ? .mul : .maximum
            var acc = xs[0]
            for k in 1..<xs.count {
                acc = try node(layer, k == xs.count - 1 ? layer.name : "\(layer.name).part\(k)", irOp, [acc, xs[k]])
            }
            try top(layer, 0, acc)
        case ("Concat", .concat(let axis)):
            guard layer.tops.count == 1, !layer.bottoms.isEmpty else { throw fail(layer, "expects bottoms and one top") }
            var xs: [String] = []
            for k in layer.bottoms.indices { xs.append(try bottom(layer, k).0) }
            try top(layer, 0, try node(layer, layer.name, .concat, xs, ["axis": .int(axis)]))
        case ("Slice", .slice(let axisIn, let points)):
            guard layer.bottoms.count == 1, !layer.tops.isEmpty else { throw fail(layer, "expects one bottom and one or more tops") }
            let (x, t) = try bottom(layer, 0)
            let axis = axisIn < 0 ? axisIn + t.rank : axisIn
            guard axis >= 0, axis < t.rank, let size = t.dims[axis].value else { throw fail(layer, "cannot slice axis \(axisIn) of \(t)") }
            var bounds: [Int]
            if points.isEmpty {
                guard size % layer.tops.count == 0 else { throw fail(layer, "axis \(axisIn) of \(t) does not split evenly into \(layer.tops.count) tops") }
                bounds = (0...layer.tops.count).map { $0 * size / layer.tops.count }
            } else {
                guard points.count == layer.tops.count - 1 else {
                    throw fail(layer, "\(points.count) slice points for \(layer.tops.count) tops; give one fewer than the tops")
                }
                bounds = [0] + points + [size]
            }
            for k in layer.tops.indices {
                guard bounds[k] < bounds[k + 1] else { throw fail(layer, "slice points \(points) are not increasing inside [0, \(size)]") }
                let name = layer.tops.count == 1 ? layer.name : "\(layer.name).\(layer.tops[k])"
                try top(layer, k, try node(layer, name, .slice, [x], ["axis": .int(axis), "start": .int(bounds[k]), "end": .int(bounds[k + 1])]))
            }
        case ("Split", _):
            guard layer.bottoms.count == 1 else { throw fail(layer, "expects one bottom") }
            let (x, _) = try bottom(layer, 0)
            for k in layer.tops.indices { values[layer.tops[k]] = x }
        default:
            return false
        }
        return true
    }

    /// Layers that move dimensions: Flatten, Reshape.
    mutating func addReshaping(_ layer: CaffeLayer) throws(CaffeError) -> Bool {
        switch (layer.type, layer.typeParams) {
        case ("Flatten", .flatten(let axis, let endAxis)):
            let (x, _) = try one(layer)
            try top(layer, 0, try node(layer, layer.name, .flatten, [x], ["axis": .int(axis), "end_axis": .int(endAxis)]))
        case ("Reshape", .reshape(let p)):
            let (x, t) = try one(layer)
            let axis = p.axis < 0 ? p.axis + t.rank + 1 : p.axis
            let numAxes = p.numAxes == -1 ? t.rank - axis : p.numAxes
            guard axis >= 0, numAxes >= 0, axis + numAxes <= t.rank else { throw fail(layer, "axis \(p.axis) and num_axes \(p.numAxes) do not fit \(t)") }
            // 0 copies the input dimension at the same position, as in the IR; the kept trailing
            // dimensions are written out because they may move.
            var shape = Array(repeating: 0, count: axis) + (axis == 0 ? try batchLiteral(layer, p.shape, t) : p.shape)
            for d in t.dims[(axis + numAxes)...] {
                guard let v = d.value else { throw fail(layer, "cannot move the batch dimension of \(t)") }
                shape.append(v)
            }
            try top(layer, 0, try node(layer, layer.name, .reshape, [x], ["shape": .ints(shape)]))
        default:
            return false
        }
        return true
    }

    /// A Reshape whose shape starts with a literal batch (`dim: 1 dim: -1 dim: 2` in a deploy net of
    /// batch 1): the literal becomes 0 (copy the batch) when it equals the deploy input's batch.
    /// When the other sizes hold exactly one sample, the literal is the batch at any batch; else
    /// (a -1 would absorb more samples) it is the batch only at the deploy batch, and the graph is
    /// pinned to it. Any other literal is an error.
    mutating func batchLiteral(_ layer: CaffeLayer, _ shape: [Int], _ t: TensorType) throws(CaffeError) -> [Int] {
        guard let first = shape.first, first > 0, t.dims.first == .batch else { return shape }
        guard deployBatches.count == 1, first == deployBatches.first else {
            throw fail(layer, "shape \(shape) names the batch size \(first), but the deploy input's batch is \(deployBatches.count == 1 ? "\(deployBatches.first!)" : "not one number"); use 0 to copy the batch")
        }
        let rest = shape.dropFirst().enumerated().map { k, s in s == 0 ? (k + 1 < t.rank ? t.dims[k + 1].value ?? -1 : -1) : s }
        let sample = t.dims.dropFirst().map { $0.value ?? -1 }
        if !rest.contains(-1), !sample.contains(-1), rest.reduce(1, *) == sample.reduce(1, *) {
            log.append("layer '\(layer.name)' (Reshape): \(first) in shape \(shape) is the batch (the other sizes hold one sample): imported as 0, so the model runs at any batch")
        } else {
            pinnedBatch = first
            log.append("layer '\(layer.name)' (Reshape): \(first) in shape \(shape) is the deploy input's batch, and only at that batch is it the batch (the -1 would take in more samples): imported as 0, and the model runs at batch \(first)")
        }
        return [0] + shape.dropFirst()
    }

    /// Per-channel normalization: BatchNorm, Scale, Bias.
    mutating func addNormalization(_ layer: CaffeLayer) throws(CaffeError) -> Bool {
        switch (layer.type, layer.typeParams) {
        case ("BatchNorm", .batchNorm(let p)):
            let (x, t) = try one(layer)
            if p.useGlobalStats == false { throw fail(layer, "use_global_stats: false (batch statistics at test time) is not supported") }
            let c = try channels(layer, t)
            let mean = param(layer, "mean", [c], .zeros, index: 0, trainable: false, transform: .batchNormStat)
            let variance = param(layer, "variance", [c], .constant(1), index: 1, trainable: false, transform: .batchNormStat)
            try top(layer, 0, try node(layer, layer.name, .batchNorm, [x, mean, variance], ["eps": .float(decimal(p.eps))]))
        case ("Scale", .scale(let axis, let numAxes, let biasTerm)):
            let (x, t) = try one(layer)
            guard axis == 1 || axis == 1 - t.rank, numAxes == 1 else {
                throw fail(layer, "only a learned per-channel scale (axis 1, num_axes 1) is supported, found axis \(axis), num_axes \(numAxes)")
            }
            let c = try channels(layer, t)
            var operands = [x, param(layer, "scale", [c], .constant(1), index: 0)]
            if biasTerm { operands.append(param(layer, "bias", [c], .zeros, index: 1)) }
            try top(layer, 0, try node(layer, layer.name, .scale, operands))
        case ("Bias", .bias(let axis, let numAxes)):
            let (x, t) = try one(layer)
            guard axis == 1 || axis == 1 - t.rank, numAxes == 1 else {
                throw fail(layer, "only a learned per-channel bias (axis 1, num_axes 1) is supported")
            }
            let b = param(layer, "bias", [try channels(layer, t)], .zeros, index: 0)
            try top(layer, 0, try node(layer, layer.name, .bias, [x, b]))
        default:
            return false
        }
        return true
    }

    /// The input of a one-bottom, one-top layer.
    mutating func one(_ layer: CaffeLayer) throws(CaffeError) -> (String, TensorType) {
        guard layer.bottoms.count == 1, layer.tops.count == 1 else {
            throw fail(layer, "expects one bottom and one top, found \(layer.bottoms.count) and \(layer.tops.count)")
        }
        return try bottom(layer, 0)
    }

    /// The channel count of a layer's input (axis 1).
    func channels(_ layer: CaffeLayer, _ t: TensorType) throws(CaffeError) -> Int {
        guard t.rank >= 2, let c = t.dims[1].value else { throw fail(layer, "needs an input with channels on axis 1, found \(t)") }
        return c
    }

    func pair(_ hw: CaffeHW) -> AttrValue { .ints([hw.h, hw.w]) }
}
