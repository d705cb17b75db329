// From protobuf-c messages to CaffeNet, through the upgrade steps Caffe itself applies
// (src/caffe/util/upgrade_proto.cpp): V1 `layers` to `layer`, legacy input fields to an Input layer.
import CCaffeProto
import CProtobufC

/// Caffe's V1 layer-type enum names and the type strings they became.
let v1LayerTypeNames: [String: String] = [
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution", "DECONVOLUTION": "Deconvolution",
    "DATA": "Data", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct", "LRN": "LRN", "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power",
    "RELU": "ReLU", "SIGMOID": "Sigmoid", "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence", "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split",
    "SLICE": "Slice", "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
]

/// Turns layer messages into CaffeLayers and records the upgrade steps taken.
struct CaffeConverter {
    let file: String
    var locations: TextLocations?
    private(set) var log: [String] = []
    private var upgradedV1 = false

    init(file: String, locations: TextLocations? = nil) {
        self.file = file
        self.locations = locations
    }

    static let mixedSyntaxMessage = "the net mixes current 'layer' and V1 'layers' fields; Caffe refuses to upgrade such a net, rewrite every 'layers { type: ENUM }' as 'layer { type: \"Name\" }'"

    private func location(of m: ProtoRef) -> CaffeSourceLocation? { locations?.messageStart[UnsafeMutableRawPointer(m.raw)] }

    private func fail(_ m: ProtoRef, index: Int, name: String, _ message: String) -> CaffeError {
        let loc = location(of: m)
        return CaffeError(file: file, location: loc, loc == nil ? "layer \(index) (\"\(name)\"): \(message)" : "layer \"\(name)\": \(message)")
    }

    /// A `layer { ... }` message (current format).
    func layer(_ m: ProtoRef, index: Int) throws(CaffeError) -> CaffeLayer {
        let name = m.string("name") ?? ""
        let type = m.string("type") ?? ""
        var layer = CaffeLayer(name: name, type: type, bottoms: m.strings("bottom"), tops: m.strings("top"))
        layer.params = m.messages("param").map {
            CaffeParamSpec(name: $0.has("name") ? $0.string("name") : nil, lrMult: $0.float("lr_mult"), decayMult: $0.float("decay_mult"))
        }
        layer.phase = m.has("phase") ? CaffePhase(rawValue: m.enumName("phase") ?? "") : nil
        layer.lossWeights = m.floats("loss_weight")
        layer.propagateDown = m.ints("propagate_down").map { $0 != 0 }
        try fillCommon(&layer, m, index: index)
        return layer
    }

    /// A `layers { ... }` message (V1 format), upgraded to the current vocabulary.
    mutating func layer(v1 m: ProtoRef, index: Int) throws(CaffeError) -> CaffeLayer {
        if !upgradedV1 {
            log.append("upgrading V1 layers to current format")
            upgradedV1 = true
        }
        let name = m.string("name") ?? ""
        let enumName = m.enumName("type") ?? "NONE"
        guard let type = v1LayerTypeNames[enumName] else {
            throw fail(m, index: index, name: name, "V1 layer type \(enumName) has no current equivalent")
        }
        var layer = CaffeLayer(name: name, type: type, bottoms: m.strings("bottom"), tops: m.strings("top"))
        let lr = m.floats("blobs_lr"), decay = m.floats("weight_decay"), names = m.strings("param")
        layer.params = (0..<max(lr.count, decay.count, names.count)).map { i in
            CaffeParamSpec(name: i < names.count ? names[i] : nil, lrMult: i < lr.count ? lr[i] : 1, decayMult: i < decay.count ? decay[i] : 1)
        }
        layer.lossWeights = m.floats("loss_weight")
        try fillCommon(&layer, m, index: index)
        return layer
    }

