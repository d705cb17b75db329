// SSD's default boxes ("priors"): for every cell of a feature map, boxes of the given sizes and
// aspect ratios centred on the cell, in coordinates relative to the image, followed by their
// variances. The arithmetic follows the SSD fork of Caffe (PriorBox layer), single precision
// where the fork computes in single precision.

/// The settings of one prior-box layer.
public struct PriorBoxSpec: Sendable, Equatable {
    public var minSizes: [Float]
    public var maxSizes: [Float]
    /// As given; `expandedAspectRatios` adds 1 and, with `flip`, the reciprocals.
    public var aspectRatios: [Float]
    public var flip: Bool
    public var clip: Bool
    /// None (0.1 for all four), one (for all four) or four values.
    public var variances: [Float]
    public var offset: Float

    public init(minSizes: [Float], maxSizes: [Float] = [], aspectRatios: [Float] = [], flip: Bool = true, clip: Bool = false,
                variances: [Float] = [], offset: Float = 0.5) {
        self.minSizes = minSizes
        self.maxSizes = maxSizes
        self.aspectRatios = aspectRatios
        self.flip = flip
        self.clip = clip
        self.variances = variances
        self.offset = offset
    }

    /// 1 first, then each given ratio not yet present (within 1e-6), each followed by its reciprocal
    /// when flipping.
    public var expandedAspectRatios: [Float] {
        var out: [Float] = [1]
        for ar in aspectRatios where !out.contains(where: { abs($0 - ar) < 1e-6 }) {
            out.append(ar)
            if flip { out.append(1 / ar) }
        }
        return out
    }

    /// Boxes per cell: every aspect ratio for each minimum size, plus one per maximum size.
    public var boxesPerCell: Int { expandedAspectRatios.count * minSizes.count + maxSizes.count }

    /// Why the settings cannot make boxes, or nil.
    public var problem: String? {
        if minSizes.isEmpty { return "needs at least one min_size" }
        if minSizes.contains(where: { !($0 > 0) }) { return "min_size must be positive, found \(minSizes)" }
        if !maxSizes.isEmpty && maxSizes.count != minSizes.count {
            return "needs one max_size per min_size (\(minSizes.count)), found \(maxSizes.count)"
        }
        for (lo, hi) in zip(minSizes, maxSizes) where !(hi > lo) { return "max_size \(hi) must exceed min_size \(lo)" }
        if aspectRatios.contains(where: { !($0 > 0) }) { return "aspect ratios must be positive, found \(aspectRatios)" }
        if ![0, 1, 4].contains(variances.count) { return "needs 0, 1 or 4 variances, found \(variances.count)" }
        if variances.contains(where: { !($0 > 0) }) { return "variances must be positive, found \(variances)" }
        return nil
    }
}

public enum PriorBoxes {
    /// The layer's output `[1, 2, H*W*boxesPerCell*4]`, flattened: first every box as (xmin, ymin,
    /// xmax, ymax) cell by cell in row-major order, then the same count of variances. `step` is the
    /// distance between cell centres in image pixels.
    public static func compute(_ spec: PriorBoxSpec, featureHeight fh: Int, featureWidth fw: Int, imageHeight ih: Int,
                               imageWidth iw: Int, stepHeight sh: Float, stepWidth sw: Float) -> [Float] {
        let ratios = spec.expandedAspectRatios
        let perCell = spec.boxesPerCell
        let boxes = fh * fw * perCell * 4
        var out = [Float](repeating: 0, count: 2 * boxes)
        var k = 0
        func put(_ cx: Float, _ cy: Float, _ bw: Float, _ bh: Float) {
            out[k] = Float((Double(cx) - Double(bw) / 2) / Double(iw))
            out[k + 1] = Float((Double(cy) - Double(bh) / 2) / Double(ih))
            out[k + 2] = Float((Double(cx) + Double(bw) / 2) / Double(iw))
            out[k + 3] = Float((Double(cy) + Double(bh) / 2) / Double(ih))
            k += 4
        }
        for h in 0..<fh {
            for w in 0..<fw {
                let cx = (Float(w) + spec.offset) * sw, cy = (Float(h) + spec.offset) * sh
                for (s, minSize) in spec.minSizes.enumerated() {
                    put(cx, cy, minSize, minSize)
                    if !spec.maxSizes.isEmpty {
                        let side = (minSize * spec.maxSizes[s]).squareRoot()
                        put(cx, cy, side, side)
                    }
                    for ar in ratios where abs(ar - 1) >= 1e-6 {
                        let r = ar.squareRoot()
                        put(cx, cy, minSize * r, minSize / r)
                    }
                }
            }
        }
        if spec.clip {
            for i in 0..<boxes { out[i] = min(max(out[i], 0), 1) }
        }
        let variances = spec.variances.isEmpty ? [Float(0.1)] : spec.variances
        for i in 0..<boxes { out[boxes + i] = variances.count == 1 ? variances[0] : variances[i % 4] }
        return out
    }
}
