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
/// interpreter. The fast path runs twice, with every temporary in its own memory and with the
/// memory planner (arena reuse, in-place kernels); both executors draw the same masks.
/// Returns the results for every output of the graph.
func runBothPaths(_ grad: Graph, batch: Int, values: [String: [Double]]) throws
    -> (fast: [String: [Double]], planned: [String: [Double]], reference: [String: [Double]]) {
    func fastPath(planMemory: Bool) throws -> (outputs: [String: [Double]], masks: [String: [Double]]) {
        let executor = try CompiledGraph(graph: grad, seed: 11, planMemory: planMemory).executor(batch: batch)
        let bound = executor.schedule.graph
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
        var outputs: [String: [Double]] = [:]
        for o in grad.outputs { outputs[o] = executor.tensor(o)!.data.map(Double.init) }
        // Masks are arena temporaries: only readable without memory planning.
        var masks: [String: [Double]] = [:]
        for n in bound.nodes where n.op == .dropoutMask && !planMemory { masks[n.name] = executor.tensor(n.name)!.data.map(Double.init) }
        return (outputs, masks)
    }
    let (fast, masks) = try fastPath(planMemory: false)
    let (planned, _) = try fastPath(planMemory: true)
    let reference = try Interpreter.run(try Scheduler.bind(grad, batch: batch), values.merging(masks) { $1 })
    return (fast, planned, reference)
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
        let (fast, planned, reference) = try runBothPaths(grad, batch: batch, values: values)
        for o in grad.outputs {
            let (rel, maxAbs) = relativeDifference(fast[o]!, reference[o]!)
            let (relPlanned, _) = relativeDifference(planned[o]!, reference[o]!)
            print(String(format: "fastpath %-28@ %-22@ rel %.2e  max |diff| %.2e  (memory planned: rel %.2e)", name, o, rel, maxAbs, relPlanned))
            XCTAssertLessThanOrEqual(rel, Self.tolerance, "\(name): \(o)")
            XCTAssertLessThanOrEqual(relPlanned, Self.tolerance, "\(name), memory planned: \(o)")
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

    /// Shapes large enough for the kernels' blocked, BLAS and multi-channel paths (no finite differences here).
    func testLargerShapes() throws {
        let cases = [
            GradCase(name: "conv 3x3 s2 large", params: ["%x: f32[3,8,13,11]", "%w: f32[16,8,3,3]", "%b: f32[16]"],
                     body: ["%c = conv2d(%x, %w, %b) {stride=2, pad=1}", "%y = relu(%c)"]),
            GradCase(name: "conv 1x1 large", params: ["%x: f32[2,16,9,9]", "%w: f32[24,16,1,1]"],
                     body: ["%y = conv2d(%x, %w)"]),
            GradCase(name: "conv depthwise large", params: ["%x: f32[2,12,10,10]", "%w: f32[12,1,3,3]", "%b: f32[12]"],
                     body: ["%y = conv2d(%x, %w, %b) {pad=2, dilation=2, groups=12}"]),
            GradCase(name: "conv grouped 5x5", params: ["%x: f32[2,8,12,12]", "%w: f32[8,2,5,5]"],
                     body: ["%y = conv2d(%x, %w) {stride=[2,1], pad=[2,1], groups=4}"]),
            GradCase(name: "pools large", params: ["%x: f32[3,6,13,13]"],
                     body: ["%m = max_pool(%x) {kernel=3, stride=2, pad=1, round=ceil}", "%a = avg_pool(%x) {kernel=3, stride=2, pad=1, round=ceil}",
                            "%g = avg_pool(%m) {global=true}", "%h = max_pool(%a) {global=true}", "%y = add(%g, %h)"]),
            GradCase(name: "lrn large", params: ["%x: f32[2,16,5,5]"], body: ["%y = lrn(%x) {size=5, alpha=0.0001, beta=0.75}"]),
            GradCase(name: "linear large", params: ["%x: f32[8,96]", "%w: f32[40,96]", "%b: f32[40]"],
                     body: ["%l = linear(%x, %w, %b)", "%r = relu(%l)", "%d = dropout(%r) {ratio=0.3}", "%y = log_softmax(%d)"]),
            GradCase(name: "cross entropy large", params: ["%x: f32[16,64]", "%w: f32[7,64]"],
                     body: ["%l = linear(%x, %w)", "%loss = softmax_cross_entropy(%l, %label)"],
                     inputs: ["%label: i32[16]"], classes: ["label": 7]),
            GradCase(name: "prelu bn large", params: ["%x: f32[4,10,6,6]", "%s: f32[10]", "%m: f32[10]", "%v: f32[10]", "%g: f32[10]"],
                     body: ["%p = prelu(%x, %s)", "%n = batch_norm(%p, %m, %v)", "%q = scale(%n, %g)", "%y = sigmoid(%q)"],
                     frozen: ["m", "v"], positive: ["v"]),
            // VGG48's block: Winograd convolutions, training-mode batch norm (normalized in place), scale, ReLU, pool.
            GradCase(name: "conv bn block large",
                     params: ["%x: f32[2,16,10,10]", "%w1: f32[16,16,3,3]", "%w2: f32[16,16,3,3]", "%g: f32[16]", "%b: f32[16]",
                              "%m1: f32[16]", "%v1: f32[16]", "%m2: f32[16]", "%v2: f32[16]"],
                     body: ["%c1 = conv2d(%x, %w1) {pad=1}", "%n1 = batch_norm(%c1, %m1, %v1) {momentum=0.9}", "%r1 = relu(%n1)",
                            "%c2 = conv2d(%r1, %w2) {pad=1}", "%n2 = batch_norm(%c2, %m2, %v2) {momentum=0.9}",
                            "%a2 = scale(%n2, %g, %b)", "%r2 = relu(%a2)", "%y = max_pool(%r2) {kernel=2, stride=2}"],
                     frozen: ["m1", "v1", "m2", "v2"], positive: ["v1", "v2"]),
        ]
        for (k, c) in cases.enumerated() {
            let built = try GradCases.build(c, seed: UInt64(900 + k))
            _ = try check(c.name, built.grad, batch: 2, values: built.values)
        }
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
