// A dlib network as an fn2e graph plus weights, layer by layer with dlib's semantics.
//
// Naming: each node is named after its dlib family and dlib's layer index (`con130`, `affine129`,
// `relu128`, `add_prev4`: `layer<130>(net)` in dlib is `%con130`). Parameters are `LAYER.weight`
// and `LAYER.bias` (con, fc), `LAYER.scale` and `LAYER.bias` (affine), `LAYER.mean` and
// `LAYER.variance` (bn_con), `input.shift` (minus the input layer's channel means).
import Foundation
import IR
import Tensors

/// A converted dlib net: the module holding the verified graph, the weights in parameter order,
/// the net as read, and a log of what the import did.
public struct DlibImported: Sendable {
    public var module: Module
    public var graph: Graph
    public var weights: [(String, Tensor)]
    public var net: DlibNet
    public var log: [String]

    public var text: String { Printer.print(module) }
}

public enum DlibToIR {
    /// Reads `path` (a net of `type`) and converts it into a graph named `name`.
    public static func importFile(_ path: String, name: String, type: DlibNetType = .faceRecognitionResNet) throws(DlibError) -> DlibImported {
        try convert(try DlibNet(path: path, type: type), name: name, file: path)
    }

    public static func convert(_ net: DlibNet, name: String, file: String) throws(DlibError) -> DlibImported {
        var b = DlibGraphBuilder(file: file, name: name)
        try b.build(net)
        var g = b.graph
        if let d = Verifier().verify(&g).first {
            throw DlibError(file: file, "internal: the imported graph does not verify: \(d.message)")
        }
        g.trivia.comments = ["Imported from \((file as NSString).lastPathComponent) by fn2e-compile import dlib."]
        var module = Module(file: name + ".fn2e", version: irFormatVersion)
        module.headerTrivia.trailing = nil
        module.graphs = [g]
        let counts = Dictionary(grouping: net.layers, by: { $0.version }).map { "\($0.value.count) \($0.key)" }.sorted()
        var log = ["read \(net.layers.count) layers (\(counts.joined(separator: ", "))), \(net.parameterCount) learned floats"]
        log += b.log
        return DlibImported(module: module, graph: g, weights: b.weights, net: net, log: log)
    }
}

/// Builds the graph bottom-up, typing each node as it is added.
struct DlibGraphBuilder {
    let file: String
    var graph: Graph
    var weights: [(String, Tensor)] = []
    var log: [String] = []
    var types: [String: TensorType] = [:]
    /// The value the next layer reads.
    var current = ""
    /// tag id -> the value the nearest tag of that id below marked.
    var tags: [Int: String] = [:]

    init(file: String, name: String) {
        self.file = file
        graph = Graph(name: name, loc: SourceLoc(file: file, line: 1, column: 1))
    }

    var loc: SourceLoc { SourceLoc(file: file, line: 1, column: 1) }

    @discardableResult
    mutating func node(_ layer: DlibLayer?, _ name: String, _ op: Op, _ operands: [String], _ attrs: [String: AttrValue] = [:]) throws(DlibError) -> String {
        var n = Node(name: name, op: op, operands: operands, attrs: attrs.filter { op.signature.spec($0.key)?.defaultValue != $0.value }, loc: loc)
        do {
            n.type = try op.inferType(operands.map { types[$0]! }, n.fullAttrs)
        } catch let e as InferenceError {
            throw fail(layer, "\(op.rawValue): \(e.message)")
        } catch {
            throw fail(layer, "\(error)")
        }
        types[name] = n.type
        graph.nodes.append(n)
        current = name
        return name
    }

    mutating func param(_ name: String, _ shape: [Int], _ data: [Float], _ initializer: Initializer, trainable: Bool) -> String {
        let type = TensorType(.f32, fixed: shape)
        graph.params.append(Param(name: name, type: type, initializer: initializer, trainable: trainable, loc: loc))
        types[name] = type
        weights.append((name, Tensor(shape: shape, data: data)))
        return name
    }

