// Conversion of a (TEST-phase) CaffeNet into an fn2e graph plus its weights.
//
// Naming: a node is named after the Caffe layer that makes it; an in-place layer (top == bottom)
// becomes a fresh SSA value named after the layer. Nodes a layer needs beyond its own get derived
// names: `LAYER.flatten` (InnerProduct over a rank > 2 input), `LAYER.coeffK` and `LAYER.partK`
// (Eltwise with coefficients or more than two inputs), `LAYER.TOP` (Slice with several tops).
// Parameters are `LAYER.weight`, `LAYER.bias`, `LAYER.slope` (PReLU), `LAYER.mean` and
// `LAYER.variance` (BatchNorm), `LAYER.scale` and `LAYER.bias` (Scale). Weights are matched to
// layers by name, as Caffe's `Net::CopyTrainedLayersFrom` does.
import Foundation
import IR
import Tensors

/// A converted net: the graph (verified, typed), a module holding it, the weights found for its
/// parameters in parameter order, and a log of upgrade and import steps.
public struct CaffeImported: Sendable {
    public var module: Module
    public var graph: Graph
    public var weights: [(String, Tensor)]
    public var log: [String]

    public init(module: Module, graph: Graph, weights: [(String, Tensor)], log: [String]) {
        self.module = module
        self.graph = graph
        self.weights = weights
        self.log = log
    }

    /// The canonical text of the module.
    public var text: String { Printer.print(module) }
}

/// How the weights of one layer become parameter tensors.
struct ParamSlot: Sendable {
    var param: String
    /// The shape the graph wants.
    var shape: [Int]
    /// The shape Caffe stores (differs for a transposed InnerProduct).
    var stored: [Int]
    var transform: Transform = .none

    enum Transform: Sendable {
        case none
        /// `[K, M]` stored, `[M, K]` wanted.
        case transpose2D
        /// BatchNorm statistics: divide by the third blob's scale factor.
        case batchNormStat
    }
}

public enum CaffeToIR {
    /// Layer types the importer converts.
    public static let supportedTypes = [
        "BatchNorm", "Bias", "Concat", "Convolution", "Dropout", "Eltwise", "Flatten", "InnerProduct", "Input", "LRN",
        "Pooling", "PReLU", "ReLU", "Reshape", "Scale", "Sigmoid", "Slice", "Softmax", "Split", "TanH",
    ]
    /// Layer types that only matter for training; the importer leaves them out (and says so).
    public static let trainingOnlyTypes: Set<String> = [
        "Data", "ImageData", "HDF5Data", "HDF5Output", "MemoryData", "WindowData", "DummyData", "Accuracy", "Silence",
        "SoftmaxWithLoss", "EuclideanLoss", "HingeLoss", "InfogainLoss", "MultinomialLogisticLoss",
        "SigmoidCrossEntropyLoss", "ContrastiveLoss",
    ]

    /// Converts `net` (filtered to the TEST phase here) into a graph named `name`. Weights are taken
    /// from the layers' own blobs when they have any (a caffemodel read as the net).
    public static func convert(_ net: CaffeNet, name: String, file: String = "<caffe>") throws(CaffeError) -> CaffeImported {
        var builder = try GraphBuilder(net: net.filtered(phase: .test), name: name, file: file)
        var imported = try builder.finish()
        for layer in net.layers where !layer.blobs.isEmpty {
            if let w = try builder.weights(for: layer, from: file) { imported.weights += w }
        }
        imported.weights = builder.ordered(imported.weights)
        imported.log = net.upgradeLog + imported.log
        return imported
    }

