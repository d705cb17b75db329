// Reflection over protobuf-c messages: read and write any field by name through the descriptors
// that protoc-c generated, so the text reader, the text printer, the model conversion and the
// writer share one mechanism and none of them needs per-field C code.
import CCaffeProto
import CProtobufC
import Foundation

typealias MessageDescriptor = UnsafePointer<ProtobufCMessageDescriptor>
typealias FieldDescriptor = UnsafePointer<ProtobufCFieldDescriptor>
typealias EnumDescriptor = UnsafePointer<ProtobufCEnumDescriptor>

/// The descriptors of the top-level Caffe messages, taken from an initialised message so that the
/// pointer is the generated global itself (never a Swift copy of it).
enum CaffeDescriptors {
    static let netParameter: MessageDescriptor = {
        var m = Caffe__NetParameter()
        caffe__net_parameter__init(&m)
        return m.base.descriptor
    }()
    static let layerParameter: MessageDescriptor = {
        var m = Caffe__LayerParameter()
        caffe__layer_parameter__init(&m)
        return m.base.descriptor
    }()
    static let v1LayerParameter: MessageDescriptor = {
        var m = Caffe__V1LayerParameter()
        caffe__v1_layer_parameter__init(&m)
        return m.base.descriptor
    }()
}

/// One scalar element of a field, as stored in the C struct.
enum ProtoScalar: Equatable {
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case bool(Bool)
    case enumValue(Int32)
    case string([UInt8])
}

/// Why a value could not be stored into a field; the text reader turns it into a diagnostic.
enum ProtoStoreError: Error, Equatable {
    case typeMismatch(expected: String)
    case outOfRange
}

extension ProtobufCType {
    /// Bytes one element takes in the C struct or in a repeated field's array.
    var storageSize: Int {
        switch self {
        case PROTOBUF_C_TYPE_INT32, PROTOBUF_C_TYPE_SINT32, PROTOBUF_C_TYPE_SFIXED32,
             PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_TYPE_FIXED32, PROTOBUF_C_TYPE_FLOAT, PROTOBUF_C_TYPE_ENUM:
            return 4
        case PROTOBUF_C_TYPE_BOOL: return MemoryLayout<protobuf_c_boolean>.size
        case PROTOBUF_C_TYPE_BYTES: return MemoryLayout<ProtobufCBinaryData>.size
        case PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_MESSAGE: return MemoryLayout<UnsafeRawPointer>.size
        default: return 8
        }
    }

    /// The .proto spelling of the type, for messages.
    var protoName: String {
        switch self {
        case PROTOBUF_C_TYPE_INT32: return "int32"
        case PROTOBUF_C_TYPE_SINT32: return "sint32"
        case PROTOBUF_C_TYPE_SFIXED32: return "sfixed32"
        case PROTOBUF_C_TYPE_INT64: return "int64"
        case PROTOBUF_C_TYPE_SINT64: return "sint64"
        case PROTOBUF_C_TYPE_SFIXED64: return "sfixed64"
        case PROTOBUF_C_TYPE_UINT32: return "uint32"
        case PROTOBUF_C_TYPE_FIXED32: return "fixed32"
        case PROTOBUF_C_TYPE_UINT64: return "uint64"
        case PROTOBUF_C_TYPE_FIXED64: return "fixed64"
        case PROTOBUF_C_TYPE_FLOAT: return "float"
        case PROTOBUF_C_TYPE_DOUBLE: return "double"
        case PROTOBUF_C_TYPE_BOOL: return "bool"
        case PROTOBUF_C_TYPE_ENUM: return "enum"
        case PROTOBUF_C_TYPE_STRING: return "string"
        case PROTOBUF_C_TYPE_BYTES: return "bytes"
        default: return "message"
        }
    }
}

extension UnsafePointer where Pointee == ProtobufCFieldDescriptor {
    var name: String { String(cString: pointee.name) }
    var isRepeated: Bool { pointee.label == PROTOBUF_C_LABEL_REPEATED }
    var type: ProtobufCType { pointee.type }
    var messageDescriptor: MessageDescriptor { pointee.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self) }
    var enumDescriptor: EnumDescriptor { pointee.descriptor.assumingMemoryBound(to: ProtobufCEnumDescriptor.self) }
}

