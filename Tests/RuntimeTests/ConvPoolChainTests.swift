import Autodiff
import IR
import Runtime
import Scheduler
import Tensors
import XCTest

/// Convolutions fused with the max pool after them, run image by image, and pools that record
/// their winners for the backward pass, checked against the Double reference at batch 3 (so every
/// image's offsets are exercised), forward and training step.
final class ConvPoolChainTests: XCTestCase {
    /// 52x52 outputs (2,704 pixels: large enough to run per image); a 3-channel first layer
    /// (direct), two 16-channel layers (Winograd), the last without bias; an overlapping, padded pool.
    static let text = """
        fn2e 1
        graph @chain(%x: f32[N,3,52,52], %target: f32[N,16,26,26]) {
          param %a.weight: f32[16,3,3,3] = msra
          param %a.bias: f32[16] = gaussian(0.1)
          param %b.weight: f32[16,16,3,3] = msra
          param %b.bias: f32[16] = gaussian(0.1)
          param %c.weight: f32[16,16,3,3] = msra
          %a = conv2d(%x, %a.weight, %a.bias) {pad=1}
          %ra = relu(%a)
          %b = conv2d(%ra, %b.weight, %b.bias) {pad=1}
          %rb = relu(%b)
          %c = conv2d(%rb, %c.weight) {pad=1}
          %rc = relu(%c)
          %p = max_pool(%rc) {kernel=3, stride=2, pad=1}
          %loss = euclidean_loss(%p, %target)
          return %loss, %p
        }
        """
    static let tolerance = 2e-5

    func graph() throws -> Graph {
        try XCTUnwrap(try Loader.load(text: Self.text, file: "chain.fn2e").graphs["chain"])
    }

    func check(_ g: Graph, _ s: Schedule, seed: UInt64) throws {
        XCTAssertEqual(s.memoryProblems(), [])
        let ex = try Executor(schedule: s, seed: seed)
        let inputs = randomInputs(s, seed: seed + 1)
        let fast = try ex.run(inputs: inputs)
        let ref = try referenceRun(g, batch: 3, executor: ex, inputs: inputs)
        for o in g.outputs {
            let e = relativeError(fast[o]!.data, ref[o]!)
            print(String(format: "conv-pool chain %@ %%%@: rel %.2e", g.name, o, e))
            XCTAssertLessThanOrEqual(e, Self.tolerance, "%\(o)")
        }
    }

    func testForwardChainRunsPerImage() throws {
        let g = try graph()
        let s = try CompiledGraph(graph: g).schedule(batch: 3)
        guard case let .conv2dMaxPool(convs, _, winners)? = s.kernels.first?.call else {
            return XCTFail("not one fused kernel: \(s.kernels.map(\.label))")
        }
        XCTAssertEqual(convs.map(\.algorithm), [.direct, .winograd, .winograd])
        XCTAssertEqual(convs.map(\.bias), [2, 4, nil])
        XCTAssertNil(winners, "nothing reads winners in a forward graph")
        XCTAssertEqual(s.kernels[0].label, "3xconv2d+bias+relu+max_pool/winograd")
        // No batch-sized convolution output is planned: the arena is that kernel's per-image workspace.
        XCTAssertFalse(s.buffers.values.contains { $0.type.shape == [3, 16, 52, 52] })
        XCTAssertEqual(s.arenaBytes, (s.kernels[0].workspaceBytes + 63) / 64 * 64)
        try check(g, s, seed: 5)
    }

    func testTrainingStepRecordsWinners() throws {
        let grad = try Autodiff.gradient(of: try graph(), loss: "loss")
        let s = try CompiledGraph(graph: grad).schedule(batch: 3)
        // The last convolution runs with its pool (its output is read by nothing else once the pool
        // records winners); the others feed their backward kernels and stay whole.
        let fused = s.kernels.filter { if case .conv2dMaxPool = $0.call { return true } else { return false } }
        XCTAssertEqual(fused.count, 1)
        guard case let .conv2dMaxPool(convs, _, winners)? = fused.first?.call else { return }
        XCTAssertEqual(convs.count, 1)
        XCTAssertEqual(winners?.reluMask, true)
        XCTAssertEqual(s.kernels.filter { if case .maxPoolBackwardFromWinners = $0.call { return true } else { return false } }.count, 1)
        try check(grad, s, seed: 7)
    }

