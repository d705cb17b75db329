// An ONNX model as plain Swift values: what the importer reads and the exporter writes. The bytes
// are decoded and encoded by protobuf-c (OnnxModel+Read.swift, OnnxModel+Write.swift) with the code
// generated from Sources/COnnxProto/onnx.proto.

/// An error found while reading, converting or writing an ONNX model. Binary files have no lines:
/// the message names the node (index, name, op type and opset) or the tensor instead.
public struct OnnxError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var message: String

    public init(file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    /// One line: `file: error: message`.
    public var description: String { "\(file): error: \(message)" }
}

/// ONNX's TensorProto.DataType codes that fn2e reads.
public enum OnnxDataType: Int32, Sendable {
    case float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7, string = 8, bool = 9
    case float16 = 10, double = 11, uint32 = 12, uint64 = 13

    /// Bytes per element in `raw_data`, nil for strings.
    var size: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16, .float16: return 2
        case .float, .int32, .uint32: return 4
        case .int64, .double, .uint64: return 8
        case .string: return nil
        }
    }

    var isInteger: Bool { ![.float, .float16, .double, .string].contains(self) }
}

/// A constant tensor: an initializer, a `Constant`'s value, or test data. Float tensors keep their
/// values bit for bit in `floats`; integer and boolean tensors in `ints`; doubles in `doubles`.
public struct OnnxTensor: Equatable, Sendable {
    public var name: String
    public var dims: [Int]
    public var dataType: Int32
    public var floats: [Float] = []
    public var ints: [Int64] = []
    public var doubles: [Double] = []

    public init(name: String, dims: [Int], floats: [Float]) {
        self.name = name
        self.dims = dims
        dataType = OnnxDataType.float.rawValue
        self.floats = floats
    }

    public init(name: String, dims: [Int], ints: [Int64], type: OnnxDataType = .int64) {
        self.name = name
        self.dims = dims
        dataType = type.rawValue
        self.ints = ints
    }

    public var type: OnnxDataType? { OnnxDataType(rawValue: dataType) }
    public var count: Int { dims.reduce(1, *) }
    public var isFloat: Bool { dataType == OnnxDataType.float.rawValue }

    /// Every value as a Double (integers exactly up to 2^53).
    public var values: [Double] {
        if isFloat { return floats.map(Double.init) }
        if !doubles.isEmpty || dataType == OnnxDataType.double.rawValue { return doubles }
        return ints.map(Double.init)
    }

    /// Every value as an Int: integers exactly, others truncated and clamped to ±2^62 (NaN as 0).
    public var integers: [Int] {
        if !ints.isEmpty || (type?.isInteger ?? false) { return ints.map { Int($0) } }
        return values.map { $0.isNaN ? 0 : Int(Swift.max(Swift.min($0, 0x1p62), -0x1p62)) }
    }

    /// The values at `indices` (of the flat tensor) with shape `dims`.
    func picking(_ indices: [Int], dims: [Int]) -> OnnxTensor {
        var y = self
        y.floats = isFloat ? indices.map { floats[$0] } : []
        y.ints = ints.isEmpty ? [] : indices.map { ints[$0] }
        y.doubles = doubles.isEmpty ? [] : indices.map { doubles[$0] }
        y.dims = dims
        return y
    }

    /// Every value as a Float (the tensor's own floats unchanged).
    public var asFloats: [Float] { isFloat ? floats : values.map(Float.init) }
}

/// An attribute of a node. `type` is ONNX's AttributeType code (1 FLOAT, 2 INT, 3 STRING, 4 TENSOR,
/// 6 FLOATS, 7 INTS, 8 STRINGS; others are kept only as their code).
public struct OnnxAttribute: Equatable, Sendable {
    public var name: String
    public var type: Int32
    public var f: Float = 0
    public var i: Int64 = 0
    public var s: String = ""
    public var t: OnnxTensor?
    public var floats: [Float] = []
    public var ints: [Int64] = []
    public var strings: [String] = []

    public static let floatType: Int32 = 1, intType: Int32 = 2, stringType: Int32 = 3, tensorType: Int32 = 4
    public static let floatsType: Int32 = 6, intsType: Int32 = 7, stringsType: Int32 = 8

    public init(name: String, type: Int32) {
        self.name = name
        self.type = type
    }

    public static func int(_ name: String, _ v: Int) -> OnnxAttribute {
        var a = OnnxAttribute(name: name, type: intType)
        a.i = Int64(v)
        return a
    }

    public static func float(_ name: String, _ v: Float) -> OnnxAttribute {
        var a = OnnxAttribute(name: name, type: floatType)
        a.f = v
        return a
    }

    public static func ints(_ name: String, _ v: [Int]) -> OnnxAttribute {
        var a = OnnxAttribute(name: name, type: intsType)
        a.ints = v.map(Int64.init)
        return a
    }

    public static func string(_ name: String, _ v: String) -> OnnxAttribute {
        var a = OnnxAttribute(name: name, type: stringType)
        a.s = v
        return a
    }
}

public struct OnnxNode: Equatable, Sendable {
    public var name: String
    public var opType: String
    public var domain: String = ""
    /// Value names; an empty name is an omitted optional input.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [OnnxAttribute] = []

    public init(name: String, opType: String, inputs: [String], outputs: [String], attributes: [OnnxAttribute] = []) {
        self.name = name
        self.opType = opType
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    public func attribute(_ name: String) -> OnnxAttribute? { attributes.first { $0.name == name } }
}

/// One dimension of a value's declared shape.
public enum OnnxDim: Equatable, Sendable {
    case value(Int)
    case param(String)
    case unknown
}

/// A graph input or output: its element type and shape when declared.
public struct OnnxValueInfo: Equatable, Sendable {
    public var name: String
    public var elemType: Int32
    /// nil when the file declares no shape.
    public var dims: [OnnxDim]?

    public init(name: String, elemType: Int32 = OnnxDataType.float.rawValue, dims: [OnnxDim]?) {
        self.name = name
        self.elemType = elemType
        self.dims = dims
    }
}

public struct OnnxGraph: Equatable, Sendable {
    public var name: String
    public var nodes: [OnnxNode] = []
    public var initializers: [OnnxTensor] = []
    public var inputs: [OnnxValueInfo] = []
    public var outputs: [OnnxValueInfo] = []
    public var docString = ""

    public init(name: String) { self.name = name }
}

public struct OnnxModel: Equatable, Sendable {
    public var irVersion: Int
    /// Operator set versions by domain ("" is the default ONNX domain).
    public var opsets: [String: Int]
    public var producerName = ""
    public var producerVersion = ""
    public var graph: OnnxGraph

    public init(irVersion: Int, opsets: [String: Int], graph: OnnxGraph) {
        self.irVersion = irVersion
        self.opsets = opsets
        self.graph = graph
    }

    /// The default domain's operator set version (`ai.onnx` is another spelling of "").
    public var opset: Int? { opsets[""] ?? opsets["ai.onnx"] }
}
