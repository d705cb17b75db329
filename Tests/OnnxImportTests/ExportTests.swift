// Export: fn2e -> ONNX -> fn2e gives the same graph and bitwise the same weights; exported models
// run in ONNX Runtime with fn2e's outputs (Tests/Fixtures/Onnx/export.io.safetensors, written by
// Tools/onnx/fixtures.py export).
import Driver
import Foundation
import IR
import OnnxImport
import Tensors
import Training
import XCTest

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

final class ExportTests: XCTestCase {
    /// ExpNet48 with the seeded weights the fixture was made with (`--random-weights 1 --bind K=7`).
    func expnet48() throws -> (Graph, [String: Tensor]) {
        try OnnxImportDriver.exportable(graphPath: repository + "/Graphs/expnet48.fn2e", weights: nil, seed: 1, bindings: ["K": 7])
    }

    /// The O-Net imported from Caffe ($FN2E_DATA/caffe/mtcnn/det3.*), or a skip.
    func onet() throws -> (Graph, [String: Tensor]) {
        let found = SharedData.find("caffe/mtcnn/det3.prototxt")
        guard let proto = found.path else { throw XCTSkip(found.reason) }
        let dir = NSTemporaryDirectory() + "onet-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = CaffeImportDriver.run(prototxt: proto, caffemodel: String(proto.dropLast("prototxt".count)) + "caffemodel", directory: dir, name: "onet")
        XCTAssertEqual(out.status, 0, out.stderr)
        return try OnnxImportDriver.exportable(graphPath: dir + "/onet.fn2e", weights: dir + "/onet.safetensors")
    }

    /// The graph's structure without names: per node op, attributes, operand positions and type.
    func structure(_ g: Graph) -> [String] {
        var index: [String: String] = [:]
        for (k, i) in g.inputs.enumerated() { index[i.name] = "in\(k)" }
        for (k, p) in g.params.enumerated() { index[p.name] = "p\(k):\(p.type):\(p.trainable)" }
        var out: [String] = []
        for (k, n) in g.nodes.enumerated() {
            index[n.name] = "n\(k)"
            let attrs = n.fullAttrs.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            out.append("\(n.op.rawValue)(\(n.operands.map { index[$0] ?? "?" }.joined(separator: ","))) {\(attrs.joined(separator: ","))} \(n.type!)")
        }
        return out + ["return " + g.outputs.map { index[$0] ?? "?" }.joined(separator: ",")]
    }

    func roundTrip(_ graph: Graph, _ weights: [String: Tensor], file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try IRToOnnx.export(graph, weights: weights)
        let bytes = model.serialized()
        let back = try OnnxToIR.convert(try OnnxModel(bytes: bytes, file: "exported.onnx"), name: graph.name, file: "exported.onnx")
        XCTAssertEqual(structure(back.graph), structure(graph), file: file, line: line)
        XCTAssertEqual(back.weights.count, graph.params.count, file: file, line: line)
        for ((name, t), p) in zip(back.weights, graph.params) {
            let original = try XCTUnwrap(weights[p.name])
            XCTAssertEqual(t.shape, original.shape, name, file: file, line: line)
            XCTAssertEqual(t.data.map(\.bitPattern), original.data.map(\.bitPattern), "\(name): weights differ", file: file, line: line)
        }
    }

    func testExpNet48RoundTrip() throws {
        let (graph, weights) = try expnet48()
        try roundTrip(graph, weights)
    }

    func testONetRoundTrip() throws {
        let (graph, weights) = try onet()
        try roundTrip(graph, weights)
    }

    /// Broadcasting arithmetic of computed values (div among them) and by a frozen constant: Add, Sub,
    /// Mul, Div, Max and back to the same graph.
    func testArithmeticRoundTrip() throws {
        let text = """
        fn2e 1
        graph @arith(%x: f32[N,3,4]) {
          param %c: f32[4] = zeros {trainable=false}
          %s = f32[N,3,4] sigmoid(%x)
          %t = f32[N,3,4] tanh(%x)
          %q = f32[N,3,4] div(%t, %s)
          %m = f32[N,3,4] mul(%q, %s)
          %d = f32[N,3,4] sub(%m, %t)
          %e = f32[N,3,4] add(%d, %q)
          %y = f32[N,3,4] maximum(%e, %s)
          %z = f32[N,3,4] div(%y, %c)
          return %z
        }
        """
        let graph = try XCTUnwrap(try Loader.load(text: text, file: "arith.fn2e").graph())
        try roundTrip(graph, ["c": Tensor(shape: [4], data: [0.5, 2, -3, 7])])
    }

