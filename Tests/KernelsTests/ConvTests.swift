import Kernels
import Shapes
import Reference
import XCTest

final class ConvTests: XCTestCase {
    struct Case {
        var n, c, h, w, o: Int
        var k: (Int, Int), s: (Int, Int), p: (Int, Int), d: (Int, Int) = (1, 1), g: Int = 1
        var label: String
    }

    static let cases: [Case] = [
        Case(n: 1, c: 3, h: 7, w: 5, o: 4, k: (3, 3), s: (1, 1), p: (1, 1), label: "3x3 s1 p1 batch1"),
        Case(n: 3, c: 3, h: 7, w: 5, o: 4, k: (3, 3), s: (2, 2), p: (1, 1), label: "3x3 s2 p1 batch3"),
        Case(n: 1, c: 2, h: 7, w: 6, o: 3, k: (3, 3), s: (1, 1), p: (2, 2), d: (2, 2), label: "dilation 2"),
        Case(n: 2, c: 4, h: 6, w: 5, o: 6, k: (3, 3), s: (1, 1), p: (1, 1), g: 2, label: "groups 2"),
        Case(n: 1, c: 3, h: 5, w: 7, o: 3, k: (3, 3), s: (2, 2), p: (1, 1), g: 3, label: "depthwise s2"),
        Case(n: 3, c: 3, h: 5, w: 7, o: 4, k: (1, 1), s: (1, 1), p: (0, 0), label: "1x1 fast path"),
        Case(n: 1, c: 4, h: 3, w: 5, o: 4, k: (1, 1), s: (1, 1), p: (0, 0), g: 2, label: "1x1 groups 2"),
        Case(n: 1, c: 2, h: 6, w: 5, o: 2, k: (3, 2), s: (2, 1), p: (1, 0), label: "non-square kernel"),
        Case(n: 1, c: 2, h: 5, w: 5, o: 3, k: (1, 1), s: (2, 2), p: (1, 1), label: "1x1 strided padded"),
    ]

    func geometry(_ t: Case) -> ConvGeometry {
        ConvGeometry(batch: t.n, inChannels: t.c, height: t.h, width: t.w, outChannels: t.o, kernel: t.k,
                     stride: t.s, pad: t.p, dilation: t.d, groups: t.g)
    }

    func testForwardMatchesReference() {
        for (i, t) in Self.cases.enumerated() {
            let g = geometry(t)
            let x = rounded(randomValues(g.inputCount, seed: UInt64(10 + i)))
            let w = rounded(randomValues(g.weightCount, seed: UInt64(100 + i), scale: 0.5))
            let b = rounded(randomValues(t.o, seed: UInt64(200 + i)))
            let ref = RefOps.conv2d(x: x, xShape: [t.n, t.c, t.h, t.w], w: w, wShape: [t.o, t.c / t.g, t.k.0, t.k.1],
                                    bias: b, stride: t.s, pad: t.p, dilation: t.d, groups: t.g)
            XCTAssertEqual(ref.shape, [t.n, t.o, g.outH, g.outW], t.label)
            for act in [Activation.none, .relu(negativeSlope: 0), .relu(negativeSlope: 0.1)] {
                var y = [Float](repeating: .nan, count: g.outputCount)
                var ws = [Float](repeating: .nan, count: max(1, g.workspaceCount))
                withOptional(floats(b)) { bp in
                    FastOps.conv2d(x: floats(x), w: floats(w), bias: bp, y: &y, geometry: g, activation: act, workspace: &ws)
                }
                var expect = ref.out
                if case let .relu(s) = act { expect = RefOps.relu(ref.out, negativeSlope: Double(s)) }
                assertClose(y, expect, "conv2d \(t.label) \(act)")
            }
            // No bias, caller-provided workspace.
            var y = [Float](repeating: .nan, count: g.outputCount)
            var ws = [Float](repeating: .nan, count: max(1, g.workspaceCount))
            FastOps.conv2d(x: floats(x), w: floats(w), bias: nil, y: &y, geometry: g, workspace: &ws)
            let refNoBias = RefOps.conv2d(x: x, xShape: [t.n, t.c, t.h, t.w], w: w, wShape: [t.o, t.c / t.g, t.k.0, t.k.1],
                                          bias: nil, stride: t.s, pad: t.p, dilation: t.d, groups: t.g)
            assertClose(y, refNoBias.out, "conv2d no bias \(t.label)")
        }
    }

