// Conversion of an ONNX model into an fn2e graph plus its weights.
//
// Values: graph inputs keep their (sanitised) names and element type f32; a leading dynamic
// dimension (named or not) becomes the batch `N`, any other named dimension a named size. Nodes
// are named after their first output. Initializers that nodes use as tensors become parameters
// (weights of Conv, Gemm, PRelu and BatchNormalization trainable, every other constant frozen),
// their values the weights; initializers that give sizes or attributes (Reshape's shape, Clip's
// bounds, Resize's sizes) are read at import time, as are Constant, and Shape of a static shape.
// ONNX's ops map onto fn2e's op table one node at a time (OnnxToIR+Ops.swift); what fn2e cannot
// express is an error naming the node, its op type and opset, and nothing is written.
import Foundation
import IR
import Shapes
import Tensors

/// A converted model: the verified graph, a module holding it, the weights of its parameters in
/// parameter order, the ONNX name of every graph input and output, and a log of import steps.
public struct OnnxImported: Sendable {
    public var module: Module
    public var graph: Graph
    public var weights: [(String, Tensor)]
    public var log: [String]
    /// ONNX value name -> fn2e value name, for the graph's inputs and outputs.
    public var names: [String: String]
}

public enum OnnxToIR {
    /// The oldest default-domain operator set the importer reads.
    public static let minimumOpset = 11

    /// Imports a `.onnx` file; `outputs` (value or node names) imports only what they need.
    public static func importFile(path: String, name: String, outputs: [String]? = nil) throws(OnnxError) -> OnnxImported {
        try convert(OnnxModel(path: path), name: name, file: path, outputs: outputs)
    }

    public static func convert(_ model: OnnxModel, name: String, file: String = "<onnx>", outputs: [String]? = nil) throws(OnnxError) -> OnnxImported {
        guard let opset = model.opset else {
            throw OnnxError(file: file, "the model imports no default-domain operator set (opset_import has no \"\" or \"ai.onnx\" entry)")
        }
        guard opset >= minimumOpset else {
            throw OnnxError(file: file, "the model uses opset \(opset); fn2e reads opset \(minimumOpset) and later (onnx.version_converter.convert_version upgrades a model)")
        }
        var converter = OnnxConverter(file: file, opset: opset, name: name)
        return try converter.run(model, outputs: outputs)
    }
}

/// Builds the graph node by node, typing each node as it goes (weight shapes depend on input shapes).
struct OnnxConverter {
    let file: String
    let opset: Int
    var graph: Graph
    var log: [String] = []
    /// ONNX value -> the fn2e value holding it.
    var values: [String: String] = [:]
    /// ONNX value -> its constant value, known at import time.
    var constants: [String: OnnxTensor] = [:]
    var types: [String: TensorType] = [:]
    var used: Set<String> = []
    /// Constants already made parameters: "ONNX name|purpose" -> parameter.
    var constantParams: [String: String] = [:]
    var weights: [(String, Tensor)] = []
    /// The node being converted and its index, for errors.
    var current: (index: Int, node: OnnxNode)?
    /// ONNX values some node reads or the graph returns.
    var consumed: Set<String> = []
    /// ONNX values the graph returns.
    var returned: Set<String> = []
    /// Symbolic sizes (N, named sizes) that Shape put into an integer constant, each stored there as
    /// the sentinel `symbolBase - k` (exact as a Double); only Reshape's shape may hold them.
    var symbols: [Dim] = []
    /// Nodes left untyped in the graph because a named spatial size reaches them (see `pendingType`).
    var pending: Set<String> = []
    /// A pending size of stride-1 arithmetic -> its base size and offset (`H-4` -> (H, -4)).
    var offsets: [String: (String, Int)] = [:]
    static let symbolBase: Int64 = -(1 << 40)

    init(file: String, opset: Int, name: String) {
        self.file = file
        self.opset = opset
        graph = Graph(name: name, loc: SourceLoc(file: file, line: 1, column: 1))
    }

