// Decoding ONNX protobuf bytes (a ModelProto, or one TensorProto of the backend tests' data) into
// Swift values. protobuf-c checks the wire format; here every tensor's element count is checked
// against its dims and against the bytes present before anything is allocated.
import COnnxProto
import CProtobufC
import Foundation

extension OnnxModel {
    /// Reads a model file (`.onnx`).
    public init(path: String) throws(OnnxError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw OnnxError(file: path, "cannot read file") }
        try self.init(bytes: [UInt8](data), file: path)
    }

    /// Decodes a serialized ModelProto.
    public init(bytes: [UInt8], file: String = "<onnx>") throws(OnnxError) {
        guard !bytes.isEmpty else { throw OnnxError(file: file, "empty file: not an ONNX model") }
        guard let m = bytes.withUnsafeBufferPointer({ onnx__model_proto__unpack(nil, $0.count, $0.baseAddress) }) else {
            throw OnnxError(file: file, "not an ONNX model: the protobuf ModelProto does not decode")
        }
        defer { onnx__model_proto__free_unpacked(m, nil) }
        guard let g = m.pointee.graph else { throw OnnxError(file: file, "not an ONNX model: it has no graph") }
        var opsets: [String: Int] = [:]
        for k in 0..<m.pointee.n_opset_import {
            let o = m.pointee.opset_import[k]!.pointee
            opsets[string(o.domain)] = Int(o.version)
        }
        self.init(irVersion: Int(m.pointee.ir_version), opsets: opsets, graph: try OnnxGraph(g.pointee, file: file))
        producerName = string(m.pointee.producer_name)
        producerVersion = string(m.pointee.producer_version)
    }
}

extension OnnxTensor {
    /// Reads one serialized TensorProto (the backend tests' `input_0.pb`, `output_0.pb`).
    public init(path: String) throws(OnnxError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw OnnxError(file: path, "cannot read file") }
        try self.init(bytes: [UInt8](data), file: path)
    }

    /// Decodes a serialized TensorProto.
    public init(bytes: [UInt8], file: String = "<tensor>") throws(OnnxError) {
        guard let t = bytes.withUnsafeBufferPointer({ onnx__tensor_proto__unpack(nil, $0.count, $0.baseAddress) }) else {
            throw OnnxError(file: file, "not an ONNX tensor: the protobuf TensorProto does not decode")
        }
        defer { onnx__tensor_proto__free_unpacked(t, nil) }
        try self.init(t.pointee, file: file)
    }

    init(_ t: Onnx__TensorProto, file: String) throws(OnnxError) {
        let name = string(t.name)
        func fail(_ message: String) -> OnnxError { OnnxError(file: file, "tensor '\(name)': \(message)") }
        let dims = (0..<t.n_dims).map { Int(truncatingIfNeeded: t.dims[$0]) }
        var count = 1
        for d in dims {
            guard d >= 0 else { throw fail("negative dimension in \(dims)") }
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, p <= 1 << 34 else { throw fail("shape \(dims) is too large") }
            count = p
        }
        guard t.has_data_location == 0 || t.data_location == 0, t.n_external_data == 0 else {
            throw fail("its data is stored in an external file, which fn2e does not read (save the model with its weights inside)")
        }
        guard let type = OnnxDataType(rawValue: t.data_type), type != .string, type != .float16 else {
            throw fail("element type \(t.data_type) is not supported (float, double, and integer or boolean types are)")
        }
        self.init(name: name, dims: dims, ints: [], type: type)
        if t.has_raw_data != 0 {
            let size = type.size!
            guard t.raw_data.len == count * size else {
                throw fail("raw_data holds \(t.raw_data.len) bytes but shape \(dims) of type \(type) needs \(count * size)")
            }
            let raw = UnsafeRawBufferPointer(start: t.raw_data.data, count: t.raw_data.len)
            switch type {
            case .float: floats = (0..<count).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).littleEndian) }
            case .double: doubles = (0..<count).map { Double(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self).littleEndian) }
            case .int64, .uint64: ints = (0..<count).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            case .int32: ints = (0..<count).map { Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }
            case .uint32: ints = (0..<count).map { Int64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            case .int16: ints = (0..<count).map { Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self))) }
            case .uint16: ints = (0..<count).map { Int64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
            case .int8: ints = (0..<count).map { Int64(Int8(bitPattern: raw[$0])) }
            case .uint8, .bool: ints = (0..<count).map { Int64(raw[$0]) }
            case .string, .float16: break
            }
            return
        }
        // The typed fields: float_data (float), int32_data (int32 and smaller, bool), int64_data,
        // double_data, uint64_data (uint32, uint64).
        let found: Int
        switch type {
        case .float:
            found = t.n_float_data
            if found == count { floats = Array(UnsafeBufferPointer(start: t.float_data, count: count)) }
        case .double:
            found = t.n_double_data
            if found == count { doubles = Array(UnsafeBufferPointer(start: t.double_data, count: count)) }
        case .int64:
            found = t.n_int64_data
            if found == count { ints = Array(UnsafeBufferPointer(start: t.int64_data, count: count)) }
        case .uint32, .uint64:
            found = t.n_uint64_data
            if found == count { ints = (0..<count).map { Int64(truncatingIfNeeded: t.uint64_data[$0]) } }
        case .int32, .int16, .int8, .uint16, .uint8, .bool:
            found = t.n_int32_data
            if found == count { ints = (0..<count).map { Int64(t.int32_data[$0]) } }
        case .string, .float16:
            found = 0
        }
        guard found == count else { throw fail("holds \(found) values but shape \(dims) needs \(count)") }
    }
}

