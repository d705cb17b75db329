// The SSD fork's layers against OpenCV 4.12, unknown fields and layers, importing a backbone
// (`--until`, `--outputs`), and BatchNorm folding.
import CaffeImport
import Driver
import Foundation
import IR
import Runtime
import Tensors
import XCTest

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/Caffe").path

private func temporaryDirectory() throws -> String {
    let dir = NSTemporaryDirectory() + "fn2e-ssd-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// sin(0.37 i) over the flat index, as Tools/caffe/opencv_check.py builds the ssd-mini input.
private func formulaInput(_ shape: [Int]) -> Tensor {
    let count = shape.reduce(1, *)
    return Tensor(shape: shape, data: (0..<count).map { Float(sin(Double($0) * 0.37)) })
}

/// Detection rows [image, label, score, x1, y1, x2, y2] that are detections, sorted by image,
/// label and falling score.
private func keptRows(_ t: Tensor) -> [[Float]] {
    var rows: [[Float]] = []
    for start in stride(from: 0, to: t.data.count, by: 7) {
        let row = Array(t.data[start..<start + 7])
        if row[1] >= 0 && row[2] > 0 { rows.append(row) }
    }
    return rows.sorted { (a: [Float], b: [Float]) -> Bool in
        if a[0] != b[0] { return a[0] < b[0] }
        if a[1] != b[1] { return a[1] < b[1] }
        return a[2] > b[2]
    }
}

final class SSDImportTests: XCTestCase {
    /// The generated SSD-style model (every SSD layer; Tools/caffe/opencv_check.py) against
    /// OpenCV's outputs: every layer both name within 1e-4 relative (at the fixture's sample
    /// positions), and the same detections after NMS.
    func testSSDMiniMatchesOpenCV() throws {
        _ = try checkAgainstOpenCV(CaffeTestModels.ssdMini, fixture: "ssd_mini")
    }

    /// ssd-mini as a batch-1 deploy net (`reshape_param { shape { dim: 1 dim: -1 dim: 3 } }`):
    /// imports pinned to batch 1, with a note, and matches OpenCV there.
    func testBatchOneDeployNetMatchesOpenCV() throws {
        let imported = try checkAgainstOpenCV(CaffeTestModels.ssdMiniBatch1, fixture: "ssd_mini_batch1")
        XCTAssert(imported.log.contains { $0.contains("layer 'mbox_conf_reshape' (Reshape): 1 in shape [1, -1, 3] is the deploy input's batch") && $0.hasSuffix("the model runs at batch 1") }, "\(imported.log)")
        XCTAssertEqual(imported.graph.inputs[0].type.description, "f32[1,3,32,32]")
    }

    /// A literal batch whose other sizes hold one sample is the batch at any batch; a literal other
    /// than the deploy batch is an error at the layer.
    func testLiteralBatchAtAnyBatchAndWrongLiteral() throws {
        let generic = try CaffeToIR.convert(try CaffeNet(prototxt: CaffeTestModels.ssdMini, file: "ssd-mini"), name: "ssd")
        let k = try XCTUnwrap(generic.graph.type(of: "mbox_conf_reshape")?.dims[1].value)
        let exact = CaffeTestModels.ssdMini.replacingOccurrences(of: "shape { dim: 0 dim: -1 dim: 3 }", with: "shape { dim: 1 dim: \(k) dim: 3 }")
        let net = try CaffeTestModels.withRandomWeights(try CaffeNet(prototxt: exact, file: "exact.prototxt"), seed: 4)
        let imported = try CaffeToIR.convert(net, name: "ssd")
        XCTAssert(imported.log.contains("layer 'mbox_conf_reshape' (Reshape): 1 in shape [1, \(k), 3] is the batch (the other sizes hold one sample): imported as 0, so the model runs at any batch"), "\(imported.log)")
        XCTAssertEqual(imported.graph.inputs[0].type.description, "f32[N,3,32,32]")
        let plain = try CaffeToIR.convert(try CaffeTestModels.withRandomWeights(try CaffeNet(prototxt: CaffeTestModels.ssdMini, file: "ssd-mini"), seed: 4), name: "ssd")
        let x = formulaInput([2, 3, 32, 32])
        let a = try CaffeImportDriver.executor(imported, batch: 2), b = try CaffeImportDriver.executor(plain, batch: 2)
        _ = try a.run(inputs: ["data": x])
        _ = try b.run(inputs: ["data": x])
        XCTAssertEqual(a.tensor("detection_out"), b.tensor("detection_out"))
        XCTAssertEqual(a.tensor("mbox_conf_flatten"), b.tensor("mbox_conf_flatten"))

        let wrong = CaffeTestModels.ssdMini.replacingOccurrences(of: "shape { dim: 0 dim: -1 dim: 3 }", with: "shape { dim: 2 dim: -1 dim: 3 }")
        XCTAssertThrowsError(try CaffeToIR.convert(try CaffeNet(prototxt: wrong, file: "wrong.prototxt"), name: "ssd", file: "wrong.prototxt")) {
            let text = "\($0)"
            XCTAssert(text.hasPrefix("wrong.prototxt:") && text.contains("layer 'mbox_conf_reshape' (Reshape): shape [2, -1, 3] names the batch size 2, but the deploy input's batch is 1; use 0 to copy the batch"), text)
        }
    }

    /// Imports `prototxt`'s net with the fixture's seeded weights and compares every layer OpenCV
    /// names (Tests/Fixtures/Caffe/FIXTURE.opencv.safetensors) and the detections.
    func checkAgainstOpenCV(_ prototxt: String, fixture: String) throws -> CaffeImported {
        let (expected, meta) = try SafeTensors.read(path: fixtures + "/\(fixture).opencv.safetensors")
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let net = try CaffeNet(prototxt: prototxt, file: "ssd-mini")
        try CaffeTestModels.write(net, seed: UInt64(meta["seed"]!)!, syntax: .current, directory: dir, name: "ssd")
        XCTAssertEqual(try Digest.fnv1a64(file: dir + "/ssd.caffemodel"), meta["caffemodel_fnv1a"],
                       "the generated ssd-mini model changed; rerun python3 Tools/caffe/opencv_check.py --fixture Tests/Fixtures/Caffe/ssd_mini.opencv.safetensors (it writes \(fixture).opencv.safetensors)")
        let imported = try CaffeToIR.importFiles(prototxt: dir + "/ssd.prototxt", caffemodel: dir + "/ssd.caffemodel", name: "ssd")
        XCTAssertTrue(imported.log.contains("folded BatchNorm 'bn1' into the frozen Scale 'scale1'"), "\(imported.log)")
        // The caffemodel carries the SSD layers' settings (the fork's field numbers): alone it gives the same net.
        let alone = try CaffeToIR.importFiles(prototxt: nil, caffemodel: dir + "/ssd.caffemodel", name: "ssd")
        XCTAssertEqual(alone.graph.nodes.map { "\($0.name) \($0.op)" }, imported.graph.nodes.map { "\($0.name) \($0.op)" })
        XCTAssertEqual(alone.graph.nodes.map { $0.attrs }, imported.graph.nodes.map { $0.attrs })
        XCTAssertEqual(alone.weights.map { $0.1 }, imported.weights.map { $0.1 })
        let shape = try JSONDecoder().decode([Int].self, from: Data(meta["input"]!.utf8))
        let ex = try CaffeImportDriver.executor(imported, batch: shape[0])
        _ = try ex.run(inputs: ["data": formulaInput(shape)])
        let samples = Int(meta["samples"]!)!
        var compared = 0
        for (name, want) in expected where name != "detection_out" {
            let got = try XCTUnwrap(ex.tensor(name), "no node \(name)")
            XCTAssertEqual(try JSONDecoder().decode([Int].self, from: Data(meta["shape." + name, default: "[]"].utf8)), got.shape, name)
            let m = min(got.data.count, samples)
            var num = 0.0, den = 0.0
            for k in 0..<m {
                let a = Double(got.data[k * got.data.count / m]), b = Double(want.data[k])
                num += (a - b) * (a - b)
                den += b * b
            }
            XCTAssertLessThanOrEqual((num / max(den, 1e-30)).squareRoot(), 1e-4, name)
            compared += 1
        }
        XCTAssertEqual(compared, 34)
        let got = keptRows(try XCTUnwrap(ex.tensor("detection_out")))
        let want = keptRows(try XCTUnwrap(expected["detection_out"]))
        XCTAssertGreaterThan(want.count, 20)
        XCTAssertEqual(got.count, want.count)
        for (a, b) in zip(got, want) {
            XCTAssertEqual(a[0...1], b[0...1])
            for k in 2..<7 { XCTAssertEqual(a[k], b[k], accuracy: 1e-4, "\(a) vs \(b)") }
        }
        return imported
    }

    /// A frozen Scale after a BatchNorm folds into one scale; the network computes the same.
    func testFrozenBatchNormFoldsToTheSameOutputs() throws {
        let net = try CaffeTestModels.withRandomWeights(try CaffeNet(prototxt: CaffeTestModels.ssdMini, file: "ssd-mini"), seed: 5)
        var learned = net
        let k = try XCTUnwrap(learned.layers.firstIndex { $0.name == "scale1" })
        for p in learned.layers[k].params.indices { learned.layers[k].params[p].lrMult = 1 }
        let folded = try CaffeToIR.convert(net, name: "ssd"), kept = try CaffeToIR.convert(learned, name: "ssd")
        XCTAssertFalse(folded.graph.nodes.contains { $0.name == "bn1" })
        XCTAssertFalse(folded.graph.params.contains { $0.name.hasPrefix("bn1.") })
        XCTAssertTrue(kept.graph.nodes.contains { $0.name == "bn1" })
        XCTAssertTrue(folded.graph.nodes.contains { $0.name == "bn2" }, "a learned Scale keeps its BatchNorm")
        let x = formulaInput([1, 3, 32, 32])
        var outputs: [[Float]] = []
        for imported in [folded, kept] {
            let ex = try CaffeImportDriver.executor(imported, batch: 1)
            _ = try ex.run(inputs: ["data": x])
            outputs.append(try XCTUnwrap(ex.tensor("relu1")).data)
        }
        for i in outputs[0].indices { XCTAssertEqual(outputs[0][i], outputs[1][i], accuracy: 1e-5 * (1 + abs(outputs[1][i]))) }
    }

    /// Fields caffe.proto lacks are warnings with their place; the rest of the file still counts.
    func testUnknownFieldsWarnAndAreSkipped() throws {
        let text = """
        name: "n"
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } } }
        layer {
          name: "conv" type: "Convolution" bottom: "data" top: "conv"
          colour: "red" weight_quantization { bits: 8 ranges [1, 2] nested < deeper: -3 > }
          convolution_param { num_output: 3 kernel_size: 3 future_option: [1.5, 2] engine: CAFFE }
          tags: ["a", "b"]; speed: -inf
        }
        """
        let net = try CaffeNet(prototxt: text, file: "w.prototxt")
        XCTAssertEqual(net.warnings, [
            "w.prototxt:5:3: warning: message type \"caffe.LayerParameter\" has no field named \"colour\"; ignored",
            "w.prototxt:5:17: warning: message type \"caffe.LayerParameter\" has no field named \"weight_quantization\"; ignored",
            "w.prototxt:6:52: warning: message type \"caffe.ConvolutionParameter\" has no field named \"future_option\"; ignored",
            "w.prototxt:7:3: warning: message type \"caffe.LayerParameter\" has no field named \"tags\"; ignored",
            "w.prototxt:7:21: warning: message type \"caffe.LayerParameter\" has no field named \"speed\"; ignored",
        ])
        guard case .convolution(let p) = try XCTUnwrap(net.layer(named: "conv")).typeParams else { return XCTFail("not a convolution") }
        XCTAssertEqual(p.numOutput, 3)
        XCTAssertEqual(p.kernel.h, 3)
        // Through the command: the warnings go to stderr, the files are written.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try text.write(toFile: dir + "/w.prototxt", atomically: true, encoding: .utf8)
        let out = CaffeImportDriver.run(prototxt: dir + "/w.prototxt", caffemodel: nil, directory: dir, name: "w")
        XCTAssertEqual(out.status, 0, out.stderr)
        XCTAssertTrue(out.stderr.contains("w.prototxt:5:3: warning: message type \"caffe.LayerParameter\" has no field named \"colour\""), out.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/w.fn2e"))
        // A broken value after an unknown field is still an error.
        XCTAssertThrowsError(try CaffeNet(prototxt: "layer { colour { a: 1 ", file: "b.prototxt")) { e in
            XCTAssertEqual("\(e)", "b.prototxt:1:23: error: unexpected end of file: expected \"}\" to close \"colour\" opened at 1:16")
        }
        XCTAssertThrowsError(try CaffeNet(prototxt: "layer { colour 3 }", file: "b.prototxt")) { e in
            XCTAssertEqual("\(e)", "b.prototxt:1:16: error: expected \":\" or \"{\" after field \"colour\", found number 3")
        }
    }

    private let withUnknownLayer = """
    name: "backbone"
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
    layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 kernel_size: 3 } }
    layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
    layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2" convolution_param { num_output: 4 kernel_size: 3 } }
    layer { name: "side" type: "Pooling" bottom: "conv1" top: "side" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    layer { name: "warp" type: "SpatialTransformer" bottom: "conv2" top: "warp" }
    layer { name: "head" type: "InnerProduct" bottom: "warp" top: "head" inner_product_param { num_output: 2 } }
    """

    /// An unknown layer type is refused with its name, its type and the supported types, unless
    /// the import stops before it.
    func testUnknownLayerIsRefusedUnlessCutBefore() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let proto = dir + "/backbone.prototxt"
        try withUnknownLayer.write(toFile: proto, atomically: true, encoding: .utf8)
        let refused = CaffeImportDriver.run(prototxt: proto, caffemodel: nil, directory: dir, name: nil)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.hasPrefix("\(proto):7:22: error: layer 'warp' has type 'SpatialTransformer', which fn2e cannot import; supported types: BatchNorm, Bias, Concat, Convolution, DetectionOutput"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--until LAYER"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/backbone.fn2e"), "nothing written on error")

        let until = CaffeImportDriver.run(prototxt: proto, caffemodel: nil, directory: dir, name: nil, outputs: ["conv2"])
        XCTAssertEqual(until.status, 0, until.stderr)
        XCTAssertTrue(until.stderr.contains("note: importing 4 of 7 layers: those needed for conv2"), until.stderr)
        let module = try Parser.parse(file: "backbone.fn2e", text: String(contentsOfFile: dir + "/backbone.fn2e", encoding: .utf8))
        let graph = try XCTUnwrap(module.graphs.first)
        XCTAssertEqual(graph.nodes.map { $0.name }, ["conv1", "relu1", "conv2"])
        XCTAssertEqual(graph.outputs, ["conv2"])

        // Several outputs, one feeding another: a layer's output is its top as that layer wrote it
        // (conv1 before the in-place relu1).
        let two = try CaffeToIR.importFiles(prototxt: proto, caffemodel: nil, name: "b", outputs: ["conv1", "side", "conv2"])
        XCTAssertEqual(two.graph.outputs, ["conv1", "side", "conv2"])
        XCTAssertEqual(try CaffeToIR.importFiles(prototxt: proto, caffemodel: nil, name: "b", outputs: ["relu1"]).graph.outputs, ["relu1"])
        XCTAssertThrowsError(try CaffeToIR.importFiles(prototxt: proto, caffemodel: nil, name: "b", outputs: ["conv9"])) { e in
            XCTAssertTrue("\(e)".contains("no layer or blob named 'conv9' in net 'backbone'"), "\(e)")
        }
    }

    /// Permute appends the axes its order leaves out; moving the batch axis is refused.
    func testPermuteOrders() throws {
        func imported(_ order: String) throws -> CaffeImported {
            try CaffeToIR.convert(try CaffeNet(prototxt: """
                layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 3 dim: 4 } } }
                layer { name: "p" type: "Permute" bottom: "data" top: "p" permute_param { \(order) } }
                """, file: "p.prototxt"), name: "p")
        }
        let partial = try imported("order: 0 order: 3")
        XCTAssertEqual(partial.graph.nodes[0].attrs["perm"], .ints([0, 3, 1, 2]))
        XCTAssertEqual(partial.graph.nodes[0].type, TensorType(.f32, [.batch, .fixed(4), .fixed(2), .fixed(3)]))
        XCTAssertThrowsError(try imported("order: 1 order: 0")) { e in
            XCTAssertTrue("\(e)".contains("layer 'p' (Permute): order [1, 0] moves the batch axis"), "\(e)")
        }
        XCTAssertThrowsError(try imported("order: 0 order: 0")) { e in
            XCTAssertTrue("\(e)".contains("is not a permutation of the 4 axes"), "\(e)")
        }
    }
}
