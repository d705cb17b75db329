// The protobuf text-format reader: fills any protobuf-c message from a prototxt by walking the
// message's descriptor, so every field of caffe.proto is understood without per-field code.
import CCaffeProto
import CProtobufC

/// Where the text reader found things, keyed by the address of the C message they belong to.
struct TextLocations {
    /// The field-name token that opened each nested message (`layer` of `layer {`).
    var messageStart: [UnsafeMutableRawPointer: CaffeSourceLocation] = [:]
    /// The field-name token of each field set inside a message (the last one, for repeated fields).
    var fields: [UnsafeMutableRawPointer: [String: CaffeSourceLocation]] = [:]
    /// Fields the message types do not have, skipped: `file:line:col: warning: ...`, in file order.
    var warnings: [String] = []
}

struct TextParser {
    private var lexer: TextLexer
    private var token: TextToken
    private let file: String
    private(set) var locations = TextLocations()
    private static let maxDepth = 64

    /// Parses `source` into a new message of type `descriptor`; the caller frees the result.
    static func parse(file: String, source: [UInt8], descriptor: MessageDescriptor) throws(CaffeError) -> (ProtoRef, TextLocations) {
        let message = descriptor.newMessage()
        do {
            var parser = try TextParser(file: file, source: source)
            try parser.parseFields(into: message, closing: nil, opener: nil, depth: 0)
            return (message, parser.locations)
        } catch {
            message.free()
            throw error
        }
    }

    private init(file: String, source: [UInt8]) throws(CaffeError) {
        self.file = file
        lexer = TextLexer(file: file, source: source)
        token = try lexer.next()
    }

    private mutating func advance() throws(CaffeError) { token = try lexer.next() }

    private func error(_ message: String, at location: CaffeSourceLocation? = nil) -> CaffeError {
        CaffeError(file: file, location: location ?? token.location, message)
    }

    private func isSymbol(_ c: Character) -> Bool {
        if case .symbol(let s) = token.kind { return s == c.asciiValue! }
        return false
    }

    /// How the current token reads in a message: `"}"`, `string "abc"`, `end of file`.
    private var found: String {
        switch token.kind {
        case .endOfFile: return "end of file"
        case .string(let b): return "string \"\(String(decoding: b, as: UTF8.self))\""
        case .number: return "number \(token.text)"
        case .identifier: return "identifier \(token.text)"
        case .symbol: return "\"\(token.text)\""
        }
    }

    private mutating func parseFields(into message: ProtoRef, closing: UInt8?, opener: TextToken?, depth: Int) throws(CaffeError) {
        guard depth < Self.maxDepth else { throw error("messages nested more than \(Self.maxDepth) deep") }
        var seen = Set<UInt32>()
        let key = UnsafeMutableRawPointer(message.raw)
        while true {
            if case .symbol(let s) = token.kind, s == closing {
                try advance()
                return
            }
            if case .endOfFile = token.kind {
                guard let closing, let opener else { return }
                let close = String(decoding: [closing], as: UTF8.self)
                throw error("unexpected end of file: expected \"\(close)\" to close \"\(opener.text)\" opened at \(opener.location)")
            }
            guard case .identifier = token.kind else {
                if isSymbol("[") { throw error("extension and Any fields are not supported") }
                throw error("expected a field name, found \(found)")
            }
            let nameToken = token
            guard let f = message.descriptor.field(named: nameToken.text) else {
                // Lenient, as protobuf's own text reader can be: a field this caffe.proto lacks
                // (another fork's, or a newer one) is reported and its value skipped.
                locations.warnings.append("\(file):\(nameToken.location): warning: message type \"\(message.descriptor.fullName)\" has no field named \"\(nameToken.text)\"; ignored")
                try advance()
                try skipUnknownValue(nameToken, depth: depth)
                if isSymbol(",") || isSymbol(";") { try advance() }
                continue
            }
            if !f.isRepeated && !seen.insert(f.pointee.id).inserted {
                throw error("non-repeated field \"\(nameToken.text)\" is specified multiple times")
            }
            locations.fields[key, default: [:]][nameToken.text] = nameToken.location
            try advance()
            if f.type == PROTOBUF_C_TYPE_MESSAGE {
                if isSymbol(":") { try advance() }
                if isSymbol("[") {
                    guard f.isRepeated else { throw error("field \"\(nameToken.text)\" is not repeated and cannot take a list") }
                    try parseList(nameToken) { (p: inout TextParser) throws(CaffeError) in
                        try p.parseMessageValue(f, of: message, nameToken: nameToken, depth: depth)
                    }
                } else {
                    try parseMessageValue(f, of: message, nameToken: nameToken, depth: depth)
                }
            } else {
                guard isSymbol(":") else {
                    throw error("expected \":\" after field \"\(nameToken.text)\", found \(found)")
                }
                try advance()
                if isSymbol("[") {
                    guard f.isRepeated else { throw error("field \"\(nameToken.text)\" is not repeated and cannot take a list") }
                    try parseList(nameToken) { (p: inout TextParser) throws(CaffeError) in
                        try p.parseScalarValue(f, of: message)
                    }
                } else {
                    try parseScalarValue(f, of: message)
                }
            }
            if isSymbol(",") || isSymbol(";") { try advance() }
        }
    }

