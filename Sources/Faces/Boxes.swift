/// A candidate box of the cascade in the release's coordinates (1-based pixels, corners included),
/// with its score and the regression offsets its stage predicted.
struct Candidate {
    var x1, y1, x2, y2, score: Double
    var reg = SIMD4<Double>()
    var points: [Point] = []

    var width: Double { x2 - x1 + 1 }
    var height: Double { y2 - y1 + 1 }
}

/// How NMS measures the overlap of two boxes: intersection over union, or over the smaller box.
public enum NMSMode: String, Sendable, CaseIterable {
    case union = "Union", min = "Min"
}

/// One NMS step: boxes overlapping a better one by more than `threshold` go.
public struct NMSStep: Sendable, Equatable {
    public var threshold: Double
    public var mode: NMSMode
    public init(_ threshold: Double, _ mode: NMSMode) { (self.threshold, self.mode) = (threshold, mode) }
}

enum Boxes {
    /// Greedy NMS as the release's `nms.m`: areas count pixels (+1), the best remaining box is kept
    /// (ties: the later one), the indices kept come best first.
    static func nms(_ b: [Candidate], _ step: NMSStep) -> [Int] {
        var order = b.indices.sorted { (b[$0].score, $0) < (b[$1].score, $1) }
        var keep: [Int] = []
        while let i = order.popLast() {
            keep.append(i)
            order.removeAll { j in
                let w = max(0, min(b[i].x2, b[j].x2) - max(b[i].x1, b[j].x1) + 1)
                let h = max(0, min(b[i].y2, b[j].y2) - max(b[i].y1, b[j].y1) + 1)
                let inter = w * h, ai = b[i].width * b[i].height, aj = b[j].width * b[j].height
                let o = step.mode == .min ? inter / min(ai, aj) : inter / (ai + aj - inter)
                return o > step.threshold
            }
        }
        return keep
    }

    /// The regression offsets applied, scaled by the box's size (`bbreg.m`, sizes +1).
    static func regress(_ c: Candidate) -> Candidate {
        var r = c
        let (w, h) = (c.width, c.height)
        r.x1 += c.reg[0] * w; r.y1 += c.reg[1] * h; r.x2 += c.reg[2] * w; r.y2 += c.reg[3] * h
        return r
    }

    /// The square around the box's centre with its longer side (`rerec.m`).
    static func square(_ c: Candidate) -> Candidate {
        var r = c
        let w = c.x2 - c.x1, h = c.y2 - c.y1, l = max(w, h)
        r.x1 = c.x1 + w * 0.5 - l * 0.5
        r.y1 = c.y1 + h * 0.5 - l * 0.5
        r.x2 = r.x1 + l
        r.y2 = r.y1 + l
        return r
    }

    /// Corners truncated towards zero (MATLAB's `fix`).
    static func truncated(_ c: Candidate) -> Candidate {
        var r = c
        (r.x1, r.y1, r.x2, r.y2) = (c.x1.rounded(.towardZero), c.y1.rounded(.towardZero), c.x2.rounded(.towardZero), c.y2.rounded(.towardZero))
        return r
    }
}
