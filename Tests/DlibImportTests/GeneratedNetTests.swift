// The dlib importer on a small net made in Swift (no data needed): every layer family the importer
// maps, written in dlib's format, read back, imported and run against a direct implementation of
// dlib's layer semantics; every truncation and random corruption of the file is a clean error.
import DlibImport
import Driver
import Foundation
import IR
import Tensors
import XCTest

/// loss_metric<fc<3,avg_pool_everything<relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<bn_con<
/// con<6,3,3,2,2 (fused relu),tag1<max_pool<3,3,1,1,relu<affine<con<4,3,3,1,1,input_rgb_image_sized<8>>>>>>>>>>>>>>>
/// The add_prev adds a 4x4 pooled 4-channel skip to a 3x3 6-channel block: both inputs get zeros.
private let smallType = DlibNetType.everyFamily

private func smallNet(avgPadding: [Int] = [0, 0]) -> DlibNet { DlibTestModels.everyFamily(avgPadding: avgPadding) }

/// A `[C, H, W]` image in Double.
private struct Planes {
    var c: Int, h: Int, w: Int
    var v: [Double]
    init(_ c: Int, _ h: Int, _ w: Int) { (self.c, self.h, self.w, v) = (c, h, w, [Double](repeating: 0, count: c * h * w)) }
    subscript(k: Int, r: Int, q: Int) -> Double {
        get { v[(k * h + r) * w + q] }
        set { v[(k * h + r) * w + q] = newValue }
    }
}

/// dlib's forward pass written out from its layer definitions (dlib/cuda/cpu_dlib.cpp: pooling with
/// windows clipped to the image, tt::add over the larger shape), in Double.
private func dlibForward(_ net: DlibNet, _ pixels: [Float]) -> [Double] {
    let (h, w) = (net.inputSize[0], net.inputSize[1])
    var x = Planes(3, h, w)
    for k in 0..<3 { for i in 0..<(h * w) { x.v[k * h * w + i] = (Double(pixels[k * h * w + i]) - Double(net.inputMeans[k])) / 256 } }
    var tags: [Int: Planes] = [:]
    var out: [Double] = []
    func pool(_ x: Planes, _ win: [Int], _ s: [Int], _ p: [Int], max: Bool) -> Planes {
        let (kh, kw) = win == [0, 0] ? (x.h, x.w) : (win[0], win[1])
        var y = Planes(x.c, 1 + (x.h + 2 * p[0] - kh) / s[0], 1 + (x.w + 2 * p[1] - kw) / s[1])
        for k in 0..<x.c { for r in 0..<y.h { for q in 0..<y.w {
            var acc = max ? -Double.infinity : 0, n = 0
            for i in Swift.max(0, r * s[0] - p[0])..<Swift.min(x.h, r * s[0] - p[0] + kh) {
                for j in Swift.max(0, q * s[1] - p[1])..<Swift.min(x.w, q * s[1] - p[1] + kw) {
                    acc = max ? Swift.max(acc, x[k, i, j]) : acc + x[k, i, j]
                    n += 1
                }
            }
            y[k, r, q] = max ? acc : acc / Double(n)
        } } }
        return y
    }
    for layer in net.layers {
        switch layer.details {
        case .con(let f, let b, let s, let p, let relu):
            let (o, kh, kw) = (f.shape[0], f.shape[2], f.shape[3])
            var y = Planes(o, 1 + (x.h + 2 * p[0] - kh) / s[0], 1 + (x.w + 2 * p[1] - kw) / s[1])
            for m in 0..<o { for r in 0..<y.h { for q in 0..<y.w {
                var acc = Double(b?[m] ?? 0)
                for k in 0..<x.c { for i in 0..<kh { for j in 0..<kw {
                    let (rr, qq) = (r * s[0] - p[0] + i, q * s[1] - p[1] + j)
                    if rr >= 0, rr < x.h, qq >= 0, qq < x.w { acc += Double(f.data[((m * x.c + k) * kh + i) * kw + j]) * x[k, rr, qq] }
                } } }
                y[m, r, q] = relu ? max(acc, 0) : acc
            } } }
            x = y
        case .affine(let g, let b, _):
            for k in 0..<x.c { for i in 0..<(x.h * x.w) { x.v[k * x.h * x.w + i] = Double(g[k]) * x.v[k * x.h * x.w + i] + Double(b[k]) } }
        case .batchNorm(let g, let b, let m, let v, let eps):
            for k in 0..<x.c {
                let inv = 1 / (Double(v[k]) + Double(eps)).squareRoot()
                for i in 0..<(x.h * x.w) { x.v[k * x.h * x.w + i] = Double(g[k]) * (x.v[k * x.h * x.w + i] - Double(m[k])) * inv + Double(b[k]) }
            }
        case .relu:
            x.v = x.v.map { max($0, 0) }
        case .maxPool(let win, let s, let p):
            x = pool(x, win, s, p, max: true)
        case .avgPool(let win, let s, let p):
            x = pool(x, win, s, p, max: false)
        case .tag(let id):
            tags[id] = x
        case .skip(let id):
            x = tags[id]!
        case .addPrev(let id):
            let t = tags[id]!
            var y = Planes(max(x.c, t.c), max(x.h, t.h), max(x.w, t.w))
            for k in 0..<y.c { for r in 0..<y.h { for q in 0..<y.w {
                let a = k < x.c && r < x.h && q < x.w ? x[k, r, q] : 0
                let b = k < t.c && r < t.h && q < t.w ? t[k, r, q] : 0
                y[k, r, q] = a + b
            } } }
            x = y
        case .fc(let wts, let b):
            let (inputs, outputs) = (wts.shape[0], wts.shape[1])
            out = (0..<outputs).map { o in (0..<inputs).reduce(Double(b?[o] ?? 0)) { $0 + x.v[$1] * Double(wts.data[$1 * outputs + o]) } }
        }
    }
    return out
}

