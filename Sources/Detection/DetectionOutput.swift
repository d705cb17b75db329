import Foundation

// SSD's detection post-processing (the DetectionOutput layer of the SSD fork of Caffe): location
// predictions decoded against the prior boxes, per-class non-maximum suppression, a limit over all
// classes, and a table of (image, label, score, xmin, ymin, xmax, ymax) rows.

/// How a location prediction encodes a box relative to its prior.
public enum BoxCoding: String, Sendable, CaseIterable {
    case corner, centerSize = "center_size", cornerSize = "corner_size"
}

public struct DetectionSpec: Sendable, Equatable {
    public var numClasses: Int
    /// One box per prior for all classes, or one per prior and class.
    public var shareLocation: Bool
    /// The class that is never reported; -1 for none.
    public var backgroundLabel: Int
    public var nmsThreshold: Float
    /// Candidates per class entering NMS, best first; -1: all.
    public var topK: Int
    /// Adaptive NMS: after each kept box the threshold is multiplied by eta while above 0.5.
    public var eta: Float
    public var coding: BoxCoding
    /// Detections per image over all classes, best first; -1: all.
    public var keepTopK: Int
    public var varianceEncodedInTarget: Bool
    /// Scores must exceed this to be considered.
    public var confidenceThreshold: Float

    public init(numClasses: Int, shareLocation: Bool = true, backgroundLabel: Int = 0, nmsThreshold: Float = 0.3, topK: Int = -1,
                eta: Float = 1, coding: BoxCoding = .corner, keepTopK: Int = -1, varianceEncodedInTarget: Bool = false,
                confidenceThreshold: Float = -Float.greatestFiniteMagnitude) {
        self.numClasses = numClasses
        self.shareLocation = shareLocation
        self.backgroundLabel = backgroundLabel
        self.nmsThreshold = nmsThreshold
        self.topK = topK
        self.eta = eta
        self.coding = coding
        self.keepTopK = keepTopK
        self.varianceEncodedInTarget = varianceEncodedInTarget
        self.confidenceThreshold = confidenceThreshold
    }

    /// The classes that are reported.
    public var reportedClasses: Int { numClasses - (backgroundLabel >= 0 && backgroundLabel < numClasses ? 1 : 0) }

    /// Rows reserved per image: the most detections the settings allow for `priors` priors.
    public func rowsPerImage(priors: Int) -> Int {
        let perClass = topK >= 0 ? min(topK, priors) : priors
        let most = perClass * reportedClasses
        return keepTopK >= 0 ? min(keepTopK, most) : most
    }

    /// Why the settings cannot run, or nil.
    public var problem: String? {
        if numClasses < 1 { return "num_classes must be positive, found \(numClasses)" }
        if !(nmsThreshold >= 0) { return "nms_threshold must be non-negative, found \(nmsThreshold)" }
        if !(eta > 0 && eta <= 1) { return "eta must be in (0, 1], found \(eta)" }
        return nil
    }
}

/// A box in image-relative coordinates.
struct Box {
    var xmin: Float, ymin: Float, xmax: Float, ymax: Float

    var size: Float { xmax < xmin || ymax < ymin ? 0 : (xmax - xmin) * (ymax - ymin) }

    func overlap(_ b: Box) -> Float {
        if b.xmin > xmax || b.xmax < xmin || b.ymin > ymax || b.ymax < ymin { return 0 }
        let w = min(xmax, b.xmax) - max(xmin, b.xmin), h = min(ymax, b.ymax) - max(ymin, b.ymin)
        let inter = w * h
        return inter / (size + b.size - inter)
    }
}

