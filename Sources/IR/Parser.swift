import Foundation

/// The format version this build reads and writes (`fn2e 1` on the first line of every file).
public let irFormatVersion = 1

/// The largest dimension and the most elements (per batch item) a type may have.
public let maxDimension = (1 << 31) - 1
public let maxElements = 1 << 40

/// Recursive-descent parser for the graph text format (grammar: docs/IR.md).
public struct Parser {
    private var tokens: [Token]
    private var i = 0
    private let file: String

    /// Parses UTF-8 bytes; invalid UTF-8 is reported at its line and column.
    public static func parse(file: String, bytes: [UInt8]) throws -> Module {
        try checkUTF8(file: file, bytes: bytes)
        var lexer = Lexer(file: file, bytes: bytes)
        var p = Parser(tokens: try lexer.tokenize(), file: file)
        return try p.parseModule()
    }

    public static func parse(file: String, text: String) throws -> Module {
        try parse(file: file, bytes: Array(text.utf8))
    }

    private init(tokens: [Token], file: String) {
        self.tokens = tokens
        self.file = file
    }

    // MARK: Token helpers

    private var tok: Token { tokens[i] }

    private mutating func advance() -> Token {
        let t = tokens[i]
        if i < tokens.count - 1 { i += 1 }
        return t
    }

    private func describe(_ k: TokenKind) -> String {
        switch k {
        case .word(let w): return "'\(w)'"
        case .value(let v): return "'%\(v)'"
        case .global(let g): return "'@\(g)'"
        case .int(let v): return "'\(v)'"
        case .float(let v): return "'\(formatFloat(v))'"
        case .string: return "a string"
        case .comment: return "a comment"
        case .punct(let c): return "'\(c)'"
        case .newline: return "end of line"
        case .eof: return "end of file"
        }
    }

    private func error(_ message: String, _ loc: SourceLoc? = nil) -> Diagnostic {
        .error(message, at: loc ?? tok.loc)
    }

    private func unexpected(_ expected: String) -> Diagnostic {
        error("expected \(expected), found \(describe(tok.kind))")
    }

    private mutating func expect(_ c: Character, _ what: String? = nil) throws {
        guard tok.kind == .punct(c) else { throw unexpected(what ?? "'\(c)'") }
        _ = advance()
    }

    private mutating func accept(_ c: Character) -> Bool {
        if tok.kind == .punct(c) { _ = advance(); return true }
        return false
    }

    private mutating func skipNewlines() {
        while true {
            switch tok.kind {
            case .newline, .comment: _ = advance()
            default: return
            }
        }
    }

    private mutating func expectWord(_ w: String) throws {
        guard tok.kind == .word(w) else { throw unexpected("'\(w)'") }
        _ = advance()
    }

    /// Consumes comments and empty lines before a statement.
    private mutating func collectTrivia() -> Trivia {
        var trivia = Trivia()
        var newlinesBeforeContent = 0
        // After a comment the first newline ends its line; any further one is an empty line.
        var commentLineEnded = false
        while true {
            switch tok.kind {
            case .newline:
                if trivia.comments.isEmpty {
                    newlinesBeforeContent += 1
                } else if commentLineEnded {
                    trivia.blankLineAfter.insert(trivia.comments.count - 1)
                } else {
                    commentLineEnded = true
                }
                _ = advance()
            case .comment(let c):
                trivia.comments.append(c)
                commentLineEnded = false
                _ = advance()
            default:
                trivia.blankLineBefore = newlinesBeforeContent > 0
                return trivia
            }
        }
    }

    /// After a statement: an optional comment on the same line, then the end of the line.
    private mutating func finishStatement(_ trivia: inout Trivia) throws {
        if case .comment(let c) = tok.kind {
            trivia.trailing = c
            _ = advance()
        }
        switch tok.kind {
        case .newline: _ = advance()
        case .eof, .punct("}"): break
        default: throw unexpected("end of line")
        }
    }

    // MARK: Grammar