    private func fillCommon(_ layer: inout CaffeLayer, _ m: ProtoRef, index: Int) throws(CaffeError) {
        layer.include = m.messages("include").map(rule)
        layer.exclude = m.messages("exclude").map(rule)
        layer.location = location(of: m)
        layer.typeLocation = locations?.fields[UnsafeMutableRawPointer(m.raw)]?["type"]
        for (i, b) in m.messages("blobs").enumerated() {
            layer.blobs.append(try blob(b, layer: m, index: index, name: layer.name, blobIndex: i))
        }
        layer.typeParams = try typeParams(layer.type, m, index: index, name: layer.name)
    }

    private func rule(_ r: ProtoRef) -> CaffeRule {
        CaffeRule(phase: r.has("phase") ? CaffePhase(rawValue: r.enumName("phase") ?? "") : nil,
                  minLevel: r.has("min_level") ? r.int("min_level") : nil,
                  maxLevel: r.has("max_level") ? r.int("max_level") : nil,
                  stages: r.strings("stage"), notStages: r.strings("not_stage"))
    }

    private func blob(_ b: ProtoRef, layer m: ProtoRef, index: Int, name: String, blobIndex: Int) throws(CaffeError) -> CaffeBlob {
        var data = b.floats("data")
        if data.isEmpty { data = b.floats("double_data") }
        let shape: [Int]
        if b.has("num") || b.has("channels") || b.has("height") || b.has("width") {
            shape = [b.int("num"), b.int("channels"), b.int("height"), b.int("width")]
        } else if let s = b.message("shape") {
            shape = s.ints("dim")
        } else {
            shape = data.isEmpty ? [0] : [data.count]
        }
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard d >= 0, !overflow else {
                throw fail(m, index: index, name: name, "blob \(blobIndex) has an invalid shape \(shape)")
            }
            count = product
        }
        guard count == data.count else {
            throw fail(m, index: index, name: name, "blob \(blobIndex) has shape \(shape) (\(count) values) but holds \(data.count) values")
        }
        return CaffeBlob(shape: shape, data: data)
    }

    /// The layer's `<kind>_param` message, or a default one (freed by the caller) when absent, so
    /// that defaults always come from caffe.proto.
    private func param(_ m: ProtoRef, _ field: String) -> (ProtoRef, owned: Bool)? {
        guard let f = m.descriptor.field(named: field) else { return nil }
        if let p = m.message(field) { return (p, false) }
        return (f.messageDescriptor.newMessage(), true)
    }

    func withParam<T>(_ m: ProtoRef, _ field: String, _ body: (ProtoRef) throws(CaffeError) -> T) throws(CaffeError) -> T? {
        guard let (p, owned) = param(m, field) else { return nil }
        defer { if owned { p.free() } }
        return try body(p)
    }

    /// Resolves a geometry setting the way Caffe's convolution layer does: `<hw>_h`/`<hw>_w` when
    /// given, else the repeated field with one (square) or two (h, w) values; nil for 3+ values.
    private static func pair(_ p: ProtoRef, _ repeated: String, hw: String?, default value: Int) -> CaffeHW? {
        if let hw, p.has(hw + "_h") || p.has(hw + "_w") { return CaffeHW(p.int(hw + "_h"), p.int(hw + "_w")) }
        let values = p.ints(repeated)
        switch values.count {
        case 0: return CaffeHW(value, value)
        case 1: return CaffeHW(values[0], values[0])
        case 2: return CaffeHW(values[0], values[1])
        default: return nil
        }
    }

    private func typeParams(_ type: String, _ m: ProtoRef, index: Int, name: String) throws(CaffeError) -> CaffeLayerParams {
        let fail = { (message: String) in self.fail(m, index: index, name: name, message) }
        switch type {
        case "Convolution", "Deconvolution":
            return try withParam(m, "convolution_param") { (p) throws(CaffeError) in
                let hasKernel = p.has("kernel_size") || (p.has("kernel_h") && p.has("kernel_w"))
                guard hasKernel, let kernel = Self.pair(p, "kernel_size", hw: "kernel", default: 0),
                      let stride = Self.pair(p, "stride", hw: "stride", default: 1),
                      let pad = Self.pair(p, "pad", hw: "pad", default: 0),
                      let dilation = Self.pair(p, "dilation", hw: nil, default: 1) else {
                    throw fail("convolution needs kernel_size (1 or 2 values) or kernel_h and kernel_w; only 2-D convolution is supported")
                }
                return .convolution(ConvolutionParams(numOutput: p.int("num_output"), kernel: kernel, stride: stride, pad: pad,
                                                      dilation: dilation, group: p.int("group"), biasTerm: p.bool("bias_term"), axis: p.int("axis")))
            } ?? .none
        case "Pooling":
            return try withParam(m, "pooling_param") { (p) throws(CaffeError) in
                let global = p.bool("global_pooling")
                let kernel: CaffeHW
                if p.has("kernel_h") || p.has("kernel_w") {
                    kernel = CaffeHW(p.int("kernel_h"), p.int("kernel_w"))
                } else if p.has("kernel_size") {
                    kernel = CaffeHW(p.int("kernel_size"), p.int("kernel_size"))
                } else if global {
                    kernel = CaffeHW(0, 0)
                } else {
                    throw fail("pooling needs kernel_size or kernel_h and kernel_w (or global_pooling)")
                }
                let stride = p.has("stride_h") || p.has("stride_w") ? CaffeHW(p.int("stride_h"), p.int("stride_w")) : CaffeHW(p.int("stride"), p.int("stride"))
                let pad = p.has("pad_h") || p.has("pad_w") ? CaffeHW(p.int("pad_h"), p.int("pad_w")) : CaffeHW(p.int("pad"), p.int("pad"))
                let method = CaffePoolMethod(rawValue: p.enumName("pool") ?? "MAX") ?? .max
                return .pooling(PoolingParams(method: method, kernel: kernel, stride: stride, pad: pad, global: global,
                                              ceil: p.enumName("round_mode") != "FLOOR"))
            } ?? .none
        case "InnerProduct":
            return try withParam(m, "inner_product_param") { p in
                .innerProduct(InnerProductParams(numOutput: p.int("num_output"), biasTerm: p.bool("bias_term"), axis: p.int("axis"), transpose: p.bool("transpose")))
            } ?? .none
        case "ReLU":
            return try withParam(m, "relu_param") { p in .relu(negativeSlope: p.float("negative_slope")) } ?? .relu(negativeSlope: 0)
        case "PReLU":
            return try withParam(m, "prelu_param") { p in .prelu(channelShared: p.bool("channel_shared")) } ?? .prelu(channelShared: false)
        case "Dropout":
            return try withParam(m, "dropout_param") { p in .dropout(ratio: p.float("dropout_ratio")) } ?? .none
        case "Softmax", "SoftmaxWithLoss":
            return try withParam(m, "softmax_param") { p in .softmax(axis: p.int("axis")) } ?? .none
        case "LRN":
            return try withParam(m, "lrn_param") { p in
                .lrn(LRNParams(localSize: p.int("local_size"), alpha: p.float("alpha"), beta: p.float("beta"), k: p.float("k"),
                               region: CaffeLRNRegion(rawValue: p.enumName("norm_region") ?? "") ?? .acrossChannels))
            } ?? .none
        case "Eltwise":
            return try withParam(m, "eltwise_param") { p in
                .eltwise(op: CaffeEltwiseOp(rawValue: p.enumName("operation") ?? "SUM") ?? .sum, coeffs: p.floats("coeff"))
            } ?? .none
        case "Concat":
            return try withParam(m, "concat_param") { p in .concat(axis: p.has("concat_dim") ? p.int("concat_dim") : p.int("axis")) } ?? .none
        case "Slice":
            return try withParam(m, "slice_param") { p in
                .slice(axis: p.has("slice_dim") ? p.int("slice_dim") : p.int("axis"), slicePoints: p.ints("slice_point"))
            } ?? .none
        case "Flatten":
            return try withParam(m, "flatten_param") { p in .flatten(axis: p.int("axis"), endAxis: p.int("end_axis")) } ?? .flatten(axis: 1, endAxis: -1)
        case "Reshape":
            return try withParam(m, "reshape_param") { p in
                .reshape(ReshapeParams(shape: p.message("shape")?.ints("dim") ?? [], axis: p.int("axis"), numAxes: p.int("num_axes")))
            } ?? .none
        case "BatchNorm":
            return try withParam(m, "batch_norm_param") { p in
                .batchNorm(BatchNormParams(eps: p.float("eps"), useGlobalStats: p.has("use_global_stats") ? p.bool("use_global_stats") : nil,
                                           movingAverageFraction: p.float("moving_average_fraction")))
            } ?? .none
        case "Scale":
            return try withParam(m, "scale_param") { p in .scale(axis: p.int("axis"), numAxes: p.int("num_axes"), biasTerm: p.bool("bias_term")) } ?? .none
        case "Bias":
            return try withParam(m, "bias_param") { p in .bias(axis: p.int("axis"), numAxes: p.int("num_axes")) } ?? .none
        case "Input":
            return try withParam(m, "input_param") { p in .input(shapes: p.messages("shape").map { $0.ints("dim") }) } ?? .none
        default:
            return try ssdParams(type, m) ?? .none
        }
    }

    /// Caffe's UpgradeNetInput: `input:` with `input_shape` or four `input_dim` values per input
    /// becomes one Input layer named "input" in front of the net.
    mutating func legacyInputLayer(_ net: ProtoRef) throws(CaffeError) -> CaffeLayer? {
        let names = net.strings("input")
        let shapes = net.messages("input_shape").map { $0.ints("dim") }
        let dims = net.ints("input_dim")
        guard !names.isEmpty || !shapes.isEmpty || !dims.isEmpty else { return nil }
        let loc = locations?.fields[UnsafeMutableRawPointer(net.raw)]?["input"]
        var layerShapes: [[Int]] = []
        if !shapes.isEmpty {
            guard shapes.count == names.count else {
                throw CaffeError(file: file, location: loc, "\(names.count) legacy inputs but \(shapes.count) input_shape entries; give one per input")
            }
            layerShapes = shapes
        } else if !dims.isEmpty {
            guard dims.count == 4 * names.count else {
                throw CaffeError(file: file, location: loc, "\(names.count) legacy inputs but \(dims.count) input_dim values; give four (N, C, H, W) per input")
            }
            layerShapes = (0..<names.count).map { Array(dims[4 * $0..<4 * $0 + 4]) }
        }
        log.append("upgrading legacy input fields to an Input layer")
        return CaffeLayer(name: "input", type: "Input", tops: names, typeParams: .input(shapes: layerShapes), location: loc, typeLocation: loc)
    }
}

extension CaffeNet {
    /// The net Caffe would build for `phase` (and `level`/`stages`): a layer stays when one of its
    /// include rules matches, or it has none and no exclude rule matches (Caffe `Net::FilterNet`).
    public func filtered(phase: CaffePhase, level: Int = 0, stages: [String] = []) -> CaffeNet {
        func meets(_ rule: CaffeRule) -> Bool {
            if let p = rule.phase, p != phase { return false }
            if let lo = rule.minLevel, level < lo { return false }
            if let hi = rule.maxLevel, level > hi { return false }
            if !rule.stages.allSatisfy(stages.contains) { return false }
            if rule.notStages.contains(where: stages.contains) { return false }
            return true
        }
        var copy = self
        copy.layers = layers.filter { layer in
            if !layer.include.isEmpty { return layer.include.contains(where: meets) }
            return !layer.exclude.contains(where: meets)
        }
        return copy
    }
}