extension UnsafePointer where Pointee == ProtobufCMessageDescriptor {
    /// The full name, e.g. `caffe.LayerParameter`.
    var fullName: String { String(cString: pointee.name) }
    var fields: UnsafeBufferPointer<ProtobufCFieldDescriptor> {
        UnsafeBufferPointer(start: pointee.fields, count: Int(pointee.n_fields))
    }
    func field(named name: String) -> FieldDescriptor? { protobuf_c_message_descriptor_get_field_by_name(self, name) }

    /// A fresh message with every default set, allocated with malloc so that
    /// `protobuf_c_message_free_unpacked(_, nil)` releases it and everything stored into it.
    func newMessage() -> ProtoRef {
        let raw = calloc(1, pointee.sizeof_message)!.assumingMemoryBound(to: ProtobufCMessage.self)
        if let initialise = pointee.message_init { initialise(raw) } else { protobuf_c_message_init(self, raw) }
        return ProtoRef(raw: raw)
    }
}

extension UnsafePointer where Pointee == ProtobufCEnumDescriptor {
    var valueNames: [String] {
        (0..<Int(pointee.n_values)).map { String(cString: pointee.values[$0].name) }
    }
    func name(of value: Int32) -> String? {
        protobuf_c_enum_descriptor_get_value(self, value).map { String(cString: $0.pointee.name) }
    }
    func value(named name: String) -> Int32? {
        protobuf_c_enum_descriptor_get_value_by_name(self, name).map { $0.pointee.value }
    }
}

/// A non-owning view of a protobuf-c message. Whoever created the top message frees it with `free()`.
struct ProtoRef {
    let raw: UnsafeMutablePointer<ProtobufCMessage>

    var descriptor: MessageDescriptor { raw.pointee.descriptor }
    private var base: UnsafeMutableRawPointer { UnsafeMutableRawPointer(raw) }

    /// Releases this message and all it owns (only for top-level messages we created or unpacked).
    func free() { protobuf_c_message_free_unpacked(raw, nil) }

    func field(_ name: String) -> FieldDescriptor {
        guard let f = descriptor.field(named: name) else {
            preconditionFailure("\(descriptor.fullName) has no field \(name)")
        }
        return f
    }

    // MARK: Reading

    /// Number of elements: the repeat count, or 1 when a singular field is present.
    func count(_ f: FieldDescriptor) -> Int {
        let slot = base + Int(f.pointee.offset)
        if f.isRepeated { return base.load(fromByteOffset: Int(f.pointee.quantifier_offset), as: Int.self) }
        switch f.type {
        case PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_MESSAGE:
            let p = slot.load(as: UnsafeRawPointer?.self)
            return p != nil && p != f.pointee.default_value ? 1 : 0
        default:
            if f.pointee.label == PROTOBUF_C_LABEL_REQUIRED { return 1 }
            if f.pointee.label == PROTOBUF_C_LABEL_NONE { return 1 }
            return base.load(fromByteOffset: Int(f.pointee.quantifier_offset), as: protobuf_c_boolean.self) != 0 ? 1 : 0
        }
    }

    /// Address of element `index` (repeated) or of the field itself (singular).
    private func address(_ f: FieldDescriptor, _ index: Int) -> UnsafeMutableRawPointer? {
        let slot = base + Int(f.pointee.offset)
        guard f.isRepeated else { return slot }
        guard let array = slot.load(as: UnsafeMutableRawPointer?.self) else { return nil }
        return array + index * f.type.storageSize
    }

