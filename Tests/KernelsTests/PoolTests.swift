import Kernels
import Reference
import XCTest

final class PoolTests: XCTestCase {
    struct Case { var n, c, h, w: Int; var k: (Int, Int), s: (Int, Int), p: (Int, Int); var ceil: Bool; var label: String }

    static let cases: [Case] = [
        Case(n: 1, c: 3, h: 6, w: 6, k: (3, 3), s: (2, 2), p: (1, 1), ceil: true, label: "H6 k3 s2 p1 ceil"),
        Case(n: 3, c: 2, h: 5, w: 5, k: (2, 2), s: (2, 2), p: (1, 1), ceil: true, label: "last window in padding dropped"),
        Case(n: 1, c: 3, h: 7, w: 5, k: (3, 3), s: (2, 2), p: (0, 0), ceil: true, label: "7x5 k3 s2 ceil"),
        Case(n: 3, c: 3, h: 7, w: 5, k: (3, 3), s: (2, 2), p: (1, 1), ceil: false, label: "floor mode"),
        Case(n: 2, c: 2, h: 7, w: 5, k: (3, 2), s: (1, 2), p: (1, 0), ceil: true, label: "non-square"),
        Case(n: 2, c: 3, h: 7, w: 5, k: (7, 5), s: (1, 1), p: (0, 0), ceil: false, label: "global"),
        Case(n: 1, c: 1, h: 8, w: 8, k: (3, 3), s: (3, 3), p: (2, 2), ceil: true, label: "big pad ceil"),
        Case(n: 2, c: 3, h: 6, w: 8, k: (2, 2), s: (2, 2), p: (0, 0), ceil: false, label: "2x2 windows tile the plane"),
        Case(n: 2, c: 2, h: 7, w: 5, k: (2, 2), s: (2, 2), p: (0, 0), ceil: false, label: "2x2 disjoint, last row and column left out"),
        Case(n: 2, c: 2, h: 6, w: 23, k: (2, 2), s: (2, 2), p: (0, 0), ceil: false, label: "2x2 rows of 11 windows: vectors and a tail"),
        Case(n: 2, c: 3, h: 4, w: 22, k: (2, 2), s: (2, 2), p: (0, 0), ceil: false, label: "2x2 tiling rows of 11 windows: vectors and a tail"),
        Case(n: 2, c: 3, h: 6, w: 24, k: (2, 2), s: (2, 2), p: (0, 0), ceil: false, label: "2x2 tiling rows of 12 windows (vectors)"),
    ]

    func geometry(_ t: Case) -> PoolGeometry {
        PoolGeometry(batch: t.n, channels: t.c, height: t.h, width: t.w, kernel: t.k, stride: t.s, pad: t.p, ceil: t.ceil)
    }

    func testMaxPool() {
        for (i, t) in Self.cases.enumerated() {
            let g = geometry(t), xShape = [t.n, t.c, t.h, t.w]
            let x = rounded(randomValues(g.inputCount, seed: UInt64(500 + i)))
            let ref = RefOps.maxPool(x: x, xShape: xShape, kernel: t.k, stride: t.s, pad: t.p, ceil: t.ceil)
            XCTAssertEqual(ref.shape, [t.n, t.c, g.outH, g.outW], t.label)
            var y = [Float](repeating: .nan, count: g.outputCount)
            var arg = [UInt8](repeating: 7, count: g.outputCount)
            FastOps.maxPool(x: floats(x), y: &y, argmax: &arg, geometry: g)
            assertClose(y, ref.out, "max pool \(t.label)")
            XCTAssertEqual(arg.map(Int.init), places(ref.argmax, g), "max pool argmax \(t.label)")
            let dy = rounded(randomValues(g.outputCount, seed: UInt64(600 + i)))
            let refDx = RefOps.maxPoolBackward(dy: dy, x: x, xShape: xShape, kernel: t.k, stride: t.s, pad: t.p, ceil: t.ceil)
            var dx = [Float](repeating: .nan, count: g.inputCount)
            FastOps.maxPoolBackward(dy: floats(dy), argmax: arg, dx: &dx, geometry: g)
            assertClose(dx, refDx, "max pool backward (argmax) \(t.label)")
            dx = [Float](repeating: .nan, count: g.inputCount)
            FastOps.maxPoolBackward(dy: floats(dy), x: floats(x), dx: &dx, geometry: g)
            assertClose(dx, refDx, "max pool backward (recomputed) \(t.label)")

            // Finite differences, skipping inputs in a window whose top two candidates are within 1e-3.
            let nearTie = nearTies(x, xShape: xShape, t)
            checkGradient("max pool \(t.label)", x: x, analytic: refDx, skip: { nearTie.contains($0) }) {
                project(RefOps.maxPool(x: $0, xShape: xShape, kernel: t.k, stride: t.s, pad: t.p, ceil: t.ceil).out, dy)
            }
        }
    }

