import IR

/// Runs passes in order, re-verifying after each change, and records what each did.
public struct PassManager {
    public var passes: [GraphPass]
    public private(set) var log: [(pass: String, changed: Bool)] = []

    public init(_ passes: [GraphPass]) { self.passes = passes }

    public mutating func run(_ graph: inout Graph, _ context: PassContext) throws {
        for pass in passes {
            let changed = try pass.run(&graph, context)
            log.append((pass.name, changed))
            if changed {
                let problems = Verifier(callees: context.graphs).verify(&graph)
                if !problems.isEmpty {
                    throw SchedulerError("pass '\(pass.name)' produced an invalid graph:\n" + problems.map(\.description).joined(separator: "\n"))
                }
            }
        }
    }
}

public struct SchedulerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}

/// Folds a ReLU into the convolution or linear layer that feeds it, when nothing else reads the
/// pre-activation: the epilogue then runs while the GEMM output is still in cache.
public struct FuseActivations: GraphPass {
    public let name = "fuse-activations"
    public init() {}
    public func run(_ graph: inout Graph, _ context: PassContext) throws -> Bool {
        let uses = useCounts(graph)
        var changed = false
        var k = 0
        var index = Dictionary(graph.nodes.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
        while k < graph.nodes.count {
            let n = graph.nodes[k]
            if n.op == .relu, let p = index[n.operands[0]], Op.fusableProducers.contains(graph.nodes[p].op),
               uses[n.operands[0]] == 1, !graph.outputs.contains(n.operands[0]),
               graph.nodes[p].fullAttrs.string("activation") == "none" {
                var producer = graph.nodes[p]
                producer.attrs["activation"] = .word("relu")
                let slope = n.fullAttrs.float("negative_slope")
                if slope != 0 { producer.attrs["negative_slope"] = .float(slope) }
                // The fused node takes the activation's name so that its readers are unchanged.
                producer.origins = (producer.origins.isEmpty ? [producer.name] : producer.origins) + [n.name]
                producer.name = n.name
                producer.trivia = n.trivia
                graph.nodes[p] = producer
                graph.nodes.remove(at: k)
                index = Dictionary(graph.nodes.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
                changed = true
                continue
            }
            k += 1
        }
        return changed
    }
}

/// Folds `relu_backward(s, max_pool_backward(s, dy))` into one `max_pool_backward(s, dy)
/// {relu_mask=true}` when the pool reads a plain ReLU's output `s` and nothing else reads the
/// routed gradient: one pass over the activation instead of two, and (where the 2x2 windows tile
/// the plane) the result may overwrite `s` itself, which dies there.
public struct FusePoolReluBackward: GraphPass {
    public let name = "fuse-pool-relu-backward"
    public init() {}
    public func run(_ graph: inout Graph, _ context: PassContext) throws -> Bool {
        let uses = useCounts(graph)
        let index = Dictionary(graph.nodes.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
        var fused: [Int: Node] = [:], removed: Set<Int> = []
        for (k, n) in graph.nodes.enumerated() where n.op == .reluBackward && n.fullAttrs.float("negative_slope") == 0 {
            guard let p = index[n.operands[1]], graph.nodes[p].op == .maxPoolBackward, !removed.contains(p),
                  graph.nodes[p].operands[0] == n.operands[0], uses[n.operands[1]] == 1,
                  !graph.outputs.contains(n.operands[1]) else { continue }
            var pool = graph.nodes[p]
            pool.attrs["relu_mask"] = .bool(true)
            pool.origins = (pool.origins.isEmpty ? [pool.name] : pool.origins) + [n.name]
            pool.name = n.name
            pool.trivia = n.trivia
            fused[k] = pool
            removed.insert(p)
        }
        if fused.isEmpty { return false }
        graph.nodes = graph.nodes.enumerated().compactMap { k, n in removed.contains(k) ? nil : (fused[k] ?? n) }
        return true
    }
}

/// How many times each value is read (graph outputs count as reads).
public func useCounts(_ graph: Graph) -> [String: Int] {
    var uses: [String: Int] = [:]
    for n in graph.nodes { for o in n.operands { uses[o, default: 0] += 1 } }
    for o in graph.outputs { uses[o, default: 0] += 1 }
    return uses
}