private func withoutOffsets(_ net: DlibNet) -> DlibNet {
    var n = net
    for k in n.layers.indices { n.layers[k].offset = 0 }
    return n
}

final class GeneratedNetTests: XCTestCase {
    func testWriteReadRoundTrip() throws {
        let net = smallNet()
        let bytes = net.serialized()
        let read = try DlibNet(bytes: bytes, file: "small.dat", type: smallType)
        XCTAssertEqual(withoutOffsets(read), net)
        XCTAssertEqual(read.serialized(), bytes)
        XCTAssertEqual(read.parameterCount, 108 + 4 + 8 + 216 + 12 + 18 + 3)
        // Offsets point at each layer's version string (or, for tags, where the next one starts).
        let con = try XCTUnwrap(read.layers.first)
        XCTAssertEqual(Array(bytes[con.offset + 2..<con.offset + 7]), Array("con_4".utf8))
    }

    func testImportFollowsDlibSemantics() throws {
        let net = smallNet()
        let imported = try DlibToIR.convert(net, name: "small", file: "small.dat")
        _ = try Importing.canonicalText(imported.module)
        let ops = imported.graph.nodes.map(\.op)
        XCTAssertEqual(ops.filter { $0 == .fill }.count, 3, "channels of the skip, rows and columns of the block")
        XCTAssertEqual(ops.filter { $0 == .batchNorm }.count, 1)
        XCTAssertEqual(imported.graph.outputs, ["fc1"])
        let batch = 3
        let pixels = Tensor(shape: [batch * 3 * 64], seed: 42, std: 80).data.map { Float(min(255, max(0, ($0 + 128).rounded()))) }
        let ex = try Importing.executor(imported.graph, weights: imported.weights, batch: batch, keepAll: false)
        let y = try XCTUnwrap(try ex.run(inputs: ["image": Tensor(shape: [batch, 3, 8, 8], data: pixels)])["fc1"])
        XCTAssertEqual(y.shape, [batch, 3])
        var worst = 0.0
        for n in 0..<batch {
            let want = dlibForward(net, Array(pixels[n * 192..<(n + 1) * 192]))
            let got = y.data[n * 3..<(n + 1) * 3].map(Double.init)
            let num = zip(got, want).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            worst = max(worst, (num / want.reduce(0.0) { $0 + $1 * $1 }).squareRoot())
        }
        print("generated dlib net: worst relative error against the direct dlib forward \(worst)")
        XCTAssertLessThan(worst, 1e-5)
    }

