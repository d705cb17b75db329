import Kernels
import Reference
import XCTest

/// Winograd F(4x4, 3x3) kernels against the Double reference.
///
/// Tolerance: max |fast − ref| ≤ tol · (1 + max |ref|) with tol = 2e-5 for all three directions.
/// Measured worst of max |fast − ref| / (1 + max |ref|) over these cases (inputs ±[0.1, 1), weights
/// ±[0.05, 0.5); each test prints its worst): forward 4.0e-6, backward data 4.0e-6, weight gradient
/// 2.6e-6. So 2e-5 leaves a margin of 5x, and a wrong transform (which errs by O(1)) still fails.
final class WinogradTests: XCTestCase {
    struct Case {
        var n, c, h, w, o: Int
        var p: (Int, Int)
    }

    static let cases: [Case] = [
        Case(n: 1, c: 3, h: 7, w: 5, o: 4, p: (1, 1)),
        Case(n: 2, c: 3, h: 7, w: 5, o: 4, p: (0, 0)),
        Case(n: 3, c: 5, h: 9, w: 11, o: 7, p: (2, 2)),
        Case(n: 1, c: 1, h: 3, w: 3, o: 3, p: (0, 0)),
        Case(n: 2, c: 1, h: 3, w: 3, o: 5, p: (1, 1)),
        Case(n: 1, c: 4, h: 3, w: 3, o: 2, p: (2, 2)),
        Case(n: 2, c: 20, h: 9, w: 11, o: 3, p: (1, 0)),
        Case(n: 3, c: 6, h: 10, w: 13, o: 20, p: (0, 2)),
        Case(n: 1, c: 8, h: 8, w: 8, o: 8, p: (1, 1)),
        Case(n: 2, c: 32, h: 14, w: 14, o: 16, p: (1, 1)),
        Case(n: 1, c: 16, h: 23, w: 17, o: 24, p: (1, 2)),
        // Chunks in flight, one per worker (two workers): 324 tiles in chunks of 72, the last of 36.
        Case(n: 9, c: 16, h: 24, w: 24, o: 32, p: (1, 1)),
    ]

    func geometry(_ t: Case) -> ConvGeometry {
        ConvGeometry(batch: t.n, inChannels: t.c, height: t.h, width: t.w, outChannels: t.o, kernel: (3, 3),
                     stride: (1, 1), pad: t.p)
    }

    /// max |fast − ref| / (1 + max |ref|), for reporting the measured error.
    func relativeError(_ fast: [Float], _ ref: [Double]) -> Double {
        let maxRef = ref.reduce(0) { max($0, abs($1)) }
        var worst = 0.0
        for i in 0..<ref.count { worst = max(worst, abs(Double(fast[i]) - ref[i])) }
        return worst / (1 + maxRef)
    }

    static let tol = 2e-5

