/// Tokens of the graph text format.
enum TokenKind: Hashable {
    case word(String)        // keywords, op names, dtypes, bare attribute words
    case value(String)       // %name
    case global(String)      // @name
    case int(Int)
    case float(Double)
    case string(String)
    case comment(String)     // text after '#' or '//'
    case punct(Character)    // ( ) { } [ ] , : =
    case newline
    case eof
}

struct Token {
    var kind: TokenKind
    var loc: SourceLoc
}

/// Splits UTF-8 bytes into tokens; every token carries its line and column.
struct Lexer {
    let file: String
    let bytes: [UInt8]
    var pos = 0
    var line = 1
    var lineStart = 0

    init(file: String, bytes: [UInt8]) {
        self.file = file
        self.bytes = bytes
    }

    private var loc: SourceLoc { SourceLoc(file: file, line: line, column: pos - lineStart + 1) }

    private func peek(_ offset: Int = 0) -> UInt8? {
        pos + offset < bytes.count ? bytes[pos + offset] : nil
    }

    static func isNameByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") || c == UInt8(ascii: "/")
    }

    static func isWordByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == UInt8(ascii: "_")
    }

    mutating func tokenize() throws -> [Token] {
        var out: [Token] = []
        while true {
            let t = try next()
            out.append(t)
            if t.kind == .eof { return out }
        }
    }

    mutating func next() throws -> Token {
        while let c = peek(), c == 0x20 || c == 0x09 || c == 0x0D { pos += 1 }
        let start = loc
        guard let c = peek() else { return Token(kind: .eof, loc: start) }
        switch c {
        case 0x0A:
            pos += 1
            line += 1
            lineStart = pos
            return Token(kind: .newline, loc: start)
        case UInt8(ascii: "#"):
            pos += 1
            return Token(kind: .comment(readToEndOfLine()), loc: start)
        case UInt8(ascii: "/") where peek(1) == UInt8(ascii: "/"):
            pos += 2
            return Token(kind: .comment(readToEndOfLine()), loc: start)
        case UInt8(ascii: "%"), UInt8(ascii: "@"):
            pos += 1
            let name: String
            if peek() == UInt8(ascii: "\"") {
                name = try readString()
            } else {
                let s = pos
                while let d = peek(), Lexer.isNameByte(d) { pos += 1 }
                name = String(decoding: bytes[s..<pos], as: UTF8.self)
            }
            if name.isEmpty {
                throw Diagnostic.error("expected a name after '\(Character(UnicodeScalar(c)))'", at: start)
            }
            return Token(kind: c == UInt8(ascii: "%") ? .value(name) : .global(name), loc: start)
        case UInt8(ascii: "\""):
            return Token(kind: .string(try readString()), loc: start)
        case UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return Token(kind: try readNumber(start), loc: start)
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "["),
             UInt8(ascii: "]"), UInt8(ascii: ","), UInt8(ascii: ":"), UInt8(ascii: "="):
            pos += 1
            return Token(kind: .punct(Character(UnicodeScalar(c))), loc: start)
        default:
            if Lexer.isWordByte(c) {
                let s = pos
                while let d = peek(), Lexer.isWordByte(d) { pos += 1 }
                let w = String(decoding: bytes[s..<pos], as: UTF8.self)
                if w == "inf" || w == "nan" { return Token(kind: .float(w == "inf" ? .infinity : .nan), loc: start) }
                return Token(kind: .word(w), loc: start)
            }
            let shown = c >= 0x20 && c < 0x7F ? "'\(Character(UnicodeScalar(c)))'" : "byte 0x" + String(c, radix: 16, uppercase: true)
            throw Diagnostic.error("unexpected character \(shown)", at: start)
        }
    }

    private mutating func readToEndOfLine() -> String {
        let s = pos
        while let c = peek(), c != 0x0A { pos += 1 }
        var text = String(decoding: bytes[s..<pos], as: UTF8.self)
        while text.hasSuffix("\r") { text.removeLast() }
        if text.hasPrefix(" ") { text.removeFirst() }
        return text
    }

    private mutating func readString() throws -> String {
        let start = loc
        pos += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek(), c != 0x0A else {
                throw Diagnostic.error("unterminated string", at: start)
            }
            pos += 1
            if c == UInt8(ascii: "\"") { break }
            if c == UInt8(ascii: "\\") {
                guard let e = peek() else { throw Diagnostic.error("unterminated string", at: start) }
                pos += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(e)
                case UInt8(ascii: "u") where peek() == UInt8(ascii: "{"):
                    // \u{HEX}: how the printer writes other control characters.
                    let s = pos + 1
                    var end = s
                    while end < bytes.count, end - s < 8, bytes[end] != UInt8(ascii: "}") { end += 1 }
                    guard end < bytes.count, bytes[end] == UInt8(ascii: "}"),
                          let v = UInt32(String(decoding: bytes[s..<end], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(v) else {
                        throw Diagnostic.error("malformed escape '\\u{...}' in string", at: SourceLoc(file: file, line: line, column: pos - lineStart - 1))
                    }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    pos = end + 1
                default:
                    throw Diagnostic.error("unknown escape '\\\(Character(UnicodeScalar(e)))' in string", at: SourceLoc(file: file, line: line, column: pos - lineStart - 1))
                }
            } else {
                out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func readNumber(_ start: SourceLoc) throws -> TokenKind {
        let s = pos
        if peek() == UInt8(ascii: "-") || peek() == UInt8(ascii: "+") { pos += 1 }
        if peek() == UInt8(ascii: "i") || peek() == UInt8(ascii: "n") {
            let w0 = pos
            while let d = peek(), Lexer.isWordByte(d) { pos += 1 }
            let w = String(decoding: bytes[w0..<pos], as: UTF8.self)
            if w == "inf" { return .float(bytes[s] == UInt8(ascii: "-") ? -.infinity : .infinity) }
            throw Diagnostic.error("malformed number", at: start)
        }
        var isFloat = false
        var digits = 0
        while let d = peek(), d >= 0x30 && d <= 0x39 { pos += 1; digits += 1 }
        if peek() == UInt8(ascii: "."), let d = peek(1), d >= 0x30 && d <= 0x39 {
            isFloat = true
            pos += 1
            while let d = peek(), d >= 0x30 && d <= 0x39 { pos += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            isFloat = true
            pos += 1
            if peek() == UInt8(ascii: "-") || peek() == UInt8(ascii: "+") { pos += 1 }
            var expDigits = 0
            while let d = peek(), d >= 0x30 && d <= 0x39 { pos += 1; expDigits += 1 }
            if expDigits == 0 { throw Diagnostic.error("malformed number: exponent has no digits", at: start) }
        }
        if digits == 0 { throw Diagnostic.error("malformed number", at: start) }
        if let d = peek(), Lexer.isWordByte(d) {
            throw Diagnostic.error("malformed number: unexpected '\(Character(UnicodeScalar(d)))'", at: start)
        }
        let text = String(decoding: bytes[s..<pos], as: UTF8.self)
        if isFloat {
            guard let v = Double(text) else { throw Diagnostic.error("malformed number '\(text)'", at: start) }
            return .float(v)
        }
        guard let v = Int(text) else { throw Diagnostic.error("integer '\(text)' is out of range", at: start) }
        return .int(v)
    }
}
