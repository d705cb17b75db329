/// Comments and spacing kept with a statement so that graph files print back as written.
public struct Trivia: Hashable, Sendable {
    /// Whole-line comments above the statement, without the comment marker's leading space.
    public var comments: [String] = []
    /// A comment on the statement's own line.
    public var trailing: String? = nil
    /// Whether an empty line separated this statement from the one before.
    public var blankLineBefore = false
    /// Indices of `comments` followed by an empty line, so a comment block split by blank lines prints back as written.
    public var blankLineAfter: Set<Int> = []

    public init(comments: [String] = [], trailing: String? = nil, blankLineBefore: Bool = false) {
        self.comments = comments
        self.trailing = trailing
        self.blankLineBefore = blankLineBefore
    }
}

/// How a parameter is filled when no weights are loaded for it.
public enum Initializer: Hashable, Sendable, CustomStringConvertible {
    case zeros
    case constant(Double)
    case gaussian(std: Double)
    case uniform(low: Double, high: Double)
    /// Caffe's xavier: uniform in ±sqrt(3 / fan_in).
    case xavier
    /// He et al. (Caffe's msra): gaussian with std sqrt(2 / fan_in).
    case msra

    public var description: String {
        switch self {
        case .zeros: return "zeros"
        case .constant(let v): return "constant(\(formatFloat(v)))"
        case .gaussian(let s): return "gaussian(\(formatFloat(s)))"
        case .uniform(let lo, let hi): return "uniform(\(formatFloat(lo)),\(formatFloat(hi)))"
        case .xavier: return "xavier"
        case .msra: return "msra"
        }
    }
}

/// A graph input: a tensor fed at run time (images, labels, regression targets).
public struct Input: Hashable, Sendable {
    public var name: String
    public var type: TensorType
    public var loc: SourceLoc

    public init(name: String, type: TensorType, loc: SourceLoc) {
        self.name = name
        self.type = type
        self.loc = loc
    }
}

/// A learnable (or frozen) tensor owned by a graph, with Caffe-style learning-rate and decay multipliers.
public struct Param: Hashable, Sendable {
    public var name: String
    public var type: TensorType
    public var initializer: Initializer
    public var trainable: Bool
    public var lrMult: Double
    public var decayMult: Double
    public var loc: SourceLoc
    public var trivia = Trivia()

    public init(name: String, type: TensorType, initializer: Initializer, trainable: Bool = true,
                lrMult: Double = 1, decayMult: Double = 1, loc: SourceLoc, trivia: Trivia = Trivia()) {
        self.name = name
        self.type = type
        self.initializer = initializer
        self.trainable = trainable
        self.lrMult = lrMult
        self.decayMult = decayMult
        self.loc = loc
        self.trivia = trivia
    }
}

/// One SSA value: `%name = type op(operands) {attrs}`.
public struct Node: Hashable, Sendable {
    public var name: String
    public var op: Op
    public var operands: [String]
    /// Attributes as written (defaults are not stored); read them through `Graph.attrs(of:)`.
    public var attrs: [String: AttrValue]
    /// For `call`: the graph called.
    public var callee: String?
    /// The type written in the source, if any; the verifier checks it against the inferred one.
    public var declaredType: TensorType?
    /// Set by shape inference.
    public var type: TensorType?
    public var loc: SourceLoc
    /// Where each operand was written, for diagnostics.
    public var operandLocs: [SourceLoc]
    /// Where the op name and each attribute were written, for diagnostics.
    public var opLoc: SourceLoc?
    public var attrLocs: [String: SourceLoc] = [:]
    /// Names of the source nodes this node stands for after fusion (empty: itself).
    public var origins: [String] = []
    public var trivia = Trivia()

