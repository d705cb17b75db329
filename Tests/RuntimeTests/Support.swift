import Autodiff
import Foundation
import IR
import Reference
import Runtime
import Scheduler
import Tensors
import XCTest

/// Paths inside the repository, found from this file's location.
enum Repo {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let graphs = root + "/Graphs"
    static let fixtures = root + "/Tests/RuntimeTests/Fixtures"

    static func graphFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: graphs)) ?? []
        return names.filter { $0.hasSuffix(".fn2e") }.sorted().map { graphs + "/" + $0 }
    }
}

/// The root graph of a file, flat (calls inlined), with its program; a class count K is bound to 7.
func flatGraph(_ path: String) throws -> (program: Program, flat: Graph) {
    let program = try Loader.load(path: path)
    return (program, try Inliner.inline(program.graph()!, graphs: program.graphs).binding(symbols: ["K": 7]))
}

/// The graph a schedule is built from: the forward graph, or its training step (loss and gradients).
func stepGraph(_ path: String, training: Bool) throws -> (program: Program, graph: Graph) {
    let (program, flat) = try flatGraph(path)
    return (program, training ? try Autodiff.gradient(of: flat, loss: "loss") : flat)
}

func makeSchedule(_ path: String, batch: Int, training: Bool = false, plan: Bool = true, fuse: Bool = true) throws -> Schedule {
    let (program, g) = try stepGraph(path, training: training)
    return try CompiledGraph(graph: g, graphs: program.graphs, fuse: fuse, planMemory: plan).schedule(batch: batch)
}

/// ‖a − b‖ / ‖b‖ in Double (absolute when b is zero).
func relativeError(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "sizes \(a.count) vs \(b.count)")
    var d = 0.0, n = 0.0
    for i in a.indices {
        let e = Double(a[i]) - b[i]
        d += e * e
        n += b[i] * b[i]
    }
    return n == 0 ? d.squareRoot() : (d / n).squareRoot()
}

/// Seeded inputs for every graph input: uniform [0, 1) floats, labels in 0..<classes.
func randomInputs(_ s: Schedule, seed: UInt64, classes: Int = 3) -> [String: Tensor] {
    var rng = Xoshiro256(seed: seed)
    var out: [String: Tensor] = [:]
    for i in s.graph.inputs {
        let n = i.type.count(batch: s.batch)
        let data: [Float] = i.type.dtype == .i32 ? (0..<n).map { _ in Float(rng.nextInt(upperBound: classes)) }
            : (0..<n).map { _ in rng.nextFloat() }
        out[i.name] = Tensor(shape: i.type.shape ?? [], data: data)
    }
    return out
}

/// Runs `graph` (unfused, flat) with the reference interpreter on the executor's parameters and the
/// given inputs; `extra` presets values (dropout masks).
func referenceRun(_ graph: Graph, batch: Int, executor: Executor, inputs: [String: Tensor],
                  extra: [String: [Double]] = [:]) throws -> [String: [Double]] {
    let bound = try Scheduler.bind(graph, batch: batch)
    var values = extra
    for p in bound.params {
        // Parameters the schedule dropped (dead code) feed only values no output needs: zeros.
        values[p.name] = executor.tensor(p.name)?.data.map(Double.init) ?? [Double](repeating: 0, count: p.type.count(batch: batch))
    }
    for (k, v) in inputs { values[k] = v.data.map(Double.init) }
    return try Interpreter.run(bound, values)
}

/// Seconds taken by `body`.
func timed(_ body: () throws -> Void) rethrows -> Double {
    let t0 = Date()
    try body()
    return Date().timeIntervalSince(t0)
}
