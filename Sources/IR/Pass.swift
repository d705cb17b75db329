/// Graph passes every stage may run: the protocol, and the two rewrites both Autodiff and the
/// Scheduler need (inlining calls, removing dead code). The Scheduler's `PassManager` runs a list of
/// them and verifies after each change.

/// A graph-to-graph rewrite. `run` says whether it changed anything; the pass manager verifies the
/// graph after every pass that did.
public protocol GraphPass {
    var name: String { get }
    func run(_ graph: inout Graph, _ context: PassContext) throws -> Bool
}

/// What passes may need besides the graph.
public struct PassContext {
    /// Verified graphs by name, for calls.
    public var graphs: [String: Graph]
    public init(graphs: [String: Graph] = [:]) { self.graphs = graphs }
}

/// Replaces calls by the called graphs' nodes.
public struct InlineCalls: GraphPass {
    public let name = "inline-calls"
    public init() {}
    public func run(_ graph: inout Graph, _ context: PassContext) throws -> Bool {
        guard graph.nodes.contains(where: { $0.op == .call }) else { return false }
        graph = Inliner.inline(graph, graphs: context.graphs)
        return true
    }
}

/// Removes nodes and parameters that no output depends on.
public struct DeadCodeElimination: GraphPass {
    public let name = "dead-code-elimination"
    public init() {}
    public func run(_ graph: inout Graph, _ context: PassContext) throws -> Bool {
        let before = (graph.nodes.count, graph.params.count)
        graph = Self.prune(graph)
        return (graph.nodes.count, graph.params.count) != before
    }

    /// The graph without the nodes no output depends on, nor the parameters only they read.
    public static func prune(_ graph: Graph) -> Graph {
        var live = Set(graph.outputs)
        for node in graph.nodes.reversed() where live.contains(node.name) {
            live.formUnion(node.operands)
        }
        var out = graph
        out.nodes = graph.nodes.filter { live.contains($0.name) }
        out.params = graph.params.filter { live.contains($0.name) }
        return out
    }
}