    func testEligibility() {
        let ok = ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: (3, 3), pad: (1, 1))
        XCTAssertTrue(ok.winogradEligible)
        XCTAssertTrue(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: (3, 3),
                                   pad: (0, 2)).winogradEligible)
        XCTAssertFalse(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: (3, 3),
                                    stride: (2, 2), pad: (1, 1)).winogradEligible, "stride 2")
        XCTAssertFalse(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: (5, 5),
                                    pad: (2, 2)).winogradEligible, "5x5")
        XCTAssertFalse(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: (3, 3),
                                    pad: (2, 2), dilation: (2, 2)).winogradEligible, "dilation 2")
        XCTAssertFalse(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: (3, 3),
                                    pad: (1, 1), groups: 2).winogradEligible, "groups 2")
        XCTAssertFalse(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: (3, 3),
                                    pad: (3, 3)).winogradEligible, "pad 3")
        XCTAssertFalse(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: (1, 1))
            .winogradEligible, "1x1")
    }

    func testForwardMatchesReference() {
        var worst = 0.0
        for (i, t) in Self.cases.enumerated() {
            let g = geometry(t)
            XCTAssertTrue(g.winogradEligible)
            let xShape = [t.n, t.c, t.h, t.w], wShape = [t.o, t.c, 3, 3]
            let x = rounded(randomValues(g.inputCount, seed: UInt64(10 + i)))
            let w = rounded(randomValues(g.weightCount, seed: UInt64(100 + i), scale: 0.5))
            let b = rounded(randomValues(t.o, seed: UInt64(200 + i)))
            for withBias in [true, false] {
                let ref = RefOps.conv2d(x: x, xShape: xShape, w: w, wShape: wShape, bias: withBias ? b : nil,
                                        stride: (1, 1), pad: t.p)
                for act in [Activation.none, .relu(negativeSlope: 0), .relu(negativeSlope: 0.1)] {
                    // NaN everywhere: y must be fully written, and the workspace may start as garbage.
                    var y = [Float](repeating: .nan, count: g.outputCount)
                    var ws = [Float](repeating: .nan, count: g.winogradForwardWorkspace)
                    withOptional(withBias ? floats(b) : nil) { bp in
                        FastOps.conv2dWinograd(x: floats(x), w: floats(w), bias: bp, y: &y, geometry: g,
                                               activation: act, workspace: &ws)
                    }
                    var expect = ref.out
                    if case let .relu(s) = act { expect = RefOps.relu(ref.out, negativeSlope: Double(s)) }
                    let label = "winograd forward n\(t.n) c\(t.c) \(t.h)x\(t.w) o\(t.o) pad \(t.p) bias \(withBias) \(act)"
                    assertClose(y, expect, label, tol: Self.tol)
                    worst = max(worst, relativeError(y, expect))
                }
            }
        }
        print("WinogradTests: worst forward error \(worst) (OpenBLAS core \(BLAS.corename))")
    }

    func testBackwardDataMatchesReference() {
        var worst = 0.0
        for (i, t) in Self.cases.enumerated() {
            let g = geometry(t)
            let xShape = [t.n, t.c, t.h, t.w], wShape = [t.o, t.c, 3, 3]
            let w = rounded(randomValues(g.weightCount, seed: UInt64(130 + i), scale: 0.5))
            let dy = rounded(randomValues(g.outputCount, seed: UInt64(230 + i)))
            var dx = [Float](repeating: .nan, count: g.inputCount)
            var ws = [Float](repeating: .nan, count: g.winogradBackwardDataWorkspace)
            FastOps.conv2dBackwardDataWinograd(dy: floats(dy), w: floats(w), dx: &dx, geometry: g, workspace: &ws)
            let ref = RefOps.conv2dBackwardData(dy: dy, w: w, wShape: wShape, xShape: xShape, stride: (1, 1), pad: t.p)
            assertClose(dx, ref, "winograd backward data n\(t.n) c\(t.c) \(t.h)x\(t.w) o\(t.o) pad \(t.p)", tol: Self.tol)
            worst = max(worst, relativeError(dx, ref))
        }
        print("WinogradTests: worst backward-data error \(worst)")
    }

    func testBackwardFilterMatchesReference() {
        var worst = 0.0
        for (i, t) in Self.cases.enumerated() {
            let g = geometry(t)
            let xShape = [t.n, t.c, t.h, t.w], wShape = [t.o, t.c, 3, 3]
            let x = rounded(randomValues(g.inputCount, seed: UInt64(30 + i)))
            let dy = rounded(randomValues(g.outputCount, seed: UInt64(330 + i)))
            var dw = [Float](repeating: .nan, count: g.weightCount)
            var ws = [Float](repeating: .nan, count: g.winogradBackwardFilterWorkspace)
            FastOps.conv2dBackwardFilterWinograd(dy: floats(dy), x: floats(x), dw: &dw, geometry: g, workspace: &ws)
            let ref = RefOps.conv2dBackwardFilter(dy: dy, x: x, xShape: xShape, wShape: wShape, stride: (1, 1), pad: t.p)
            assertClose(dw, ref, "winograd backward filter n\(t.n) c\(t.c) \(t.h)x\(t.w) o\(t.o) pad \(t.p)", tol: Self.tol)
            worst = max(worst, relativeError(dw, ref))
        }
        print("WinogradTests: worst backward-filter error \(worst)")
    }

    /// Two chunks: with C + O = 456 a chunk holds 256 tiles; 261 images of one 2x2-output tile each make a full
    /// chunk and a last one of 5 tiles (not a multiple of 8).
    func testTwoChunks() {
        let g = ConvGeometry(batch: 261, inChannels: 450, height: 4, width: 4, outChannels: 6, kernel: (3, 3), pad: (0, 0))
        let xShape = [261, 450, 4, 4], wShape = [6, 450, 3, 3]
        XCTAssertLessThan(g.winogradForwardWorkspace, 36 * 6 * 450 + 36 * 456 * 257)
        let x = rounded(randomValues(g.inputCount, seed: 7))
        let w = rounded(randomValues(g.weightCount, seed: 8, scale: 0.5))
        let dy = rounded(randomValues(g.outputCount, seed: 9))
        var y = [Float](repeating: .nan, count: g.outputCount)
        var ws = [Float](repeating: .nan, count: g.winogradForwardWorkspace)
        FastOps.conv2dWinograd(x: floats(x), w: floats(w), bias: nil, y: &y, geometry: g, activation: .none, workspace: &ws)
        assertClose(y, RefOps.conv2d(x: x, xShape: xShape, w: w, wShape: wShape, bias: nil, stride: (1, 1), pad: (0, 0)).out,
                    "winograd forward two chunks", tol: Self.tol)
        var dx = [Float](repeating: .nan, count: g.inputCount)
        ws = [Float](repeating: .nan, count: g.winogradBackwardDataWorkspace)
        FastOps.conv2dBackwardDataWinograd(dy: floats(dy), w: floats(w), dx: &dx, geometry: g, workspace: &ws)
        assertClose(dx, RefOps.conv2dBackwardData(dy: dy, w: w, wShape: wShape, xShape: xShape, stride: (1, 1), pad: (0, 0)),
                    "winograd backward data two chunks", tol: Self.tol)
        var dw = [Float](repeating: .nan, count: g.weightCount)
        ws = [Float](repeating: .nan, count: g.winogradBackwardFilterWorkspace)
        FastOps.conv2dBackwardFilterWinograd(dy: floats(dy), x: floats(x), dw: &dw, geometry: g, workspace: &ws)
        assertClose(dw, RefOps.conv2dBackwardFilter(dy: dy, x: x, xShape: xShape, wShape: wShape, stride: (1, 1), pad: (0, 0)),
                    "winograd backward filter two chunks", tol: Self.tol)
    }

    /// The forward with a 2x2 pool (each output tile pooled in registers) gives exactly the separate
    /// convolution and `maxPool`: values and winners, with and without the ReLU mask, for borders
    /// that clip tiles and windows (14x22, 9x13 floored to 4x6) and chunks in flight (9 images of 24x24).
    func testPooledForwardEqualsConvolutionThenPool() {
        for (i, t) in [Case(n: 3, c: 16, h: 14, w: 22, o: 16, p: (1, 1)), Case(n: 2, c: 16, h: 7, w: 11, o: 24, p: (2, 2)),
                       Case(n: 9, c: 16, h: 24, w: 24, o: 32, p: (1, 1))].enumerated() {
            let g = geometry(t)
            let pool = PoolGeometry(batch: t.n, channels: t.o, height: g.outH, width: g.outW, kernel: (2, 2), stride: (2, 2), ceil: false)
            let x = floats(randomValues(g.inputCount, seed: UInt64(40 + i))), w = floats(randomValues(g.weightCount, seed: UInt64(50 + i), scale: 0.5))
            let b = floats(randomValues(t.o, seed: UInt64(60 + i)))
            var ws = [Float](repeating: 0, count: g.winogradForwardWorkspace), y = [Float](repeating: 0, count: g.outputCount)
            FastOps.conv2dWinograd(x: x, w: w, bias: b, y: &y, geometry: g, activation: .relu(negativeSlope: 0), workspace: &ws)
            for mask in [false, true] {
                var p1 = [Float](repeating: 0, count: pool.outputCount), p2 = [Float](repeating: 1, count: pool.outputCount)
                var a1 = [UInt8](repeating: 0, count: pool.outputCount), a2 = [UInt8](repeating: 7, count: pool.outputCount)
                FastOps.maxPool(x: y, y: &p1, argmax: &a1, geometry: pool, reluMask: mask)
                FastOps.conv2dWinograd(x: x, w: w, bias: b, y: &p2, geometry: g, activation: .relu(negativeSlope: 0), workspace: &ws,
                                       pool: pool, winners: &a2, reluMask: mask)
                XCTAssertEqual(p1, p2, "case \(i), mask \(mask)")
                XCTAssertEqual(a1, a2, "case \(i), mask \(mask)")
                XCTAssertTrue(a1.contains(FastOps.noWinner) == mask, "case \(i): ReLU zeros give no winner only with the mask")
            }
        }
    }
}
