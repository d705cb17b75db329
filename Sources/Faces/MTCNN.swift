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
/// named sizes H and W) and kept; R-Net and O-Net once per batch size (rounded up to a power of 2).
public final class MTCNN {
    public var settings: MTCNNSettings
    /// Where the project keeps det1-det3 converted to fn2e's format (Tools/mtcnn/regenerate.sh).
    public static let shippedFolder = "Models/mtcnn"
    let pnet: CompiledGraph, rnet: CompiledGraph, onet: CompiledGraph

    /// Loads the nets from `directory`: fn2e's own `det1...det3.{fn2e,safetensors}` (what
    /// Models/mtcnn ships), else the release's `det1...det3.{prototxt,caffemodel}`, imported now.
    public init(directory: String, settings: MTCNNSettings = MTCNNSettings()) throws {
        self.settings = settings
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
        let p = try load(1)
        // Fully convolutional: the input's spatial sizes become named sizes, bound per scale.
        var g = p.graph
        g.inputs[0].type.dims[2] = .symbol("H")
        g.inputs[0].type.dims[3] = .symbol("W")
        g = try g.substituting(symbols: [:])
        let problems = Verifier().verify(&g)
        guard problems.isEmpty else { throw FaceError("P-Net with named sizes: \(problems)") }
        pnet = CompiledGraph(graph: g, weights: p.weights)
        let r = try load(2), o = try load(3)
        rnet = CompiledGraph(graph: r.graph, weights: r.weights)
        onet = CompiledGraph(graph: o.graph, weights: o.weights)
    }

    /// How many P-Net schedules were compiled so far (one per distinct scale size).
    public var pnetCompilations: Int { pnet.compilations }