    private mutating func parseModule() throws -> Module {
        // The header must be the first line: `fn2e VERSION`.
        guard tok.kind == .word("fn2e"), tok.loc.line == 1 else {
            throw error("expected the format header 'fn2e \(irFormatVersion)' on the first line")
        }
        _ = advance()
        guard case .int(let version) = tok.kind else { throw unexpected("a format version number") }
        let versionLoc = tok.loc
        _ = advance()
        guard version == irFormatVersion else {
            throw error("unsupported format version \(version); this fn2e reads version \(irFormatVersion)", versionLoc)
        }
        var module = Module(file: file, version: version)
        try finishStatement(&module.headerTrivia)
        while true {
            let trivia = collectTrivia()
            switch tok.kind {
            case .eof:
                module.trailingComments = trivia.comments
                return module
            case .word("import"):
                _ = advance()
                guard case .string(let path) = tok.kind else { throw unexpected("a file name in quotes") }
                let loc = advance().loc
                var imp = Module.Import(path: path, loc: loc, trivia: trivia)
                try finishStatement(&imp.trivia)
                module.imports.append(imp)
            case .word("graph"):
                var g = try parseGraph()
                let braceComment = g.trivia.trailing
                g.trivia = trivia
                g.trivia.trailing = braceComment
                var closing = Trivia()
                try finishStatement(&closing)
                g.closingTrailing = closing.trailing
                module.graphs.append(g)
            default:
                throw unexpected("'graph' or 'import'")
            }
        }
    }

    private mutating func parseGraph() throws -> Graph {
        let loc = advance().loc
        guard case .global(let name) = tok.kind else { throw unexpected("a graph name such as '@net'") }
        _ = advance()
        var g = Graph(name: name, loc: loc)
        try expect("(")
        skipNewlines()
        if !accept(")") {
            repeat {
                skipNewlines()
                guard case .value(let n) = tok.kind else { throw unexpected("an input such as '%x: f32[N,3,224,224]'") }
                let iloc = advance().loc
                try expect(":")
                g.inputs.append(Input(name: n, type: try parseType(), loc: iloc))
                skipNewlines()
            } while accept(",")
            try expect(")", "',' or ')'")
        }
        try expect("{")
        guard tok.kind == .newline || isComment else { throw unexpected("end of line after '{'") }
        if case .comment(let c) = tok.kind {
            g.trivia.trailing = c
            _ = advance()
        }
        while true {
            var trivia = collectTrivia()
            switch tok.kind {
            case .punct("}"):
                g.closingComments = trivia.comments
                _ = advance()
                return g
            case .eof:
                throw Diagnostic.error("missing '}' at the end of graph '@\(name)'", at: tok.loc,
                                       notes: [Diagnostic(.note, "graph '@\(name)' starts here", at: loc)])
            case .word("param"):
                var p = try parseParam()
                try finishStatement(&trivia)
                p.trivia = trivia
                g.params.append(p)
            case .word("return"):
                let rloc = advance().loc
                var outs: [String] = []
                var outLocs: [SourceLoc] = []
                repeat {
                    guard case .value(let n) = tok.kind else { throw unexpected("a value such as '%y' to return") }
                    outLocs.append(advance().loc)
                    outs.append(n)
                } while accept(",")
                try finishStatement(&trivia)
                if !g.outputs.isEmpty { throw error("graph '@\(name)' has a second 'return'", tokens[i - 1].loc) }
                g.outputs = outs
                g.outputLocs = outLocs
                g.returnTrivia = trivia
                g.returnLoc = rloc
            case .value:
                var n = try parseNode()
                try finishStatement(&trivia)
                n.trivia = trivia
                g.nodes.append(n)
            default:
                throw unexpected("'param', a node such as '%y = relu(%x)', 'return' or '}'")
            }
        }
    }

    private var isComment: Bool {
        if case .comment = tok.kind { return true }
        return false
    }

