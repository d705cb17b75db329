import Foundation
import IR
import Kernels
import Scheduler
import Tensors
import XCTest

/// Winograd F(4x4,3x3) on every 3x3 stride-1 convolution shape of the graphs in Graphs/, at full
/// size and batch 2: forward, backward data and weight gradient, each checked against Double dot
/// products at sampled outputs (all corners and edges included). The error is measured relative to
/// the sum of the absolute terms of each dot product (its rounding scale), and bounded.
final class WinogradGraphTests: XCTestCase {
    /// Max |fast − exact| / Σ|terms| allowed; the worst measured is printed per shape. Measured on
    /// 24 shapes: at most 2.2e-6 (forward of the 3-channel first layer of VGG-Face, where a dot
    /// product has only 27 terms), about 40 float32 ulps; direct im2col stays near a few ulps.
    static let tolerance = 5e-6

    /// Distinct eligible geometries (batch 2) of every graph's forward convolutions.
    func shapes() throws -> [ConvGeometry] {
        var seen: [String: ConvGeometry] = [:]
        for path in Repo.graphFiles() {
            let s = try makeSchedule(path, batch: 2)
            for k in s.prologue + s.kernels {
                var geometries: [ConvGeometry] = []
                if case .conv2d(let c, _, _) = k.call { geometries = [c] }
                if case .conv2dMaxPool(let convs, _, _) = k.call { geometries = convs.map(\.geometry) }
                for g in geometries where g.winogradEligible {
                    seen["\(g.inChannels)x\(g.height)x\(g.width)->\(g.outChannels) pad \(g.padH),\(g.padW)"] = g
                }
            }
        }
        return seen.keys.sorted().map { seen[$0]! }
    }

    func testEveryGraphShapeMatchesDoubleDotProducts() throws {
        let all = try shapes()
        XCTAssertGreaterThanOrEqual(all.count, 10, "ExpNet, VGG-Face and the 48x48 nets give at least ten shapes")
        for (k, g) in all.enumerated() {
            var rng = Xoshiro256(seed: UInt64(k + 1))
            let scale = Float(1 / Double(9 * g.inChannels).squareRoot())
            let x = (0..<g.inputCount).map { _ in rng.nextFloat() * 2 - 1 }
            let w = (0..<g.weightCount).map { _ in (rng.nextFloat() * 2 - 1) * scale }
            let b = (0..<g.outChannels).map { _ in rng.nextFloat() - 0.5 }
            let dy = (0..<g.outputCount).map { _ in rng.nextFloat() * 2 - 1 }
            let ws = max(g.winogradForwardWorkspace, g.winogradBackwardDataWorkspace, g.winogradBackwardFilterWorkspace)
            var work = [Float](repeating: .nan, count: ws)
            var y = [Float](repeating: .nan, count: g.outputCount)
            var dx = [Float](repeating: .nan, count: g.inputCount)
            var dw = [Float](repeating: .nan, count: g.weightCount)
            FastOps.conv2dWinograd(x: x, w: w, bias: b, y: &y, geometry: g, activation: .none, workspace: &work)
            FastOps.conv2dBackwardDataWinograd(dy: dy, w: w, dx: &dx, geometry: g, workspace: &work)
            FastOps.conv2dBackwardFilterWinograd(dy: dy, x: x, dw: &dw, geometry: g, workspace: &work)

            let (c, o, h, wd, oh, ow, ph, pw) = (g.inChannels, g.outChannels, g.height, g.width, g.outH, g.outW, g.padH, g.padW)
            func xAt(_ n: Int, _ ch: Int, _ i: Int, _ j: Int) -> Double? {
                i >= 0 && i < h && j >= 0 && j < wd ? Double(x[((n * c + ch) * h + i) * wd + j]) : nil
            }
            func dyAt(_ n: Int, _ oc: Int, _ i: Int, _ j: Int) -> Double? {
                i >= 0 && i < oh && j >= 0 && j < ow ? Double(dy[((n * o + oc) * oh + i) * ow + j]) : nil
            }
            func wAt(_ oc: Int, _ ch: Int, _ ki: Int, _ kj: Int) -> Double { Double(w[((oc * c + ch) * 3 + ki) * 3 + kj]) }
            /// Sample indices of a `[d0, d1, d2, d3]` tensor: its corners in the last two axes, then random ones.
            func samples(_ dims: [Int], _ count: Int) -> [[Int]] {
                var out: [[Int]] = []
                for i in [0, dims[2] - 1] { for j in [0, dims[3] - 1] { out.append([dims[0] - 1, dims[1] - 1, i, j]) } }
                for _ in 0..<count { out.append(dims.map { rng.nextInt(upperBound: $0) }) }
                return out
            }
            func relError(_ fast: Float, _ terms: [Double]) -> Double {
                let exact = terms.reduce(0, +), scale = terms.reduce(0) { $0 + abs($1) }
                return abs(Double(fast) - exact) / max(scale, 1e-30)
            }
            var worst = (forward: 0.0, data: 0.0, filter: 0.0)
            for s in samples([2, o, oh, ow], 200) {
                var terms = [Double(b[s[1]])]
                for ch in 0..<c { for ki in 0..<3 { for kj in 0..<3 {
                    if let v = xAt(s[0], ch, s[2] + ki - ph, s[3] + kj - pw) { terms.append(v * wAt(s[1], ch, ki, kj)) }
                } } }
                worst.forward = max(worst.forward, relError(y[((s[0] * o + s[1]) * oh + s[2]) * ow + s[3]], terms))
            }
            for s in samples([2, c, h, wd], 200) {
                var terms: [Double] = [0]
                for oc in 0..<o { for ki in 0..<3 { for kj in 0..<3 {
                    if let v = dyAt(s[0], oc, s[2] - ki + ph, s[3] - kj + pw) { terms.append(v * wAt(oc, s[1], ki, kj)) }
                } } }
                worst.data = max(worst.data, relError(dx[((s[0] * c + s[1]) * h + s[2]) * wd + s[3]], terms))
            }
            for s in samples([o, c, 3, 3], 60) {
                var terms: [Double] = [0]
                for n in 0..<2 { for i in 0..<oh { for j in 0..<ow {
                    if let v = xAt(n, s[1], i + s[2] - ph, j + s[3] - pw) { terms.append(v * dyAt(n, s[0], i, j)!) }
                } } }
                worst.filter = max(worst.filter, relError(dw[((s[0] * c + s[1]) * 3 + s[2]) * 3 + s[3]], terms))
            }
            print(String(format: "winograd %4d x %3dx%-3d -> %4d pad %d: forward %.2e, backward data %.2e, weight gradient %.2e (error / sum |terms|)",
                         c, h, wd, o, ph, worst.forward, worst.data, worst.filter))
            let what = "\(c)x\(h)x\(wd)->\(o)"
            XCTAssertLessThanOrEqual(worst.forward, Self.tolerance, "forward \(what)")
            XCTAssertLessThanOrEqual(worst.data, Self.tolerance, "backward data \(what)")
            XCTAssertLessThanOrEqual(worst.filter, Self.tolerance, "weight gradient \(what)")
        }
    }
}
