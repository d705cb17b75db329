// Writer -> reader round trips in both syntaxes, binary and text.
import CaffeImport
import Detection
import XCTest

/// Deterministic weights (SplitMix64) so generated models are reproducible.
struct SeededGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}

/// A small MTCNN-like net with seeded weights: conv, PReLU, pool, InnerProduct, Softmax, Dropout.
func makeTestNet(seed: UInt64 = 42) -> CaffeNet {
    var rng = SeededGenerator(state: seed)
    func blob(_ shape: [Int]) -> CaffeBlob { CaffeBlob(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in rng.float() }) }
    let wp = [CaffeParamSpec(lrMult: 1, decayMult: 1), CaffeParamSpec(lrMult: 2, decayMult: 0)]
    return CaffeNet(name: "TinyNet", layers: [
        CaffeLayer(name: "input", type: "Input", tops: ["data"], typeParams: .input(shapes: [[1, 3, 12, 12]])),
        CaffeLayer(name: "conv1", type: "Convolution", bottoms: ["data"], tops: ["conv1"], params: wp,
                   blobs: [blob([4, 3, 3, 3]), blob([4])],
                   typeParams: .convolution(ConvolutionParams(numOutput: 4, kernel: CaffeHW(3, 3), pad: CaffeHW(1, 0)))),
        CaffeLayer(name: "relu1", type: "ReLU", bottoms: ["conv1"], tops: ["conv1"], typeParams: .relu(negativeSlope: 0.1)),
        CaffeLayer(name: "pool1", type: "Pooling", bottoms: ["conv1"], tops: ["pool1"],
                   typeParams: .pooling(PoolingParams(method: .max, kernel: CaffeHW(3, 3), stride: CaffeHW(2, 2)))),
        CaffeLayer(name: "pool2", type: "Pooling", bottoms: ["pool1"], tops: ["pool2"],
                   typeParams: .pooling(PoolingParams(method: .average, kernel: CaffeHW(2, 2), stride: CaffeHW(1, 1), ceil: false))),
        CaffeLayer(name: "fc1", type: "InnerProduct", bottoms: ["pool2"], tops: ["fc1"], params: wp,
                   blobs: [blob([5, 4 * 4 * 5]), blob([5])], typeParams: .innerProduct(InnerProductParams(numOutput: 5))),
        CaffeLayer(name: "drop1", type: "Dropout", bottoms: ["fc1"], tops: ["fc1"], include: [CaffeRule(phase: .train)],
                   typeParams: .dropout(ratio: 0.25)),
        CaffeLayer(name: "cat", type: "Concat", bottoms: ["fc1", "fc1"], tops: ["cat"], typeParams: .concat(axis: 1)),
        CaffeLayer(name: "split", type: "Slice", bottoms: ["cat"], tops: ["a", "b"], typeParams: .slice(axis: 1, slicePoints: [5])),
        CaffeLayer(name: "prob", type: "Softmax", bottoms: ["a"], tops: ["prob"], typeParams: .softmax(axis: 1)),
    ])
}

/// What a V1 round trip gives back: legacy 4-D blob shapes, right-aligned with ones, and the log
/// of the upgrade steps.
func legacyShaped(_ net: CaffeNet) -> CaffeNet {
    var copy = net
    copy.upgradeLog = ["upgrading legacy input fields to an Input layer", "upgrading V1 layers to current format"]
    for i in copy.layers.indices {
        for j in copy.layers[i].blobs.indices {
            let s = copy.layers[i].blobs[j].shape
            copy.layers[i].blobs[j].shape = Array(repeating: 1, count: 4 - s.count) + s
        }
    }
    return copy
}

final class WriterRoundTripTests: XCTestCase {
    func testBinaryCurrentSyntax() throws {
        let net = makeTestNet()
        let bytes = try CaffeWriter(syntax: .current).caffemodelBytes(net)
        let back = try CaffeNet(caffemodel: bytes)
        XCTAssertEqual(back.upgradeLog, [])
        XCTAssertEqual(back, net)
    }

    func testBinaryV1Syntax() throws {
        let net = makeTestNet()
        let bytes = try CaffeWriter(syntax: .v1).caffemodelBytes(net)
        let back = try CaffeNet(caffemodel: bytes)
        XCTAssertEqual(back.upgradeLog, ["upgrading legacy input fields to an Input layer", "upgrading V1 layers to current format"])
        XCTAssertEqual(back.layer(named: "conv1")?.blobs.map(\.shape), [[4, 3, 3, 3], [1, 1, 1, 4]])
        XCTAssertEqual(back, legacyShaped(net))
    }