    private mutating func parseType() throws -> TensorType {
        guard case .word(let w) = tok.kind else { throw unexpected("a type such as 'f32[N,3,224,224]'") }
        guard let dtype = DType(rawValue: w) else {
            throw error("unknown element type '\(w)' (expected \(DType.allCases.map(\.rawValue).joined(separator: " or ")))")
        }
        let loc = advance().loc
        try expect("[", "'[' after the element type")
        var dims: [Dim] = []
        if !accept("]") {
            repeat {
                switch tok.kind {
                case .int(let v):
                    guard v > 0 else { throw error("dimension must be positive, found \(v)") }
                    // Bounded so that shape arithmetic (products, padding) cannot overflow.
                    guard v <= maxDimension else { throw error("dimension \(v) is larger than \(maxDimension)") }
                    dims.append(.fixed(v))
                case .word("N"):
                    dims.append(.batch)
                case .word(let name) where Self.isSymbol(name):
                    dims.append(.symbol(name))
                default:
                    throw unexpected("a dimension (a positive integer, N, or a size name such as K)")
                }
                _ = advance()
            } while accept(",")
            try expect("]", "',' or ']'")
        }
        let type = TensorType(dtype, dims)
        var elements = 1
        for d in dims {
            let (p, overflow) = elements.multipliedReportingOverflow(by: d.value ?? 1)
            guard !overflow, p <= maxElements else {
                throw error("\(type) has more than \(maxElements) elements per batch item", loc)
            }
            elements = p
        }
        return type
    }

