// Export: fn2e -> ONNX -> fn2e gives the same graph and bitwise the same weights; exported models
// run in ONNX Runtime with fn2e's outputs (Tests/Fixtures/Onnx/export.io.safetensors, written by
// Tools/onnx/fixtures.py export).
import Driver
import Foundation
import IR
import OnnxImport
import Tensors
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

    func testExportWritesNothingOnError() throws {
        let out = NSTemporaryDirectory() + "expnet48-\(getpid()).onnx"
        let result = OnnxImportDriver.export(graphPath: repository + "/Graphs/expnet48.fn2e", weights: nil, output: out)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("no weights for parameter"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
