import Kernels
import Reference
import XCTest

/// The direct kernel for 1-16 input channels (Sources/CKernels) against the Double reference:
/// forward with bias and ReLU (or leaky ReLU, or nothing), and the weight gradient, on odd sizes,
/// widths under, at and across the 16-column blocks, output channels not a multiple of 4.
final class DirectConvTests: XCTestCase {
    // (batch, in channels, height, width, out channels, kernel, stride H, pad)
    static let cases: [(Int, Int, Int, Int, Int, (Int, Int), Int, (Int, Int))] = [
        (2, 1, 7, 5, 3, (3, 3), 1, (1, 1)),
        (3, 1, 13, 37, 8, (3, 3), 1, (1, 1)),     // ExpNet's first layer, small
        (1, 2, 9, 16, 5, (3, 3), 1, (0, 0)),
        (2, 3, 12, 33, 10, (3, 3), 1, (0, 0)),    // MTCNN's first layers: 3 channels, no padding, 10 outputs
        (1, 3, 11, 19, 6, (5, 3), 1, (2, 1)),     // non-square kernel, pad 2
        (1, 1, 6, 5, 4, (2, 2), 1, (0, 0)),
        (2, 2, 15, 21, 7, (3, 3), 2, (1, 1)),     // stride 2 down the rows (the kernel's rows may stride)
        (1, 3, 3, 2, 2, (3, 3), 1, (2, 2)),       // padding wider than the image
        (2, 10, 9, 21, 16, (3, 3), 1, (0, 0)),    // MTCNN's P-Net conv2: 10 channels in, 16 out
        (1, 16, 6, 17, 5, (3, 3), 1, (1, 1)),     // 16 channels in, the most the kernel takes
    ]

    func testForwardAndWeightGradientMatchReference() {
        for (i, (n, c, h, w, o, k, sh, p)) in Self.cases.enumerated() {
            let g = ConvGeometry(batch: n, inChannels: c, height: h, width: w, outChannels: o, kernel: k, stride: (sh, 1), pad: p)
            let label = "case \(i): \(n)x\(c)x\(h)x\(w) -> \(o), kernel \(k), stride (\(sh), 1), pad \(p)"
            XCTAssertEqual(g.directEligible, sh == 1, label)
            let x = rounded(randomValues(g.inputCount, seed: UInt64(300 + i)))
            let wt = rounded(randomValues(g.weightCount, seed: UInt64(400 + i), scale: 0.5))
            let b = rounded(randomValues(o, seed: UInt64(500 + i)))
            let dy = rounded(randomValues(g.outputCount, seed: UInt64(600 + i)))
            let (xShape, wShape) = ([n, c, h, w], [o, c, k.0, k.1])
            var (ws, wsF) = ([Float](repeating: .nan, count: g.directWorkspace(filter: false)), [Float](repeating: .nan, count: g.directWorkspace(filter: true)))
            for bias in [b, nil] {
                let ref = RefOps.conv2d(x: x, xShape: xShape, w: wt, wShape: wShape, bias: bias, stride: (sh, 1), pad: p,
                                        dilation: (1, 1), groups: 1).out
                for act in [Activation.none, .relu(negativeSlope: 0), .relu(negativeSlope: 0.1)] {
                    var y = [Float](repeating: .nan, count: g.outputCount)
                    withOptional(bias.map(floats)) { bp in
                        FastOps.conv2dDirect(x: floats(x), w: floats(wt), bias: bp, y: &y, geometry: g, activation: act, workspace: &ws)
                    }
                    var expect = ref
                    if case let .relu(s) = act { expect = RefOps.relu(ref, negativeSlope: Double(s)) }
                    assertClose(y, expect, "direct conv2d \(label) \(act) bias \(bias != nil)")
                }
            }
            var dw = [Float](repeating: .nan, count: g.weightCount)
            FastOps.conv2dBackwardFilterDirect(dy: floats(dy), x: floats(x), dw: &dw, geometry: g, workspace: &wsF)
            assertClose(dw, RefOps.conv2dBackwardFilter(dy: dy, x: x, xShape: xShape, wShape: wShape, stride: (sh, 1), pad: p,
                                                        dilation: (1, 1), groups: 1), "direct weight gradient \(label)")
        }
    }