    mutating func run(_ model: OnnxModel, outputs wanted: [String]?) throws(OnnxError) -> OnnxImported {
        let g = model.graph
        for t in g.initializers { constants[t.name] = t }
        var names: [String: String] = [:]
        for (k, input) in g.inputs.enumerated() where constants[input.name] == nil {
            let v = fresh(sanitized(input.name))
            graph.inputs.append(Input(name: v, type: try inputType(input, index: k), loc: graph.loc))
            bindValue(input.name, v, graph.inputs.last!.type)
            names[input.name] = v
        }
        let outputNames = try wanted.map { (w) throws(OnnxError) in try cutOutputs(g, w) } ?? g.outputs.map(\.name)
        consumed = Set(g.nodes.flatMap(\.inputs) + outputNames)
        returned = Set(outputNames)
        let needed = neededNodes(g, outputNames)
        if needed.count < g.nodes.count { log.append("importing \(needed.count) of \(g.nodes.count) nodes: those needed for \(outputNames.joined(separator: ", "))") }
        for (index, node) in g.nodes.enumerated() where needed.contains(index) {
            current = (index, node)
            try convert(node)
        }
        current = nil
        for o in outputNames {
            guard let v = values[o] else {
                if constants[o] != nil { throw OnnxError(file: file, "graph output '\(o)' is a constant computed at import time; fn2e graphs return computed values") }
                throw OnnxError(file: file, "graph output '\(o)' is not produced by any node")
            }
            if graph.outputs.contains(v) {
                // Two ONNX outputs of one value: fn2e returns each value once.
                log.append("graph output '\(o)' is the same value as an earlier output")
            } else {
                graph.outputs.append(v)
            }
            names[o] = v
        }
        var verified = graph
        let diags = Verifier().verify(&verified)
        if let d = diags.first { throw OnnxError(file: file, "the imported graph does not verify: \(d.message)") }
        var module = Module(file: graph.name + ".fn2e", version: irFormatVersion)
        module.headerTrivia.trailing = nil
        let made = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        let producer = made.isEmpty ? "" : " (made by \(made.replacingOccurrences(of: "\n", with: " ")))"
        verified.trivia.comments = ["Imported from \((file as NSString).lastPathComponent)\(producer), opset \(opset), by fn2e-compile import onnx."]
        module.graphs = [verified]
        let byName = Dictionary(weights, uniquingKeysWith: { a, _ in a })
        let ordered = verified.params.compactMap { p in byName[p.name].map { (p.name, $0) } }
        return OnnxImported(module: module, graph: verified, weights: ordered, log: log, names: names)
    }

    // MARK: Graph inputs and outputs

    func inputType(_ v: OnnxValueInfo, index: Int) throws(OnnxError) -> TensorType {
        guard v.elemType == OnnxDataType.float.rawValue else {
            throw OnnxError(file: file, "graph input '\(v.name)' has element type \(v.elemType); fn2e's inputs are float32 (type 1); give a fixed integer input as an initializer")
        }
        guard let dims = v.dims else { throw OnnxError(file: file, "graph input '\(v.name)' declares no shape; fn2e needs its rank and sizes") }
        var out: [Dim] = []
        for (k, d) in dims.enumerated() {
            switch d {
            case .value(let n):
                guard n > 0 else { throw OnnxError(file: file, "graph input '\(v.name)' has a dimension of size \(n); fn2e's sizes are positive") }
                out.append(.fixed(n))
            case .param where k == 0, .unknown where k == 0:
                out.append(.batch)
            case .param(let p):
                out.append(.symbol(symbolName(p, k)))
            case .unknown:
                out.append(.symbol("D\(k)"))
            }
        }
        return TensorType(.f32, out)
    }

