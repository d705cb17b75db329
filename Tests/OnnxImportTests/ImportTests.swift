// The ONNX importer against ONNX Runtime (Tests/Fixtures/Onnx, written by Tools/onnx/fixtures.py),
// and its refusals: located errors, nothing written.
import Driver
import Foundation
import IR
import OnnxImport
import Tensors
import XCTest

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/Onnx").path

/// The tensors of a fixture's `.io.safetensors` whose names start with `prefix` (`input:`, `output:`), keyed by the rest.
func fixtureTensors(_ file: String, _ prefix: String) throws -> [String: Tensor] {
    let all = try SafeTensors.read(path: (fixtures as NSString).appendingPathComponent(file)).tensors
    var out: [String: Tensor] = [:]
    for (k, v) in all where k.hasPrefix(prefix) { out[String(k.dropFirst(prefix.count))] = v }
    return out
}

/// Asserts |got - want| <= tolerance * max(1, |want|) elementwise; returns the largest difference.
@discardableResult
func assertClose(_ got: Tensor?, _ want: Tensor, tolerance: Float = 1e-5, _ what: String, file: StaticString = #filePath, line: UInt = #line) -> Float {
    guard let got else {
        XCTFail("\(what): no output", file: file, line: line)
        return .infinity
    }
    XCTAssertEqual(got.shape, want.shape, what, file: file, line: line)
    guard got.count == want.count else { return .infinity }
    var worst: Float = 0
    for (a, b) in zip(got.data, want.data) {
        let d = abs(a - b) / max(1, abs(b))
        if !(d <= worst) { worst = d.isNaN ? .infinity : d }
    }
    XCTAssertLessThanOrEqual(worst, tolerance, "\(what): largest relative difference \(worst)", file: file, line: line)
    print("\(what): max relative difference \(worst)")
    return worst
}

/// A one-node model over float inputs of the given shapes, opset `opset`.
func model(_ node: OnnxNode, inputs: [(String, [Int])], initializers: [OnnxTensor] = [], opset: Int = 13) -> OnnxModel {
    var g = OnnxGraph(name: "m")
    g.nodes = [node]
    g.initializers = initializers
    g.inputs = inputs.map { OnnxValueInfo(name: $0.0, dims: $0.1.map { .value($0) }) }
    g.outputs = node.outputs.map { OnnxValueInfo(name: $0, dims: nil) }
    return OnnxModel(irVersion: 7, opsets: ["": opset], graph: g)
}

final class ImportTests: XCTestCase {
    func testOpsModelMatchesOnnxRuntime() throws {
        let imported = try OnnxToIR.importFile(path: fixtures + "/ops.onnx", name: "ops")
        XCTAssertEqual(imported.graph.inputs.map(\.type.description), ["f32[N,3,12,12]"])
        let inputs = try fixtureTensors("ops.io.safetensors", "input:")
        let expected = try fixtureTensors("ops.io.safetensors", "output:")
        let x = try XCTUnwrap(inputs["x"])
        let ex = try Importing.executor(imported.graph, weights: imported.weights, batch: x.shape[0], keepAll: false)
        let outputs = try ex.run(inputs: [try XCTUnwrap(imported.names["x"]): x])
        XCTAssertEqual(expected.count, 6)
        for (name, want) in expected {
            assertClose(outputs[try XCTUnwrap(imported.names[name])], want, "ops.onnx output \(name) against ONNX Runtime")
        }
        // The module prints canonically and reads back (what `import onnx` writes).
        XCTAssertNoThrow(try Importing.canonicalText(imported.module))
    }

    func testOutputsCutTheGraph() throws {
        let imported = try OnnxToIR.importFile(path: fixtures + "/ops.onnx", name: "ops", outputs: ["fc"])
        XCTAssertEqual(imported.graph.outputs, ["fc"])
        XCTAssertFalse(imported.graph.nodes.contains { $0.name == "prob" })
        XCTAssertTrue(imported.log.contains { $0.hasPrefix("importing ") })
        XCTAssertThrowsError(try OnnxToIR.importFile(path: fixtures + "/ops.onnx", name: "ops", outputs: ["nothing"])) { e in
            XCTAssertTrue("\(e)".contains("no node or value named 'nothing'"), "\(e)")
        }
    }