    /// Imports files as `fn2e-compile import caffe` does: a deploy prototxt, a caffemodel, or both
    /// (the prototxt then gives the net and the caffemodel the weights, matched by layer name). The
    /// caffemodel is read one layer at a time; blobs of layers the net lacks are dropped at once.
    public static func importFiles(prototxt: String?, caffemodel: String?, name: String) throws(CaffeError) -> CaffeImported {
        switch (prototxt, caffemodel) {
        case (nil, nil):
            throw CaffeError(file: "<command line>", "give a deploy prototxt, a caffemodel, or both")
        case (nil, let model?):
            return try convert(try CaffeNet(caffemodelPath: model), name: name, file: model)
        case (let proto?, let model):
            let net = try CaffeNet(prototxtPath: proto)
            var builder = try GraphBuilder(net: net.filtered(phase: .test), name: name, file: proto)
            var imported = try builder.finish()
            imported.log = net.upgradeLog + imported.log
            guard let model else { return imported }
            var found: [(String, Tensor)] = []
            var seen = Set<String>()
            let header = try CaffeModelReader.forEachLayer(path: model) { (layer) throws(CaffeError) in
                guard !seen.contains(layer.name), let w = try builder.weights(for: layer, from: model) else { return }
                seen.insert(layer.name)
                found += w
            }
            imported.log += header.upgradeLog.map { "\(model): \($0)" }
            let missing = builder.weightedLayers.filter { !seen.contains($0) }
            if !missing.isEmpty {
                imported.log.append("no weights in \(model) for layer\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")); their parameters keep their initializers")
            }
            imported.weights = builder.ordered(found)
            return imported
        }
    }

    /// A graph name made from a file name: letters, digits and `_` kept, anything else becomes `_`.
    public static func graphName(fromPath path: String) -> String { Graph.name(fromFile: path) }
}

/// Builds the graph layer by layer, inferring each node's type as it goes (weight shapes depend on
/// input shapes).
struct GraphBuilder {
    let file: String
    var graph: Graph
    var log: [String] = []
    /// Caffe blob name -> the SSA value currently holding it.
    var values: [String: String] = [:]
    var types: [String: TensorType] = [:]
    var used: Set<String> = []
    /// Values in definition order that some layer top holds, for the outputs.
    var produced: [String] = []
    var consumed: Set<String> = []
    /// Layer name -> how its blobs become parameters.
    var slots: [String: [ParamSlot]] = [:]
    var weightedLayers: [String] = []
    var layerLocs: [String: CaffeSourceLocation] = [:]

    init(net: CaffeNet, name: String, file: String) throws(CaffeError) {
        self.file = file
        graph = Graph(name: name, loc: SourceLoc(file: file, line: 1, column: 1))
        for layer in net.layers { try add(layer) }
    }

    mutating func finish() throws(CaffeError) -> CaffeImported {
        graph.outputs = produced.filter { !consumed.contains($0) }
        var g = graph
        let diags = Verifier().verify(&g)
        if let d = diags.first {
            throw CaffeError(file: file, location: d.loc.map { CaffeSourceLocation(line: $0.line, column: $0.column) },
                             "the imported graph does not verify: \(d.message)")
        }
        var module = Module(file: graph.name + ".fn2e", version: irFormatVersion)
        module.headerTrivia.trailing = nil
        g.trivia.comments = ["Imported from \((file as NSString).lastPathComponent) by fn2e-compile import caffe."]
        module.graphs = [g]
        return CaffeImported(module: module, graph: g, weights: [], log: log)
    }

    // MARK: Values

    func fail(_ layer: CaffeLayer, _ message: String) -> CaffeError {
        CaffeError(file: file, location: layer.location, "layer '\(layer.name)' (\(layer.type)): \(message)")
    }

    func loc(_ layer: CaffeLayer) -> SourceLoc {
        let l = layer.location ?? CaffeSourceLocation(line: 1, column: 1)
        return SourceLoc(file: file, line: l.line, column: l.column)
    }

    /// `base`, or `base.1`, `base.2`, ... when taken.
    func fresh(_ base: String) -> String {
        if !used.contains(base) { return base }
        var k = 1
        while used.contains("\(base).\(k)") { k += 1 }
        return "\(base).\(k)"
    }

    mutating func bottom(_ layer: CaffeLayer, _ k: Int) throws(CaffeError) -> (String, TensorType) {
        guard k < layer.bottoms.count else { throw fail(layer, "needs a bottom \(k + 1)") }
        let blob = layer.bottoms[k]
        guard let v = values[blob], let t = types[v] else {
            throw fail(layer, "bottom '\(blob)' is not produced by any earlier layer")
        }
        return (v, t)
    }

