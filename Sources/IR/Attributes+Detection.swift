import Detection

extension Attrs {
    /// A prior_box node's settings (defaults filled in).
    public var priorBoxSpec: PriorBoxSpec {
        PriorBoxSpec(minSizes: floats("min_sizes").map(Float.init), maxSizes: floats("max_sizes").map(Float.init),
                     aspectRatios: floats("aspect_ratios").map(Float.init), flip: bool("flip"), clip: bool("clip"),
                     variances: floats("variances").map(Float.init), offset: Float(float("offset")))
    }

    /// A detection_output node's settings (defaults filled in).
    public func detectionSpec() throws -> DetectionSpec {
        guard let coding = BoxCoding(rawValue: string("code_type")) else {
            throw InferenceError("detection_output: unknown code_type \(string("code_type"))", attribute: "code_type")
        }
        return DetectionSpec(numClasses: int("num_classes"), shareLocation: bool("share_location"), backgroundLabel: int("background_label"),
                             nmsThreshold: Float(float("nms_threshold")), topK: int("top_k"), eta: Float(float("eta")), coding: coding,
                             keepTopK: int("keep_top_k"), varianceEncodedInTarget: bool("variance_encoded_in_target"),
                             confidenceThreshold: Float(float("confidence_threshold")))
    }
}

extension Attrs {
    /// A prior_box node's boxes for a feature map `[N, C, H, W]` and an image `[N, C, IH, IW]`: the
    /// image size is `image_size` unless that is [0, 0], the step `step` unless empty (image size
    /// over feature map size).
    public func priorBoxes(feature: [Int], image: [Int]) -> [Float] {
        let (fh, fw) = (feature[2], feature[3])
        var (ih, iw) = pair("image_size")
        if ih == 0 { (ih, iw) = (image[2], image[3]) }
        let step = floats("step")
        let (sh, sw) = step.count == 2 ? (Float(step[0]), Float(step[1])) : (Float(ih) / Float(fh), Float(iw) / Float(fw))
        return PriorBoxes.compute(priorBoxSpec, featureHeight: fh, featureWidth: fw, imageHeight: ih, imageWidth: iw, stepHeight: sh, stepWidth: sw)
    }
}
