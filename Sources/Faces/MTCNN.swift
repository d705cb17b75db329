import CaffeImport
import Foundation
import IR
import Runtime
import Tensors

/// A point in image pixels.
public struct Point: Sendable, Equatable {
    public var x: Double, y: Double
    public init(x: Double, y: Double) { (self.x, self.y) = (x, y) }
}

/// A face the cascade found: box corners, O-Net's score, and five landmarks (left eye, right eye,
/// nose, left and right mouth corner as seen in the photo). Coordinates are the release's:
/// 1-based pixels for the box corners, landmarks as `detect_face.m` computes them.
public struct Face: Sendable, Equatable {
    public var x1: Double, y1: Double, x2: Double, y2: Double
    public var score: Double
    public var landmarks: [Point]
}

/// The cascade's settings; the defaults are those of the MTCNN release's demo.
public struct MTCNNSettings: Sendable, Equatable {
    /// The smallest face searched for, in pixels (the first pyramid scale is 12 / minSize).
    public var minSize = 20.0
    /// The ratio between successive pyramid scales.
    public var factor = 0.709
    /// Face-probability thresholds of P-Net (at least), R-Net and O-Net (more than).
    public var thresholds = [0.6, 0.7, 0.7]
    /// NMS of P-Net's boxes within one scale, across all scales, after R-Net, after O-Net.
    public var nms = [NMSStep(0.5, .union), NMSStep(0.7, .union), NMSStep(0.7, .union), NMSStep(0.7, .min)]

    public init() {}
}

/// The MTCNN face detector (Zhang et al. 2016) over fn2e-compiled P-Net, R-Net and O-Net, imported
/// from the release's Caffe files. P-Net is compiled once per pyramid scale size (its input has the
/// named sizes H and W) and kept; R-Net and O-Net once per batch size of `batchSizes`. A detector
/// runs one call at a time (its executors hold their values): one per thread (`copy`).
public final class MTCNN {
    public var settings: MTCNNSettings
    /// Where the project keeps det1-det3 converted to fn2e's format (Tools/mtcnn/regenerate.sh).
    public static let shippedFolder = "Models/mtcnn"
    /// The batch sizes R-Net and O-Net are compiled for; crops go through them as `Batches.split` says.
    /// Small batches keep a batch's activations in cache: one thread, R-Net ran 17,500 crops/s at
    /// batch 16-32 against 15,000 at 256, O-Net 3,300 at 16 against 2,600-2,900 at 64 (2026-12-07).
    public static let batchSizes = [1, 4, 16, 32]
    /// det1 (P-Net with named sizes), det2 and det3 with their weights.
    let nets: [(graph: Graph, weights: [(String, Tensor)])]
    let pnet: CompiledGraph, rnet: CompiledGraph, onet: CompiledGraph

    /// Loads the nets from `directory`: fn2e's own `det1...det3.{fn2e,safetensors}` (what
    /// Models/mtcnn ships), else the release's `det1...det3.{prototxt,caffemodel}`, imported now.
    public convenience init(directory: String, settings: MTCNNSettings = MTCNNSettings()) throws {
        func load(_ k: Int) throws -> (graph: Graph, weights: [(String, Tensor)]) {
            let base = (directory as NSString).appendingPathComponent("det\(k)")
            if FileManager.default.fileExists(atPath: base + ".fn2e") {
                let sources = SourceManager()
                let program: Program
                do { program = try Loader.load(path: base + ".fn2e", sources: sources) } catch let list as DiagnosticList {
                    throw FaceError(sources.render(list.diagnostics))
                }
                guard let g = program.graphs["det\(k)"] else { throw FaceError("\(base).fn2e: no graph @det\(k)") }
                return (g, try SafeTensors.readOrdered(path: base + ".safetensors").tensors)
            }
            for ext in ["prototxt", "caffemodel"] where !FileManager.default.fileExists(atPath: "\(base).\(ext)") {
                throw FaceError("\(base).\(ext): no such file (MTCNN's det1-det3, as .fn2e + .safetensors or the release's .prototxt + .caffemodel, are expected in \(directory))")
            }
            let imported = try CaffeToIR.importFiles(prototxt: base + ".prototxt", caffemodel: base + ".caffemodel", name: "det\(k)")
            return (imported.graph, imported.weights)
        }
        var p = try load(1)
        // Fully convolutional: the input's spatial sizes become named sizes, bound per scale.
        p.graph.inputs[0].type.dims[2] = .symbol("H")
        p.graph.inputs[0].type.dims[3] = .symbol("W")
        p.graph = try p.graph.substituting(symbols: [:])
        let problems = Verifier().verify(&p.graph)
        guard problems.isEmpty else { throw FaceError("P-Net with named sizes: \(problems)") }
        self.init(nets: [p, try load(2), try load(3)], settings: settings)
    }