    func testBinaryFileThroughMemoryMap() throws {
        let net = makeTestNet(seed: 7)
        let path = NSTemporaryDirectory() + "fn2e-caffe-roundtrip-\(getpid()).caffemodel"
        defer { unlink(path) }
        for syntax in [CaffeSyntax.current, .v1] {
            try CaffeWriter(syntax: syntax).writeCaffemodel(net, to: path)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)).count, try CaffeWriter(syntax: syntax).caffemodelBytes(net).count)
            let back = try CaffeNet(caffemodelPath: path)
            XCTAssertTrue(back == (syntax == .current ? net : legacyShaped(net)), "\(syntax)")
        }
    }

    func testTextBothSyntaxes() throws {
        let net = makeTestNet()
        for syntax in [CaffeSyntax.current, .v1] {
            let text = try CaffeWriter(syntax: syntax).prototxt(net, includeBlobs: true)
            let back = try CaffeNet(prototxt: text, file: "roundtrip.prototxt")
            XCTAssertTrue(back.withoutLocations == (syntax == .current ? net : legacyShaped(net)), "\(syntax)\n\(text)")
            // Printing what was read gives the same text again.
            XCTAssertEqual(try CaffeWriter(syntax: syntax).prototxt(back, includeBlobs: true),
                           try CaffeWriter(syntax: syntax).prototxt(syntax == .current ? net : legacyShaped(net), includeBlobs: true))
        }
        let v1 = try CaffeWriter(syntax: .v1).prototxt(net)
        XCTAssertTrue(v1.contains("input: \"data\"\ninput_dim: 1\ninput_dim: 3\n"), v1)
        XCTAssertTrue(v1.contains("type: CONVOLUTION"), v1)
        XCTAssertFalse(v1.contains("blobs {"), v1)
    }

    func testDeployNetFromPhaseFilter() throws {
        let net = makeTestNet()
        XCTAssertNil(net.filtered(phase: .test).layer(named: "drop1"))
        XCTAssertNotNil(net.filtered(phase: .train).layer(named: "drop1"))
        var excluded = net
        excluded.layers[2].exclude = [CaffeRule(phase: .test)]
        XCTAssertNil(excluded.filtered(phase: .test).layer(named: "relu1"))
        XCTAssertNotNil(excluded.filtered(phase: .train).layer(named: "relu1"))
        let parsed = try CaffeNet(prototxt: """
            layer { name: "d" type: "HDF5Data" top: "data" include { phase: TRAIN } }
            layer { name: "i" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 } } include { phase: TEST } }
            layer { name: "acc" type: "Accuracy" bottom: "data" top: "acc" exclude: { phase: TRAIN } }
            """)
        XCTAssertEqual(parsed.filtered(phase: .test).layers.map(\.name), ["i", "acc"])
        XCTAssertEqual(parsed.filtered(phase: .train).layers.map(\.name), ["d"])
    }
}