    /// `fill`: concatenated to one value (dlib's zero-extended shortcuts) it is that value padded
    /// (Pad, read back as the same values); otherwise ConstantOfShape with N read from the input.
    func testFillExportsAsPadOrConstantOfShape() throws {
        let text = """
        fn2e 1
        graph @extend(%x: f32[N,2,3,3]) {
          %z = f32[N,1,3,3] fill() {shape=[0,1,3,3], value=0.5}
          %c = f32[N,3,3,3] concat(%x, %z)
          %w = f32[N,3,2,3] fill() {shape=[0,3,2,3]}
          %p = f32[N,3,5,3] concat(%w, %c) {axis=2}
          %f = f32[N,3,5,3] fill() {shape=[0,3,5,3], value=2.0}
          %s = f32[N,3,5,3] add(%p, %f)
          return %p, %s
        }
        """
        let graph = try XCTUnwrap(try Loader.load(text: text, file: "extend.fn2e").graph())
        let model = try IRToOnnx.export(graph, weights: [:])
        XCTAssertEqual(model.graph.nodes.map(\.opType), ["Pad", "Pad", "Shape", "Slice", "Concat", "ConstantOfShape", "Add", "Add"])
        let back = try OnnxToIR.convert(try OnnxModel(bytes: model.serialized(), file: "extend.onnx"), name: "extend", file: "extend.onnx", outputs: ["p"])
        let x = Tensor(shape: [2, 2, 3, 3], seed: 3)
        let want = try Importing.executor(graph, weights: [], batch: 2, keepAll: false).run(inputs: ["x": x])
        let got = try Importing.executor(back.graph, weights: back.weights, batch: 2, keepAll: false).run(inputs: ["x": x])
        assertClose(got[try XCTUnwrap(back.names["p"])], try XCTUnwrap(want["p"]), tolerance: 1e-6, "concat with fill exported as Pad and read back")
    }

    /// dlib's face-recognition ResNet and VGG-Face (generated weights) as Tools/onnx/big_models.py
    /// imports and exports them into $FN2E_ONNX_BIG: fn2e's import of each against ONNX Runtime's
    /// outputs of the export.
    func testBigModelsMatchOnnxRuntime() throws {
        guard let dir = ProcessInfo.processInfo.environment["FN2E_ONNX_BIG"] else {
            throw XCTSkip("set FN2E_ONNX_BIG to the folder Tools/onnx/big_models.py writes")
        }
        for name in ["dlib_face", "vgg_face"] {
            let io = try SafeTensors.read(path: "\(dir)/\(name).io.safetensors").tensors
            let (graph, weights) = try OnnxImportDriver.exportable(graphPath: "\(dir)/\(name).fn2e", weights: "\(dir)/\(name).safetensors")
            let input = graph.inputs[0].name
            let x = try XCTUnwrap(io["input:" + input])
            let ex = try Importing.executor(graph, weights: graph.params.map { ($0.name, weights[$0.name]!) }, batch: x.shape[0], keepAll: false)
            let got = try ex.run(inputs: [input: x])
            for o in graph.outputs {
                assertClose(got[o], try XCTUnwrap(io["output:" + o]), "\(name) \(o): fn2e against ONNX Runtime on the exported model")
            }
        }
    }

    /// fn2e's own outputs of the exported graph against ONNX Runtime's outputs of the exported model.
    func parity(_ case_: String, _ graph: Graph, _ weights: [String: Tensor]) throws {
        let inputs = try fixtureTensors("export.io.safetensors", "\(case_)/input:")
        let expected = try fixtureTensors("export.io.safetensors", "\(case_)/output:")
        guard let (name, x) = inputs.first else { throw XCTSkip("export.io.safetensors has no \(case_) case (made without FN2E_DATA)") }
        XCTAssertEqual(name, graph.inputs[0].name)
        let ex = try Importing.executor(graph, weights: graph.params.map { ($0.name, weights[$0.name]!) }, batch: x.shape[0], keepAll: false)
        let got = try ex.run(inputs: [name: x])
        XCTAssertEqual(Set(expected.keys), Set(graph.outputs))
        for (o, want) in expected {
            assertClose(got[o], want, "\(case_) output \(o): fn2e against ONNX Runtime on the exported model")
        }
    }

    func testExpNet48MatchesOnnxRuntime() throws {
        let (graph, weights) = try expnet48()
        try parity("expnet48", graph, weights)
    }

    func testONetMatchesOnnxRuntime() throws {
        let (graph, weights) = try onet()
        try parity("onet", graph, weights)
    }

    /// A real training (`Tests/Fixtures/Onnx/trained.train`: ExpNet48, 4 steps on CK+48, what
    /// `fn2e-run train` runs) exported from its run folder: ONNX Runtime's outputs of the file that
    /// Tools/onnx/fixtures.py exported from the same training, against fn2e's import of this export
    /// and the run's own Predictor.
    func testTrainedRunMatchesOnnxRuntime() throws {
        let found = SharedData.find("ckplus48/index.csv")
        guard found.path != nil else { throw XCTSkip(found.reason) }
        let inputs = try fixtureTensors("export.io.safetensors", "trained/input:")
        let expected = try fixtureTensors("export.io.safetensors", "trained/output:")
        let x = try XCTUnwrap(inputs["data"], "export.io.safetensors has no trained case: run Tools/onnx/fixtures.py export with FN2E_DATA")
        let dir = NSTemporaryDirectory() + "onnx-trained-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var settings = try Settings(file: fixtures + "/trained.train")
        try settings.override(["output=" + dir])
        let evals = try Trainer(settings: settings, log: { _ in }).train()
        XCTAssertFalse(evals.isEmpty)
        let file = dir + "/expnet48.onnx"
        let result = OnnxImportDriver.export(graphPath: dir, weights: nil, output: file)
        XCTAssertEqual(result.status, 0, result.stderr)
        let back = try OnnxToIR.importFile(path: file, name: "trained")
        XCTAssertEqual(back.graph.outputs, ["fc6"])
        let got = try Importing.executor(back.graph, weights: back.weights, batch: x.shape[0], keepAll: false).run(inputs: ["data": x])
        let own = try Predictor(runDirectory: dir).run(x, outputs: ["fc6"])
        XCTAssertEqual(Set(expected.keys), ["fc6"])
        for (o, want) in expected {
            assertClose(got[o], want, "trained ExpNet48 \(o): fn2e's import of the export against ONNX Runtime")
            assertClose(own[o], want, "trained ExpNet48 \(o): the run's Predictor against ONNX Runtime")
        }
    }