    /// Element `index` of a non-message field (index 0 for a singular field, which yields the default
    /// value when the field is absent).
    func scalar(_ f: FieldDescriptor, _ index: Int = 0) -> ProtoScalar {
        guard let p = address(f, index) else { return .int(0) }
        switch f.type {
        case PROTOBUF_C_TYPE_INT32, PROTOBUF_C_TYPE_SINT32, PROTOBUF_C_TYPE_SFIXED32:
            return .int(Int64(p.load(as: Int32.self)))
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64:
            return .int(p.load(as: Int64.self))
        case PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_TYPE_FIXED32: return .uint(UInt64(p.load(as: UInt32.self)))
        case PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_TYPE_FIXED64: return .uint(p.load(as: UInt64.self))
        case PROTOBUF_C_TYPE_FLOAT: return .double(Double(p.load(as: Float.self)))
        case PROTOBUF_C_TYPE_DOUBLE: return .double(p.load(as: Double.self))
        case PROTOBUF_C_TYPE_BOOL: return .bool(p.load(as: protobuf_c_boolean.self) != 0)
        case PROTOBUF_C_TYPE_ENUM: return .enumValue(p.load(as: Int32.self))
        case PROTOBUF_C_TYPE_STRING:
            guard let s = p.load(as: UnsafePointer<CChar>?.self) else { return .string([]) }
            return .string(Array(UnsafeRawBufferPointer(start: s, count: strlen(s))))
        case PROTOBUF_C_TYPE_BYTES:
            let b = p.load(as: ProtobufCBinaryData.self)
            return .string(b.len == 0 ? [] : Array(UnsafeRawBufferPointer(start: b.data, count: b.len)))
        default: preconditionFailure("scalar() on message field \(f.name)")
        }
    }

    func submessage(_ f: FieldDescriptor, _ index: Int = 0) -> ProtoRef? {
        address(f, index)?.load(as: UnsafeMutablePointer<ProtobufCMessage>?.self).map(ProtoRef.init(raw:))
    }

    func has(_ name: String) -> Bool { count(field(name)) > 0 }

    func int(_ name: String) -> Int { Self.integer(scalar(field(name))) }

    func ints(_ name: String) -> [Int] {
        let f = field(name)
        return (0..<count(f)).map { Self.integer(scalar(f, $0)) }
    }

    func bool(_ name: String) -> Bool { Self.integer(scalar(field(name))) != 0 }

    func float(_ name: String) -> Float {
        if case .double(let d) = scalar(field(name)) { return Float(d) }
        return Float(int(name))
    }

    /// A repeated float or double field, copied in one block for floats.
    func floats(_ name: String) -> [Float] {
        let f = field(name)
        let n = count(f)
        guard n > 0, let p = address(f, 0) else { return [] }
        if f.type == PROTOBUF_C_TYPE_FLOAT {
            return Array(UnsafeBufferPointer(start: p.assumingMemoryBound(to: Float.self), count: n))
        }
        if f.type == PROTOBUF_C_TYPE_DOUBLE {
            return UnsafeBufferPointer(start: p.assumingMemoryBound(to: Double.self), count: n).map { Float($0) }
        }
        return (0..<n).map { i in if case .double(let d) = scalar(f, i) { return Float(d) } else { return 0 } }
    }

    func string(_ name: String) -> String? {
        let f = field(name)
        guard count(f) > 0 || f.pointee.default_value != nil, case .string(let b) = scalar(f) else { return nil }
        return String(decoding: b, as: UTF8.self)
    }

    func strings(_ name: String) -> [String] {
        let f = field(name)
        return (0..<count(f)).map { i in
            if case .string(let b) = scalar(f, i) { return String(decoding: b, as: UTF8.self) }
            return ""
        }
    }

    /// The name of an enum field's value (its default when absent).
    func enumName(_ name: String) -> String? {
        let f = field(name)
        guard case .enumValue(let v) = scalar(f) else { return nil }
        return f.enumDescriptor.name(of: v) ?? String(v)
    }

    func enumNames(_ name: String) -> [String] {
        let f = field(name)
        return (0..<count(f)).map { i in
            guard case .enumValue(let v) = scalar(f, i) else { return "" }
            return f.enumDescriptor.name(of: v) ?? String(v)
        }
    }

    func message(_ name: String) -> ProtoRef? {
        let f = field(name)
        return count(f) > 0 ? submessage(f) : nil
    }

    func messages(_ name: String) -> [ProtoRef] {
        let f = field(name)
        return (0..<count(f)).compactMap { submessage(f, $0) }
    }

    private static func integer(_ s: ProtoScalar) -> Int {
        switch s {
        case .int(let v): return Int(v)
        case .uint(let v): return Int(clamping: v)
        case .bool(let b): return b ? 1 : 0
        case .enumValue(let v): return Int(v)
        case .double(let d): return d.isFinite && abs(d) < 9e18 ? Int(d) : 0
        case .string: return 0
        }
    }