    func testBackwardMatchesReference() {
        for (i, t) in Self.cases.enumerated() {
            let g = geometry(t)
            let xShape = [t.n, t.c, t.h, t.w], wShape = [t.o, t.c / t.g, t.k.0, t.k.1]
            let x = rounded(randomValues(g.inputCount, seed: UInt64(30 + i)))
            let w = rounded(randomValues(g.weightCount, seed: UInt64(130 + i), scale: 0.5))
            let dy = rounded(randomValues(g.outputCount, seed: UInt64(230 + i)))
            var dx = [Float](repeating: .nan, count: g.inputCount)
            var ws = [Float](repeating: .nan, count: max(1, g.workspaceCount))
            FastOps.conv2dBackwardData(dy: floats(dy), w: floats(w), dx: &dx, geometry: g, workspace: &ws)
            assertClose(dx, RefOps.conv2dBackwardData(dy: dy, w: w, wShape: wShape, xShape: xShape, stride: t.s, pad: t.p,
                                                      dilation: t.d, groups: t.g), "conv2d backward data \(t.label)")
            var dw = [Float](repeating: .nan, count: g.weightCount)
            FastOps.conv2dBackwardFilter(dy: floats(dy), x: floats(x), dw: &dw, geometry: g, workspace: &ws)
            let refDw = RefOps.conv2dBackwardFilter(dy: dy, x: x, xShape: xShape, wShape: wShape, stride: t.s, pad: t.p,
                                                    dilation: t.d, groups: t.g)
            assertClose(dw, refDw, "conv2d backward filter \(t.label)")
            // accumulate: a second call adds the same gradient again.
            FastOps.conv2dBackwardFilter(dy: floats(dy), x: floats(x), dw: &dw, geometry: g, accumulate: true, workspace: &ws)
            assertClose(dw, refDw.map { 2 * $0 }, "conv2d backward filter accumulate \(t.label)")
        }
    }

    /// The one-GEMM-per-batch kernels (groups 1) against the reference, forward and both gradients.
    func testBatchedMatchesReference() {
        for (i, t) in Self.cases.enumerated() where t.g == 1 {
            let g = geometry(t)
            let xShape = [t.n, t.c, t.h, t.w], wShape = [t.o, t.c, t.k.0, t.k.1]
            let x = rounded(randomValues(g.inputCount, seed: UInt64(50 + i)))
            let w = rounded(randomValues(g.weightCount, seed: UInt64(150 + i), scale: 0.5))
            let b = rounded(randomValues(t.o, seed: UInt64(250 + i)))
            let dy = rounded(randomValues(g.outputCount, seed: UInt64(350 + i)))
            var ws = [Float](repeating: .nan, count: g.batchedWorkspaceCount)
            var y = [Float](repeating: .nan, count: g.outputCount)
            FastOps.conv2dBatched(x: floats(x), w: floats(w), bias: floats(b), y: &y, geometry: g, activation: .relu(negativeSlope: 0.1), workspace: &ws)
            let ref = RefOps.conv2d(x: x, xShape: xShape, w: w, wShape: wShape, bias: b, stride: t.s, pad: t.p, dilation: t.d)
            assertClose(y, RefOps.relu(ref.out, negativeSlope: 0.1), "batched conv2d \(t.label)")
            var dx = [Float](repeating: .nan, count: g.inputCount)
            FastOps.conv2dBackwardDataBatched(dy: floats(dy), w: floats(w), dx: &dx, geometry: g, workspace: &ws)
            assertClose(dx, RefOps.conv2dBackwardData(dy: dy, w: w, wShape: wShape, xShape: xShape, stride: t.s, pad: t.p, dilation: t.d),
                        "batched backward data \(t.label)")
            var dw = [Float](repeating: .nan, count: g.weightCount)
            FastOps.conv2dBackwardFilterBatched(dy: floats(dy), x: floats(x), dw: &dw, geometry: g, workspace: &ws)
            assertClose(dw, RefOps.conv2dBackwardFilter(dy: dy, x: x, xShape: xShape, wShape: wShape, stride: t.s, pad: t.p, dilation: t.d),
                        "batched backward filter \(t.label)")
        }
    }

