// Conversion of a (TEST-phase) CaffeNet into an fn2e graph plus its weights.
//
// Naming: a node is named after the Caffe layer that makes it; an in-place layer (top == bottom)
// becomes a fresh SSA value named after the layer. Nodes a layer needs beyond its own get derived
// names: `LAYER.flatten` (InnerProduct over a rank > 2 input), `LAYER.coeffK` and `LAYER.partK`
// (Eltwise with coefficients or more than two inputs), `LAYER.TOP` (Slice with several tops),
// `LAYER.norm` (Normalize's L2 normalization, before its scale).
// Parameters are `LAYER.weight`, `LAYER.bias`, `LAYER.slope` (PReLU), `LAYER.mean` and
// `LAYER.variance` (BatchNorm), `LAYER.scale` and `LAYER.bias` (Scale; Normalize's scale). Weights are matched to
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
    /// What the prototxt reader skipped (`file:line:col: warning: ...`).
    public var warnings: [String] = []

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
        "BatchNorm", "Bias", "Concat", "Convolution", "DetectionOutput", "Dropout", "Eltwise", "Flatten", "InnerProduct", "Input",
        "LRN", "Normalize", "Permute", "Pooling", "PReLU", "PriorBox", "ReLU", "Reshape", "Scale", "Sigmoid", "Slice", "Softmax",
        "Split", "TanH",
    ]
    /// Layer types that only matter for training; the importer leaves them out (and says so).
    public static let trainingOnlyTypes: Set<String> = [
        "Data", "ImageData", "HDF5Data", "HDF5Output", "MemoryData", "WindowData", "DummyData", "Accuracy", "Silence",
        "SoftmaxWithLoss", "EuclideanLoss", "HingeLoss", "InfogainLoss", "MultinomialLogisticLoss",
        "SigmoidCrossEntropyLoss", "ContrastiveLoss", "AnnotatedData", "MultiBoxLoss", "DetectionEvaluate",
    ]

    /// Converts `net` (filtered to the TEST phase here) into a graph named `name`. Weights are taken
    /// from the layers' own blobs when they have any (a caffemodel read as the net).
    public static func convert(_ net: CaffeNet, name: String, file: String = "<caffe>", outputs: [String]? = nil) throws(CaffeError) -> CaffeImported {
        var builder = try GraphBuilder(net: net.filtered(phase: .test), name: name, file: file, outputs: outputs)
        var imported = try builder.finish()
        for layer in net.layers where !layer.blobs.isEmpty {
            if let w = try builder.weights(for: layer, from: file) { imported.weights += w }
        }
        imported.weights = builder.ordered(imported.weights)
        imported.log = net.upgradeLog + builder.cutLog + imported.log
        imported.warnings = net.warnings
        try imported.foldFrozenBatchNorms()
        return imported
    }

    /// Imports files as `fn2e-compile import caffe` does: a deploy prototxt, a caffemodel, or both
    /// (the prototxt then gives the net and the caffemodel the weights, matched by layer name). The
    /// caffemodel is read one layer at a time; blobs of layers the net lacks are dropped at once.
    ///
    /// `outputs` (layer or blob names) imports only the layers those outputs need, and makes them
    /// the graph's outputs (`--until`, `--outputs`); nil imports the whole net.
    public static func importFiles(prototxt: String?, caffemodel: String?, name: String, outputs: [String]? = nil) throws(CaffeError) -> CaffeImported {
        switch (prototxt, caffemodel) {
        case (nil, nil):
            throw CaffeError(file: "<command line>", "give a deploy prototxt, a caffemodel, or both")
        case (nil, let model?):
            return try convert(try CaffeNet(caffemodelPath: model), name: name, file: model, outputs: outputs)
        case (let proto?, let model):
            let net = try CaffeNet(prototxtPath: proto)
            var builder = try GraphBuilder(net: net.filtered(phase: .test), name: name, file: proto, outputs: outputs)
            var imported = try builder.finish()
            imported.log = net.upgradeLog + builder.cutLog + imported.log
            imported.warnings = net.warnings
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
            try imported.foldFrozenBatchNorms()
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
    /// With `--until`/`--outputs`: the layers whose tops are the outputs, and those tops' values.
    var outputLayers: [String]?
    var outputValues: [String: [String]] = [:]
    var cutLog: [String] = []
    /// The batch sizes of the deploy inputs (Caffe's literal shapes).
    var deployBatches: Set<Int> = []
    /// Set when a layer holds only at the deploy batch (see `batchLiteral`): the graph's batch is fixed to it.
    var pinnedBatch: Int?

    init(net: CaffeNet, name: String, file: String, outputs: [String]? = nil) throws(CaffeError) {
        self.file = file
        graph = Graph(name: name, loc: SourceLoc(file: file, line: 1, column: 1))
        var net = net
        if let outputs {
            outputLayers = try net.outputLayers(outputs)
            let before = net.upgradeLog.count
            net = try net.cut(outputs: outputs)
            cutLog = Array(net.upgradeLog[before...])
        }
        for layer in net.layers {
            try add(layer)
            if outputLayers?.contains(layer.name) == true { outputValues[layer.name] = layer.tops.compactMap { values[$0] } }
        }
    }

    mutating func finish() throws(CaffeError) -> CaffeImported {
        if let outputLayers {
            var outputs: [String] = []
            for name in outputLayers {
                guard let vs = outputValues[name], !vs.isEmpty else {
                    throw CaffeError(file: file, location: layerLocs[name], "layer '\(name)' gives no value to output (a training-only layer?)")
                }
                outputs += vs.filter { !outputs.contains($0) }
            }
            graph.outputs = outputs
        } else {
            graph.outputs = produced.filter { !consumed.contains($0) }
        }
        var g = graph
        if let b = pinnedBatch {
            for k in g.inputs.indices where g.inputs[k].type.dims.first == .batch { g.inputs[k].type.dims[0] = .fixed(b) }
            for k in g.nodes.indices { (g.nodes[k].type, g.nodes[k].declaredType) = (nil, nil) }
        }
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
        // The verifier's range checks first: shape inference assumes them (a zero stride divides).
        for (key, v) in attrs.sorted(by: { $0.key < $1.key }) {
            if let problem = Verifier.rangeProblem(op, key, v) { throw fail(layer, "\(key) \(problem), found \(v)") }
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
        // One function per layer family (CaffeToIR+Layers.swift).
        if try addInput(layer) { return }
        if try addWeighted(layer) { return }
        if try addActivation(layer) { return }
        if try addCombining(layer) { return }
        if try addReshaping(layer) { return }
        if try addNormalization(layer) { return }
        if try addDetection(layer) { return }
        throw CaffeError(file: file, location: layer.typeLocation ?? layer.location,
                         "layer '\(layer.name)' has type '\(layer.type)', which fn2e cannot import; supported types: "
                         + CaffeToIR.supportedTypes.joined(separator: ", ")
                         + " (training-only layers such as \(CaffeToIR.trainingOnlyTypes.sorted().prefix(3).joined(separator: ", ")) are skipped;"
                         + " --until LAYER or --outputs A,B imports only the layers before it)")
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