    init(nets: [(graph: Graph, weights: [(String, Tensor)])], settings: MTCNNSettings) {
        (self.nets, self.settings) = (nets, settings)
        (pnet, rnet, onet) = (CompiledGraph(graph: nets[0].graph, weights: nets[0].weights),
                              CompiledGraph(graph: nets[1].graph, weights: nets[1].weights),
                              CompiledGraph(graph: nets[2].graph, weights: nets[2].weights))
    }

    /// Another detector over the same nets and settings, with executors of its own.
    public func copy() -> MTCNN { MTCNN(nets: nets, settings: settings) }

    /// How many P-Net schedules were compiled so far (one per distinct scale size).
    public var pnetCompilations: Int { pnet.compilations }

    /// Faces in an RGB image `[3, H, W]` with values 0...255, best first.
    public func detect(_ image: Tensor) throws -> [Face] { try detect([image])[0] }

    /// The faces of each image, as `detect` finds them in that image alone: P-Net scans each image's
    /// pyramid; R-Net and O-Net judge the crops of all the images together, in batches.
    public func detect(_ images: [Tensor]) throws -> [[Face]] {
        let s = settings
        guard s.thresholds.count == 3, s.nms.count == 4, s.minSize > 0, s.factor > 0, s.factor < 1 else {
            throw FaceError("MTCNN settings need 3 thresholds, 4 NMS steps, a positive minimum size and a factor in (0, 1)")
        }
        for image in images where image.rank != 3 || image.shape[0] != 3 {
            throw FaceError("the detector needs an RGB image [3, H, W], got \(image.shape)")
        }
        // Each image with its columns contiguous, as the resampling reads it (one pass, kept for the crops).
        let columns = StageClock.time("transpose") { images.map(Resample.transposed) }
        let proposed = try StageClock.time("P-Net (all)") { try columns.map(proposals) }
        let refined = try refine(rnet, proposed, columns, size: 24, threshold: s.thresholds[1]).map { b in
            Boxes.nms(b, s.nms[2]).map { Boxes.truncated(Boxes.square(Boxes.regress(b[$0]))) }
        }
        return try refine(onet, refined, columns, size: 48, threshold: s.thresholds[2]).map { found in
            let boxes = found.map(Boxes.regress)
            return Boxes.nms(boxes, s.nms[3]).map { k in
                let b = boxes[k]
                return Face(x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, score: b.score, landmarks: b.points)
            }
        }
    }

    /// P-Net's boxes in one image (given transposed, `[3, W, H]`): each pyramid scale's face cells,
    /// NMS within the scale, then across the scales; regressed, squared and truncated.
    func proposals(_ image: Tensor) throws -> [Candidate] {
        let s = settings
        let (h, w) = (image.shape[2], image.shape[1])
        var boxes: [Candidate] = []
        for scale in pyramid(height: h, width: w) {
            let (hs, ws) = (Int((Double(h) * scale).rounded(.up)), Int((Double(w) * scale).rounded(.up)))
            // The nets were trained in MATLAB: their H axis runs along the image's width.
            let out = try run(pnet, "P-Net", batch: 1, symbols: ["H": ws, "W": hs], expect: [2, 4]) { x in
                netInput(image, window: (0, 0, h, w), height: hs, width: ws, into: x)
            }
            let found = cells(prob: out[2]!, reg: out[4]!, scale: scale, threshold: s.thresholds[0])
            boxes += Boxes.nms(found, s.nms[0]).map { found[$0] }
        }
        return Boxes.nms(boxes, s.nms[1]).map { b in
            var r = boxes[b]
            let (bw, bh) = (r.x2 - r.x1, r.y2 - r.y1)  // P-Net's regression scales by size without +1
            (r.x1, r.y1, r.x2, r.y2) = (r.x1 + r.reg[0] * bw, r.y1 + r.reg[1] * bh, r.x2 + r.reg[2] * bw, r.y2 + r.reg[3] * bh)
            return Boxes.truncated(Boxes.square(r))
        }
    }

