import Kernels
import Reference
import XCTest

final class ShapeOpsTests: XCTestCase {
    func testSumMean() {
        let shape = [2, 3, 4, 5]
        let x = rounded(randomValues(120, seed: 1))
        XCTAssertEqual(RefOps.sum(x: x, shape: shape, axes: nil).shape, [])
        for axes in [[0], [1], [3], [0, 2], [1, 2, 3], [0, 1, 2, 3]] {
            let ref = RefOps.sum(x: x, shape: shape, axes: axes, keepDims: true)
            var y = [Float](repeating: .nan, count: ref.out.count)
            FastOps.sum(x: floats(x), shape: shape, axes: axes, y: &y)
            assertClose(y, ref.out, "sum \(axes)")
            FastOps.mean(x: floats(x), shape: shape, axes: axes, y: &y)
            assertClose(y, RefOps.mean(x: x, shape: shape, axes: axes, keepDims: true).out, "mean \(axes)")
            XCTAssertEqual(RefOps.sum(x: x, shape: shape, axes: axes).shape, shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element))
        }
    }

    func testTranspose() {
        let cases: [([Int], [Int])] = [([2, 3], [1, 0]), ([2, 3, 4, 5], [0, 2, 3, 1]), ([2, 3, 4, 5], [3, 1, 0, 2]),
                                       ([2, 1, 3, 2, 2, 3], [5, 3, 1, 0, 4, 2]), ([4], [0]), ([2, 3, 4], [0, 1, 2])]
        for (shape, perm) in cases {
            let x = rounded(randomValues(shape.reduce(1, *), seed: 2))
            let ref = RefOps.transpose(x: x, shape: shape, perm: perm)
            var y = [Float](repeating: .nan, count: x.count)
            FastOps.transpose(x: floats(x), shape: shape, perm: perm, y: &y)
            assertClose(y, ref.out, "transpose \(shape) \(perm)")
            XCTAssertEqual(ref.shape, perm.map { shape[$0] })
        }
    }

    func testConcatSliceReplicate() {
        let a = rounded(randomValues(2 * 3 * 4, seed: 3)), b = rounded(randomValues(2 * 2 * 4, seed: 4))
        let ref = RefOps.concat([(a, [2, 3, 4]), (b, [2, 2, 4])], axis: 1)
        XCTAssertEqual(ref.shape, [2, 5, 4])
        var y = [Float](repeating: .nan, count: ref.out.count)
        floats(a).withUnsafeBufferPointer { pa in floats(b).withUnsafeBufferPointer { pb in
            FastOps.concat(inputs: [(pa.baseAddress!, [2, 3, 4]), (pb.baseAddress!, [2, 2, 4])], axis: 1, y: &y)
        } }
        assertClose(y, ref.out, "concat axis 1")
        let c0 = RefOps.concat([(a, [2, 3, 4]), (a, [2, 3, 4])], axis: 0)
        XCTAssertEqual(c0.out, a + a)

        for (axis, start, end) in [(0, 1, 2), (1, 1, 4), (2, 0, 3), (1, 2, 3)] {
            let x = ref.out, shape = [2, 5, 4]
            let r = RefOps.slice(x: x, shape: shape, axis: axis, start: start, end: end)
            var s = [Float](repeating: .nan, count: r.out.count)
            FastOps.slice(x: floats(x), shape: shape, axis: axis, start: start, end: end, y: &s)
            assertClose(s, r.out, "slice \(axis) \(start)..<\(end)")
            let dy = rounded(randomValues(r.out.count, seed: 5))
            let refDx = RefOps.sliceBackward(dy: dy, xShape: shape, axis: axis, start: start, length: end - start)
            var dx = [Float](repeating: .nan, count: x.count)
            FastOps.sliceBackward(dy: floats(dy), xShape: shape, axis: axis, start: start, length: end - start, dx: &dx)
            assertClose(dx, refDx, "slice backward")
            checkGradient("slice", x: x, analytic: refDx) { project(RefOps.slice(x: $0, shape: shape, axis: axis, start: start, end: end).out, dy) }
        }
        // Slicing the concatenation gives the parts back.
        XCTAssertEqual(RefOps.slice(x: ref.out, shape: [2, 5, 4], axis: 1, start: 3, end: 5).out, b)

        let g = rounded(randomValues(2 * 1 * 3 * 2, seed: 6))
        let rr = RefOps.channelReplicate(x: g, shape: [2, 1, 3, 2], k: 3)
        XCTAssertEqual(rr.shape, [2, 3, 3, 2])
        var yr = [Float](repeating: .nan, count: rr.out.count)
        FastOps.channelReplicate(x: floats(g), y: &yr, batch: 2, spatial: 6, k: 3)
        assertClose(yr, rr.out, "channel replicate")

        // Nearest-neighbour resize, up by a non-integer factor and down, and its adjoint.
        let r = rounded(randomValues(2 * 3 * 4 * 5, seed: 7))
        for (oh, ow) in [(9, 13), (3, 2), (4, 5)] {
            let ref = RefOps.resize(x: r, shape: [2, 3, 4, 5], oh: oh, ow: ow)
            var y = [Float](repeating: .nan, count: ref.count)
            FastOps.resize(x: floats(r), y: &y, planes: 6, h: 4, w: 5, oh: oh, ow: ow)
            assertClose(y, ref, "resize to \(oh)x\(ow)")
            let dy = rounded(randomValues(ref.count, seed: 8))
            let dxRef = RefOps.resizeBackward(dy: dy, dyShape: [2, 3, oh, ow], h: 4, w: 5)
            var dx = [Float](repeating: .nan, count: dxRef.count)
            FastOps.resizeBackward(dy: floats(dy), dx: &dx, planes: 6, h: 4, w: 5, oh: oh, ow: ow)
            assertClose(dx, dxRef, "resize backward from \(oh)x\(ow)")
            // The adjoint identity <resize(x), dy> = <x, resize_backward(dy)>.
            let lhs = zip(ref, dy).map(*).reduce(0, +), rhs = zip(r, dxRef).map(*).reduce(0, +)
            XCTAssertEqual(lhs, rhs, accuracy: 1e-9 * max(1, abs(lhs)))
        }
        // The rule itself: 3x3 to 5x5 takes source rows and columns 0,0,1,1,2.
        XCTAssertEqual(RefOps.resize(x: (0..<9).map(Double.init), shape: [1, 1, 3, 3], oh: 5, ow: 5).prefix(10),
                       [0, 0, 1, 1, 2, 0, 0, 1, 1, 2])
    }
}