    /// Skips the value of an unknown field, the current token following its name: `: scalar`, a
    /// list or a message (`{...}` / `<...>`), the last two with or without `:`, nested to any
    /// depth the reader allows.
    private mutating func skipUnknownValue(_ nameToken: TextToken, depth: Int) throws(CaffeError) {
        let colon = isSymbol(":")
        if colon { try advance() }
        if isSymbol("{") || isSymbol("<") {
            try skipMessage(nameToken, depth: depth + 1)
        } else if isSymbol("[") {
            try parseList(nameToken) { (p: inout TextParser) throws(CaffeError) in
                if p.isSymbol("{") || p.isSymbol("<") { try p.skipMessage(nameToken, depth: depth + 1) } else { try p.skipScalar(nameToken) }
            }
        } else if colon {
            try skipScalar(nameToken)
        } else {
            throw error("expected \":\" or \"{\" after field \"\(nameToken.text)\", found \(found)")
        }
    }

    /// Skips `{ ... }` or `< ... >`, the current token being the opening symbol.
    private mutating func skipMessage(_ nameToken: TextToken, depth: Int) throws(CaffeError) {
        guard depth < Self.maxDepth else { throw error("messages nested more than \(Self.maxDepth) deep") }
        let open = token
        let closing = isSymbol("{") ? UInt8(ascii: "}") : UInt8(ascii: ">")
        try advance()
        while true {
            if case .symbol(let s) = token.kind, s == closing { try advance(); return }
            if case .endOfFile = token.kind {
                throw error("unexpected end of file: expected \"\(String(decoding: [closing], as: UTF8.self))\" to close \"\(nameToken.text)\" opened at \(open.location)")
            }
            guard case .identifier = token.kind else { throw error("expected a field name, found \(found)") }
            let inner = token
            try advance()
            try skipUnknownValue(inner, depth: depth)
            if isSymbol(",") || isSymbol(";") { try advance() }
        }
    }

    /// Skips one scalar: strings (adjacent ones concatenate), a number or identifier with an
    /// optional minus sign.
    private mutating func skipScalar(_ nameToken: TextToken) throws(CaffeError) {
        switch token.kind {
        case .string:
            while case .string = token.kind { try advance() }
        case .symbol(let s) where s == UInt8(ascii: "-"):
            try advance()
            guard case .number = token.kind else {
                if case .identifier = token.kind { try advance(); return }
                throw error("expected a value for field \"\(nameToken.text)\", found \(found)")
            }
            try advance()
        case .number, .identifier:
            try advance()
        default:
            throw error("expected a value for field \"\(nameToken.text)\", found \(found)")
        }
    }

    /// `[ item, item, ... ]`, the current token being `[`.
    private mutating func parseList(_ nameToken: TextToken, item: (inout TextParser) throws(CaffeError) -> Void) throws(CaffeError) {
        let open = token
        try advance()
        if isSymbol("]") { try advance(); return }
        while true {
            try item(&self)
            if isSymbol("]") { try advance(); return }
            if case .endOfFile = token.kind {
                throw error("unexpected end of file: expected \"]\" to close the list of \"\(nameToken.text)\" opened at \(open.location)")
            }
            guard isSymbol(",") else { throw error("expected \",\" or \"]\" in the list of \"\(nameToken.text)\", found \(found)") }
            try advance()
        }
    }

    private mutating func parseMessageValue(_ f: FieldDescriptor, of message: ProtoRef, nameToken: TextToken, depth: Int) throws(CaffeError) {
        let closing: UInt8
        if isSymbol("{") { closing = UInt8(ascii: "}") } else if isSymbol("<") { closing = UInt8(ascii: ">") } else {
            throw error("expected \"{\" after message field \"\(nameToken.text)\", found \(found)")
        }
        let opener = TextToken(kind: nameToken.kind, text: nameToken.text, location: token.location)
        try advance()
        let sub = message.addMessage(f)
        locations.messageStart[UnsafeMutableRawPointer(sub.raw)] = nameToken.location
        try parseFields(into: sub, closing: closing, opener: opener, depth: depth + 1)
    }