    // MARK: Writing

    /// Room for one more element: a new array slot for repeated fields (count bumped), the field
    /// itself with its presence flag set for singular ones.
    private func slotForStore(_ f: FieldDescriptor) -> UnsafeMutableRawPointer {
        let slot = base + Int(f.pointee.offset)
        let size = f.type.storageSize
        if f.isRepeated {
            let q = Int(f.pointee.quantifier_offset)
            let n = base.load(fromByteOffset: q, as: Int.self)
            let old = slot.load(as: UnsafeMutableRawPointer?.self)
            let grown = realloc(old, (n + 1) * size)!
            memset(grown + n * size, 0, size)
            slot.storeBytes(of: grown, as: UnsafeMutableRawPointer?.self)
            base.storeBytes(of: n + 1, toByteOffset: q, as: Int.self)
            return grown + n * size
        }
        switch f.type {
        case PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_MESSAGE:
            let old = slot.load(as: UnsafeMutableRawPointer?.self)
            if let old, UnsafeRawPointer(old) != f.pointee.default_value {
                if f.type == PROTOBUF_C_TYPE_MESSAGE {
                    protobuf_c_message_free_unpacked(old.assumingMemoryBound(to: ProtobufCMessage.self), nil)
                } else {
                    Foundation.free(old)
                }
            }
            slot.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
        case PROTOBUF_C_TYPE_BYTES:
            let old = slot.load(as: ProtobufCBinaryData.self)
            if let data = old.data, UnsafeRawPointer(data) != f.pointee.default_value { Foundation.free(data) }
            slot.storeBytes(of: ProtobufCBinaryData(len: 0, data: nil), as: ProtobufCBinaryData.self)
        default:
            if f.pointee.label == PROTOBUF_C_LABEL_OPTIONAL {
                base.storeBytes(of: 1, toByteOffset: Int(f.pointee.quantifier_offset), as: protobuf_c_boolean.self)
            }
        }
        return slot
    }