public enum DetectionOutput {
    /// Writes `batch * rowsPerImage * 7` values to `out`: each image's detections grouped by label
    /// (ascending), best first within a label, then unused rows `[image, -1, -1, -1, -1, -1, -1]`.
    /// `loc` holds `[batch, priors, (classes,) 4]`, `conf` `[batch, priors, classes]`, `priors`
    /// the prior-box output `[1, 2, priors*4]`.
    public static func run(_ spec: DetectionSpec, loc: UnsafePointer<Float>, conf: UnsafePointer<Float>, priors: UnsafePointer<Float>,
                           batch: Int, priorCount: Int, out: UnsafeMutablePointer<Float>) {
        let rows = spec.rowsPerImage(priors: priorCount), classes = spec.numClasses
        let locClasses = spec.shareLocation ? 1 : classes
        for n in 0..<batch {
            var kept: [(label: Int, index: Int, score: Float)] = []
            var decoded: [Int: [Box]] = [:]
            func boxes(_ label: Int) -> [Box] {
                let l = spec.shareLocation ? 0 : label
                if let b = decoded[l] { return b }
                let b = (0..<priorCount).map { p -> Box in
                    let at = ((n * priorCount + p) * locClasses + l) * 4
                    return decode(Box(xmin: loc[at], ymin: loc[at + 1], xmax: loc[at + 2], ymax: loc[at + 3]), prior: p, priors, priorCount, spec)
                }
                decoded[l] = b
                return b
            }
            for c in 0..<classes where c != spec.backgroundLabel {
                let scores = (0..<priorCount).map { conf[(n * priorCount + $0) * classes + c] }
                let indices = suppress(boxes(c), scores, spec)
                kept += indices.map { (c, $0, scores[$0]) }
            }
            if spec.keepTopK >= 0 && kept.count > spec.keepTopK {
                kept = Array(kept.enumerated().sorted { a, b in
                    a.element.score != b.element.score ? a.element.score > b.element.score : a.offset < b.offset
                }.prefix(spec.keepTopK).map(\.element))
                // Grouped by label again, each label's boxes in the order of their scores.
                kept = kept.enumerated().sorted { a, b in
                    a.element.label != b.element.label ? a.element.label < b.element.label : a.offset < b.offset
                }.map(\.element)
            }
            let base = out + n * rows * 7
            for (r, d) in kept.prefix(rows).enumerated() {
                let b = boxes(d.label)[d.index]
                for (k, v) in [Float(n), Float(d.label), d.score, b.xmin, b.ymin, b.xmax, b.ymax].enumerated() { base[r * 7 + k] = v }
            }
            for r in min(kept.count, rows)..<rows {
                base[r * 7] = Float(n)
                for k in 1..<7 { base[r * 7 + k] = -1 }
            }
        }
    }

    /// A location prediction turned into a box, relative to prior `p`.
    static func decode(_ e: Box, prior p: Int, _ priors: UnsafePointer<Float>, _ count: Int, _ spec: DetectionSpec) -> Box {
        let pb = Box(xmin: priors[p * 4], ymin: priors[p * 4 + 1], xmax: priors[p * 4 + 2], ymax: priors[p * 4 + 3])
        let v = spec.varianceEncodedInTarget ? [Float](repeating: 1, count: 4) : (0..<4).map { priors[count * 4 + p * 4 + $0] }
        let pw = pb.xmax - pb.xmin, ph = pb.ymax - pb.ymin
        switch spec.coding {
        case .corner:
            return Box(xmin: pb.xmin + v[0] * e.xmin, ymin: pb.ymin + v[1] * e.ymin, xmax: pb.xmax + v[2] * e.xmax, ymax: pb.ymax + v[3] * e.ymax)
        case .cornerSize:
            return Box(xmin: pb.xmin + v[0] * e.xmin * pw, ymin: pb.ymin + v[1] * e.ymin * ph,
                       xmax: pb.xmax + v[2] * e.xmax * pw, ymax: pb.ymax + v[3] * e.ymax * ph)
        case .centerSize:
            let pcx = (pb.xmin + pb.xmax) / 2, pcy = (pb.ymin + pb.ymax) / 2
            let cx = v[0] * e.xmin * pw + pcx, cy = v[1] * e.ymin * ph + pcy
            let w = Float(expf(v[2] * e.xmax)) * pw, h = Float(expf(v[3] * e.ymax)) * ph
            return Box(xmin: cx - w / 2, ymin: cy - h / 2, xmax: cx + w / 2, ymax: cy + h / 2)
        }
    }

    /// Greedy NMS over the candidates above the confidence threshold (the best `topK`), best first:
    /// a box is kept when it overlaps no kept box by more than the (adaptive) threshold.
    static func suppress(_ boxes: [Box], _ scores: [Float], _ spec: DetectionSpec) -> [Int] {
        var order = scores.indices.filter { scores[$0] > spec.confidenceThreshold }
        order = order.enumerated().sorted { a, b in
            scores[a.element] != scores[b.element] ? scores[a.element] > scores[b.element] : a.offset < b.offset
        }.map(\.element)
        if spec.topK >= 0 && order.count > spec.topK { order = Array(order.prefix(spec.topK)) }
        var threshold = spec.nmsThreshold
        var kept: [Int] = []
        for i in order {
            let keep = kept.allSatisfy { boxes[i].overlap(boxes[$0]) <= threshold }
            if keep {
                kept.append(i)
                if spec.eta < 1 && threshold > 0.5 { threshold *= spec.eta }
            }
        }
        return kept
    }
}