    private mutating func parseScalarValue(_ f: FieldDescriptor, of message: ProtoRef) throws(CaffeError) {
        let valueToken = token
        let name = f.name
        let typeName = f.type == PROTOBUF_C_TYPE_ENUM ? "enum \(String(cString: f.enumDescriptor.pointee.name))" : f.type.protoName
        let file = self.file
        let mismatch = { (found: String) in
            CaffeError(file: file, location: valueToken.location, "expected \(typeName) value for field \"\(name)\", found \(found)")
        }
        var value: ProtoScalar
        switch token.kind {
        case .string(var bytes):
            try advance()
            while case .string(let more) = token.kind {
                bytes += more
                try advance()
            }
            guard f.type == PROTOBUF_C_TYPE_STRING || f.type == PROTOBUF_C_TYPE_BYTES else {
                throw mismatch("string \"\(String(decoding: bytes, as: UTF8.self))\"")
            }
            value = .string(bytes)
        case .symbol(let s) where s == UInt8(ascii: "-"):
            try advance()
            value = try number(for: f, negative: true, mismatch: mismatch)
        case .number, .identifier:
            value = try number(for: f, negative: false, mismatch: mismatch)
        default:
            throw mismatch(found)
        }
        if f.type == PROTOBUF_C_TYPE_ENUM {
            let allowed = f.enumDescriptor.valueNames.joined(separator: ", ")
            switch value {
            case .int(let v) where Int32(exactly: v).flatMap(f.enumDescriptor.name(of:)) != nil: value = .enumValue(Int32(v))
            case .uint(let v) where Int32(exactly: v).flatMap(f.enumDescriptor.name(of:)) != nil: value = .enumValue(Int32(v))
            case .enumValue: break
            default:
                throw CaffeError(file: file, location: valueToken.location,
                                 "unknown value \(valueToken.text) for enum field \"\(name)\"; allowed values: \(allowed)")
            }
        }
        do {
            try message.store(f, value)
        } catch .outOfRange {
            throw CaffeError(file: file, location: valueToken.location, "value \(Self.describe(value)) is out of range for field \"\(name)\" (\(typeName))")
        } catch {
            throw mismatch(Self.describe(value))
        }
    }

    private static func describe(_ v: ProtoScalar) -> String {
        switch v {
        case .int(let i): return String(i)
        case .uint(let u): return String(u)
        case .double(let d): return String(d)
        case .bool(let b): return String(b)
        case .enumValue(let e): return String(e)
        case .string(let s): return "string \"\(String(decoding: s, as: UTF8.self))\""
        }
    }

    /// A number or keyword (`true`, `inf`, an enum name) after an optional minus sign.
    private mutating func number(for f: FieldDescriptor, negative: Bool, mismatch: @escaping (String) -> CaffeError) throws(CaffeError) -> ProtoScalar {
        let t = token
        let sign = negative ? "-" : ""
        let isReal = f.type == PROTOBUF_C_TYPE_FLOAT || f.type == PROTOBUF_C_TYPE_DOUBLE
        switch t.kind {
        case .identifier:
            try advance()
            let lower = t.text.lowercased()
            if isReal && (lower == "inf" || lower == "infinity") { return .double(negative ? -.infinity : .infinity) }
            if isReal && lower == "nan" { return .double(.nan) }
            if negative { throw mismatch("\"-\(t.text)\"") }
            if f.type == PROTOBUF_C_TYPE_BOOL {
                if ["true", "True", "t"].contains(t.text) { return .bool(true) }
                if ["false", "False", "f"].contains(t.text) { return .bool(false) }
            }
            if f.type == PROTOBUF_C_TYPE_ENUM {
                if let v = f.enumDescriptor.value(named: t.text) { return .enumValue(v) }
                let allowed = f.enumDescriptor.valueNames.joined(separator: ", ")
                throw CaffeError(file: file, location: t.location, "unknown value \"\(t.text)\" for enum field \"\(f.name)\"; allowed values: \(allowed)")
            }
            throw mismatch("identifier \(t.text)")
        case .number:
            try advance()
            if let magnitude = Self.integerLiteral(t.text) {
                if !negative { return .uint(magnitude) }
                if magnitude <= UInt64(Int64.max) { return .int(-Int64(magnitude)) }
                if magnitude == UInt64(Int64.max) + 1 { return .int(Int64.min) }
                if isReal { return .double(-Double(magnitude)) }
                throw CaffeError(file: file, location: t.location, "value -\(t.text) is out of range for field \"\(f.name)\" (\(f.type.protoName))")
            }
            var text = Substring(t.text)
            if text.last == "f" || text.last == "F", !text.lowercased().hasPrefix("0x") { text = text.dropLast() }
            guard let d = Double(String(text)), text.first != "+" else {
                if Self.looksLikeInteger(t.text) {
                    if isReal, let d = Double(t.text) { return .double(negative ? -d : d) }
                    throw CaffeError(file: file, location: t.location, "value \(sign)\(t.text) is out of range for field \"\(f.name)\" (\(f.type.protoName))")
                }
                throw CaffeError(file: file, location: t.location, "invalid number \"\(sign)\(t.text)\"")
            }
            guard isReal else { throw mismatch("number \(sign)\(t.text)") }
            return .double(negative ? -d : d)
        default:
            throw mismatch(negative ? "\"-\" followed by \(found)" : found)
        }
    }

    private static func looksLikeInteger(_ s: String) -> Bool { !s.isEmpty && s.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }

    /// Decimal, `0x` hexadecimal or `0`-prefixed octal integers; nil for anything else.
    private static func integerLiteral(_ s: String) -> UInt64? {
        let lower = s.lowercased()
        if lower.hasPrefix("0x") { return lower.count > 2 ? UInt64(lower.dropFirst(2), radix: 16) : nil }
        guard looksLikeInteger(s) else { return nil }
        if s.count > 1 && s.hasPrefix("0") { return UInt64(s.dropFirst(), radix: 8) }
        return UInt64(s)
    }
}