    func testReferenceGradientsByFiniteDifferences() {
        let picks = [Self.cases[1], Self.cases[2], Self.cases[3], Self.cases[4]]
        for (i, t0) in picks.enumerated() {
            var t = t0
            t.n = min(t.n, 2)
            let xShape = [t.n, t.c, t.h, t.w], wShape = [t.o, t.c / t.g, t.k.0, t.k.1]
            let x = randomValues(xShape.reduce(1, *), seed: UInt64(40 + i))
            let w = randomValues(wShape.reduce(1, *), seed: UInt64(140 + i))
            let b = randomValues(t.o, seed: UInt64(240 + i))
            func fwd(_ x: [Double], _ w: [Double], _ b: [Double]) -> (out: [Double], shape: [Int]) {
                RefOps.conv2d(x: x, xShape: xShape, w: w, wShape: wShape, bias: b, stride: t.s, pad: t.p, dilation: t.d, groups: t.g)
            }
            let shape = fwd(x, w, b).shape
            let r = randomValues(shape.reduce(1, *), seed: UInt64(340 + i))
            checkGradient("conv dx \(t.label)", x: x, analytic: RefOps.conv2dBackwardData(
                dy: r, w: w, wShape: wShape, xShape: xShape, stride: t.s, pad: t.p, dilation: t.d, groups: t.g)) {
                project(fwd($0, w, b).out, r)
            }
            checkGradient("conv dw \(t.label)", x: w, analytic: RefOps.conv2dBackwardFilter(
                dy: r, x: x, xShape: xShape, wShape: wShape, stride: t.s, pad: t.p, dilation: t.d, groups: t.g)) {
                project(fwd(x, $0, b).out, r)
            }
            checkGradient("conv db \(t.label)", x: b, analytic: RefOps.biasGradient(dy: r, shape: shape)) {
                project(fwd(x, w, $0).out, r)
            }
        }
    }

    func testLinearForwardBackward() {
        for (n, k, m) in [(1, 5, 3), (3, 7, 4), (4, 16, 9)] {
            let x = rounded(randomValues(n * k, seed: UInt64(n * 100 + k)))
            let w = rounded(randomValues(m * k, seed: UInt64(m * 100 + k)))
            let b = rounded(randomValues(m, seed: UInt64(m)))
            let ref = RefOps.linear(x: x, n: n, k: k, w: w, m: m, bias: b)
            var y = [Float](repeating: .nan, count: n * m)
            FastOps.linear(x: floats(x), w: floats(w), bias: floats(b), y: &y, n: n, k: k, m: m)
            assertClose(y, ref, "linear \(n)x\(k)x\(m)")
            FastOps.linear(x: floats(x), w: floats(w), bias: floats(b), y: &y, n: n, k: k, m: m, activation: .relu(negativeSlope: 0.2))
            assertClose(y, RefOps.relu(ref, negativeSlope: 0.2), "linear+relu \(n)x\(k)x\(m)")
            FastOps.linear(x: floats(x), w: floats(w), bias: nil, y: &y, n: n, k: k, m: m)
            assertClose(y, RefOps.linear(x: x, n: n, k: k, w: w, m: m, bias: nil), "linear no bias")

            let dy = rounded(randomValues(n * m, seed: 77))
            let r = RefOps.linearBackward(dy: dy, x: x, w: w, n: n, k: k, m: m)

            checkGradient("linear dx", x: x, analytic: r.dx) { project(RefOps.linear(x: $0, n: n, k: k, w: w, m: m, bias: b), dy) }
            checkGradient("linear dw", x: w, analytic: r.dw) { project(RefOps.linear(x: x, n: n, k: k, w: $0, m: m, bias: b), dy) }
            checkGradient("linear db", x: b, analytic: r.db) { project(RefOps.linear(x: x, n: n, k: k, w: w, m: m, bias: $0), dy) }
        }
    }

    func testPoolOutputSizeRoundsLikeCaffe() {
        // Caffe rounds up: H=6, k=3, s=2, p=1 gives 4 (floor mode 3)...
        XCTAssertEqual(poolOutputSize(input: 6, kernel: 3, stride: 2, pad: 1, ceil: true), 4)
        XCTAssertEqual(poolOutputSize(input: 6, kernel: 3, stride: 2, pad: 1, ceil: false), 3)
        // ...but drops a last window that would start inside the padding: H=5, k=2, s=2, p=1.
        XCTAssertEqual(poolOutputSize(input: 5, kernel: 2, stride: 2, pad: 1, ceil: true), 3)
        XCTAssertEqual(poolOutputSize(input: 7, kernel: 3, stride: 2, pad: 0, ceil: true), 3)
        XCTAssertEqual(poolOutputSize(input: 8, kernel: 3, stride: 2, pad: 0, ceil: true), 4)
    }
}