    /// A named size for an ONNX dim_param: an upper-case letter, then letters, digits and `_`.
    func symbolName(_ p: String, _ k: Int) -> String {
        let cleaned = String(p.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") ? $0 : "_" })
        let upper = cleaned.prefix(1).uppercased() + cleaned.dropFirst()
        return Parser.isSymbol(upper) && upper != "N" ? upper : "D\(k)"
    }

    /// The ONNX values named by `--outputs` (a node name stands for its outputs).
    func cutOutputs(_ g: OnnxGraph, _ names: [String]) throws(OnnxError) -> [String] {
        var out: [String] = []
        for name in names {
            if g.nodes.contains(where: { $0.outputs.contains(name) }) || g.inputs.contains(where: { $0.name == name }) {
                out.append(name)
            } else if let n = g.nodes.first(where: { $0.name == name && !$0.name.isEmpty }) {
                out += n.outputs.filter { !$0.isEmpty }
            } else {
                let known = g.nodes.suffix(8).map { $0.name.isEmpty ? ($0.outputs.first ?? "") : $0.name }.joined(separator: ", ")
                throw OnnxError(file: "<command line>", "no node or value named '\(name)' in the model (its last nodes: \(known))")
            }
        }
        return out
    }

    /// The indices of the nodes the outputs depend on.
    func neededNodes(_ g: OnnxGraph, _ outputs: [String]) -> Set<Int> {
        var producer: [String: Int] = [:]
        for (i, n) in g.nodes.enumerated() { for o in n.outputs where !o.isEmpty { producer[o] = i } }
        var keep = Set<Int>()
        var stack = outputs.compactMap { producer[$0] }
        while let i = stack.popLast() {
            guard keep.insert(i).inserted else { continue }
            stack += g.nodes[i].inputs.compactMap { producer[$0] }
        }
        return keep
    }

    // MARK: Names

    func sanitized(_ name: String) -> String {
        var s = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-/".contains($0)) ? $0 : "_" })
        while s.hasPrefix("/") || s.hasPrefix(".") || s.hasPrefix("-") { s.removeFirst() }
        return s.isEmpty ? "v" : s
    }

    func fresh(_ base: String) -> String { freshName(base, used) }

    mutating func bindValue(_ onnx: String, _ value: String, _ type: TensorType) {
        values[onnx] = value
        types[value] = type
        used.insert(value)
    }

    // MARK: Errors

    /// An error located at the current node: its index, name, op type and opset.
    func fail(_ message: String) -> OnnxError {
        guard let (index, node) = current else { return OnnxError(file: file, message) }
        let name = node.name.isEmpty ? "" : " '\(node.name)'"
        return OnnxError(file: file, "node \(index)\(name) (\(node.opType), opset \(opset)): \(message)")
    }

    // MARK: Operands

    var node: OnnxNode { current!.node }

    /// Whether input `k` is given (optional inputs may be missing or empty).
    func has(_ k: Int) -> Bool { k < node.inputs.count && !node.inputs[k].isEmpty }

    /// The constant value of input `k`, when known at import time.
    func constant(_ k: Int) -> OnnxTensor? { has(k) ? constants[node.inputs[k]] : nil }

    /// Input `k` as integers that must be known at import time.
    func constantInts(_ k: Int, _ what: String) throws(OnnxError) -> [Int] {
        let dims = try constantDims(k, what)
        if let d = dims.first(where: { $0.value == nil }) {
            throw fail("\(what) (input \(k)) depends on the symbolic size \(d), known only when compiling")
        }
        return dims.map { $0.value! }
    }

    /// Input `k` as integers known at import time, where a size Shape read from a symbolic
    /// dimension stays that dimension.
    func constantDims(_ k: Int, _ what: String) throws(OnnxError) -> [Dim] {
        guard let t = constant(k) else { throw fail("\(what) (input \(k)) must be a constant known at import time, such as an initializer") }
        return t.integers.map { symbolicSize(Int64($0)) ?? .fixed($0) }
    }

    /// The symbolic size a sentinel stands for.
    func symbolicSize(_ v: Int64) -> Dim? {
        guard v <= Self.symbolBase else { return nil }
        let k = Int(Self.symbolBase - v)
        return k >= 0 && k < symbols.count ? symbols[k] : nil
    }

    /// The sentinel of a symbolic size.
    mutating func sentinel(_ d: Dim) -> Int64 {
        if let k = symbols.firstIndex(of: d) { return Self.symbolBase - Int64(k) }
        symbols.append(d)
        return Self.symbolBase - Int64(symbols.count - 1)
    }

    /// Input `k` as an fn2e value: a computed value, or a constant made a parameter (`trainable`
    /// for weights). `shape` stores the constant with another shape of the same element count.
    mutating func operand(_ k: Int, trainable: Bool = false, shape: [Int]? = nil, transform: ((OnnxTensor) -> [Float])? = nil,
                          purpose: String = "") throws(OnnxError) -> (String, TensorType) {
        guard has(k) else { throw fail("input \(k) is missing") }
        let name = node.inputs[k]
        if let v = values[name] { return (v, types[v]!) }
        guard let c = constants[name] else { throw fail("input '\(name)' is not produced by any earlier node, initializer or graph input") }
        return try param(c, trainable: trainable, shape: shape, data: transform?(c), purpose: purpose)
    }

    /// A parameter holding a constant's values.
    mutating func param(_ c: OnnxTensor, trainable: Bool = false, shape: [Int]? = nil, data: [Float]? = nil, purpose: String = "") throws(OnnxError) -> (String, TensorType) {
        let key = c.name + "|" + purpose
        if !c.name.isEmpty, let p = constantParams[key] { return (p, types[p]!) }
        guard c.isFloat || c.type == .double || (c.type?.isInteger ?? false) else { throw fail("constant '\(c.name)' has element type \(c.dataType)") }
        for v in c.ints where v <= Self.symbolBase {
            guard let d = symbolicSize(v) else { continue }
            throw fail("'\(c.name.isEmpty ? "a constant" : c.name)' holds the symbolic size \(d) (from a Shape), known only when compiling; fn2e uses such sizes only as Reshape's shape")
        }
        let dims = shape ?? c.dims
        guard dims.allSatisfy({ $0 > 0 }) else { throw fail("constant '\(c.name)' has an empty shape \(c.dims); fn2e's sizes are positive") }
        let name = fresh(sanitized(c.name.isEmpty ? "\(node.outputs.first ?? "c").const" : c.name) + (purpose.isEmpty ? "" : ".\(purpose)"))
        let type = TensorType(.f32, fixed: dims)
        graph.params.append(Param(name: name, type: type, initializer: .zeros, trainable: trainable, loc: graph.loc))
        weights.append((name, Tensor(shape: dims, data: data ?? c.asFloats)))
        used.insert(name)
        types[name] = type
        if !c.name.isEmpty { constantParams[key] = name }
        return (name, type)
    }

    /// A scalar constant as a parameter of shape [1] (broadcast against anything).
    mutating func scalarParam(_ value: Float, _ purpose: String) throws(OnnxError) -> String {
        try param(OnnxTensor(name: "", dims: [1], floats: [value]), purpose: purpose).0
    }

    // MARK: Attributes

    func attr(_ name: String) -> OnnxAttribute? { node.attribute(name) }
    func int(_ name: String, _ d: Int) -> Int { attr(name).map { Int($0.i) } ?? d }
    func float(_ name: String, _ d: Float) -> Float { attr(name)?.f ?? d }
    func ints(_ name: String) -> [Int]? { attr(name).map { $0.ints.map { Int($0) } } }
    func string(_ name: String, _ d: String) -> String { attr(name)?.s ?? d }

    /// An axis normalised against `rank`.
    func axis(_ a: Int, rank: Int, _ what: String = "axis") throws(OnnxError) -> Int {
        let v = a < 0 ? a + rank : a
        guard v >= 0, v < rank else { throw fail("\(what) \(a) is out of range for rank \(rank)") }
        return v
    }

    // MARK: Nodes

    /// Adds a node typed now; returns its name.
    @discardableResult
    mutating func emit(_ op: Op, _ operands: [String], _ attrs: [String: AttrValue] = [:], name: String? = nil) throws(OnnxError) -> String {
        let n = fresh(sanitized(name ?? node.outputs.first ?? op.rawValue))
        let operandTypes = operands.map { types[$0]! }
        for (key, v) in attrs.sorted(by: { $0.key < $1.key }) {
            if let problem = Verifier.rangeProblem(op, key, v) { throw fail("\(key) \(problem), found \(v)") }
        }
        let nonDefault = attrs.filter { key, v in op.signature.spec(key)?.defaultValue != v }
        var made = Node(name: n, op: op, operands: operands, attrs: nonDefault, loc: graph.loc)
        var waits = operands.contains(where: pending.contains)
        let type: TensorType
        do {
            type = try op.inferType(operandTypes, made.fullAttrs)
        } catch let e as InferenceError where e.unbound {
            type = pendingType(op, operandTypes, made.fullAttrs)
            waits = true
        } catch let e as InferenceError {
            throw fail("as fn2e's \(op.rawValue): \(e.message)")
        } catch {
            throw fail("as fn2e's \(op.rawValue): \(error)")
        }
        // A node after a named spatial size stays untyped in the graph, as fn2e's verifier leaves it
        // until compiling binds the size; the importer goes on with its pending type.
        made.type = waits ? nil : type
        if waits { pending.insert(n) }
        graph.nodes.append(made)
        used.insert(n)
        types[n] = type
        return n
    }

    /// The type of a conv2d or pool whose input has a named height or width: that size's output is
    /// named after the arithmetic that gives it (`H-2`, `(H-1)/2+1`), so that two branches computing
    /// the same size agree, as they will when compiling binds H.
    mutating func pendingType(_ op: Op, _ xs: [TensorType], _ a: Attrs) -> TensorType {
        let x = xs[0], conv = op == .conv2d
        let kernel = conv ? [xs[1].dims[2].value ?? 1, xs[1].dims[3].value ?? 1] : [a.pair("kernel").0, a.pair("kernel").1]
        let stride = a.pair("stride"), pad = a.pair("pad"), dilation = conv ? a.pair("dilation") : (1, 1)
        let ceil = !conv && a.string("round") == "ceil"
        var dims = [x.dims[0], conv ? xs[1].dims[0] : x.dims[1]]
        for (d, k, s, p, dil) in [(x.dims[2], kernel[0], stride.0, pad.0, dilation.0), (x.dims[3], kernel[1], stride.1, pad.1, dilation.1)] {
            if let v = d.value {
                dims.append(.fixed(conv ? convOutputSize(input: v, kernel: k, stride: s, pad: p, dilation: dil)
                                        : poolOutputSize(input: v, kernel: k, stride: s, pad: p, ceil: ceil)))
                continue
            }
            // floor((X + shift) / s) + 1 for a convolution or pool, ceil rounding as floor of X + shift + s - 1.
            let shift = 2 * p - dil * (k - 1) - 1 + (ceil ? s - 1 : 0)
            guard s == 1 else { dims.append(.symbol("(\(d)\(shift >= 0 ? "+" : "")\(shift))/\(s)+1")); continue }
            let (base, offset) = offsets["\(d)"] ?? ("\(d)", 0)
            let total = offset + shift + 1
            let named = total == 0 ? base : "\(base)\(total > 0 ? "+" : "")\(total)"
            offsets[named] = (base, total)
            dims.append(.symbol(named))
        }
        return TensorType(.f32, dims)
    }

    /// Makes fn2e value `value` the node's output `k`.
    mutating func output(_ value: String, _ k: Int = 0) {
        guard k < node.outputs.count, !node.outputs[k].isEmpty else { return }
        values[node.outputs[k]] = value
    }

    /// Records a constant as the node's output `k`.
    mutating func outputConstant(_ t: OnnxTensor, _ k: Int = 0) {
        guard k < node.outputs.count, !node.outputs[k].isEmpty else { return }
        var t = t
        t.name = node.outputs[k]
        constants[node.outputs[k]] = t
    }

    /// Refuses outputs past the first `count` that the graph uses (MaxPool's indices, Dropout's mask).
    func onlyOutputs(_ count: Int, _ what: String) throws(OnnxError) {
        for k in count..<max(count, node.outputs.count) where consumed.contains(node.outputs[k]) {
            throw fail("output \(k) ('\(node.outputs[k])', \(what)) is not supported")
        }
    }
}

/// The shortest decimal that reads back as `f`, as a Double: 0.001, not 0.0010000000474974513.
func decimal(_ f: Float) -> Double { Double(f.description) ?? Double(f) }

/// `base`, or `base.1`, `base.2`, ... when taken.
func freshName(_ base: String, _ used: Set<String>) -> String {
    if !used.contains(base) { return base }
    var k = 1
    while used.contains("\(base).\(k)") { k += 1 }
    return "\(base).\(k)"
}
