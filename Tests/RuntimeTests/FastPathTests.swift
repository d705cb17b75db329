import Kernels
import Reference
import Tensors
import XCTest

/// The runtime's fast paths (2x2 pooling, fused ReLU mask, channel sums) against RefOps, exactly
/// (they only move and compare values) or within 1e-5 relative (sums).
final class FastPathTests: XCTestCase {
    func values(_ n: Int, seed: UInt64, ties: Bool) -> [Float] {
        var rng = Xoshiro256(seed: seed)
        // Rounded to tenths around zero: ties within windows and non-positive winners both happen.
        return (0..<n).map { _ in ties ? (rng.nextFloat() * 10 - 5).rounded() / 10 : rng.nextFloat() * 2 - 1 }
    }

    func testMaxPool2x2FastPathsMatchReference() {
        for (h, w, ceil) in [(8, 8, true), (7, 9, false), (7, 7, true), (6, 10, true)] {
            for ties in [false, true] {
                let g = PoolGeometry(batch: 2, channels: 3, height: h, width: w, kernel: (2, 2), stride: (2, 2), ceil: ceil)
                let x = values(g.inputCount, seed: UInt64(h * w), ties: ties), dy = values(g.outputCount, seed: 9, ties: false)
                let xd = x.map(Double.init), dyd = dy.map(Double.init), shape = [2, 3, h, w]
                let ref = RefOps.maxPool(x: xd, xShape: shape, kernel: (2, 2), stride: (2, 2), pad: (0, 0), ceil: ceil).out
                var y = [Float](repeating: .nan, count: g.outputCount)
                FastOps.maxPool(x: x, y: &y, argmax: nil, geometry: g)
                XCTAssertEqual(y.map(Double.init), ref, "\(h)x\(w) ceil=\(ceil)")
                let refDx = RefOps.maxPoolBackward(dy: dyd, x: xd, xShape: shape, kernel: (2, 2), stride: (2, 2), pad: (0, 0), ceil: ceil)
                var dx = [Float](repeating: .nan, count: g.inputCount)
                FastOps.maxPoolBackward(dy: dy, x: x, dx: &dx, geometry: g)
                XCTAssertEqual(dx.map(Double.init), refDx, "backward \(h)x\(w) ceil=\(ceil) ties=\(ties)")
                // relu_backward(x, max_pool_backward(x, dy)) in one kernel.
                let refMasked = RefOps.reluBackward(dy: refDx, x: xd)
                dx = [Float](repeating: .nan, count: g.inputCount)
                FastOps.maxPoolBackward(dy: dy, x: x, dx: &dx, geometry: g, reluMask: true)
                XCTAssertEqual(dx.map(Double.init), refMasked, "masked backward \(h)x\(w) ceil=\(ceil) ties=\(ties)")
                // The generic path with the mask (3x3 windows).
                let g3 = PoolGeometry(batch: 2, channels: 3, height: h, width: w, kernel: (3, 3), stride: (2, 2), ceil: ceil)
                let ref3 = RefOps.maxPoolBackward(dy: values(g3.outputCount, seed: 2, ties: false).map(Double.init), x: xd, xShape: shape,
                                                  kernel: (3, 3), stride: (2, 2), pad: (0, 0), ceil: ceil)
                var dx3 = [Float](repeating: .nan, count: g3.inputCount)
                FastOps.maxPoolBackward(dy: values(g3.outputCount, seed: 2, ties: false), x: x, dx: &dx3, geometry: g3, reluMask: true)
                XCTAssertEqual(dx3.map(Double.init), RefOps.reluBackward(dy: ref3, x: xd), "masked 3x3 \(h)x\(w)")
            }
        }
    }

    func testChannelSumMatchesReference() {
        for shape in [[3, 5, 7, 9], [2, 16, 33], [4, 6], [1, 1, 100]] {
            let x = values(shape.reduce(1, *), seed: 3, ties: false)
            let ref = RefOps.sum(x: x.map(Double.init), shape: shape, axes: shape.indices.filter { $0 != 1 }).out
            var y = [Float](repeating: .nan, count: shape[1])
            FastOps.sum(x: x, shape: shape, axes: shape.indices.filter { $0 != 1 }, y: &y)
            XCTAssertLessThanOrEqual(relativeError(y, ref), 1e-5, "\(shape)")
        }
    }
}