    func testEveryTruncationIsAnError() {
        let bytes = smallNet().serialized()
        for cut in 0..<bytes.count {
            XCTAssertThrowsError(try DlibNet(bytes: Array(bytes[0..<cut]), file: "cut.dat", type: smallType)) { error in
                guard let e = error as? DlibError, let offset = e.offset else { return XCTFail("cut at \(cut): \(error)") }
                XCTAssertTrue(e.message.contains("truncated"), "cut at \(cut): \(e)")
                XCTAssertLessThanOrEqual(offset, cut, "\(e)")
            }
        }
    }

    /// Random byte changes either still read (a changed weight) or give a DlibError; never a crash.
    func testCorruptionNeverCrashes() {
        let bytes = smallNet().serialized()
        var rng = Xoshiro256(seed: 7)
        var errors = 0
        for _ in 0..<2000 {
            var b = bytes
            for _ in 0..<Int.random(in: 1...3, using: &rng) { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            do {
                let net = try DlibNet(bytes: b, file: "bad.dat", type: smallType)
                _ = try DlibToIR.convert(net, name: "bad", file: "bad.dat")
            } catch {
                // Both calls throw only DlibError (typed throws).
                XCTAssertTrue("\(error)".hasPrefix("bad.dat: error: "), "\(error)")
                errors += 1
            }
        }
        XCTAssertGreaterThan(errors, 500)
    }

    func testRefusals() throws {
        let padded = smallNet(avgPadding: [1, 1])
        XCTAssertThrowsError(try DlibToIR.convert(padded, name: "p", file: "p.dat")) { error in
            XCTAssertTrue("\(error)".contains("layer<5> (avg_pool_2): average pooling with padding [1, 1] is not supported"), "\(error)")
        }
        // The small file read as the face-recognition net: its version list disagrees early.
        XCTAssertThrowsError(try DlibNet(bytes: smallNet().serialized(), file: "small.dat")) { error in
            XCTAssertTrue("\(error)".hasPrefix("small.dat: error: at byte "), "\(error)")
        }
        // Filter dimensions whose product overflows 64 bits.
        var huge = smallNet()
        huge.layers[0].details = .con(filters: DlibTensor(shape: [4, 1 << 30, 1 << 30, 1 << 30], data: Tensor(shape: [108], seed: 1, std: 0.5).data),
                                      biases: nil, stride: [1, 1], padding: [1, 1], relu: false)
        huge.layers[0].version = "con_5"
        XCTAssertThrowsError(try DlibNet(bytes: huge.serialized(), file: "huge.dat", type: smallType)) { error in
            XCTAssertTrue("\(error)".contains("layer<14> (con_5): filters [4, 1073741824, 1073741824, 1073741824] with 4 filters do not match the 108 parameters stored"), "\(error)")
        }
        // A layer the importer does not map, where the type has a relu.
        var b = smallNet().serialized()
        let relu = Array("relu_2".utf8), sig = Array("sig_22".utf8)
        let at = try XCTUnwrap((0...(b.count - relu.count)).first { Array(b[$0..<$0 + relu.count]) == relu })
        b.replaceSubrange(at..<at + relu.count, with: sig)
        XCTAssertThrowsError(try DlibNet(bytes: b, file: "s.dat", type: smallType)) { error in
            XCTAssertEqual("\(error)", "s.dat: error: at byte \(at - 2): layer<3>: expected a relu layer (relu_ or relu_2) where the net type has relu, found 'sig_22'; fn2e imports add_prev, affine, avg_pool, con, fc, max_pool, relu, tag and skip layers")
        }
    }
}
