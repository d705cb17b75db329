/// Binding named sizes (`K`, a class count) before compiling: the graph's inputs and parameters get
/// the values, every node is re-typed by the verifier, and N stays symbolic.
extension Graph {
    /// The named sizes (other than N) its inputs and parameters use, sorted.
    public var symbols: [String] {
        Array(Set(inputs.flatMap(\.type.symbols) + params.flatMap(\.type.symbols))).sorted()
    }

    /// The graph with `values` substituted for its named sizes in inputs and parameters and every
    /// node's type cleared, for the verifier to infer again. Names the graph does not use are ignored.
    public func substituting(symbols values: [String: Int]) throws -> Graph {
        let used = values.filter { symbols.contains($0.key) }
        for (name, v) in used.sorted(by: { $0.key < $1.key }) where v < 1 {
            throw DiagnosticList([.error("the named size \(name) must be positive, found \(v)", at: loc)])
        }
        var g = self
        for k in g.inputs.indices { g.inputs[k].type = g.inputs[k].type.bound(symbols: used) }
        for k in g.params.indices { g.params[k].type = g.params[k].type.bound(symbols: used) }
        for k in g.nodes.indices {
            g.nodes[k].declaredType = nil
            g.nodes[k].type = nil
        }
        return g
    }

    /// `substituting(symbols:)` re-verified, so every node has its concrete type again (N stays);
    /// a flat graph (calls inlined) is expected.
    public func binding(symbols values: [String: Int]) throws -> Graph {
        guard values.keys.contains(where: symbols.contains) else { return self }
        var g = try substituting(symbols: values)
        let problems = Verifier().verify(&g)
        guard problems.isEmpty else { throw DiagnosticList(problems) }
        return g
    }
}