    func testOpsWithoutOnnxEquivalentAreRefused() throws {
        let text = """
        fn2e 1
        graph @loss(%x: f32[N,4], %y: f32[N,4]) {
          %l = euclidean_loss(%x, %y)
          return %l
        }
        """
        let program = try Loader.load(text: text, file: "loss.fn2e")
        XCTAssertThrowsError(try IRToOnnx.export(program.graph()!, weights: [:], file: "loss.fn2e")) { e in
            XCTAssertTrue("\(e)".contains("node '%l' (euclidean_loss): fn2e's euclidean_loss has no ONNX equivalent"), "\(e)")
        }
    }

    /// A trained run's folder (settings.txt and model.safetensors, the files `fn2e-run train` writes)
    /// exported: the graph cut to the run's class scores, without the label input and the loss, with
    /// the trained weights bitwise; fn2e's import of the file computes the run's scores.
    func testRunFolderExport() throws {
        let dir = NSTemporaryDirectory() + "onnx-run-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try """
        fn2e 1
        graph @toy(%data: f32[N,1,8,8], %label: i32[N]) {
          param %conv.weight: f32[4,1,3,3] = msra
          param %conv.bias: f32[4] = zeros
          param %fc.weight: f32[K,64] = xavier
          param %fc.bias: f32[K] = zeros
          %conv = f32[N,4,8,8] conv2d(%data, %conv.weight, %conv.bias) {pad=1}
          %relu = f32[N,4,8,8] relu(%conv)
          %pool = f32[N,4,4,4] max_pool(%relu) {kernel=2, stride=2}
          %flat = f32[N,64] flatten(%pool)
          %fc = f32[N,K] linear(%flat, %fc.weight, %fc.bias)
          %loss = f32[] softmax_cross_entropy(%fc, %label)
          return %loss
        }

        """.write(toFile: dir + "/toy.fn2e", atomically: true, encoding: .utf8)
        try "graph = toy.fn2e\nchannels = 1\n".write(toFile: dir + "/settings.txt", atomically: true, encoding: .utf8)
        let trained = [("conv.weight", [4, 1, 3, 3]), ("conv.bias", [4]), ("fc.weight", [3, 64]), ("fc.bias", [3])].enumerated()
            .map { k, p in (p.0, Tensor(shape: p.1, seed: 40 + UInt64(k), std: 0.3)) }
        try SafeTensors.write(trained, metadata: ["classes": "a,b,c", "logits": "fc"], to: dir + "/model.safetensors")

        let file = dir + "/toy.onnx"
        let result = OnnxImportDriver.export(graphPath: dir, weights: nil, output: file)
        XCTAssertEqual(result.status, 0, result.stderr)
        let back = try OnnxToIR.importFile(path: file, name: "toy")
        XCTAssertEqual(back.graph.inputs.map(\.type.description), ["f32[N,1,8,8]"])
        XCTAssertEqual(back.graph.outputs, ["fc"])
        XCTAssertEqual(back.weights.map(\.0), trained.map(\.0))
        for ((name, got), (_, want)) in zip(back.weights, trained) {
            XCTAssertEqual(got.data.map(\.bitPattern), want.data.map(\.bitPattern), "\(name): weights differ")
        }
        let x = Tensor(shape: [2, 1, 8, 8], seed: 9)
        let scores = try Predictor(runDirectory: dir).run(x, outputs: ["fc"])
        let got = try Importing.executor(back.graph, weights: back.weights, batch: 2, keepAll: false).run(inputs: ["data": x])
        assertClose(got["fc"], try XCTUnwrap(scores["fc"]), tolerance: 1e-6, "the exported run against its Predictor")

        let refused = OnnxImportDriver.export(graphPath: dir, weights: dir + "/model.safetensors", output: dir + "/again.onnx")
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("is a run folder"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/again.onnx"))
    }

    func testExportWritesNothingOnError() throws {
        let out = NSTemporaryDirectory() + "expnet48-\(getpid()).onnx"
        let result = OnnxImportDriver.export(graphPath: repository + "/Graphs/expnet48.fn2e", weights: nil, output: out)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("no weights for parameter"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
