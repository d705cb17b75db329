// Tokens of the protobuf text format (prototxt), each with its line and column.

struct TextToken: Equatable {
    enum Kind: Equatable {
        case identifier
        /// A number exactly as written, sign excluded (`12`, `0x1F`, `1e-5`, `.5f`).
        case number
        /// A string literal, escapes decoded; adjacent literals are kept apart and joined by the parser.
        case string([UInt8])
        /// One of `{ } < > [ ] : , ; -` or any other single character.
        case symbol(UInt8)
        case endOfFile
    }
    var kind: Kind
    var text: String
    var location: CaffeSourceLocation
}

/// Splits a prototxt into tokens. Never traps: malformed input becomes a `CaffeError`.
struct TextLexer {
    let file: String
    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var lineStart = 0

    init(file: String, source: [UInt8]) {
        self.file = file
        self.bytes = source
    }

    private var location: CaffeSourceLocation { CaffeSourceLocation(line: line, column: index - lineStart + 1) }

    private func peek(_ ahead: Int = 0) -> UInt8? {
        index + ahead < bytes.count ? bytes[index + ahead] : nil
    }

    private mutating func advance() {
        if bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        index += 1
    }

    private static func isIdentifierStart(_ c: UInt8) -> Bool {
        (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == UInt8(ascii: "_")
    }
    private static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    private static func isIdentifierPart(_ c: UInt8) -> Bool { isIdentifierStart(c) || isDigit(c) }

    mutating func next() throws(CaffeError) -> TextToken {
        // Whitespace and `#` comments.
        while let c = peek() {
            if c == UInt8(ascii: "#") {
                while let d = peek(), d != UInt8(ascii: "\n") { _ = d; advance() }
            } else if c == 32 || c == 9 || c == 10 || c == 13 || c == 11 || c == 12 {
                advance()
            } else {
                break
            }
        }
        let start = location
        let startIndex = index
        guard let c = peek() else { return TextToken(kind: .endOfFile, text: "", location: start) }
        if Self.isIdentifierStart(c) {
            while let d = peek(), Self.isIdentifierPart(d) { advance() }
            return TextToken(kind: .identifier, text: text(from: startIndex), location: start)
        }
        if Self.isDigit(c) || (c == UInt8(ascii: ".") && peek(1).map(Self.isDigit) == true) {
            var previous: UInt8 = 0
            while let d = peek() {
                let exponentSign = (d == UInt8(ascii: "-") || d == UInt8(ascii: "+"))
                    && (previous == UInt8(ascii: "e") || previous == UInt8(ascii: "E"))
                    && !text(from: startIndex).lowercased().hasPrefix("0x")
                guard Self.isIdentifierPart(d) || d == UInt8(ascii: ".") || exponentSign else { break }
                previous = d
                advance()
            }
            return TextToken(kind: .number, text: text(from: startIndex), location: start)
        }
        if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
            return TextToken(kind: .string(try stringLiteral(quote: c, start: start)), text: text(from: startIndex), location: start)
        }
        advance()
        return TextToken(kind: .symbol(c), text: String(decoding: [c], as: UTF8.self), location: start)
    }

    private func text(from start: Int) -> String { String(decoding: bytes[start..<index], as: UTF8.self) }

    private mutating func stringLiteral(quote: UInt8, start: CaffeSourceLocation) throws(CaffeError) -> [UInt8] {
        advance()
        var out: [UInt8] = []
        while true {
            guard let c = peek(), c != UInt8(ascii: "\n") else {
                throw CaffeError(file: file, location: start, "unterminated string literal")
            }
            advance()
            if c == quote { return out }
            guard c == UInt8(ascii: "\\") else { out.append(c); continue }
            let escapeLocation = CaffeSourceLocation(line: line, column: index - lineStart)
            guard let e = peek(), e != UInt8(ascii: "\n") else {
                throw CaffeError(file: file, location: start, "unterminated string literal")
            }
            advance()
            switch e {
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "a"): out.append(7)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "v"): out.append(11)
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "?"): out.append(e)
            case UInt8(ascii: "x"), UInt8(ascii: "X"):
                var value = 0
                var digits = 0
                while digits < 2, let h = peek(), let v = Self.hexValue(h) {
                    value = value * 16 + v
                    digits += 1
                    advance()
                }
                guard digits > 0 else {
                    throw CaffeError(file: file, location: escapeLocation, "\\x escape needs a hexadecimal digit")
                }
                out.append(UInt8(value))
            case 48...55:
                var value = Int(e - 48)
                var digits = 1
                while digits < 3, let o = peek(), o >= 48, o <= 55 {
                    value = value * 8 + Int(o - 48)
                    digits += 1
                    advance()
                }
                guard value <= 255 else {
                    throw CaffeError(file: file, location: escapeLocation, "octal escape \\\(String(value, radix: 8)) is larger than a byte")
                }
                out.append(UInt8(value))
            default:
                throw CaffeError(file: file, location: escapeLocation, "invalid escape sequence \"\\\(String(decoding: [e], as: UTF8.self))\"")
            }
        }
    }

    private static func hexValue(_ c: UInt8) -> Int? {
        switch c {
        case 48...57: return Int(c - 48)
        case 97...102: return Int(c - 87)
        case 65...70: return Int(c - 55)
        default: return nil
        }
    }
}