    func fail(_ layer: DlibLayer?, _ message: String) -> DlibError {
        guard let layer else { return DlibError(file: file, message) }
        return DlibError(file: file, offset: layer.offset, "layer<\(layer.index)> (\(layer.version)): \(message)")
    }

    func dims(_ value: String) -> [Dim] { types[value]!.dims }

    mutating func build(_ net: DlibNet) throws(DlibError) {
        guard net.inputSize.count == 2, net.inputMeans.count == 3 else {
            throw fail(nil, "the input layer needs three channel means and a size, found \(net.inputMeans) and \(net.inputSize)")
        }
        let image = "image"
        let t = TensorType(.f32, [.batch, .fixed(3), .fixed(net.inputSize[0]), .fixed(net.inputSize[1])])
        graph.inputs.append(Input(name: image, type: t, loc: loc))
        types[image] = t
        // dlib's input_rgb_image: (pixel - mean[channel]) / 256, channels R, G, B.
        let shift = param("input.shift", [3], net.inputMeans.map { -$0 }, .zeros, trainable: false)
        try node(nil, "input.centered", .bias, [image, shift])
        try node(nil, "input", .affine, [current], ["scale": .float(1.0 / 256)])
        log.append("input: RGB \(net.inputSize[0])x\(net.inputSize[1]), minus the means \(net.inputMeans.map { "\($0)" }.joined(separator: ", ")), times 1/256")

        for layer in net.layers { try add(layer) }
        graph.outputs = [current]
        let values = net.lossValues.map { "\($0)" }
        log.append("\(net.loss) (margin \(values.first ?? "?"), distance threshold \(values.last ?? "?")): the descriptor is %\(current) as it is (dlib does not normalise it)")
    }

    mutating func add(_ layer: DlibLayer) throws(DlibError) {
        let family: String
        switch layer.details {
        case .con: family = "con"
        case .affine, .batchNorm: family = "affine"
        case .relu: family = "relu"
        case .maxPool: family = "max_pool"
        case .avgPool: family = "avg_pool"
        case .fc: family = "fc"
        case .addPrev: family = "add_prev"
        case .tag, .skip: family = ""
        }
        let name = "\(family)\(layer.index)"
        let x = current
        switch layer.details {
        case .tag(let id):
            tags[id] = x
        case .skip(let id):
            guard let v = tags[id] else { throw fail(layer, "skip\(id) has no tag\(id) below it") }
            current = v

        case .con(let filters, let biases, let stride, let padding, let relu):
            let w = param("\(name).weight", filters.shape, filters.data, .msra, trainable: true)
            var operands = [x, w]
            if let biases { operands.append(param("\(name).bias", [filters.shape[0]], biases, .zeros, trainable: true)) }
            try node(layer, name, .conv2d, operands, ["stride": .ints(stride), "pad": .ints(padding)])
            if relu { try node(layer, "\(name).relu", .relu, [current]) }

        case .affine(let gamma, let beta, let disabled):
            guard !disabled else { return }
            // dlib's affine layer learns nothing: its gamma and beta stay fixed in training.
            let s = param("\(name).scale", [gamma.count], gamma, .constant(1), trainable: false)
            let b = param("\(name).bias", [beta.count], beta, .zeros, trainable: false)
            try node(layer, name, .scale, [x, s, b])

        case .batchNorm(let gamma, let beta, let mean, let variance, let eps):
            let m = param("\(name).mean", [mean.count], mean, .zeros, trainable: false)
            let v = param("\(name).variance", [variance.count], variance, .constant(1), trainable: false)
            try node(layer, "\(name).normalized", .batchNorm, [x, m, v], ["eps": .float(Double(eps))])
            let s = param("\(name).scale", [gamma.count], gamma, .constant(1), trainable: true)
            let b = param("\(name).bias", [beta.count], beta, .zeros, trainable: true)
            try node(layer, name, .scale, [current, s, b])

        case .relu(let disabled):
            if !disabled { try node(layer, name, .relu, [x]) }

        case .maxPool(let window, let stride, let padding), .avgPool(let window, let stride, let padding):
            let isMax: Bool
            if case .maxPool = layer.details { isMax = true } else { isMax = false }
            try pool(layer, name, isMax: isMax, window: window, stride: stride, padding: padding)

        case .fc(let weights, let biases):
            var input = x
            if dims(x).count > 2 { input = try node(layer, "\(name).flatten", .flatten, [x]) }
            let (inputs, outputs) = (weights.shape[0], weights.shape[1])
            guard dims(input) == [.batch, .fixed(inputs)] else {
                throw fail(layer, "fc was trained for \(inputs) inputs but its input is \(types[x]!)")
            }
            // dlib computes x W with W [inputs, outputs]; linear wants [outputs, inputs].
            var transposed = [Float](repeating: 0, count: weights.data.count)
            for i in 0..<inputs { for o in 0..<outputs { transposed[o * inputs + i] = weights.data[i * outputs + o] } }
            var operands = [input, param("\(name).weight", [outputs, inputs], transposed, .xavier, trainable: true)]
            if let biases { operands.append(param("\(name).bias", [outputs], biases, .zeros, trainable: true)) }
            try node(layer, name, .linear, operands)

        case .addPrev(let id):
            guard let other = tags[id] else { throw fail(layer, "add_prev\(id) has no tag\(id) below it") }
            try addPrev(layer, name, x, other)
        }
    }