    /// The scales of the image pyramid: 12 / minSize, then times `factor` while the shorter side
    /// stays at least 12 pixels.
    func pyramid(height: Int, width: Int) -> [Double] {
        var scales: [Double] = []
        var (scale, side) = (12 / settings.minSize, Double(min(height, width)) * 12 / settings.minSize)
        while side >= 12 {
            scales.append(scale)
            scale *= settings.factor
            side *= settings.factor
        }
        return scales
    }

    /// P-Net's face cells at or above `threshold`: the 12x12 window of each cell mapped back to the
    /// image (stride 2), in the release's order (along the image's x fastest).
    func cells(prob: Output, reg: Output, scale: Double, threshold: Double) -> [Candidate] {
        let (nx, ny) = (prob.shape[2], prob.shape[3])
        let (p, r) = (prob.data + nx * ny, reg.data)
        var found: [Candidate] = []
        for j in 0..<ny {
            for i in 0..<nx {
                let score = Double(p[i * ny + j])
                guard score >= threshold else { continue }
                let (x, y) = (Double(2 * i), Double(2 * j))
                found.append(Candidate(x1: ((x + 1) / scale).rounded(.towardZero), y1: ((y + 1) / scale).rounded(.towardZero),
                                       x2: ((x + 12) / scale).rounded(.towardZero), y2: ((y + 12) / scale).rounded(.towardZero), score: score,
                                       reg: SIMD4((0..<4).lazy.map { Double(r[($0 * nx + i) * ny + j]) })))
            }
        }
        return found
    }

    /// R-Net or O-Net on `size` x `size` crops of each image's boxes (images given transposed,
    /// `[3, W, H]`): per image, the boxes whose score passes, with the net's score, regression and
    /// (O-Net) landmarks. The crops of all the images go through the net together, in batches of `batchSizes`.
    func refine(_ net: CompiledGraph, _ boxes: [[Candidate]], _ images: [Tensor], size: Int, threshold: Double) throws -> [[Candidate]] {
        let items = boxes.indices.flatMap { i in
            let (h, w) = (Double(images[i].shape[2]), Double(images[i].shape[1]))
            return boxes[i].filter { b in b.x2 >= 1 && b.y2 >= 1 && b.x1 <= w && b.y1 <= h && b.width >= 1 && b.height >= 1 }.map { (i, $0) }
        }
        var kept = [[Candidate]](repeating: [], count: images.count)
        for (range, batch) in Batches.split(items.count, sizes: Self.batchSizes) {
            let part = items[range]
            let out = try run(net, size == 24 ? "R-Net" : "O-Net", batch: batch, expect: size == 48 ? [2, 4, 10] : [2, 4]) { d in
                for (k, (i, b)) in part.enumerated() {
                    // The box's pixels (1-based corners, inclusive); outside the image, zeros (`pad.m`).
                    netInput(images[i], window: (Int(b.y1) - 1, Int(b.x1) - 1, Int(b.height), Int(b.width)), height: size, width: size,
                             into: d + k * 3 * size * size)
                }
                // Padding rows: blank crops, as netInput maps zeros.
                (d + part.count * 3 * size * size).update(repeating: -127.5 * 0.0078125, count: (batch - part.count) * 3 * size * size)
            }
            for (k, (i, b)) in part.enumerated() {
                let score = Double(out[2]!.data[2 * k + 1])
                guard score > threshold else { continue }
                var c = b
                c.score = score
                c.reg = SIMD4((0..<4).lazy.map { Double(out[4]!.data[4 * k + $0]) })
                if let p = out[10] {
                    c.points = (0..<5).map { m in
                        Point(x: c.width * Double(p.data[10 * k + m]) + c.x1 - 1, y: c.height * Double(p.data[10 * k + 5 + m]) + c.y1 - 1)
                    }
                }
                kept[i].append(c)
            }
        }
        return kept
    }