    func testRefusalsNameTheNodeOpTypeAndOpset() {
        let cases: [(OnnxModel, String)] = [
            (model(OnnxNode(name: "d", opType: "Div", inputs: ["a", "b"], outputs: ["y"]), inputs: [("a", [2, 3])],
                   initializers: [OnnxTensor(name: "b", dims: [3], ints: [1, 2, 3])]),
             "node 0 'd' (Div, opset 13): Div of integers (constant 'b' is int64) truncates; fn2e divides in float32"),
            (model(OnnxNode(name: "e", opType: "Erf", inputs: ["a"], outputs: ["y"]), inputs: [("a", [2, 3])]),
             "node 0 'e' (Erf, opset 13): fn2e cannot import op type 'Erf'; supported: Abs, Add"),
            (model(OnnxNode(name: "p", opType: "MaxPool", inputs: ["a"], outputs: ["y"],
                            attributes: [.ints("kernel_shape", [2, 2]), .ints("pads", [0, 0, 1, 1])]), inputs: [("a", [1, 1, 4, 4])]),
             "node 0 'p' (MaxPool, opset 13): asymmetric pads [0, 0, 1, 1]"),
            (model(OnnxNode(name: "s", opType: "Softmax", inputs: ["a"], outputs: ["y"]), inputs: [("a", [2, 3])], opset: 9),
             "the model uses opset 9; fn2e reads opset 11 and later"),
        ]
        assertRefused(cases)
    }

    /// Each model's import fails with an error of m.onnx that contains the expected text.
    func assertRefused(_ cases: [(OnnxModel, String)], file: StaticString = #filePath, line: UInt = #line) {
        for (m, expected) in cases {
            XCTAssertThrowsError(try OnnxToIR.convert(m, name: "m", file: "m.onnx"), file: file, line: line) { e in
                XCTAssertTrue("\(e)".hasPrefix("m.onnx: error: "), "\(e)", file: file, line: line)
                XCTAssertTrue("\(e)".contains(expected), "\(e)\nexpected: \(expected)", file: file, line: line)
            }
        }
    }

    /// Shape of a symbolic size gives a value that only Reshape's shape takes, and only in place.
    func testShapeOfSymbolicSizesFeedsOnlyReshape() {
        func graph(_ nodes: [OnnxNode]) -> OnnxModel {
            var g = OnnxGraph(name: "m")
            g.inputs = [OnnxValueInfo(name: "x", dims: [.param("N"), .value(2), .value(3)])]
            g.initializers = [OnnxTensor(name: "perm", dims: [3], ints: [1, 0, 2])]
            g.nodes = [OnnxNode(name: "s", opType: "Shape", inputs: ["x"], outputs: ["shape"])] + nodes
            g.outputs = [OnnxValueInfo(name: "y", dims: nil)]
            return OnnxModel(irVersion: 7, opsets: ["": 13], graph: g)
        }
        let cases: [(OnnxModel, String)] = [
            (graph([OnnxNode(name: "g", opType: "Gather", inputs: ["shape", "perm"], outputs: ["swapped"]),
                    OnnxNode(name: "r", opType: "Reshape", inputs: ["x", "swapped"], outputs: ["y"])]),
             "node 2 'r' (Reshape, opset 13): shape [2, N, 3] puts the symbolic size N of f32[N,2,3] on axis 1"),
            (graph([OnnxNode(name: "c", opType: "Cast", inputs: ["shape"], outputs: ["y"], attributes: [.int("to", 1)])]),
             "node 1 'c' (Cast, opset 13): 'shape' holds the symbolic size N (from a Shape)"),
        ]
        assertRefused(cases)
    }

    func testFailedImportWritesNothing() throws {
        let dir = NSTemporaryDirectory() + "onnx-refused-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bad = dir + "-bad.onnx"
        defer { unlink(bad) }
        try Data([0x0A, 0xFF, 0xFF]).write(to: URL(fileURLWithPath: bad))
        let out = OnnxImportDriver.run(model: bad, directory: dir, name: "x")
        XCTAssertEqual(out.status, 1)
        XCTAssertTrue(out.stderr.contains("not an ONNX model"), out.stderr)
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [], [])
    }

    func testDynamicDimsBecomeNamedSizes() throws {
        var m = model(OnnxNode(name: "r", opType: "Relu", inputs: ["a"], outputs: ["y"]), inputs: [])
        m.graph.inputs = [OnnxValueInfo(name: "a", dims: [.param("batch"), .value(3), .param("len"), .unknown])]
        let imported = try OnnxToIR.convert(m, name: "m")
        XCTAssertEqual(imported.graph.inputs[0].type.description, "f32[N,3,Len,D3]")
    }
}