extension OnnxGraph {
    init(_ g: Onnx__GraphProto, file: String) throws(OnnxError) {
        self.init(name: string(g.name))
        docString = string(g.doc_string)
        for k in 0..<g.n_initializer { initializers.append(try OnnxTensor(g.initializer[k]!.pointee, file: file)) }
        inputs = (0..<g.n_input).map { OnnxValueInfo(g.input[$0]!.pointee) }
        outputs = (0..<g.n_output).map { OnnxValueInfo(g.output[$0]!.pointee) }
        for k in 0..<g.n_node { nodes.append(try OnnxNode(g.node[k]!.pointee, file: file)) }
    }
}

extension OnnxValueInfo {
    init(_ v: Onnx__ValueInfoProto) {
        var elem: Int32 = 0
        var dims: [OnnxDim]?
        if let type = v.type?.pointee, type.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, let tensor = type.tensor_type?.pointee {
            elem = tensor.elem_type
            if let shape = tensor.shape?.pointee {
                dims = (0..<shape.n_dim).map { k -> OnnxDim in
                    let d = shape.dim[k]!.pointee
                    switch d.value_case {
                    case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE: return d.dim_value >= 0 ? .value(Int(d.dim_value)) : .unknown
                    case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM: return .param(string(d.dim_param))
                    default: return .unknown
                    }
                }
            }
        }
        self.init(name: string(v.name), elemType: elem, dims: dims)
    }
}

extension OnnxNode {
    init(_ n: Onnx__NodeProto, file: String) throws(OnnxError) {
        self.init(name: string(n.name), opType: string(n.op_type),
                  inputs: (0..<n.n_input).map { string(n.input[$0]) },
                  outputs: (0..<n.n_output).map { string(n.output[$0]) })
        domain = string(n.domain)
        for k in 0..<n.n_attribute {
            let a = n.attribute[k]!.pointee
            var attr = OnnxAttribute(name: string(a.name), type: a.type)
            attr.f = a.f
            attr.i = a.i
            attr.s = bytesString(a.s)
            if let t = a.t {
                do throws(OnnxError) { attr.t = try OnnxTensor(t.pointee, file: file) } catch {
                    throw OnnxError(file: file, "node '\(name)' (\(opType)) attribute '\(attr.name)': \(error.message)")
                }
            }
            attr.floats = Array(UnsafeBufferPointer(start: a.floats, count: a.n_floats))
            attr.ints = Array(UnsafeBufferPointer(start: a.ints, count: a.n_ints))
            attr.strings = (0..<a.n_strings).map { bytesString(a.strings[$0]) }
            attributes.append(attr)
        }
    }
}

func string(_ p: UnsafeMutablePointer<CChar>?) -> String {
    guard let p else { return "" }
    return String(cString: p)
}

func bytesString(_ b: ProtobufCBinaryData) -> String {
    guard let data = b.data, b.len > 0 else { return "" }
    return String(decoding: UnsafeBufferPointer(start: data, count: b.len), as: UTF8.self)
}
