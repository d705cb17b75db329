import IR

/// The SSD fork's layers: Normalize, Permute, PriorBox, DetectionOutput.
extension GraphBuilder {
    mutating func addDetection(_ layer: CaffeLayer) throws(CaffeError) -> Bool {
        switch (layer.type, layer.typeParams) {
        case ("Normalize", .normalize(let p)):
            // L2 normalization, then a learned scale: one value (channel_shared) or one per channel.
            let (x, t) = try one(layer)
            guard t.rank == 4 else { throw fail(layer, "needs an NCHW input, found \(t)") }
            let c = try channels(layer, t)
            let y = try node(layer, "\(layer.name).norm", .l2Normalize, [x],
                             ["across_spatial": .bool(p.acrossSpatial), "eps": .float(decimal(p.eps))])
            let s = param(layer, "scale", [p.channelShared ? 1 : c], .constant(decimal(p.scaleValue)), index: 0)
            try top(layer, 0, try node(layer, layer.name, p.channelShared ? .mul : .scale, [y, s]))
        case ("Permute", .permute(let order)):
            let (x, t) = try one(layer)
            // The fork appends the axes `order` leaves out, in their order.
            let perm = order.map { $0 < 0 ? $0 + t.rank : $0 }
            let full = perm + (0..<t.rank).filter { !perm.contains($0) }
            guard full.sorted() == Array(0..<t.rank) else {
                throw fail(layer, "order \(order) is not a permutation of the \(t.rank) axes of \(t)")
            }
            guard full[0] == 0 else { throw fail(layer, "order \(order) moves the batch axis; only orders starting with 0 are supported") }
            try top(layer, 0, try node(layer, layer.name, .transpose, [x], ["perm": .ints(full)]))
        case ("PriorBox", .priorBox(let layout)):
            guard layer.bottoms.count == 2, layer.tops.count == 1 else {
                throw fail(layer, "expects two bottoms (feature map, image) and one top, found \(layer.bottoms.count) and \(layer.tops.count)")
            }
            let (feature, _) = try bottom(layer, 0), (image, _) = try bottom(layer, 1)
            let p = layout.boxes
            var attrs: [String: AttrValue] = [
                "min_sizes": .floats(p.minSizes.map(decimal)), "max_sizes": .floats(p.maxSizes.map(decimal)),
                "aspect_ratios": .floats(p.aspectRatios.map(decimal)), "flip": .bool(p.flip), "clip": .bool(p.clip),
                "variances": .floats(p.variances.map(decimal)), "offset": .float(decimal(p.offset)),
            ]
            if let size = layout.imageSize { attrs["image_size"] = .ints([size.h, size.w]) }
            if let step = layout.step { attrs["step"] = .floats([decimal(step.h), decimal(step.w)]) }
            try top(layer, 0, try node(layer, layer.name, .priorBox, [feature, image], attrs))
        case ("DetectionOutput", .detectionOutput(let p)):
            guard layer.bottoms.count == 3, layer.tops.count == 1 else {
                throw fail(layer, "expects three bottoms (locations, confidences, priors) and one top, found \(layer.bottoms.count) and \(layer.tops.count)")
            }
            let operands = [try bottom(layer, 0).0, try bottom(layer, 1).0, try bottom(layer, 2).0]
            var attrs: [String: AttrValue] = [
                "num_classes": .int(p.numClasses), "share_location": .bool(p.shareLocation), "background_label": .int(p.backgroundLabel),
                "nms_threshold": .float(decimal(p.nmsThreshold)), "top_k": .int(p.topK), "eta": .float(decimal(p.eta)),
                "code_type": .word(p.coding.rawValue), "keep_top_k": .int(p.keepTopK),
                "variance_encoded_in_target": .bool(p.varianceEncodedInTarget),
            ]
            if p.confidenceThreshold > -Float.greatestFiniteMagnitude { attrs["confidence_threshold"] = .float(decimal(p.confidenceThreshold)) }
            try top(layer, 0, try node(layer, layer.name, .detectionOutput, operands, attrs))
        default:
            return false
        }
        return true
    }
}