    /// Resampling taps from `n` to `m` pixels, kept (a folder of photos of one size, and crops, use
    /// the same few again and again).
    private var taps: [Int: Resample.Taps] = [:]
    private func taps(_ n: Int, _ m: Int) -> Resample.Taps {
        if let t = taps[n << 24 | m] { return t }
        let t = Resample.Taps(from: n, to: m)
        taps[n << 24 | m] = t
        return t
    }

    /// A window (`top`, `left`, `height`, `width`; outside the image, zeros) of an RGB image, given
    /// transposed (`[3, W, H]`), resampled to `height` x `width`, written at `into` as a net's input
    /// `[3, width, height]`: transposed (the nets were trained in MATLAB) and mapped by (x - 127.5) / 128.
    func netInput(_ image: Tensor, window: (Int, Int, Int, Int), height: Int, width: Int, into dst: UnsafeMutablePointer<Float>) {
        image.data.withUnsafeBufferPointer { src in
            Resample.resample(src.baseAddress!, channels: 3, height: image.shape[2], width: image.shape[1], window: window,
                              x: taps(window.3, width), y: taps(window.2, height)) { c, x, column in
                let d = dst + (c * width + x) * height
                for y in 0..<height { d[y] = (column[y] - 127.5) * 0.0078125 }
            }
        }
    }

    /// A batch `[N, 3, W, H]` of images `[3, H, W]`: transposed (the nets were trained in MATLAB) and
    /// mapped by (x - 127.5) / 128.
    static func netInput(_ images: [Tensor]) -> Tensor {
        let (h, w) = (images[0].shape[1], images[0].shape[2])
        var data = [Float](repeating: 0, count: images.count * 3 * h * w)
        for (n, img) in images.enumerated() {
            for c in 0..<3 {
                let (src, dst) = (c * h * w, (n * 3 + c) * h * w)
                for y in 0..<h {
                    for x in 0..<w { data[dst + x * h + y] = (img.data[src + y * w + x] - 127.5) * 0.0078125 }
                }
            }
        }
        return Tensor(shape: [images.count, 3, w, h], data: data)
    }

    /// An output of a net, read in place: valid until the net runs again.
    struct Output {
        var data: UnsafePointer<Float>
        var shape: [Int]
    }

    /// Runs the net (`stage` names it in the profile) on the input `fill` writes in place (its
    /// executor's own input memory: no copies), its outputs keyed by their channel count (2: face
    /// probability, 4: box regression, 10: landmarks); a net without the `expect`ed ones is not MTCNN's.
    func run(_ net: CompiledGraph, _ stage: String, batch: Int, symbols: [String: Int] = [:], expect: [Int],
             fill: (UnsafeMutablePointer<Float>) -> Void) throws -> [Int: Output] {
        let ex = try net.executor(batch: batch, symbols: symbols)
        guard let input = ex.pointer(net.graph.inputs[0].name) else { throw FaceError("'\(net.graph.name)' keeps no input") }
        StageClock.time("\(stage) input") { fill(input) }
        StageClock.time("\(stage) run", flops: ex.schedule.totalFlops) { ex.run() }
        var byChannels: [Int: Output] = [:]
        for name in net.graph.outputs {
            guard let p = ex.pointer(name), let shape = ex.schedule.buffers[name]?.type.shape, shape.count >= 2 else { continue }
            byChannels[shape[1]] = byChannels[shape[1]] ?? Output(data: p, shape: shape)
        }
        guard expect.allSatisfy({ byChannels[$0] != nil }) else {
            throw FaceError("'\(net.graph.name)' gives outputs shaped \(byChannels.values.map { "\($0.shape)" }.sorted().joined(separator: ", "));"
                            + " MTCNN's has \(expect.map(String.init).joined(separator: ", ")) (face probability, box regression\(expect.contains(10) ? ", landmarks" : ""))")
        }
        return byChannels
    }
}

/// A detection or alignment failure, said plainly.
public struct FaceError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}