    public init(name: String, op: Op, operands: [String], attrs: [String: AttrValue] = [:], callee: String? = nil,
                type: TensorType? = nil, loc: SourceLoc, operandLocs: [SourceLoc]? = nil, trivia: Trivia = Trivia()) {
        self.name = name
        self.op = op
        self.operands = operands
        self.attrs = attrs
        self.callee = callee
        self.declaredType = nil
        self.type = type
        self.loc = loc
        self.operandLocs = operandLocs ?? Array(repeating: loc, count: operands.count)
        self.trivia = trivia
    }

    /// Attributes with the op's defaults filled in.
    public var fullAttrs: Attrs {
        var a = Attrs(attrs)
        for spec in op.signature.attrs where a[spec.name] == nil {
            if let d = spec.defaultValue { a[spec.name] = d }
        }
        return a
    }
}

/// A named computation: typed inputs, parameters, nodes in definition order, outputs.
public struct Graph: Hashable, Sendable {
    public var name: String
    public var inputs: [Input]
    public var params: [Param]
    public var nodes: [Node]
    public var outputs: [String]
    public var loc: SourceLoc
    public var trivia = Trivia()
    public var returnTrivia = Trivia()
    /// Where `return` was written.
    public var returnLoc: SourceLoc?
    /// Where each returned value was written.
    public var outputLocs: [SourceLoc] = []
    /// Comments before the closing brace.
    public var closingComments: [String] = []
    /// A comment on the line of the closing brace.
    public var closingTrailing: String?

    public init(name: String, inputs: [Input] = [], params: [Param] = [], nodes: [Node] = [], outputs: [String] = [],
                loc: SourceLoc) {
        self.name = name
        self.inputs = inputs
        self.params = params
        self.nodes = nodes
        self.outputs = outputs
        self.loc = loc
    }

    public func node(_ name: String) -> Node? { nodes.first { $0.name == name } }
    public func param(_ name: String) -> Param? { params.first { $0.name == name } }
    public func input(_ name: String) -> Input? { inputs.first { $0.name == name } }

    /// The type of any value of the graph (input, parameter, or typed node).
    public func type(of name: String) -> TensorType? {
        if let i = input(name) { return i.type }
        if let p = param(name) { return p.type }
        return node(name)?.type
    }

    /// A graph name made from a file name (`models/VGG-Face.caffemodel` gives `VGG_Face`): the base
    /// name without its extension, letters, digits and `_` kept, anything else `_`.
    public static func name(fromFile path: String) -> String {
        var base = path.split(separator: "/").last ?? ""
        if let dot = base.lastIndex(of: "."), dot != base.startIndex { base = base[..<dot] }
        let cleaned = String(base.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
        return cleaned.isEmpty ? "net" : cleaned
    }

    /// A map from value name to type, for repeated look-ups.
    public var typeTable: [String: TensorType] {
        var t: [String: TensorType] = [:]
        for i in inputs { t[i.name] = i.type }
        for p in params { t[p.name] = p.type }
        for n in nodes { if let ty = n.type { t[n.name] = ty } }
        return t
    }
}

extension Graph {
    /// The loss to train when none is named: the first output computed by a loss op, else the only
    /// scalar f32 output; nil when neither exists.
    public var defaultLoss: String? {
        if let l = outputs.first(where: { node($0).map { Op.losses.contains($0.op) } ?? false }) { return l }
        let scalars = outputs.filter { type(of: $0) == TensorType(.f32, []) }
        return scalars.count == 1 ? scalars[0] : nil
    }
}

/// One parsed file: its version, its imports and its graphs.
public struct Module: Hashable, Sendable {
    public struct Import: Hashable, Sendable {
        public var path: String
        /// Where the quoted file name was written.
        public var loc: SourceLoc
        public var trivia = Trivia()
    }

    public var file: String
    public var version: Int
    public var headerTrivia = Trivia()
    public var imports: [Import] = []
    public var graphs: [Graph] = []
    /// Comments after the last graph.
    public var trailingComments: [String] = []

    public init(file: String, version: Int) {
        self.file = file
        self.version = version
    }
}