    /// dlib pools with floor rounding; a window of 0 covers the whole input; its average divides by
    /// the part of the window inside the image, so only unpadded average pooling maps onto avg_pool.
    mutating func pool(_ layer: DlibLayer, _ name: String, isMax: Bool, window: [Int], stride: [Int], padding: [Int]) throws(DlibError) {
        let op: Op = isMax ? .maxPool : .avgPool
        if window == [0, 0] {
            guard padding == [0, 0] else { throw fail(layer, "a whole-input pool with padding \(padding) is not supported") }
            try node(layer, name, op, [current], ["global": .bool(true)])
            return
        }
        guard !window.contains(0) else { throw fail(layer, "a window of \(window[0])x\(window[1]) (whole input along one axis only) is not supported") }
        guard isMax || padding == [0, 0] else {
            throw fail(layer, "average pooling with padding \(padding) is not supported: dlib averages only the part of a window inside the image, fn2e's avg_pool counts the padding (Caffe)")
        }
        try node(layer, name, op, [current], ["kernel": .ints(window), "stride": .ints(stride), "pad": .ints(padding), "round": .word("floor")])
    }

    /// dlib's add_prev: when the two inputs differ, the output takes the larger of each dimension
    /// and each input counts as zero outside its own extent (tt::add). Each smaller input is
    /// extended with zeros at the end of the axes where it falls short (concat with a fill).
    mutating func addPrev(_ layer: DlibLayer, _ name: String, _ a: String, _ b: String) throws(DlibError) {
        let da = dims(a), db = dims(b)
        guard da.count == 4, db.count == 4 else {
            guard da == db else { throw fail(layer, "cannot add \(types[a]!) and \(types[b]!)") }
            try node(layer, name, .add, [a, b])
            return
        }
        let target = (1..<4).map { max(da[$0].value!, db[$0].value!) }
        var operands: [String] = []
        for (k, v) in [a, b].enumerated() {
            var value = v
            for axis in 1..<4 {
                let have = dims(value)[axis].value!
                guard have < target[axis - 1] else { continue }
                var shape = shapeAttr(dims(value))
                shape[axis] = target[axis - 1] - have
                let zeros = try node(layer, "\(name).in\(k).zeros\(axis)", .fill, [], ["shape": .ints(shape)])
                value = try node(layer, "\(name).in\(k).extend\(axis)", .concat, [value, zeros], ["axis": .int(axis)])
            }
            operands.append(value)
        }
        if operands != [a, b] {
            log.append("\(name): \(types[a]!) + \(types[b]!) gives \(types[operands[0]]!), the smaller input extended with zeros")
        }
        try node(layer, name, .add, operands)
    }
}