    /// Adds a node, typing it now; returns its name.
    @discardableResult
    mutating func node(_ layer: CaffeLayer, _ name: String, _ op: Op, _ operands: [String], _ attrs: [String: AttrValue] = [:]) throws(CaffeError) -> String {
        let n = fresh(name)
        var operandTypes: [TensorType] = []
        for o in operands {
            guard let t = types[o] else { throw fail(layer, "internal: operand '\(o)' has no type") }
            operandTypes.append(t)
            consumed.insert(o)
        }
        var full = Attrs(attrs)
        for spec in op.signature.attrs where full[spec.name] == nil {
            if let d = spec.defaultValue { full[spec.name] = d }
        }
        let type: TensorType
        do {
            type = try op.inferType(operandTypes, full)
        } catch let e as InferenceError {
            throw fail(layer, e.message)
        } catch {
            throw fail(layer, "\(error)")
        }
        let nonDefault = attrs.filter { key, v in op.signature.spec(key)?.defaultValue != v }
        var node = Node(name: n, op: op, operands: operands, attrs: nonDefault, type: type, loc: loc(layer))
        node.opLoc = node.loc
        graph.nodes.append(node)
        used.insert(n)
        types[n] = type
        return n
    }

    /// Records `value` as the current holder of the layer's top `k`.
    mutating func top(_ layer: CaffeLayer, _ k: Int, _ value: String) throws(CaffeError) {
        guard k < layer.tops.count else { throw fail(layer, "needs a top \(k + 1)") }
        values[layer.tops[k]] = value
        produced.append(value)
    }

    mutating func param(_ layer: CaffeLayer, _ suffix: String, _ shape: [Int], _ initializer: Initializer, index: Int,
                        trainable: Bool = true, stored: [Int]? = nil, transform: ParamSlot.Transform = .none) -> String {
        let name = fresh("\(layer.name).\(suffix)")
        let spec = index < layer.params.count ? layer.params[index] : CaffeParamSpec()
        graph.params.append(Param(name: name, type: TensorType(.f32, fixed: shape), initializer: initializer,
                                  trainable: trainable, lrMult: decimal(spec.lrMult), decayMult: decimal(spec.decayMult), loc: loc(layer)))
        used.insert(name)
        types[name] = TensorType(.f32, fixed: shape)
        if slots[layer.name] == nil { weightedLayers.append(layer.name) }
        slots[layer.name, default: []].append(ParamSlot(param: name, shape: shape, stored: stored ?? shape, transform: transform))
        return name
    }

    // MARK: Layers

