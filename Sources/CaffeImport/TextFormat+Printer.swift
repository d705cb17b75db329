// The protobuf text-format printer, driven by descriptors like the reader, so that whatever the
// writer builds prints without per-field code.
import CCaffeProto
import CProtobufC

enum TextPrinter {
    /// Prints the fields of `message`: scalars first, then nested messages, each in field-number
    /// order; fields named in `skip` are left out at every depth.
    static func print(_ message: ProtoRef, indent: Int = 0, skip: Set<String> = [], into out: inout String) {
        let pad = String(repeating: "  ", count: indent)
        let fields = message.descriptor.fields
        let ordered = fields.indices.filter { fields[$0].type != PROTOBUF_C_TYPE_MESSAGE }
            + fields.indices.filter { fields[$0].type == PROTOBUF_C_TYPE_MESSAGE }
        for i in ordered {
            let f = message.descriptor.pointee.fields + i
            guard !skip.contains(f.name) else { continue }
            for k in 0..<message.count(f) {
                if f.type == PROTOBUF_C_TYPE_MESSAGE {
                    guard let sub = message.submessage(f, k) else { continue }
                    out += "\(pad)\(f.name) {\n"
                    print(sub, indent: indent + 1, skip: skip, into: &out)
                    out += "\(pad)}\n"
                } else {
                    out += "\(pad)\(f.name): \(format(message.scalar(f, k), f))\n"
                }
            }
        }
    }

    static func format(_ value: ProtoScalar, _ f: FieldDescriptor) -> String {
        switch value {
        case .int(let v): return String(v)
        case .uint(let v): return String(v)
        case .double(let d): return f.type == PROTOBUF_C_TYPE_FLOAT ? Float(d).description : d.description
        case .bool(let b): return b ? "true" : "false"
        case .enumValue(let v): return f.enumDescriptor.name(of: v) ?? String(v)
        case .string(let bytes): return quote(bytes)
        }
    }

    static func quote(_ bytes: [UInt8]) -> String {
        var s = "\""
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""): s += "\\\""
            case UInt8(ascii: "\\"): s += "\\\\"
            case 10: s += "\\n"
            case 32..<127: s.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let octal = String(b, radix: 8)
                s += "\\" + String(repeating: "0", count: 3 - octal.count) + octal
            }
        }
        return s + "\""
    }
}
