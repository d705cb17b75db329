/// Replaces every `call` by the called graph's nodes, so later passes see one flat graph.
/// The callee's values are renamed `PREFIX.name` (PREFIX: the call's `prefix`, else the call's own name);
/// `frozen=true` makes every parameter brought in untrainable; `frozen_through="v"` only those the
/// callee's value `v` depends on (fine-tuning the layers above `v`).
public enum Inliner {
    public static func inline(_ graph: Graph, graphs: [String: Graph]) -> Graph {
        guard graph.nodes.contains(where: { $0.op == .call }) else { return graph }
        var out = graph
        out.nodes = []
        var rename: [String: String] = [:]
        func mapped(_ s: String) -> String { rename[s] ?? s }

        for var node in graph.nodes {
            node.operands = node.operands.map(mapped)
            guard node.op == .call, let calleeName = node.callee, let callee0 = graphs[calleeName] else {
                out.nodes.append(node)
                continue
            }
            let callee = inline(callee0, graphs: graphs)
            let a = node.fullAttrs
            let prefix = a.string("prefix").isEmpty ? node.name : a.string("prefix")
            let chosen = a.string("output").isEmpty ? callee.outputs[0] : a.string("output")
            var frozen = Set(a.bool("frozen") ? callee.params.map(\.name) : [])
            if !a.string("frozen_through").isEmpty { frozen.formUnion(callee.dependencies(of: a.string("frozen_through"))) }
            // Bind the callee's batch dimension to the caller's.
            var batch = Dim.batch
            for (arg, input) in zip(node.operands, callee.inputs) {
                for (d, p) in zip(graph.type(of: arg)?.dims ?? out.type(of: arg)?.dims ?? [], input.type.dims) where p == .batch {
                    batch = d
                }
            }
            func bind(_ t: TensorType?) -> TensorType? {
                t.map { TensorType($0.dtype, $0.dims.map { $0 == .batch ? batch : $0 }) }
            }
            var inner: [String: String] = [:]
            for (arg, input) in zip(node.operands, callee.inputs) { inner[input.name] = arg }
            for p in callee.params {
                var q = p
                q.name = prefix + "." + p.name
                q.trivia = Trivia()
                if frozen.contains(p.name) { q.trainable = false }
                inner[p.name] = q.name
                out.params.append(q)
            }
            for var n in callee.nodes {
                n.operands = n.operands.map { inner[$0] ?? $0 }
                let newName = n.name == chosen ? node.name : prefix + "." + n.name
                inner[n.name] = newName
                n.name = newName
                n.type = bind(n.type)
                n.declaredType = nil
                n.trivia = Trivia()
                if n.name == node.name { n.trivia = node.trivia }
                out.nodes.append(n)
            }
            if let alias = inner[chosen], alias != node.name { rename[node.name] = alias }
        }
        out.outputs = out.outputs.map(mapped)
        return out
    }
}

extension Graph {
    /// Every value `v` is computed from (inputs, parameters and nodes), `v` included.
    public func dependencies(of v: String) -> Set<String> {
        var needed: Set<String> = [v]
        for n in nodes.reversed() where needed.contains(n.name) { needed.formUnion(n.operands) }
        return needed
    }
}