    mutating func add(_ layer: CaffeLayer) throws(CaffeError) {
        if CaffeToIR.trainingOnlyTypes.contains(layer.type) {
            log.append("ignoring training-only layer '\(layer.name)' (\(layer.type))")
            return
        }
        layerLocs[layer.name] = layer.location
        func one() throws(CaffeError) -> (String, TensorType) {
            guard layer.bottoms.count == 1, layer.tops.count == 1 else {
                throw fail(layer, "expects one bottom and one top, found \(layer.bottoms.count) and \(layer.tops.count)")
            }
            return try bottom(layer, 0)
        }
        func channels(_ t: TensorType) throws(CaffeError) -> Int {
            guard t.rank >= 2, let c = t.dims[1].value else { throw fail(layer, "needs an input with channels on axis 1, found \(t)") }
            return c
        }
        func pair(_ hw: CaffeHW) -> AttrValue { .ints([hw.h, hw.w]) }

        switch (layer.type, layer.typeParams) {
        case ("Input", _):
            for (i, input) in layerInputs(layer).enumerated() {
                guard !input.shape.isEmpty else { throw fail(layer, "input '\(input.name)' has no shape; give input_shape or input_dim") }
                let name = fresh(input.name)
                let dims: [Dim] = input.shape.enumerated().map { $0.offset == 0 ? .batch : .fixed($0.element) }
                graph.inputs.append(Input(name: name, type: TensorType(.f32, dims), loc: loc(layer)))
                used.insert(name)
                types[name] = TensorType(.f32, dims)
                values[layer.tops[i]] = name
            }

        case ("Convolution", .convolution(let p)):
            let (x, t) = try one()
            guard p.axis == 1, t.rank == 4 else { throw fail(layer, "only 2-D convolution over NCHW (axis 1) is supported, input is \(t)") }
            let c = try channels(t)
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
            let (x, _) = try one()
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
            var (x, t) = try one()
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

        case ("ReLU", .relu(let slope)):
            let (x, _) = try one()
            try top(layer, 0, try node(layer, layer.name, .relu, [x], ["negative_slope": .float(decimal(slope))]))

        case ("PReLU", .prelu(let shared)):
            let (x, t) = try one()
            let c = shared ? 1 : try channels(t)
            let s = param(layer, "slope", [c], .constant(0.25), index: 0)
            try top(layer, 0, try node(layer, layer.name, .prelu, [x, s]))

        case ("Sigmoid", _), ("TanH", _):
            let (x, _) = try one()
            try top(layer, 0, try node(layer, layer.name, layer.type == "Sigmoid" ? .sigmoid : .tanh, [x]))

        case ("Dropout", .dropout(let ratio)):
            let (x, _) = try one()
            try top(layer, 0, try node(layer, layer.name, .dropout, [x], ["ratio": .float(decimal(ratio))]))

        case ("Softmax", .softmax(let axis)):
            let (x, _) = try one()
            try top(layer, 0, try node(layer, layer.name, .softmax, [x], ["axis": .int(axis)]))

        case ("LRN", .lrn(let p)):
            let (x, _) = try one()
            try top(layer, 0, try node(layer, layer.name, .lrn, [x], [
                "size": .int(p.localSize), "alpha": .float(decimal(p.alpha)), "beta": .float(decimal(p.beta)),
                "k": .float(decimal(p.k)), "region": .word(p.region == .acrossChannels ? "across_channels" : "within_channel"),
            ]))

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

        case ("Flatten", .flatten(let axis, let endAxis)):
            let (x, _) = try one()
            try top(layer, 0, try node(layer, layer.name, .flatten, [x], ["axis": .int(axis), "end_axis": .int(endAxis)]))

        case ("Reshape", .reshape(let p)):
            let (x, t) = try one()
            let axis = p.axis < 0 ? p.axis + t.rank + 1 : p.axis
            let numAxes = p.numAxes == -1 ? t.rank - axis : p.numAxes
            guard axis >= 0, numAxes >= 0, axis + numAxes <= t.rank else { throw fail(layer, "axis \(p.axis) and num_axes \(p.numAxes) do not fit \(t)") }
            // 0 copies the input dimension at the same position, as in the IR; the kept trailing
            // dimensions are written out because they may move.
            var shape = Array(repeating: 0, count: axis) + p.shape
            for d in t.dims[(axis + numAxes)...] {
                guard let v = d.value else { throw fail(layer, "cannot move the batch dimension of \(t)") }
                shape.append(v)
            }
            try top(layer, 0, try node(layer, layer.name, .reshape, [x], ["shape": .ints(shape)]))

        case ("BatchNorm", .batchNorm(let p)):
            let (x, t) = try one()
            if p.useGlobalStats == false { throw fail(layer, "use_global_stats: false (batch statistics at test time) is not supported") }
            let c = try channels(t)
            let mean = param(layer, "mean", [c], .zeros, index: 0, trainable: false, transform: .batchNormStat)
            let variance = param(layer, "variance", [c], .constant(1), index: 1, trainable: false, transform: .batchNormStat)
            try top(layer, 0, try node(layer, layer.name, .batchNorm, [x, mean, variance], ["eps": .float(decimal(p.eps))]))

        case ("Scale", .scale(let axis, let numAxes, let biasTerm)):
            let (x, t) = try one()
            guard axis == 1 || axis == 1 - t.rank, numAxes == 1 else {
                throw fail(layer, "only a learned per-channel scale (axis 1, num_axes 1) is supported, found axis \(axis), num_axes \(numAxes)")
            }
            let c = try channels(t)
            var operands = [x, param(layer, "scale", [c], .constant(1), index: 0)]
            if biasTerm { operands.append(param(layer, "bias", [c], .zeros, index: 1)) }
            try top(layer, 0, try node(layer, layer.name, .scale, operands))

        case ("Bias", .bias(let axis, let numAxes)):
            let (x, t) = try one()
            guard axis == 1 || axis == 1 - t.rank, numAxes == 1 else {
                throw fail(layer, "only a learned per-channel bias (axis 1, num_axes 1) is supported")
            }
            let b = param(layer, "bias", [try channels(t)], .zeros, index: 0)
            try top(layer, 0, try node(layer, layer.name, .bias, [x, b]))

        default:
            throw CaffeError(file: file, location: layer.typeLocation ?? layer.location,
                             "layer '\(layer.name)' has type '\(layer.type)', which fn2e cannot import; supported types: "
                             + CaffeToIR.supportedTypes.joined(separator: ", ")
                             + " (training-only layers such as \(CaffeToIR.trainingOnlyTypes.sorted().prefix(3).joined(separator: ", ")) are skipped)")
        }
    }