    /// Faces in an RGB image `[3, H, W]` with values 0...255, best first.
    public func detect(_ image: Tensor) throws -> [Face] {
        guard image.rank == 3, image.shape[0] == 3 else { throw FaceError("the detector needs an RGB image [3, H, W], got \(image.shape)") }
        let s = settings
        guard s.thresholds.count == 3, s.nms.count == 4, s.minSize > 0, s.factor > 0, s.factor < 1 else {
            throw FaceError("MTCNN settings need 3 thresholds, 4 NMS steps, a positive minimum size and a factor in (0, 1)")
        }
        let (h, w) = (image.shape[1], image.shape[2])
        var boxes: [Candidate] = []
        for scale in pyramid(height: h, width: w) {
            let (hs, ws) = (Int((Double(h) * scale).rounded(.up)), Int((Double(w) * scale).rounded(.up)))
            let x = Self.netInput([Resample.image(image, height: hs, width: ws)])
            // The nets were trained in MATLAB: their H axis runs along the image's width.
            let out = try outputs(pnet, x, symbols: ["H": ws, "W": hs], expect: [2, 4])
            let found = proposals(prob: out[2]!, reg: out[4]!, scale: scale, threshold: s.thresholds[0])
            boxes += Boxes.nms(found, s.nms[0]).map { found[$0] }
        }
        guard !boxes.isEmpty else { return [] }
        boxes = Boxes.nms(boxes, s.nms[1]).map { b in
            var r = boxes[b]
            let (bw, bh) = (r.x2 - r.x1, r.y2 - r.y1)  // P-Net's regression scales by size without +1
            (r.x1, r.y1, r.x2, r.y2) = (r.x1 + r.reg[0] * bw, r.y1 + r.reg[1] * bh, r.x2 + r.reg[2] * bw, r.y2 + r.reg[3] * bh)
            return Boxes.truncated(Boxes.square(r))
        }

        boxes = try refine(rnet, boxes, image, size: 24, threshold: s.thresholds[1])
        guard !boxes.isEmpty else { return [] }
        boxes = Boxes.nms(boxes, s.nms[2]).map { Boxes.truncated(Boxes.square(Boxes.regress(boxes[$0]))) }

        boxes = try refine(onet, boxes, image, size: 48, threshold: s.thresholds[2])
        guard !boxes.isEmpty else { return [] }
        boxes = boxes.map(Boxes.regress)
        return Boxes.nms(boxes, s.nms[3]).map { k in
            let b = boxes[k]
            return Face(x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, score: b.score, landmarks: b.points)
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
    func proposals(prob: Tensor, reg: Tensor, scale: Double, threshold: Double) -> [Candidate] {
        let (nx, ny) = (prob.shape[2], prob.shape[3])
        var found: [Candidate] = []
        for j in 0..<ny {
            for i in 0..<nx {
                let score = Double(prob.data[nx * ny + i * ny + j])
                guard score >= threshold else { continue }
                let (x, y) = (Double(2 * i), Double(2 * j))
                found.append(Candidate(x1: ((x + 1) / scale).rounded(.towardZero), y1: ((y + 1) / scale).rounded(.towardZero),
                                       x2: ((x + 12) / scale).rounded(.towardZero), y2: ((y + 12) / scale).rounded(.towardZero),
                                       score: score, reg: (0..<4).map { Double(reg.data[($0 * nx + i) * ny + j]) }))
            }
        }
        return found
    }

    /// R-Net or O-Net on `size` x `size` crops of the boxes: the boxes whose score passes, with the
    /// net's score, regression and (O-Net) landmarks.
    func refine(_ net: CompiledGraph, _ boxes: [Candidate], _ image: Tensor, size: Int, threshold: Double) throws -> [Candidate] {
        let inside = boxes.filter { b in
            b.x2 >= 1 && b.y2 >= 1 && b.x1 <= Double(image.shape[2]) && b.y1 <= Double(image.shape[1]) && b.width >= 1 && b.height >= 1
        }
        var kept: [Candidate] = []
        let chunk = 256
        for start in stride(from: 0, to: inside.count, by: chunk) {
            let part = Array(inside[start..<min(inside.count, start + chunk)])
            var batch = 1
            while batch < part.count { batch *= 2 }
            var crops = part.map { Resample.image(Self.crop(image, $0), height: size, width: size) }
            crops += Array(repeating: Tensor(zeros: [3, size, size]), count: batch - part.count)
            let out = try outputs(net, Self.netInput(crops), symbols: [:], expect: size == 48 ? [2, 4, 10] : [2, 4])
            for (k, b) in part.enumerated() {
                let score = Double(out[2]!.data[2 * k + 1])
                guard score > threshold else { continue }
                var c = b
                c.score = score
                c.reg = (0..<4).map { Double(out[4]!.data[4 * k + $0]) }
                if let p = out[10] {
                    c.points = (0..<5).map { m in
                        Point(x: c.width * Double(p.data[10 * k + m]) + c.x1 - 1, y: c.height * Double(p.data[10 * k + 5 + m]) + c.y1 - 1)
                    }
                }
                kept.append(c)
            }
        }
        return kept
    }

    /// The box's pixels (1-based corners, inclusive); outside the image, zeros (`pad.m`).
    static func crop(_ image: Tensor, _ b: Candidate) -> Tensor {
        let (h, w) = (image.shape[1], image.shape[2])
        let (cw, ch) = (Int(b.width), Int(b.height)), (x0, y0) = (Int(b.x1) - 1, Int(b.y1) - 1)
        var out = [Float](repeating: 0, count: 3 * ch * cw)
        let (ys, xs) = (max(0, -y0), max(0, -x0)), (ye, xe) = (min(ch, h - y0), min(cw, w - x0))
        guard ys < ye, xs < xe else { return Tensor(shape: [3, ch, cw], data: out) }
        for c in 0..<3 {
            for y in ys..<ye {
                for x in xs..<xe { out[(c * ch + y) * cw + x] = image.data[(c * h + y0 + y) * w + x0 + x] }
            }
        }
        return Tensor(shape: [3, ch, cw], data: out)
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

    /// The net's outputs keyed by their channel count (2: face probability, 4: box regression,
    /// 10: landmarks); a net without the `expect`ed ones is not MTCNN's.
    func outputs(_ net: CompiledGraph, _ x: Tensor, symbols: [String: Int], expect: [Int]) throws -> [Int: Tensor] {
        let ex = try net.executor(batch: x.shape[0], symbols: symbols)
        let out = try ex.run(inputs: [net.graph.inputs[0].name: x])
        let byChannels = Dictionary(out.values.map { ($0.shape[1], $0) }, uniquingKeysWith: { a, _ in a })
        guard expect.allSatisfy({ byChannels[$0] != nil }) else {
            throw FaceError("'\(net.graph.name)' gives outputs shaped \(out.values.map { "\($0.shape)" }.sorted().joined(separator: ", "));"
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
