import Autodiff
import Foundation
import IR
import Reference
import Runtime
import Scheduler
import Tensors
import XCTest

/// Runs a gradient graph through the fast path (Scheduler + Executor, float32) and the reference
/// interpreter (Double) from the same values; dropout masks drawn by the executor are handed to the
/// interpreter. Returns both results for every output of the graph.
func runBothPaths(_ grad: Graph, batch: Int, values: [String: [Double]]) throws
    -> (fast: [String: [Double]], reference: [String: [Double]]) {
    // No memory planning: the masks, temporaries of the arena, must still be readable after the run.
    let schedule = try Scheduler.schedule(grad, graphs: [:], options: ScheduleOptions(batch: batch, planMemory: false))
    let executor = try Executor(schedule: schedule, seed: 11)
    let bound = schedule.graph
    for i in bound.inputs {
        if i.type.dtype == .i32 {
            try executor.setLabels(i.name, values[i.name]!.map { Int32($0) })
        } else {
            try executor.setValue(i.name, Tensor(shape: i.type.shape!, data: values[i.name]!.map { Float($0) }))
        }
    }
    for p in bound.params { try executor.setValue(p.name, Tensor(shape: p.type.shape!, data: values[p.name]!.map { Float($0) })) }
    executor.refold()
    executor.run()
    var fast: [String: [Double]] = [:]
    for o in grad.outputs { fast[o] = executor.tensor(o)!.data.map(Double.init) }
    var presets = values
    for n in bound.nodes where n.op == .dropoutMask { presets[n.name] = executor.tensor(n.name)!.data.map(Double.init) }
    let reference = try Interpreter.run(try Scheduler.bind(grad, batch: batch), presets)
    return (fast, reference)
}

/// ‖a − b‖ / ‖b‖ (plain ‖a − b‖ where ‖b‖ is 0) and max |a − b|.
func relativeDifference(_ a: [Double], _ b: [Double]) -> (relative: Double, maxAbs: Double) {
    var d2 = 0.0, b2 = 0.0, m = 0.0
    for (x, y) in zip(a, b) {
        d2 += (x - y) * (x - y)
        b2 += y * y
        m = max(m, abs(x - y))
    }
    return (b2 > 0 ? (d2 / b2).squareRoot() : d2.squareRoot(), m)
}

/// Every backward kernel against the reference interpreter, on the finite-difference cases and the
/// small ExpNet training graphs.
final class FastPathGradientTests: XCTestCase {
    static let tolerance = 1e-4

    func check(_ name: String, _ grad: Graph, batch: Int, values: [String: [Double]]) throws -> Set<Op> {
        let (fast, reference) = try runBothPaths(grad, batch: batch, values: values)
        for o in grad.outputs {
            let (rel, maxAbs) = relativeDifference(fast[o]!, reference[o]!)
            print(String(format: "fastpath %-28@ %-22@ rel %.2e  max |diff| %.2e", name, o, rel, maxAbs))
            XCTAssertLessThanOrEqual(rel, Self.tolerance, "\(name): \(o)")
        }
        return Set(grad.nodes.map(\.op))
    }

    func testGradientGraphsAgreeWithTheReference() throws {
        var ops: Set<Op> = []
        for (k, c) in GradCases.all().enumerated() {
            let built = try GradCases.build(c, seed: UInt64(500 + k))
            ops.formUnion(try check(c.name, built.grad, batch: 2, values: built.values))
        }
        XCTAssertEqual(Op.backward.subtracting(ops), [], "backward ops no case runs")
    }

    /// The miniature ExpNet stages of the autodiff goldens (calls inlined, N bound to 3).
    func testSmallExpNetStages() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("AutodiffGoldens")
        for file in ["stage1_small.fn2e", "stage2_small.fn2e"] {
            let program = try Loader.load(path: dir.appendingPathComponent(file).path)
            let flat = try Scheduler.bind(Inliner.inline(program.graph()!, graphs: program.graphs), batch: 3)
            let built = try GradCases.build(name: file, forward: flat, classes: ["label": 3], seed: 9)
            _ = try check(file, built.grad, batch: 3, values: built.values)
        }
    }
}