    func layerInputs(_ layer: CaffeLayer) -> [CaffeInput] {
        CaffeNet(name: "", layers: [layer]).inputs
    }

    // MARK: Weights

    /// The parameter tensors one caffemodel layer gives, or nil when the net has no such layer or
    /// it has no parameters. Legacy 4-D blob shapes are right-aligned to the wanted shapes.
    func weights(for layer: CaffeLayer, from source: String) throws(CaffeError) -> [(String, Tensor)]? {
        guard let slots = slots[layer.name], !layer.blobs.isEmpty else { return nil }
        let location = layerLocs[layer.name]
        func fail(_ message: String) -> CaffeError {
            CaffeError(file: file, location: location, "layer '\(layer.name)': \(message) (weights from \(source))")
        }
        let isBatchNorm = slots.contains { $0.transform == .batchNormStat }
        let expected = slots.count + (isBatchNorm ? 1 : 0)
        guard layer.blobs.count == expected else {
            throw fail("the caffemodel holds \(layer.blobs.count) blobs but the net's layer needs \(expected); rename the layer to learn it from scratch")
        }
        var factor: Float = 1
        if isBatchNorm {
            let f = layer.blobs[2].data
            guard f.count == 1 else { throw fail("BatchNorm scale factor blob must hold one value, found shape \(layer.blobs[2].shape)") }
            factor = f[0] == 0 ? 0 : 1 / f[0]
        }
        var out: [(String, Tensor)] = []
        for (k, slot) in slots.enumerated() {
            let blob = layer.blobs[k]
            guard GraphBuilder.rightAligned(blob.shape) == GraphBuilder.rightAligned(slot.stored) else {
                throw fail("blob \(k) ('\(slot.param)') has shape \(blob.shape) in the caffemodel but the net wants \(slot.stored); rename the layer to learn it from scratch")
            }
            switch slot.transform {
            case .none:
                out.append((slot.param, Tensor(shape: slot.shape, data: blob.data)))
            case .transpose2D:
                let (k0, m) = (slot.stored[0], slot.stored[1])
                var data = [Float](repeating: 0, count: blob.data.count)
                blob.data.withUnsafeBufferPointer { src in
                    for i in 0..<k0 { for j in 0..<m { data[j * k0 + i] = src[i * m + j] } }
                }
                out.append((slot.param, Tensor(shape: slot.shape, data: data)))
            case .batchNormStat:
                out.append((slot.param, Tensor(shape: slot.shape, data: blob.data.map { $0 * factor })))
            }
        }
        return out
    }

    /// A shape without leading 1s, so `[1, 1, M, K]` (legacy) equals `[M, K]` (Caffe `Blob::ShapeEquals`).
    static func rightAligned(_ shape: [Int]) -> [Int] {
        Array(shape.drop { $0 == 1 })
    }

    /// Weights in parameter order.
    func ordered(_ weights: [(String, Tensor)]) -> [(String, Tensor)] {
        let byName = Dictionary(weights.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        return graph.params.compactMap { p in byName[p.name].map { (p.name, $0) } }
    }
}

/// The shortest decimal that reads back as `f`, as a Double: 0.0001, not 9.999999747378752e-05.
func decimal(_ f: Float) -> Double { Double(f.description) ?? Double(f) }
