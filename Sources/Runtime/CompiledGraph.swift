import Foundation
import IR
import Kernels
import Scheduler
import Tensors

/// The one way to compile a graph (MLX's compile cache, `mlx/compile.cpp`): a graph and what fills
/// a new executor's parameters, scheduled once per bound shape — the batch, the named sizes (P-Net's
/// `H`, `W` at each scale of an image pyramid) and, when asked, other values to return — and kept.
/// At most `capacity` shapes are kept; the oldest goes first. Every caller (training, evaluation,
/// prediction, detection, import, bench, `fn2e-compile schedule`) compiles through here, so the
/// environment's switches hold everywhere; they are read once per process (`environment`).
public final class CompiledGraph {
    public let graph: Graph
    let graphs: [String: Graph]
    let weights: [(String, Tensor)]
    let seed: UInt64
    let fuse: Bool
    let planMemory: Bool
    let load: ((Executor) throws -> Void)?
    let capacity: Int
    private struct Key: Hashable { var batch: Int; var symbols: [Int]; var outputs: [String]? }
    private var executors: [Key: Executor] = [:]
    private var order: [Key] = []
    /// How many schedules were compiled (a cache miss each).
    public private(set) var compilations = 0

    /// The switches read from the environment, once: `FN2E_NO_MEMORY_PLANNER=1` gives every
    /// temporary its own range (for bisecting); `FN2E_CONV_ALGORITHMS=im2col,pointwise` (a comma-
    /// separated list) restricts the convolution algorithms, to compare them or bisect.
    public static let environment: (planMemory: Bool, convAlgorithms: Set<ConvAlgorithm>) = {
        let env = ProcessInfo.processInfo.environment
        let algorithms = env["FN2E_CONV_ALGORITHMS"].map { list in
            Set(list.split(separator: ",").compactMap { ConvAlgorithm(rawValue: $0.trimmingCharacters(in: .whitespaces)) })
        } ?? Set(ConvAlgorithm.allCases)
        return (env["FN2E_NO_MEMORY_PLANNER"] != "1", algorithms)
    }()

    /// `graph` (its calls resolved in `graphs`); a new executor's parameters start from their
    /// initializers (seeded by `seed`), then `weights`, then `load` (a weight loader). Without
    /// `fuse` every node is its own kernel; without `planMemory` (or with `FN2E_NO_MEMORY_PLANNER=1`)
    /// no memory is reused. With both off every layer's output stays readable after a run (import
    /// checks, tests against the reference interpreter).
    public init(graph: Graph, graphs: [String: Graph] = [:], weights: [(String, Tensor)] = [], seed: UInt64 = 0,
                fuse: Bool = true, planMemory: Bool = true, capacity: Int = 64, load: ((Executor) throws -> Void)? = nil) {
        (self.graph, self.graphs, self.weights, self.seed) = (graph, graphs, weights, seed)
        (self.fuse, self.planMemory, self.capacity, self.load) = (fuse, planMemory, capacity, load)
    }

    /// The schedule for `batch` and `symbols` (every named size of the graph needs a value),
    /// returning `outputs` instead of the graph's own when given.
    public func schedule(batch: Int, symbols: [String: Int] = [:], outputs: [String]? = nil) throws -> Schedule {
        var g = graph
        if let outputs { g.outputs = outputs }
        let options = ScheduleOptions(batch: batch, symbols: symbols, fuse: fuse,
                                      planMemory: planMemory && Self.environment.planMemory,
                                      convAlgorithms: Self.environment.convAlgorithms)
        return try Scheduler.schedule(g, graphs: graphs, options: options)
    }

    /// The executor for a shape, compiled and loaded on first request.
    public func executor(batch: Int, symbols: [String: Int] = [:], outputs: [String]? = nil) throws -> Executor {
        let key = Key(batch: batch, symbols: graph.symbols.map { symbols[$0] ?? 0 }, outputs: outputs)
        if let ex = executors[key] { return ex }
        let ex = try Executor(schedule: try schedule(batch: batch, symbols: symbols, outputs: outputs), seed: seed)
        for (name, t) in weights where ex.schedule.buffers[name] != nil { try ex.setValue(name, t) }
        try load?(ex)
        ex.refold()
        compilations += 1
        if order.count >= capacity { executors[order.removeFirst()] = nil }
        executors[key] = ex
        order.append(key)
        return ex
    }

    /// Drops the executor of a shape (one used once, e.g. to measure something before training),
    /// so that its memory goes back.
    public func discard(batch: Int, symbols: [String: Int] = [:], outputs: [String]? = nil) {
        let key = Key(batch: batch, symbols: graph.symbols.map { symbols[$0] ?? 0 }, outputs: outputs)
        executors[key] = nil
        order.removeAll { $0 == key }
    }
}