    /// Converts and stores one value, checking its type and range against the field; appends to a
    /// repeated field, replaces a singular one.
    func store(_ f: FieldDescriptor, _ value: ProtoScalar) throws(ProtoStoreError) {
        let t = f.type
        func signed(_ lo: Int64, _ hi: Int64) throws(ProtoStoreError) -> Int64 {
            switch value {
            case .int(let v): guard v >= lo && v <= hi else { throw .outOfRange }; return v
            case .uint(let v): guard v <= UInt64(hi) else { throw .outOfRange }; return Int64(v)
            default: throw .typeMismatch(expected: "integer")
            }
        }
        func unsigned(_ hi: UInt64) throws(ProtoStoreError) -> UInt64 {
            switch value {
            case .int(let v): guard v >= 0 && UInt64(v) <= hi else { throw .outOfRange }; return UInt64(v)
            case .uint(let v): guard v <= hi else { throw .outOfRange }; return v
            default: throw .typeMismatch(expected: "non-negative integer")
            }
        }
        func real() throws(ProtoStoreError) -> Double {
            switch value {
            case .double(let d): return d
            case .int(let v): return Double(v)
            case .uint(let v): return Double(v)
            default: throw .typeMismatch(expected: "number")
            }
        }
        switch t {
        case PROTOBUF_C_TYPE_INT32, PROTOBUF_C_TYPE_SINT32, PROTOBUF_C_TYPE_SFIXED32:
            let v = try signed(Int64(Int32.min), Int64(Int32.max))
            slotForStore(f).storeBytes(of: Int32(v), as: Int32.self)
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64:
            let v = try signed(Int64.min, Int64.max)
            slotForStore(f).storeBytes(of: v, as: Int64.self)
        case PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_TYPE_FIXED32:
            let v = try unsigned(UInt64(UInt32.max))
            slotForStore(f).storeBytes(of: UInt32(v), as: UInt32.self)
        case PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_TYPE_FIXED64:
            let v = try unsigned(UInt64.max)
            slotForStore(f).storeBytes(of: v, as: UInt64.self)
        case PROTOBUF_C_TYPE_FLOAT:
            let v = try real()
            slotForStore(f).storeBytes(of: Float(v), as: Float.self)
        case PROTOBUF_C_TYPE_DOUBLE:
            let v = try real()
            slotForStore(f).storeBytes(of: v, as: Double.self)
        case PROTOBUF_C_TYPE_BOOL:
            let b: Bool
            switch value {
            case .bool(let v): b = v
            case .int(let v) where v == 0 || v == 1: b = v == 1
            case .uint(let v) where v <= 1: b = v == 1
            default: throw .typeMismatch(expected: "boolean")
            }
            slotForStore(f).storeBytes(of: b ? 1 : 0, as: protobuf_c_boolean.self)
        case PROTOBUF_C_TYPE_ENUM:
            guard case .enumValue(let v) = value, f.enumDescriptor.name(of: v) != nil else {
                throw .typeMismatch(expected: "enum value")
            }
            slotForStore(f).storeBytes(of: v, as: Int32.self)
        case PROTOBUF_C_TYPE_STRING:
            guard case .string(let bytes) = value else { throw .typeMismatch(expected: "string") }
            let c = malloc(bytes.count + 1)!.assumingMemoryBound(to: UInt8.self)
            bytes.withUnsafeBufferPointer { c.update(from: $0.baseAddress!, count: bytes.count) }
            c[bytes.count] = 0
            slotForStore(f).storeBytes(of: UnsafeMutableRawPointer(c), as: UnsafeMutableRawPointer?.self)
        case PROTOBUF_C_TYPE_BYTES:
            guard case .string(let bytes) = value else { throw .typeMismatch(expected: "string") }
            let c = malloc(max(bytes.count, 1))!.assumingMemoryBound(to: UInt8.self)
            bytes.withUnsafeBufferPointer { if let b = $0.baseAddress { c.update(from: b, count: bytes.count) } }
            slotForStore(f).storeBytes(of: ProtobufCBinaryData(len: bytes.count, data: c), as: ProtobufCBinaryData.self)
        default:
            throw .typeMismatch(expected: "message")
        }
    }

    /// Appends (repeated) or sets (singular) a fresh default-initialised submessage and returns it.
    func addMessage(_ f: FieldDescriptor) -> ProtoRef {
        let sub = f.messageDescriptor.newMessage()
        slotForStore(f).storeBytes(of: UnsafeMutableRawPointer(sub.raw), as: UnsafeMutableRawPointer?.self)
        return sub
    }

    // Typed conveniences for code that builds messages (the writer); a wrong name or value is a
    // programming error there, so they trap rather than throw.
    func set(_ name: String, _ value: ProtoScalar) {
        do { try store(field(name), value) } catch { preconditionFailure("\(name): \(error)") }
    }
    func set(_ name: String, _ value: Int) { set(name, .int(Int64(value))) }
    func set(_ name: String, _ value: Float) { set(name, .double(Double(value))) }
    func set(_ name: String, _ value: Bool) { set(name, .bool(value)) }
    func set(_ name: String, _ value: String) { set(name, .string(Array(value.utf8))) }
    func set(_ name: String, enumName: String) {
        let f = field(name)
        guard let v = f.enumDescriptor.value(named: enumName) else { preconditionFailure("\(name): no value \(enumName)") }
        set(name, .enumValue(v))
    }
    func add(_ name: String) -> ProtoRef { addMessage(field(name)) }

    /// Points a repeated float field at caller-owned memory without copying; `unborrow` must run
    /// before the message is freed.
    func borrow(_ name: String, _ data: UnsafeBufferPointer<Float>) {
        let f = field(name)
        base.storeBytes(of: data.count, toByteOffset: Int(f.pointee.quantifier_offset), as: Int.self)
        (base + Int(f.pointee.offset)).storeBytes(of: UnsafeMutableRawPointer(mutating: data.baseAddress), as: UnsafeMutableRawPointer?.self)
    }
    func unborrow(_ name: String) {
        let f = field(name)
        base.storeBytes(of: 0, toByteOffset: Int(f.pointee.quantifier_offset), as: Int.self)
        (base + Int(f.pointee.offset)).storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
    }
}