    /// A one-channel first layer (direct) whose pooled gradient goes straight into its weight and
    /// bias gradients (`Scheduler.fusePoolBackwardIntoFilter`): no kernel builds the convolution's
    /// output gradient, for tiling 2x2 windows with a clipped last column (the forward pools two
    /// output rows at a time, `conv2dDirectMaxPool`) and for overlapping, padded ones; 79 columns
    /// (five 16-column blocks) keep the direct kernel.
    func testFirstLayerGradientFromPoolWinners() throws {
        for (pool, target) in [("kernel=2, stride=2", "10,39"), ("kernel=3, stride=2, pad=1", "10,40")] {
            let text = """
                fn2e 1
                graph @first(%x: f32[N,1,20,79], %target: f32[N,4,\(target)]) {
                  param %a.weight: f32[6,1,3,3] = msra
                  param %a.bias: f32[6] = gaussian(0.1)
                  param %b.weight: f32[4,6,3,3] = msra
                  %a = conv2d(%x, %a.weight, %a.bias) {pad=1}
                  %ra = relu(%a)
                  %p = max_pool(%ra) {\(pool)}
                  %b = conv2d(%p, %b.weight) {pad=1}
                  %loss = euclidean_loss(%b, %target)
                  return %loss
                }
                """
            let g = try XCTUnwrap(try Loader.load(text: text, file: "first.fn2e").graphs["first"])
            let grad = try Autodiff.gradient(of: g, loss: "loss")
            let s = try CompiledGraph(graph: grad).schedule(batch: 3)
            let fused = s.kernels.compactMap { if case let .maxPoolBackwardInto(_, filter) = $0.call { return filter != nil } else { return nil } }
            XCTAssertEqual(fused.count, 2, pool)
            XCTAssertEqual(Set(fused), [false, true], pool)
            XCTAssertFalse(s.buffers.values.contains { $0.type.shape == [3, 6, 20, 79] }, "the first layer's output gradient is built")
            // The forward chain is direct convolutions only: its images are shared among the workers (1 and 2 of 3).
            XCTAssertTrue(s.kernels.contains { if case let .conv2dMaxPool(convs, _, _) = $0.call { convs.map(\.algorithm) == [.direct] } else { false } })
            try check(grad, s, seed: 11)
            try check(g, try CompiledGraph(graph: g).schedule(batch: 3), seed: 13)  // the forward alone: no winners recorded
        }
    }

    /// Winograd layers too small to run image by image (under 2,500 output pixels) pool each 4x4
    /// output tile as it is computed, on the whole batch: 14x22 (the last tile row half outside) and
    /// 9x13 floored to 4x6 (a convolution row and column no window reads), with and without winners.
    func testSmallWinogradPoolsItsTiles() throws {
        let text = """
            fn2e 1
            graph @small(%x: f32[N,16,14,22], %target: f32[N,16,4,6]) {
              param %a.weight: f32[16,16,3,3] = msra
              param %a.bias: f32[16] = gaussian(0.1)
              param %b.weight: f32[16,16,3,3] = msra
              %a = conv2d(%x, %a.weight, %a.bias) {pad=1}
              %ra = relu(%a)
              %p = max_pool(%ra) {kernel=2, stride=2}
              %b = conv2d(%p, %b.weight) {pad=2}
              %rb = relu(%b)
              %q = max_pool(%rb) {kernel=2, stride=2}
              %loss = euclidean_loss(%q, %target)
              return %loss, %q
            }
            """
        let g = try XCTUnwrap(try Loader.load(text: text, file: "small.fn2e").graphs["small"])
        for (k, graph) in [g, try Autodiff.gradient(of: g, loss: "loss")].enumerated() {
            let s = try CompiledGraph(graph: graph).schedule(batch: 3)
            let fused = s.kernels.compactMap { if case let .conv2dMaxPool(convs, _, w) = $0.call { (convs.map(\.algorithm), w != nil) } else { nil } }
            XCTAssertEqual(fused.map(\.0), [[.winograd], [.winograd]], s.kernels.map(\.label).joined(separator: " "))
            XCTAssertFalse(s.kernels.contains { $0.label == "max_pool" })
            XCTAssertEqual(fused.map(\.1), k == 0 ? [false, false] : [true, true])
            try check(graph, s, seed: 17)
        }
    }
}
