import IR
import Scheduler
import Tensors

/// One graph compiled once per binding of its sizes (batch and named sizes such as P-Net's `H`, `W`
/// at each scale of an image pyramid): the first request for a shape schedules the graph and loads
/// the weights, later requests for that shape reuse the executor. At most `capacity` shapes are
/// kept; the oldest goes first.
public final class ExecutorCache {
    public let graph: Graph
    private let weights: [(String, Tensor)]
    private let capacity: Int
    private var executors: [[Int]: Executor] = [:]
    private var order: [[Int]] = []
    /// How many schedules were compiled (a cache miss each).
    public private(set) var compilations = 0

    public init(graph: Graph, weights: [(String, Tensor)], capacity: Int = 64) {
        self.graph = graph
        self.weights = weights
        self.capacity = capacity
    }

    /// The executor for `batch` and `symbols` (every named size of the graph needs a value).
    public func executor(batch: Int, symbols: [String: Int] = [:]) throws -> Executor {
        let key = [batch] + graph.symbols.map { symbols[$0] ?? 0 }
        if let ex = executors[key] { return ex }
        let schedule = try Scheduler.schedule(graph, graphs: [graph.name: graph],
                                              options: ScheduleOptions(batch: batch, symbols: symbols))
        let ex = try Executor(schedule: schedule)
        for (name, t) in weights { try ex.setValue(name, t) }
        ex.refold()
        compilations += 1
        if order.count >= capacity { executors[order.removeFirst()] = nil }
        executors[key] = ex
        order.append(key)
        return ex
    }
}