    /// A 224-wide ExpNet first layer (many 16-column blocks, rows split over the workers) at batch 2.
    func testExpNetFirstLayerWidth() {
        let g = ConvGeometry(batch: 2, inChannels: 1, height: 9, width: 224, outChannels: 64, kernel: (3, 3), pad: (1, 1))
        let x = rounded(randomValues(g.inputCount, seed: 7)), wt = rounded(randomValues(g.weightCount, seed: 8, scale: 0.5))
        let dy = rounded(randomValues(g.outputCount, seed: 9))
        var y = [Float](repeating: .nan, count: g.outputCount), dw = [Float](repeating: .nan, count: g.weightCount)
        var (ws, wsF) = ([Float](repeating: .nan, count: g.directWorkspace(filter: false)), [Float](repeating: .nan, count: g.directWorkspace(filter: true)))
        FastOps.conv2dDirect(x: floats(x), w: floats(wt), bias: nil, y: &y, geometry: g, activation: .relu(negativeSlope: 0), workspace: &ws)
        let ref = RefOps.conv2d(x: x, xShape: [2, 1, 9, 224], w: wt, wShape: [64, 1, 3, 3], bias: nil, stride: (1, 1), pad: (1, 1),
                                dilation: (1, 1), groups: 1).out
        assertClose(y, RefOps.relu(ref, negativeSlope: 0), "direct conv2d 224 wide")
        FastOps.conv2dBackwardFilterDirect(dy: floats(dy), x: floats(x), dw: &dw, geometry: g, workspace: &wsF)
        assertClose(dw, RefOps.conv2dBackwardFilter(dy: dy, x: x, xShape: [2, 1, 9, 224], wShape: [64, 1, 3, 3], stride: (1, 1),
                                                    pad: (1, 1), dilation: (1, 1), groups: 1), "direct weight gradient 224 wide")
    }
    /// One direct convolution fused with the 2x2 max pool after it (`conv2dMaxPool`: two output rows
    /// pooled in registers) equals the unfused kernels bit for bit, winners too, with and without the
    /// ReLU mask, and the Double reference: odd sizes (a last row and column no window reads), widths
    /// under, at and across the blocks of 8 and 16 pooled columns, pads 0-2, output channels not a multiple of 4.
    func testFusedMaxPoolMatchesUnfused() {
        // (batch, in channels, height, width, out channels, kernel, pad)
        let cases: [(Int, Int, Int, Int, Int, (Int, Int), (Int, Int))] = [
            (2, 1, 7, 5, 3, (3, 3), (1, 1)), (3, 1, 13, 37, 8, (3, 3), (1, 1)), (1, 2, 9, 16, 5, (3, 3), (0, 0)),
            (2, 3, 12, 35, 10, (3, 3), (0, 0)), (1, 3, 11, 19, 6, (5, 3), (2, 1)), (2, 1, 8, 66, 7, (3, 3), (1, 1)),
        ]
        for (i, (n, c, h, w, o, k, pad)) in cases.enumerated() {
            let g = ConvGeometry(batch: n, inChannels: c, height: h, width: w, outChannels: o, kernel: k, pad: pad)
            let p = PoolGeometry(batch: n, channels: o, height: g.outH, width: g.outW, kernel: (2, 2), stride: (2, 2), ceil: false)
            let x = floats(rounded(randomValues(g.inputCount, seed: UInt64(700 + i))))
            let wt = floats(rounded(randomValues(g.weightCount, seed: UInt64(800 + i), scale: 0.5)))
            let b = floats(rounded(randomValues(o, seed: UInt64(900 + i))))
            var ws = [Float](repeating: .nan, count: g.directWorkspace(filter: false))
            for act in [Activation.none, .relu(negativeSlope: 0), .relu(negativeSlope: 0.1)] {
                for bias in [b, nil] {
                    var conv = [Float](repeating: .nan, count: g.outputCount)
                    withOptional(bias) { FastOps.conv2dDirect(x: x, w: wt, bias: $0, y: &conv, geometry: g, activation: act, workspace: &ws) }
                    let chain = [ChainedConv(geometry: g, activation: act, algorithm: .direct, weight: 1, bias: bias == nil ? nil : 2)]
                    let booking = FastOps.conv2dMaxPoolBooking(chain)
                    for mask in [false, true] {
                        let label = "case \(i) \(act) bias \(bias != nil) mask \(mask)"
                        var (y, a) = ([Float](repeating: .nan, count: p.outputCount), [UInt8](repeating: 7, count: p.outputCount))
                        FastOps.maxPool(x: conv, y: &y, argmax: &a, geometry: p, reluMask: mask)
                        var (fy, fa) = ([Float](repeating: .nan, count: p.outputCount), [UInt8](repeating: 7, count: p.outputCount))
                        var space = [Float](repeating: .nan, count: booking.floats)
                        x.withUnsafeBufferPointer { xb in wt.withUnsafeBufferPointer { wb in (bias ?? b).withUnsafeBufferPointer { bb in
                            space.withUnsafeMutableBufferPointer { sb in
                                FastOps.conv2dMaxPool([xb.baseAddress!, wb.baseAddress!, bb.baseAddress!], y: &fy, convs: chain, pool: p, winners: &fa,
                                                      reluMask: mask, workspace: Workspace(base: sb.baseAddress!, booking: booking))
                            }
                        } } }
                        XCTAssertNil(y.indices.first { fy[$0].bitPattern != y[$0].bitPattern }, "fused pool differs at: \(label)")
                        XCTAssertNil(a.indices.first { fa[$0] != a[$0] }, "fused winners differ at: \(label)")
                        let ref = RefOps.conv2d(x: x.map(Double.init), xShape: [n, c, h, w], w: wt.map(Double.init), wShape: [o, c, k.0, k.1],
                                                bias: bias?.map(Double.init), stride: (1, 1), pad: pad, dilation: (1, 1), groups: 1).out
                        let act = if case let .relu(s) = act { RefOps.relu(ref, negativeSlope: Double(s)) } else { ref }
                        assertClose(fy, RefOps.maxPool(x: act, xShape: [n, o, g.outH, g.outW], kernel: (2, 2), stride: (2, 2), pad: (0, 0),
                                                       ceil: false).out, "fused pool against the reference \(label)")
                    }
                }
            }
        }
    }
}