    /// A named size: a capital letter, then letters, digits or `_` (`K`, `H`, `NUM_CLASSES`).
    public static func isSymbol(_ w: String) -> Bool {
        guard let first = w.unicodeScalars.first, ("A"..."Z").contains(first) else { return false }
        return w.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    private mutating func parseParam() throws -> Param {
        let loc = advance().loc
        guard case .value(let name) = tok.kind else { throw unexpected("a parameter name such as '%conv1.weight'") }
        _ = advance()
        try expect(":")
        let type = try parseType()
        try expect("=", "'=' and an initializer")
        let initializer = try parseInitializer()
        var p = Param(name: name, type: type, initializer: initializer, loc: loc)
        if accept("{") {
            var seen: Set<String> = []
            repeat {
                guard case .word(let key) = tok.kind else { throw unexpected("a parameter attribute") }
                let kloc = advance().loc
                if !seen.insert(key).inserted { throw error("duplicate attribute '\(key)'", kloc) }
                try expect("=")
                let value = try parseAttrValue()
                switch (key, value) {
                case ("trainable", .bool(let b)): p.trainable = b
                case ("lr_mult", .float(let v)): p.lrMult = v
                case ("lr_mult", .int(let v)): p.lrMult = Double(v)
                case ("decay_mult", .float(let v)): p.decayMult = v
                case ("decay_mult", .int(let v)): p.decayMult = Double(v)
                case ("trainable", _): throw error("attribute 'trainable' expects true or false", kloc)
                case ("lr_mult", _), ("decay_mult", _): throw error("attribute '\(key)' expects a number", kloc)
                default:
                    throw error("unknown parameter attribute '\(key)' (expected trainable, lr_mult, decay_mult)", kloc)
                }
            } while accept(",")
            try expect("}", "',' or '}'")
        }
        return p
    }

    private mutating func parseInitializer() throws -> Initializer {
        guard case .word(let w) = tok.kind else { throw unexpected("an initializer (zeros, constant(v), gaussian(std), uniform(lo,hi), xavier, msra)") }
        let loc = advance().loc
        var args: [Double] = []
        if accept("(") {
            repeat {
                switch tok.kind {
                case .int(let v): args.append(Double(v))
                case .float(let v): args.append(v)
                default: throw unexpected("a number")
                }
                _ = advance()
            } while accept(",")
            try expect(")", "',' or ')'")
        }
        func want(_ n: Int) throws {
            guard args.count == n else {
                throw error("initializer '\(w)' takes \(n) argument\(n == 1 ? "" : "s"), found \(args.count)", loc)
            }
        }
        switch w {
        case "zeros": try want(0); return .zeros
        case "xavier": try want(0); return .xavier
        case "msra": try want(0); return .msra
        case "constant": try want(1); return .constant(args[0])
        case "gaussian":
            try want(1)
            guard args[0] >= 0, args[0].isFinite else { throw error("gaussian std must be finite and non-negative", loc) }
            return .gaussian(std: args[0])
        case "uniform":
            try want(2)
            guard args[0] <= args[1] else { throw error("uniform needs low <= high", loc) }
            return .uniform(low: args[0], high: args[1])
        default:
            throw error("unknown initializer '\(w)' (expected zeros, constant, gaussian, uniform, xavier, msra)", loc)
        }
    }

    private mutating func parseNode() throws -> Node {
        guard case .value(let name) = tok.kind else { throw unexpected("a value name") }
        let loc = advance().loc
        try expect("=")
        var declared: TensorType?
        if case .word(let w) = tok.kind, DType(rawValue: w) != nil {
            declared = try parseType()
        }
        guard case .word(let opName) = tok.kind else { throw unexpected("an op name") }
        let opLoc = advance().loc
        guard let op = Op(rawValue: opName) else {
            throw error("unknown op '\(opName)'", opLoc)
        }
        var callee: String?
        if op == .call {
            guard case .global(let g) = tok.kind else { throw unexpected("the called graph such as '@vgg_face'") }
            _ = advance()
            callee = g
        }
        try expect("(", "'(' after the op name")
        var operands: [String] = []
        var operandLocs: [SourceLoc] = []
        skipNewlines()
        if !accept(")") {
            repeat {
                skipNewlines()
                guard case .value(let v) = tok.kind else { throw unexpected("an operand such as '%x'") }
                operandLocs.append(advance().loc)
                operands.append(v)
                skipNewlines()
            } while accept(",")
            try expect(")", "',' or ')'")
        }
        var node = Node(name: name, op: op, operands: operands, callee: callee, loc: loc, operandLocs: operandLocs)
        node.declaredType = declared
        node.opLoc = opLoc
        if accept("{") {
            skipNewlines()
            repeat {
                skipNewlines()
                guard case .word(let key) = tok.kind else { throw unexpected("an attribute name") }
                let kloc = advance().loc
                if node.attrs[key] != nil { throw error("duplicate attribute '\(key)'", kloc) }
                try expect("=")
                node.attrs[key] = try parseAttrValue()
                node.attrLocs[key] = kloc
                skipNewlines()
            } while accept(",")
            try expect("}", "',' or '}'")
        }
        return node
    }

    private mutating func parseAttrValue() throws -> AttrValue {
        let t = advance()
        switch t.kind {
        case .int(let v): return .int(v)
        case .float(let v): return .float(v)
        case .string(let s): return .string(s)
        case .word("true"): return .bool(true)
        case .word("false"): return .bool(false)
        case .word(let w): return .word(w)
        case .punct("["):
            var ints: [Int] = []
            var floats: [Double] = []
            var anyFloat = false
            if !accept("]") {
                repeat {
                    switch tok.kind {
                    case .int(let v): ints.append(v); floats.append(Double(v))
                    case .float(let v): anyFloat = true; floats.append(v)
                    default: throw unexpected("a number in the list")
                    }
                    _ = advance()
                } while accept(",")
                try expect("]", "',' or ']'")
            }
            return anyFloat ? .floats(floats) : .ints(ints)
        default:
            i -= 1
            throw unexpected("an attribute value")
        }
    }

    /// Reports the first invalid UTF-8 sequence by line and column.
    static func checkUTF8(file: String, bytes: [UInt8]) throws {
        var line = 1
        var col = 1
        var k = 0
        while k < bytes.count {
            let b = bytes[k]
            var len = 0
            if b < 0x80 { len = 1 } else if b & 0xE0 == 0xC0, b >= 0xC2 { len = 2 } else if b & 0xF0 == 0xE0 { len = 3 } else if b & 0xF8 == 0xF0, b <= 0xF4 { len = 4 }
            var ok = len > 0 && k + len <= bytes.count
            if ok && len > 1 {
                for j in 1..<len where bytes[k + j] & 0xC0 != 0x80 { ok = false }
                if ok, String(validating: bytes[k..<k + len], as: UTF8.self) == nil { ok = false }
            }
            if !ok {
                throw Diagnostic.error("invalid UTF-8 byte 0x\(String(b, radix: 16, uppercase: true))",
                                       at: SourceLoc(file: file, line: line, column: col))
            }
            if b == 0x0A { line += 1; col = 1 } else { col += len }
            k += len
        }
    }
}