final class LayerParamsTests: XCTestCase {
    /// Every modelled parameter kind reads with Caffe's defaults and survives a current-syntax round trip.
    func testEveryKindReadsAndRoundTrips() throws {
        let net = try CaffeNet(prototxt: """
            layer { name: "lrn" type: "LRN" lrn_param { local_size: 3 alpha: 0.0001 beta: 0.75 norm_region: WITHIN_CHANNEL } }
            layer { name: "lrn0" type: "LRN" }
            layer { name: "elt" type: "Eltwise" eltwise_param { operation: MAX coeff: [1, -1] } }
            layer { name: "flat" type: "Flatten" flatten_param { axis: 2 } }
            layer { name: "rs" type: "Reshape" reshape_param { shape { dim: 0 dim: -1 } axis: 1 } }
            layer { name: "bn" type: "BatchNorm" batch_norm_param { use_global_stats: true eps: 0.001 } }
            layer { name: "sc" type: "Scale" scale_param { bias_term: true } }
            layer { name: "bi" type: "Bias" }
            layer { name: "sig" type: "Sigmoid" }
            layer { name: "th" type: "TanH" }
            layer { name: "sm" type: "Softmax" softmax_param { axis: -1 } }
            layer { name: "cat" type: "Concat" concat_param { concat_dim: 2 } }
            layer { name: "sl" type: "Slice" slice_param { slice_dim: 3 slice_point: [1, 2] } }
            layer { name: "gp" type: "Pooling" pooling_param { pool: AVE global_pooling: true } }
            layer { name: "dc" type: "Deconvolution" convolution_param { num_output: 2 kernel_h: 4 kernel_w: 2 dilation: 2 group: 2 pad: [1, 2] } }
            layer { name: "ip" type: "InnerProduct" inner_product_param { num_output: 7 bias_term: false axis: 2 transpose: true } }
            layer { name: "pr" type: "PReLU" prelu_param { channel_shared: true } }
            layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 } shape { dim: 3 dim: 4 } } }
            layer { name: "nm" type: "Normalize" norm_param { across_spatial: false channel_shared: false eps: 0.01
              scale_filler { type: "constant" value: 20 } } }
            layer { name: "nm0" type: "Normalize" }
            layer { name: "pm" type: "Permute" permute_param { order: [0, 2, 3, 1] } }
            layer { name: "pb" type: "PriorBox" prior_box_param { min_size: 30 max_size: 60 aspect_ratio: [2, 3] flip: false clip: true
              variance: [0.1, 0.2] img_size: 300 step: 8 offset: 0.25 } }
            layer { name: "pb0" type: "PriorBox" prior_box_param { min_size: 4 img_h: 20 img_w: 30 step_h: 2 step_w: 3 } }
            layer { name: "do" type: "DetectionOutput" detection_output_param { num_classes: 21 share_location: false background_label_id: 3
              nms_param { nms_threshold: 0.4 top_k: 50 eta: 0.9 } code_type: CORNER_SIZE keep_top_k: 7 variance_encoded_in_target: true
              confidence_threshold: 0.25 } }
            layer { name: "do0" type: "DetectionOutput" detection_output_param { num_classes: 2 } }
            """)
        let p = Dictionary(uniqueKeysWithValues: net.layers.map { ($0.name, $0.typeParams) })
        XCTAssertEqual(p["lrn"], .lrn(LRNParams(localSize: 3, alpha: 0.0001, beta: 0.75, k: 1, region: .withinChannel)))
        XCTAssertEqual(p["lrn0"], .lrn(LRNParams()))
        XCTAssertEqual(p["elt"], .eltwise(op: .max, coeffs: [1, -1]))
        XCTAssertEqual(p["flat"], .flatten(axis: 2, endAxis: -1))
        XCTAssertEqual(p["rs"], .reshape(ReshapeParams(shape: [0, -1], axis: 1, numAxes: -1)))
        XCTAssertEqual(p["bn"], .batchNorm(BatchNormParams(eps: 0.001, useGlobalStats: true)))
        XCTAssertEqual(p["sc"], .scale(axis: 1, numAxes: 1, biasTerm: true))
        XCTAssertEqual(p["bi"], .bias(axis: 1, numAxes: 1))
        XCTAssertEqual(p["sig"], CaffeLayerParams.none)
        XCTAssertEqual(p["sm"], .softmax(axis: -1))
        XCTAssertEqual(p["cat"], .concat(axis: 2))
        XCTAssertEqual(p["sl"], .slice(axis: 3, slicePoints: [1, 2]))
        XCTAssertEqual(p["gp"], .pooling(PoolingParams(method: .average, kernel: CaffeHW(0, 0), global: true)))
        XCTAssertEqual(p["dc"], .convolution(ConvolutionParams(numOutput: 2, kernel: CaffeHW(4, 2), pad: CaffeHW(1, 2),
                                                               dilation: CaffeHW(2, 2), group: 2)))
        XCTAssertEqual(p["ip"], .innerProduct(InnerProductParams(numOutput: 7, biasTerm: false, axis: 2, transpose: true)))
        XCTAssertEqual(p["pr"], .prelu(channelShared: true))
        XCTAssertEqual(net.inputs, [CaffeInput(name: "a", shape: [2]), CaffeInput(name: "b", shape: [3, 4])])
        XCTAssertEqual(p["nm"], .normalize(NormalizeParams(acrossSpatial: false, channelShared: false, eps: 0.01, scaleValue: 20)))
        XCTAssertEqual(p["nm0"], .normalize(NormalizeParams()))
        XCTAssertEqual(p["pm"], .permute(order: [0, 2, 3, 1]))
        XCTAssertEqual(p["pb"], .priorBox(PriorBoxParams(
            PriorBoxSpec(minSizes: [30], maxSizes: [60], aspectRatios: [2, 3], flip: false, clip: true, variances: [0.1, 0.2], offset: 0.25),
            imageSize: CaffeHW(300, 300), step: CaffeStep(8, 8))))
        XCTAssertEqual(p["pb0"], .priorBox(PriorBoxParams(PriorBoxSpec(minSizes: [4]), imageSize: CaffeHW(20, 30), step: CaffeStep(2, 3))))
        XCTAssertEqual(p["do"], .detectionOutput(DetectionSpec(
            numClasses: 21, shareLocation: false, backgroundLabel: 3, nmsThreshold: 0.4, topK: 50, eta: 0.9, coding: .cornerSize,
            keepTopK: 7, varianceEncodedInTarget: true, confidenceThreshold: 0.25)))
        XCTAssertEqual(p["do0"], .detectionOutput(DetectionSpec(numClasses: 2)))
        for syntax in [CaffeSyntax.current] {
            let back = try CaffeNet(prototxt: try CaffeWriter(syntax: syntax).prototxt(net))
            XCTAssertEqual(back.withoutLocations.layers.map(\.typeParams), net.layers.map(\.typeParams))
            let binary = try CaffeNet(caffemodel: try CaffeWriter(syntax: syntax).caffemodelBytes(net))
            XCTAssertEqual(binary.layers.map(\.typeParams), net.layers.map(\.typeParams))
        }
        // V1 has no PReLU, Input-less BatchNorm and friends: the writer says so instead of dropping them.
        XCTAssertThrowsError(try CaffeWriter(syntax: .v1).caffemodelBytes(net)) { error in
            XCTAssertTrue("\(error)".contains("has no V1 equivalent") || "\(error)".contains("cannot be written in V1 syntax"), "\(error)")
        }
    }
}
