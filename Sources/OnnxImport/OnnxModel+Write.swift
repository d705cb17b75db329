// Encoding an OnnxModel as protobuf bytes: the Swift values are laid out as protobuf-c messages in
// memory this file allocates (and frees once packed), then protobuf-c packs them.
import COnnxProto
import CProtobufC
import Foundation

extension OnnxModel {
    /// The serialized ModelProto.
    public func serialized() -> [UInt8] {
        let memory = CMemory()
        defer { memory.free() }
        let m = memory.message(Onnx__ModelProto.self, onnx__model_proto__init)
        m.pointee.has_ir_version = 1
        m.pointee.ir_version = Int64(irVersion)
        m.pointee.producer_name = memory.string(producerName)
        m.pointee.producer_version = memory.string(producerVersion)
        (m.pointee.n_opset_import, m.pointee.opset_import) = memory.array(opsets.sorted { $0.key < $1.key }) { o in
            let p = memory.message(Onnx__OperatorSetIdProto.self, onnx__operator_set_id_proto__init)
            p.pointee.domain = memory.string(o.key)
            p.pointee.has_version = 1
            p.pointee.version = Int64(o.value)
            return p
        }
        m.pointee.graph = graph.write(memory)
        let size = onnx__model_proto__get_packed_size(m)
        var bytes = [UInt8](repeating: 0, count: size)
        _ = bytes.withUnsafeMutableBufferPointer { onnx__model_proto__pack(m, $0.baseAddress) }
        return bytes
    }
}

extension OnnxGraph {
    func write(_ memory: CMemory) -> UnsafeMutablePointer<Onnx__GraphProto> {
        let g = memory.message(Onnx__GraphProto.self, onnx__graph_proto__init)
        g.pointee.name = memory.string(name)
        if !docString.isEmpty { g.pointee.doc_string = memory.string(docString) }
        (g.pointee.n_node, g.pointee.node) = memory.array(nodes) { $0.write(memory) }
        (g.pointee.n_initializer, g.pointee.initializer) = memory.array(initializers) { $0.write(memory) }
        (g.pointee.n_input, g.pointee.input) = memory.array(inputs) { $0.write(memory) }
        (g.pointee.n_output, g.pointee.output) = memory.array(outputs) { $0.write(memory) }
        return g
    }
}

extension OnnxNode {
    func write(_ memory: CMemory) -> UnsafeMutablePointer<Onnx__NodeProto> {
        let n = memory.message(Onnx__NodeProto.self, onnx__node_proto__init)
        n.pointee.name = memory.string(name)
        n.pointee.op_type = memory.string(opType)
        if !domain.isEmpty { n.pointee.domain = memory.string(domain) }
        (n.pointee.n_input, n.pointee.input) = memory.array(inputs) { memory.string($0) }
        (n.pointee.n_output, n.pointee.output) = memory.array(outputs) { memory.string($0) }
        (n.pointee.n_attribute, n.pointee.attribute) = memory.array(attributes) { a in
            let p = memory.message(Onnx__AttributeProto.self, onnx__attribute_proto__init)
            p.pointee.name = memory.string(a.name)
            p.pointee.has_type = 1
            p.pointee.type = a.type
            switch a.type {
            case OnnxAttribute.floatType: (p.pointee.has_f, p.pointee.f) = (1, a.f)
            case OnnxAttribute.intType: (p.pointee.has_i, p.pointee.i) = (1, a.i)
            case OnnxAttribute.stringType: (p.pointee.has_s, p.pointee.s) = (1, memory.bytes(Array(a.s.utf8)))
            case OnnxAttribute.tensorType: p.pointee.t = a.t?.write(memory)
            default:
                (p.pointee.n_floats, p.pointee.floats) = memory.values(a.floats)
                (p.pointee.n_ints, p.pointee.ints) = memory.values(a.ints)
            }
            return p
        }
        return n
    }
}

extension OnnxTensor {
    /// Float tensors as little-endian raw_data (their bits unchanged); integers in int64_data.
    func write(_ memory: CMemory) -> UnsafeMutablePointer<Onnx__TensorProto> {
        let t = memory.message(Onnx__TensorProto.self, onnx__tensor_proto__init)
        t.pointee.name = memory.string(name)
        (t.pointee.n_dims, t.pointee.dims) = memory.values(dims.map(Int64.init))
        t.pointee.has_data_type = 1
        t.pointee.data_type = dataType
        if isFloat {
            t.pointee.has_raw_data = 1
            t.pointee.raw_data = floats.withUnsafeBytes { memory.bytes(Array($0)) }
        } else {
            (t.pointee.n_int64_data, t.pointee.int64_data) = memory.values(ints)
        }
        return t
    }
}

extension OnnxValueInfo {
    func write(_ memory: CMemory) -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
        let v = memory.message(Onnx__ValueInfoProto.self, onnx__value_info_proto__init)
        v.pointee.name = memory.string(name)
        let type = memory.message(Onnx__TypeProto.self, onnx__type_proto__init)
        let tensor = memory.message(Onnx__TypeProto__Tensor.self, onnx__type_proto__tensor__init)
        tensor.pointee.has_elem_type = 1
        tensor.pointee.elem_type = elemType
        if let dims {
            let shape = memory.message(Onnx__TensorShapeProto.self, onnx__tensor_shape_proto__init)
            (shape.pointee.n_dim, shape.pointee.dim) = memory.array(dims) { d in
                let p = memory.message(Onnx__TensorShapeProto__Dimension.self, onnx__tensor_shape_proto__dimension__init)
                switch d {
                case .value(let n): (p.pointee.value_case, p.pointee.dim_value) = (ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, Int64(n))
                case .param(let s): (p.pointee.value_case, p.pointee.dim_param) = (ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, memory.string(s))
                case .unknown: break
                }
                return p
            }
            tensor.pointee.shape = shape
        }
        type.pointee.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
        type.pointee.tensor_type = tensor
        v.pointee.type = type
        return v
    }
}

/// The C memory of messages being built; everything is freed at once after packing.
final class CMemory {
    private var blocks: [UnsafeMutableRawPointer] = []

    func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let p = UnsafeMutablePointer<T>.allocate(capacity: max(count, 1))
        blocks.append(UnsafeMutableRawPointer(p))
        return p
    }

    /// A message initialised with its protobuf-c `init` (defaults and descriptor).
    func message<T>(_ type: T.Type, _ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let p = allocate(type, count: 1)
        initialize(p)
        return p
    }

    func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(s.utf8CString)
        let p = allocate(CChar.self, count: utf8.count)
        p.initialize(from: utf8, count: utf8.count)
        return p
    }

    func bytes(_ b: [UInt8]) -> ProtobufCBinaryData {
        let p = allocate(UInt8.self, count: b.count)
        p.initialize(from: b, count: b.count)
        return ProtobufCBinaryData(len: b.count, data: p)
    }

    func values<T>(_ v: [T]) -> (Int, UnsafeMutablePointer<T>?) {
        guard !v.isEmpty else { return (0, nil) }
        let p = allocate(T.self, count: v.count)
        p.initialize(from: v, count: v.count)
        return (v.count, p)
    }

    func array<E, T>(_ items: [E], _ make: (E) -> UnsafeMutablePointer<T>) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<T>?>?) {
        guard !items.isEmpty else { return (0, nil) }
        let p = allocate(UnsafeMutablePointer<T>?.self, count: items.count)
        for (k, item) in items.enumerated() { (p + k).initialize(to: make(item)) }
        return (items.count, p)
    }

    func free() {
        for b in blocks { b.deallocate() }
        blocks = []
    }
}
