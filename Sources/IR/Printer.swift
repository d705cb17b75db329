/// The canonical text of modules and graphs. Types come from shape inference, attributes equal to
/// their defaults are left out, and comments and blank lines written by the user are kept.
public enum Printer {
    public static func print(_ module: Module) -> String {
        var out = "fn2e \(module.version)"
        if let t = module.headerTrivia.trailing { out += " # \(t)" }
        out += "\n"
        for imp in module.imports {
            out += leading(imp.trivia, indent: "", blankLine: imp.trivia.blankLineBefore)
            out += "import \(quoteString(imp.path))" + trailing(imp.trivia) + "\n"
        }
        for g in module.graphs {
            // Graphs are set apart by an empty line unless a comment block is written right above one.
            out += (g.trivia.blankLineBefore || g.trivia.comments.isEmpty ? "\n" : "") + print(g)
        }
        if !module.trailingComments.isEmpty {
            out += "\n" + module.trailingComments.map { comment($0, "") }.joined()
        }
        return out
    }

    public static func print(_ g: Graph) -> String {
        var out = leading(g.trivia, indent: "", blankLine: false)
        let inputs = g.inputs.map { "%\(name($0.name)): \($0.type)" }.joined(separator: ", ")
        out += "graph @\(name(g.name))(\(inputs)) {" + trailing(g.trivia) + "\n"
        var first = true
        func stmt(_ trivia: Trivia, _ text: String) {
            out += leading(trivia, indent: "  ", blankLine: trivia.blankLineBefore && !first)
            out += "  " + text + trailing(trivia) + "\n"
            first = false
        }
        for p in g.params { stmt(p.trivia, print(p)) }
        for n in g.nodes { stmt(n.trivia, print(n)) }
        if !g.outputs.isEmpty {
            stmt(g.returnTrivia, "return " + g.outputs.map { "%" + name($0) }.joined(separator: ", "))
        }
        out += g.closingComments.map { comment($0, "  ") }.joined()
        return out + "}" + (g.closingTrailing.map { " # \($0)" } ?? "") + "\n"
    }

    public static func print(_ p: Param) -> String {
        var attrs: [String] = []
        if !p.trainable { attrs.append("trainable=false") }
        if p.lrMult != 1 { attrs.append("lr_mult=\(formatFloat(p.lrMult))") }
        if p.decayMult != 1 { attrs.append("decay_mult=\(formatFloat(p.decayMult))") }
        let tail = attrs.isEmpty ? "" : " {" + attrs.joined(separator: ", ") + "}"
        return "param %\(name(p.name)): \(p.type) = \(p.initializer)\(tail)"
    }

    public static func print(_ n: Node) -> String {
        var s = "%\(name(n.name)) = "
        if let t = n.type ?? n.declaredType { s += "\(t) " }
        s += n.op.rawValue
        if let c = n.callee { s += " @\(name(c))" }
        s += "(" + n.operands.map { "%" + name($0) }.joined(separator: ", ") + ")"
        let attrs = attributeText(n)
        if !attrs.isEmpty { s += " {" + attrs.joined(separator: ", ") + "}" }
        return s
    }

    /// `key=value` for each attribute that differs from its default, in the op table's order.
    static func attributeText(_ n: Node) -> [String] {
        var out: [String] = []
        let specs = n.op.signature.attrs
        for spec in specs {
            guard let v = n.attrs[spec.name], v != spec.defaultValue else { continue }
            if case .ints(let vs) = v, spec.kind == .ints(count: 2), vs.count == 2, vs[0] == vs[1] {
                out.append("\(spec.name)=\(vs[0])")
            } else {
                out.append("\(spec.name)=\(v)")
            }
        }
        // Unknown attributes (unverified input) still print, after the known ones.
        for key in n.attrs.keys.sorted() where !specs.contains(where: { $0.name == key }) {
            out.append("\(key)=\(n.attrs[key]!)")
        }
        return out
    }

    /// A value or graph name, quoted when it has characters a bare name cannot hold.
    public static func name(_ s: String) -> String {
        !s.isEmpty && s.utf8.allSatisfy(Lexer.isNameByte) ? s : quoteString(s)
    }

    private static func comment(_ text: String, _ indent: String) -> String {
        indent + (text.isEmpty ? "#" : "# \(text)") + "\n"
    }

    private static func leading(_ t: Trivia, indent: String, blankLine: Bool) -> String {
        (blankLine ? "\n" : "") + t.comments.enumerated().map {
            comment($0.element, indent) + (t.blankLineAfter.contains($0.offset) ? "\n" : "")
        }.joined()
    }

    private static func trailing(_ t: Trivia) -> String {
        t.trailing.map { " # \($0)" } ?? ""
    }
}
