// The layer settings of the SSD fork of Caffe (Normalize, Permute, PriorBox, DetectionOutput),
// resolved with the fork's defaults, read from and written to caffe.proto's messages. PriorBox and
// DetectionOutput settings are Detection's own spec types, which the runtime executes.
import Detection

public struct NormalizeParams: Equatable, Sendable {
    public var acrossSpatial: Bool
    public var channelShared: Bool
    public var eps: Float
    /// The constant the scale starts from (`scale_filler { value }`, 1 when absent).
    public var scaleValue: Float
    public init(acrossSpatial: Bool = true, channelShared: Bool = true, eps: Float = 1e-10, scaleValue: Float = 1) {
        self.acrossSpatial = acrossSpatial
        self.channelShared = channelShared
        self.eps = eps
        self.scaleValue = scaleValue
    }
}

/// A PriorBox layer: the boxes (Detection's spec) and where they are laid out.
public struct PriorBoxParams: Equatable, Sendable {
    public var boxes: PriorBoxSpec
    /// Image size (h, w) when the file gives it, else nil (taken from the second bottom).
    public var imageSize: CaffeHW?
    /// Step (h, w) between cell centres when the file gives it, else nil (image / feature map).
    public var step: CaffeStep?
    public init(_ boxes: PriorBoxSpec, imageSize: CaffeHW? = nil, step: CaffeStep? = nil) {
        self.boxes = boxes
        self.imageSize = imageSize
        self.step = step
    }
}

/// A PriorBox step in pixels (fractional steps are allowed).
public struct CaffeStep: Equatable, Sendable {
    public var h: Float, w: Float
    public init(_ h: Float, _ w: Float) {
        self.h = h
        self.w = w
    }
}

extension CaffeConverter {
    /// The settings of an SSD-fork layer type (defaults from caffe.proto when the layer has no
    /// parameter message), or nil for any other type.
    func ssdParams(_ type: String, _ m: ProtoRef) throws(CaffeError) -> CaffeLayerParams? {
        switch type {
        case "Normalize": return try withParam(m, "norm_param") { p in Self.normalize(p) }
        case "Permute": return try withParam(m, "permute_param") { p in .permute(order: p.ints("order")) }
        case "PriorBox": return try withParam(m, "prior_box_param") { p in Self.priorBox(p) }
        case "DetectionOutput": return try withParam(m, "detection_output_param") { p in Self.detectionOutput(p) }
        default: return nil
        }
    }

    private static func normalize(_ p: ProtoRef) -> CaffeLayerParams {
        let filler = p.message("scale_filler")
        return .normalize(NormalizeParams(acrossSpatial: p.bool("across_spatial"), channelShared: p.bool("channel_shared"),
                                          eps: p.float("eps"), scaleValue: filler.map { $0.float("value") } ?? 1))
    }

    private static func priorBox(_ p: ProtoRef) -> CaffeLayerParams {
        var image: CaffeHW?
        if p.has("img_h") || p.has("img_w") {
            image = CaffeHW(p.int("img_h"), p.int("img_w"))
        } else if p.has("img_size") {
            image = CaffeHW(p.int("img_size"), p.int("img_size"))
        }
        var step: CaffeStep?
        if p.has("step_h") || p.has("step_w") {
            step = CaffeStep(p.float("step_h"), p.float("step_w"))
        } else if p.has("step") {
            step = CaffeStep(p.float("step"), p.float("step"))
        }
        let boxes = PriorBoxSpec(minSizes: p.floats("min_size"), maxSizes: p.floats("max_size"), aspectRatios: p.floats("aspect_ratio"),
                                 flip: p.bool("flip"), clip: p.bool("clip"), variances: p.floats("variance"), offset: p.float("offset"))
        return .priorBox(PriorBoxParams(boxes, imageSize: image, step: step))
    }

    private static func detectionOutput(_ p: ProtoRef) -> CaffeLayerParams {
        let nms = p.message("nms_param")
        let coding = BoxCoding(rawValue: (p.enumName("code_type") ?? "CORNER").lowercased()) ?? .corner
        return .detectionOutput(DetectionSpec(
            numClasses: p.int("num_classes"), shareLocation: p.bool("share_location"), backgroundLabel: p.int("background_label_id"),
            nmsThreshold: nms?.float("nms_threshold") ?? 0.3, topK: nms.map { $0.has("top_k") ? $0.int("top_k") : -1 } ?? -1,
            eta: nms?.float("eta") ?? 1, coding: coding, keepTopK: p.int("keep_top_k"),
            varianceEncodedInTarget: p.bool("variance_encoded_in_target"),
            confidenceThreshold: p.has("confidence_threshold") ? p.float("confidence_threshold") : -Float.greatestFiniteMagnitude))
    }
}

extension CaffeWriter {
    /// Writes an SSD-fork layer's settings (nothing for any other kind).
    func fillSSDParams(_ params: CaffeLayerParams, sub: (String) throws -> ProtoRef) throws {
        switch params {
        case .normalize(let q):
            let p = try sub("norm_param")
            p.set("across_spatial", q.acrossSpatial)
            p.set("channel_shared", q.channelShared)
            p.set("eps", q.eps)
            let f = p.add("scale_filler")
            f.set("type", "constant")
            f.set("value", q.scaleValue)
        case .permute(let order):
            let p = try sub("permute_param")
            for o in order { p.set("order", o) }
        case .priorBox(let layout):
            let p = try sub("prior_box_param"), q = layout.boxes
            for v in q.minSizes { p.set("min_size", v) }
            for v in q.maxSizes { p.set("max_size", v) }
            for v in q.aspectRatios { p.set("aspect_ratio", v) }
            p.set("flip", q.flip)
            p.set("clip", q.clip)
            for v in q.variances { p.set("variance", v) }
            if let image = layout.imageSize {
                p.set("img_h", image.h)
                p.set("img_w", image.w)
            }
            if let step = layout.step {
                p.set("step_h", step.h)
                p.set("step_w", step.w)
            }
            p.set("offset", q.offset)
        case .detectionOutput(let q):
            let p = try sub("detection_output_param")
            p.set("num_classes", q.numClasses)
            p.set("share_location", q.shareLocation)
            p.set("background_label_id", q.backgroundLabel)
            let nms = p.add("nms_param")
            nms.set("nms_threshold", q.nmsThreshold)
            if q.topK >= 0 { nms.set("top_k", q.topK) }
            nms.set("eta", q.eta)
            p.set("code_type", enumName: q.coding.rawValue.uppercased())
            p.set("keep_top_k", q.keepTopK)
            p.set("variance_encoded_in_target", q.varianceEncodedInTarget)
            if q.confidenceThreshold > -Float.greatestFiniteMagnitude { p.set("confidence_threshold", q.confidenceThreshold) }
        default:
            break
        }
    }
}