    /// The winners a pool records with `reluMask` give exactly the gradient that searches them again
    /// in x with the ReLU mask (what the Scheduler's recorded winners replace), on values full of
    /// ties, zeros, negatives and -inf (windows with no winner).
    func testRecordedWinnersEqualTheReluMaskedSearch() {
        let values: [Float] = [-.infinity, -1, 0, 0.5, 1]
        for (i, t) in Self.cases.enumerated() {
            let g = geometry(t)
            var state = UInt64(900 + i)
            let x: [Float] = (0..<g.inputCount).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return values[Int(state >> 33) % values.count]
            }
            let dy = randomValues(g.outputCount, seed: UInt64(950 + i)).map(Float.init)
            for mask in [false, true] {
                var y = [Float](repeating: .nan, count: g.outputCount), arg = [UInt8](repeating: 7, count: g.outputCount)
                FastOps.maxPool(x: x, y: &y, argmax: &arg, geometry: g, reluMask: mask)
                var fromWinners = [Float](repeating: .nan, count: g.inputCount), searched = fromWinners
                FastOps.maxPoolBackward(dy: dy, argmax: arg, dx: &fromWinners, geometry: g)
                FastOps.maxPoolBackward(dy: dy, x: x, dx: &searched, geometry: g, reluMask: mask)
                XCTAssertEqual(fromWinners, searched, "\(t.label), reluMask \(mask)")
                var plain = [Float](repeating: .nan, count: g.outputCount)
                FastOps.maxPool(x: x, y: &plain, argmax: nil, geometry: g)
                XCTAssertEqual(y, plain, "\(t.label): recording winners changes the pooled values")
            }
        }
    }

    /// The inference pool (no winners), alone and with a PReLU fused in (one slope, or one per
    /// channel, negative ones included, so the activation is not monotone), against the Double
    /// reference's prelu then max pool, on every case and on MTCNN's pools (3x3 at stride 2 over
    /// R-Net's 22x22 and O-Net's 46x46, 2x2 over P-Net's odd sizes, ceil mode), and larger planes, exactly.
    func testInferencePoolWithPReLU() {
        let extra = [
            Case(n: 2, c: 3, h: 22, w: 22, k: (3, 3), s: (2, 2), p: (0, 0), ceil: true, label: "R-Net pool1"),
            Case(n: 1, c: 2, h: 46, w: 46, k: (3, 3), s: (2, 2), p: (0, 0), ceil: true, label: "O-Net pool1"),
            Case(n: 1, c: 2, h: 9, w: 9, k: (3, 3), s: (2, 2), p: (0, 0), ceil: true, label: "R-Net pool2"),
            Case(n: 1, c: 3, h: 37, w: 53, k: (2, 2), s: (2, 2), p: (0, 0), ceil: true, label: "P-Net pool1, odd sizes"),
            Case(n: 1, c: 2, h: 9, w: 31, k: (3, 3), s: (2, 2), p: (1, 1), ceil: false, label: "padded, floor"),
            Case(n: 1, c: 2, h: 5, w: 2, k: (3, 3), s: (2, 2), p: (0, 0), ceil: true, label: "window wider than the plane"),
            Case(n: 1, c: 2, h: 6, w: 22, k: (2, 3), s: (1, 2), p: (0, 2), ceil: true, label: "padding wider than half the window"),
            Case(n: 1, c: 2, h: 71, w: 70, k: (3, 3), s: (2, 2), p: (1, 1), ceil: true, label: "a large plane"),
            Case(n: 1, c: 2, h: 67, w: 89, k: (2, 2), s: (2, 2), p: (0, 0), ceil: true, label: "a large plane, odd sizes"),
        ]
        for (i, t) in (Self.cases + extra).enumerated() {
            let g = geometry(t), xShape = [t.n, t.c, t.h, t.w]
            let x = rounded(randomValues(g.inputCount, seed: UInt64(700 + i)))
            for slopes in [nil, [0.25], (0..<t.c).map { [0.25, -0.5, 0][$0 % 3] }] as [[Double]?] {
                let input = slopes.map { RefOps.prelu(x: x, shape: xShape, slope: $0) } ?? x
                let ref = RefOps.maxPool(x: input, xShape: xShape, kernel: t.k, stride: t.s, pad: t.p, ceil: t.ceil).out
                var y = [Float](repeating: .nan, count: g.outputCount)
                let a = floats(slopes ?? [])
                a.withUnsafeBufferPointer { a in
                    FastOps.maxPool(x: floats(x), y: &y, argmax: nil, geometry: g, slopes: slopes == nil ? nil : a.baseAddress, slopeCount: a.count)
                }
                XCTAssertEqual(y.map(Double.init), ref, "\(t.label), slopes \(slopes.map { "\($0)" } ?? "none")")
            }
        }
    }

    /// The reference's winners `h · W + w` in their plane as `maxPool` records them: the place
    /// `i · kernelW + j` in the window, `noWinner` for none.
    func places(_ argmax: [Int], _ g: PoolGeometry) -> [Int] {
        argmax.enumerated().map { o, a in
            let (oy, ox) = (o % (g.outH * g.outW) / g.outW, o % g.outW)
            return a < 0 ? Int(FastOps.noWinner) : (a / g.width - oy * g.strideH + g.padH) * g.kernelW + a % g.width - ox * g.strideW + g.padW
        }
    }

    /// Inputs in any window whose best two values differ by less than 1e-3.
    func nearTies(_ x: [Double], xShape: [Int], _ t: Case) -> Set<Int> {
        let g = geometry(t)
        var out = Set<Int>()
        for p in 0..<g.planes { for oy in 0..<g.outH { for ox in 0..<g.outW {
            let hs = oy * t.s.0 - t.p.0, ws = ox * t.s.1 - t.p.1
            var idx: [Int] = []
            for iy in max(hs, 0)..<min(hs + t.k.0, t.h) { for ix in max(ws, 0)..<min(ws + t.k.1, t.w) { idx.append(p * t.h * t.w + iy * t.w + ix) } }
            let vals = idx.map { x[$0] }.sorted(by: >)
            if vals.count > 1 && vals[0] - vals[1] < 1e-3 { out.formUnion(idx) }
        } } }
        return out
    }

    func testAvgPool() {
        for (i, t) in Self.cases.enumerated() {
            let g = geometry(t), xShape = [t.n, t.c, t.h, t.w]
            let x = rounded(randomValues(g.inputCount, seed: UInt64(700 + i)))
            let ref = RefOps.avgPool(x: x, xShape: xShape, kernel: t.k, stride: t.s, pad: t.p, ceil: t.ceil)
            var y = [Float](repeating: .nan, count: g.outputCount)
            FastOps.avgPool(x: floats(x), y: &y, geometry: g)
            assertClose(y, ref.out, "avg pool \(t.label)")
            let dy = rounded(randomValues(g.outputCount, seed: UInt64(800 + i)))
            let refDx = RefOps.avgPoolBackward(dy: dy, xShape: xShape, kernel: t.k, stride: t.s, pad: t.p, ceil: t.ceil)
            var dx = [Float](repeating: .nan, count: g.inputCount)
            FastOps.avgPoolBackward(dy: floats(dy), dx: &dx, geometry: g)
            assertClose(dx, refDx, "avg pool backward \(t.label)")
            checkGradient("avg pool \(t.label)", x: x, analytic: refDx) {
                project(RefOps.avgPool(x: $0, xShape: xShape, kernel: t.k, stride: t.s, pad: t.p, ceil: t.ceil).out, dy)
            }
        }
    }

    /// Caffe's divisor counts padding up to H + pad: a 3x3 window at the top-left corner with pad 1
    /// over an all-ones image averages 4 ones over 9.
    func testAvgPoolCaffeDivisor() {
        let x = [Double](repeating: 1, count: 36)
        let ref = RefOps.avgPool(x: x, xShape: [1, 1, 6, 6], kernel: (3, 3), stride: (2, 2), pad: (1, 1), ceil: true)
        XCTAssertEqual(ref.shape, [1, 1, 4, 4])
        XCTAssertEqual(ref.out[0], 4.0 / 9.0, accuracy: 1e-12)
        // Last window: hstart = 5, hend = min(8, 7) = 7 → divisor 2 rows × 2 cols; 1 real pixel.
        XCTAssertEqual(ref.out[15], 1.0 / 4.0, accuracy: 1e-12)
        var y = [Float](repeating: 0, count: 16)
        FastOps.avgPool(x: floats(x), y: &y, geometry: PoolGeometry(batch: 1, channels: 1, height: 6, width: 6, kernel: (3, 3), stride: (2, 2), pad: (1, 1)))
        assertClose(y, ref.out, "avg divisor")
    }

    func testGlobalGeometry() {
        let g = PoolGeometry.global(batch: 2, channels: 3, height: 7, width: 5)
        XCTAssertEqual([g.outH, g.outW], [1, 1])
    }
}
