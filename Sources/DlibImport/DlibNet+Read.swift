// Reading a dlib network file of a known type (dlib/dnn/core.h: add_loss_layer, add_layer,
// add_tag_layer, add_skip_layer; dlib/dnn/layers.h, input.h, loss.h: each layer's details).
import Foundation

/// Layer families the reader knows, with the version strings of each.
let dlibFamilies: [String: Set<String>] = [
    "con": ["con_4", "con_5", "con_6"],
    "fc": ["fc_2", "fc_3"],
    "relu": ["relu_", "relu_2"],
    "affine": ["affine_", "affine_2", "bn_con2"],
    "max_pool": ["max_pool_2"],
    "avg_pool": ["avg_pool_2"],
    "add_prev": ["add_prev_"],
]

extension DlibNet {
    /// Reads `path` as a network of `type`.
    public init(path: String, type: DlibNetType = .faceRecognitionResNet) throws(DlibError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DlibError(file: path, FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        try self.init(bytes: [UInt8](data), file: path, type: type)
    }

    public init(bytes: [UInt8], file: String, type: DlibNetType = .faceRecognitionResNet) throws(DlibError) {
        var s = DlibStream(bytes: bytes, file: file)
        guard type.loss == "loss_metric" else { throw DlibError(file: file, "fn2e reads dlib nets with a loss_metric loss, not \(type.loss)") }
        guard let bottom = type.layers.last, case .layer = bottom else {
            throw DlibError(file: file, "the net type must end in a computational layer above the input")
        }
        try s.version("add_loss_layer", 1...1)
        let lossStart = s.offset
        let loss = try s.string("the loss layer's version")
        let lossValues: [Float]
        switch loss {
        case "loss_metric_": lossValues = [0.1, 0.75]  // dlib's hard-coded margin and distance threshold
        case "loss_metric_2": lossValues = [try s.float("loss_metric's margin"), try s.float("loss_metric's distance threshold")]
        default:
            throw s.fail("expected the loss layer loss_metric_ or loss_metric_2 (a \(type.loss) net), found '\(loss)'", at: lossStart)
        }

        // add_layer versions from the top down; the bottom one wraps the input layer itself.
        var versions: [Int] = []
        for (i, entry) in type.layers.enumerated() {
            let what = "layer<\(i + 1)> (\(entry))"
            switch entry {
            case .tag, .skip: versions.append(try s.version(what, 1...1))
            case .layer, .addPrev: versions.append(try s.version(what, i == type.layers.count - 1 ? 2...3 : 1...2))
            }
        }

        let inputStart = s.offset
        let input = try s.string("the input layer's version")
        guard input == type.input, input == "input_rgb_image_sized" else {
            throw s.fail("expected the input layer \(type.input) (fn2e reads input_rgb_image_sized, whose size the graph needs), found '\(input)'", at: inputStart)
        }
        var means: [Float] = []
        for channel in ["red", "green", "blue"] { means.append(try s.float("the input's average \(channel)")) }
        var size: [Int] = []
        for name in ["rows", "columns"] {
            let start = s.offset
            let v = try s.int("the input's \(name)", signed: false)
            guard (1...65536).contains(v) else { throw s.fail("the input has \(v) \(name)", at: start) }
            size.append(v)
        }

        var layers: [DlibLayer] = []
        for i in type.layers.indices.reversed() {
            let entry = type.layers[i], index = i + 1, start = s.offset
            switch entry {
            case .tag(let id):
                layers.append(DlibLayer(index: index, version: "tag\(id)", offset: start, details: .tag(id)))
                continue
            case .skip(let id):
                layers.append(DlibLayer(index: index, version: "skip\(id)", offset: start, details: .skip(id)))
                continue
            case .layer, .addPrev:
                break
            }
            var layer = try Self.readDetails(&s, entry: entry, index: index)
            layer.offset = start
            layers.append(layer)
            // add_layer's own state after the details: three flags, the cached tensors (empty in a
            // saved net, skipped whatever they hold), and for the bottom layer its expansion factor.
            let what = "layer<\(index)> (\(entry))"
            for flag in ["this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"] {
                _ = try s.bool("\(what)'s \(flag)")
            }
            _ = try s.tensor("\(what)'s x_grad")
            _ = try s.tensor("\(what)'s cached_output")
            if i == type.layers.count - 1 {
                _ = try s.tensor("\(what)'s grad_final")
                if versions[i] == 3 { _ = try s.int32("\(what)'s sample_expansion_factor") }
            } else if versions[i] == 2 {
                _ = try s.tensor("\(what)'s params_grad")
            }
        }
        guard s.atEnd else {
            throw s.fail("expected the end of the file after the last layer, found \(bytes.count - s.offset) more bytes")
        }
        self.init(type: type, loss: loss, lossValues: lossValues, inputMeans: means, inputSize: size, layers: layers)
    }

    /// A layer's details: its version string, then the fields that version has.
    private static func readDetails(_ s: inout DlibStream, entry: DlibEntry, index: Int) throws(DlibError) -> DlibLayer {
        let start = s.offset
        let family: String
        switch entry {
        case .layer(let f): family = f
        case .addPrev: family = "add_prev"
        case .tag, .skip: preconditionFailure("tags and skips have no details")
        }
        let version = try s.string("the details of layer<\(index)> (\(entry))")
        guard let known = dlibFamilies[family], known.contains(version) else {
            let families = dlibFamilies.keys.sorted().joined(separator: ", ")
            throw s.fail("layer<\(index)>: expected a \(family) layer (\((dlibFamilies[family] ?? []).sorted().joined(separator: " or "))) where the net type has \(entry), found '\(version)'; fn2e imports \(families), tag and skip layers", at: start)
        }
        let what = "layer<\(index)> (\(version))"
        func fail(_ message: String, at position: Int? = nil) -> DlibError { s.fail("\(what): \(message)", at: position ?? start) }
        func windowFields() throws(DlibError) -> (window: [Int], stride: [Int], padding: [Int]) {
            let nr = try s.int("\(what)'s nr"), nc = try s.int("\(what)'s nc")
            let sy = try s.int32("\(what)'s stride_y"), sx = try s.int32("\(what)'s stride_x")
            let py = try s.int32("\(what)'s padding_y"), px = try s.int32("\(what)'s padding_x")
            guard nr >= 0, nc >= 0, sy >= 1, sx >= 1, py >= 0, px >= 0 else {
                throw fail("window \(nr)x\(nc), stride \(sy)x\(sx), padding \(py)x\(px) are out of range")
            }
            return ([nr, nc], [sy, sx], [py, px])
        }
        func multipliers() throws(DlibError) {
            for name in ["learning_rate_multiplier", "weight_decay_multiplier", "bias_learning_rate_multiplier", "bias_weight_decay_multiplier"] {
                _ = try s.float("\(what)'s \(name)")
            }
        }

        let details: DlibLayerDetails
        switch version {
        case "con_4", "con_5", "con_6":
            let params = try s.tensor("\(what)'s parameters")
            let filtersAt = s.offset
            let numFilters = try s.int("\(what)'s num_filters")
            let window = try windowFields()
            let filters = try s.aliasShape("\(what)'s filters")
            _ = try s.aliasShape("\(what)'s biases")
            try multipliers()
            let useBias = version == "con_4" ? true : try s.bool("\(what)'s use_bias")
            let relu = version == "con_6" ? try s.bool("\(what)'s use_relu") : false
            let o = filters[0], fcount = elementCount(filters) ?? -1
            guard o == numFilters, o >= 1, fcount >= o, params.data.count == fcount + (useBias ? o : 0) else {
                throw fail("filters \(filters) with \(numFilters) filters\(useBias ? " and biases" : "") do not match the \(params.data.count) parameters stored", at: filtersAt)
            }
            guard window.padding[0] < filters[2], window.padding[1] < filters[3] else {
                throw fail("padding \(window.padding) is not smaller than the \(filters[2])x\(filters[3]) filter")
            }
            details = .con(filters: DlibTensor(shape: filters, data: Array(params.data[0..<fcount])),
                           biases: useBias ? Array(params.data[fcount...]) : nil,
                           stride: window.stride, padding: window.padding, relu: relu)

        case "fc_2", "fc_3":
            let outputs = try s.int("\(what)'s num_outputs", signed: false)
            let inputs = try s.int("\(what)'s num_inputs", signed: false)
            let params = try s.tensor("\(what)'s parameters")
            let weightsAt = s.offset
            let weights = try s.aliasShape("\(what)'s weights")
            _ = try s.aliasShape("\(what)'s biases")
            let mode = try s.int32("\(what)'s bias mode")
            try multipliers()
            let useBias = version == "fc_3" ? try s.bool("\(what)'s use_bias") : true
            guard mode == 0 || mode == 1 else { throw fail("bias mode \(mode) is neither FC_HAS_BIAS (0) nor FC_NO_BIAS (1)", at: weightsAt) }
            let hasBias = mode == 0 && useBias
            guard outputs >= 1, inputs >= 1, weights == [inputs, outputs, 1, 1],
                  params.data.count == inputs * outputs + (hasBias ? outputs : 0) else {
                throw fail("\(inputs) inputs, \(outputs) outputs and weights \(weights) do not match the \(params.data.count) parameters stored", at: weightsAt)
            }
            details = .fc(weights: DlibTensor(shape: [inputs, outputs], data: Array(params.data[0..<inputs * outputs])),
                          biases: hasBias ? Array(params.data[(inputs * outputs)...]) : nil)

        case "relu_", "relu_2":
            details = .relu(disabled: version == "relu_2" ? try s.bool("\(what)'s disabled flag") : false)

        case "affine_", "affine_2":
            let params = try s.tensor("\(what)'s parameters")
            let gammaAt = s.offset
            let gamma = try s.aliasShape("\(what)'s gamma"), beta = try s.aliasShape("\(what)'s beta")
            let mode = try s.int32("\(what)'s mode")
            let disabled = version == "affine_2" ? try s.bool("\(what)'s disabled flag") : false
            guard mode == 0 else { throw fail("affine in fc mode (one gamma per element) is not supported; only conv mode (one per channel)", at: gammaAt) }
            let k = gamma[1]
            guard gamma == [1, k, 1, 1], beta == gamma, params.data.count == 2 * k else {
                throw fail("gamma \(gamma) and beta \(beta) do not match the \(params.data.count) parameters stored", at: gammaAt)
            }
            details = .affine(gamma: Array(params.data[0..<k]), beta: Array(params.data[k...]), disabled: disabled)

        case "bn_con2":
            let params = try s.tensor("\(what)'s parameters")
            let gammaAt = s.offset
            let gamma = try s.aliasShape("\(what)'s gamma"), beta = try s.aliasShape("\(what)'s beta")
            _ = try s.tensor("\(what)'s batch means")
            _ = try s.tensor("\(what)'s batch inverse deviations")
            let mean = try s.tensor("\(what)'s running means")
            let variance = try s.tensor("\(what)'s running variances")
            _ = try s.int("\(what)'s num_updates", signed: false)
            _ = try s.int("\(what)'s running_stats_window_size", signed: false)
            try multipliers()
            let eps = try s.float("\(what)'s eps")
            let k = gamma[1]
            guard gamma == [1, k, 1, 1], beta == gamma, params.data.count == 2 * k,
                  mean.data.count == k, variance.data.count == k else {
                throw fail("gamma \(gamma), beta \(beta), \(mean.data.count) means and \(variance.data.count) variances do not match \(params.data.count) parameters", at: gammaAt)
            }
            details = .batchNorm(gamma: Array(params.data[0..<k]), beta: Array(params.data[k...]),
                                 mean: mean.data, variance: variance.data, eps: eps)

        case "max_pool_2", "avg_pool_2":
            let w = try windowFields()
            details = version == "max_pool_2" ? .maxPool(window: w.window, stride: w.stride, padding: w.padding)
                                              : .avgPool(window: w.window, stride: w.stride, padding: w.padding)

        case "add_prev_":
            guard case .addPrev(let tag) = entry else { preconditionFailure("add_prev_ belongs to the add_prev family only") }
            details = .addPrev(tag: tag)

        default:
            preconditionFailure("version \(version) is listed in dlibFamilies but not read")
        }
        return DlibLayer(index: index, version: version, offset: start, details: details)
    }
}
