// Caffe -> fn2e conversion: parity with OpenCV's MTCNN reference dumps, VGG-Face in both syntaxes
// against the hand-written graph, generated models through the runtime and the reference
// interpreter, diagnostics, and fuzzing of the full import.
import CaffeImport
import Driver
import Foundation
import IR
import Reference
import Runtime
import Scheduler
import Tensors
import XCTest

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/Caffe").path
private let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

private func readRaw(_ path: String) throws -> [Float] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

/// ‖a − b‖ / ‖b‖ and max |a − b|.
private func difference(_ a: [Float], _ b: [Float]) -> (relative: Double, maxAbs: Double) {
    var num = 0.0, den = 0.0, m = 0.0
    for i in a.indices {
        let d = Double(a[i]) - Double(b[i])
        num += d * d
        den += Double(b[i]) * Double(b[i])
        m = max(m, abs(d))
    }
    return ((num / max(den, 1e-30)).squareRoot(), m)
}

private func temporaryDirectory() throws -> String {
    let dir = NSTemporaryDirectory() + "fn2e-caffe-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

final class ImportTests: XCTestCase {
    // MARK: MTCNN against OpenCV

    func testMTCNNMatchesOpenCVReference() throws {
        let reference = try dataPath("caffe/mtcnn/reference")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: reference + "/manifest.json"))) as! [String: Any]
        let cases = manifest["cases"] as! [String: [String: Any]]
        XCTAssertEqual(cases.count, 5)
        var imported: [String: CaffeImported] = [:]
        for name in cases.keys.sorted() {
            let c = cases[name]!
            let net = c["net"] as! String
            if imported[net] == nil {
                imported[net] = try CaffeToIR.importFiles(prototxt: try dataPath("caffe/mtcnn/\(net).prototxt"),
                                                          caffemodel: try dataPath("caffe/mtcnn/\(net).caffemodel"), name: net)
            }
            let model = imported[net]!
            let input = c["input"] as! [String: Any]
            let shape = input["shape"] as! [Int]
            // The graph's input is [N, C, H, W] from the prototxt; the case may use another H x W.
            var graph = model.graph
            graph.inputs[0].type = TensorType(.f32, [.batch] + shape.dropFirst().map { .fixed($0) })
            for k in graph.nodes.indices { graph.nodes[k].type = nil }
            XCTAssertEqual(Verifier().verify(&graph), [], name)
            let ex = try CaffeImportDriver.executor(CaffeImported(module: model.module, graph: graph, weights: model.weights, log: []),
                                                    batch: shape[0])
            _ = try ex.run(inputs: [graph.inputs[0].name: Tensor(shape: shape, data: try readRaw("\(reference)/\(name)/input.bin"))])
            var report: [String] = []
            for layer in c["layers"] as! [[String: Any]] {
                let lname = layer["name"] as! String
                // A Slice's first top is the reference's output for the layer.
                let node = graph.node(lname) ?? graph.nodes.first { $0.name.hasPrefix(lname + ".") }
                let got = try XCTUnwrap(node.flatMap { ex.tensor($0.name) }, "\(name): no value for layer \(lname)")
                let want = try readRaw("\(reference)/\(name)/\(layer["file"] as! String)")
                XCTAssertEqual(got.shape, layer["shape"] as! [Int], "\(name)/\(lname)")
                guard got.count == want.count else { continue }
                let d = difference(got.data, want)
                report.append(String(format: "%@ rel %.2e max %.2e", lname, d.relative, d.maxAbs))
                XCTAssertLessThan(d.relative, 1e-4, "\(name)/\(lname): ‖a−b‖/‖b‖ = \(d.relative)")
            }
            print("MTCNN \(name):\n  " + report.joined(separator: "\n  "))
        }
    }

    // MARK: VGG-Face

    func testVGGFaceBothSyntaxesMatchHandWrittenGraph() throws {
        let current = try CaffeToIR.importFiles(prototxt: try dataPath("caffe/vgg_face/VGG_FACE_deploy.prototxt"), caffemodel: nil, name: "vgg_face")
        let v1 = try CaffeToIR.importFiles(prototxt: try dataPath("caffe/vgg_face/VGG_FACE_deploy.v1.prototxt"), caffemodel: nil, name: "vgg_face")
        XCTAssertTrue(v1.log.contains("upgrading V1 layers to current format"), "\(v1.log)")
        XCTAssertEqual(Self.structure(current.graph), Self.structure(v1.graph))
        XCTAssertEqual(current.graph.params.map(\.name), v1.graph.params.map(\.name))
        XCTAssertEqual(current.graph.params.map(\.type), v1.graph.params.map(\.type))

        let hand = try XCTUnwrap(loadProgram(repoRoot + "/Graphs/vgg_face.fn2e").graph("vgg_face"))
        // The names the import derives differently, mapped explicitly.
        let rename = ["fc6.flatten": "pool5_flat"]
        XCTAssertEqual(Self.structure(current.graph, rename: rename), Self.structure(hand))
        XCTAssertEqual(current.graph.params.map(\.name), hand.params.map(\.name))
        XCTAssertEqual(current.graph.params.map(\.type), hand.params.map(\.type))
        XCTAssertEqual(current.graph.inputs, hand.inputs.map { var i = $0; i.loc = current.graph.inputs[0].loc; return i })
        // The hand-written graph also exports pool5 (features); the import returns the unconsumed tops.
        XCTAssertEqual(current.graph.outputs, ["prob"])
        XCTAssertEqual(hand.outputs, ["prob", "pool5"])
    }

    /// One line per node: name, op, attributes with defaults, operands, type.
    static func structure(_ g: Graph, rename: [String: String] = [:]) -> [String] {
        g.nodes.map { n in
            let attrs = n.fullAttrs.values.keys.sorted().map { "\($0)=\(n.fullAttrs.values[$0]!)" }.joined(separator: ",")
            let operands = n.operands.map { rename[$0] ?? $0 }.joined(separator: ",")
            return "\(rename[n.name] ?? n.name) = \(n.type.map(\.description) ?? "?") \(n.op.rawValue)(\(operands)) {\(attrs)}"
        }
    }

    // MARK: Generated models

    /// Imports through files, runs the runtime unfused, and compares every node with the reference interpreter.
    private func checkAgainstInterpreter(_ imported: CaffeImported, input shape: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let x = Tensor(shape: shape, seed: 3)
        let ex = try CaffeImportDriver.executor(imported, batch: shape[0])
        _ = try ex.run(inputs: [imported.graph.inputs[0].name: x])
        let bound = try Scheduler.bind(imported.graph, batch: shape[0])
        var values: [String: [Double]] = [imported.graph.inputs[0].name: x.data.map(Double.init)]
        let weights = Dictionary(uniqueKeysWithValues: imported.weights.map { ($0.0, $0.1) })
        for p in bound.params { values[p.name] = try XCTUnwrap(weights[p.name], "no weights for \(p.name)").data.map(Double.init) }
        let want = try Interpreter.run(bound, values)
        for n in bound.nodes {
            let got = try XCTUnwrap(ex.tensor(n.name), n.name)
            let d = difference(got.data, want[n.name]!.map(Float.init))
            XCTAssertLessThan(d.relative, 1e-5, "\(imported.graph.name)/\(n.name)", file: file, line: line)
        }
    }

    func testCommittedV1FixtureImportsAndRuns() throws {
        let imported = try CaffeToIR.importFiles(prototxt: fixtures + "/mini_vgg.v1.prototxt",
                                                 caffemodel: fixtures + "/mini_vgg.v1.caffemodel", name: "mini_vgg")
        XCTAssertEqual(imported.weights.count, 10)
        // V1 stores an InnerProduct weight as 1x1xMxK; it arrives right-aligned.
        XCTAssertEqual(imported.weights.first { $0.0 == "fc6.weight" }?.1.shape, [16, 72])
        XCTAssertTrue(imported.log.contains("upgrading V1 layers to current format"))
        try checkAgainstInterpreter(imported, input: [2, 3, 12, 12])
        // The fixture is what the generator writes for seed 7.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = CaffeImportDriver.makeTestModel(net: "mini-vgg", syntax: .v1, seed: 7, directory: dir, name: "m")
        XCTAssertEqual(out.status, 0, out.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/m.caffemodel"), FileManager.default.contents(atPath: fixtures + "/mini_vgg.v1.caffemodel"))
    }

    func testGeneratedModelsBothSyntaxesAgree() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var graphs: [String] = []
        for (syntax, tag) in [(CaffeSyntax.current, "cur"), (.v1, "v1")] {
            XCTAssertEqual(CaffeImportDriver.makeTestModel(net: "mini-vgg", syntax: syntax, seed: 11, directory: dir, name: tag).status, 0)
            let imported = try CaffeToIR.importFiles(prototxt: "\(dir)/\(tag).prototxt", caffemodel: "\(dir)/\(tag).caffemodel", name: "m")
            try checkAgainstInterpreter(imported, input: [1, 3, 12, 12])
            graphs.append(Self.structure(imported.graph).joined(separator: "\n"))
            // A caffemodel alone carries its net.
            let alone = try CaffeToIR.importFiles(prototxt: nil, caffemodel: "\(dir)/\(tag).caffemodel", name: "m")
            XCTAssertEqual(Self.structure(alone.graph), Self.structure(imported.graph))
            XCTAssertEqual(alone.weights.map(\.1), imported.weights.map(\.1))
        }
        XCTAssertEqual(graphs[0], graphs[1])
        XCTAssertEqual(CaffeImportDriver.makeTestModel(net: "all-layers", syntax: .current, seed: 5, directory: dir, name: "all").status, 0)
        let all = try CaffeToIR.importFiles(prototxt: "\(dir)/all.prototxt", caffemodel: "\(dir)/all.caffemodel", name: "all")
        try checkAgainstInterpreter(all, input: [2, 4, 10, 10])
        XCTAssertEqual(CaffeImportDriver.makeTestModel(net: "ssd-mini", syntax: .current, seed: 5, directory: dir, name: "ssd").status, 0)
        try checkAgainstInterpreter(try CaffeToIR.importFiles(prototxt: "\(dir)/ssd.prototxt", caffemodel: "\(dir)/ssd.caffemodel", name: "ssd"),
                                    input: [2, 3, 32, 32])
        // BatchNorm statistics are divided by the stored scale factor (2).
        let net = try CaffeNet(caffemodelPath: "\(dir)/all.caffemodel")
        let stored = try XCTUnwrap(net.layer(named: "bn")?.blobs[0].data)
        XCTAssertEqual(all.weights.first { $0.0 == "bn.mean" }?.1.data, stored.map { $0 * 0.5 })
        // A transposed InnerProduct's [K, M] blob arrives as [M, K].
        let ip = try XCTUnwrap(net.layer(named: "ip")?.blobs[0])
        XCTAssertEqual(ip.shape, [8, 5])
        let w = try XCTUnwrap(all.weights.first { $0.0 == "ip.weight" }?.1)
        XCTAssertEqual(w.shape, [5, 8])
        XCTAssertEqual(w.data[1 * 8 + 3], ip.data[3 * 5 + 1])
    }

    // MARK: The command

    func testCommandWritesVerifiedFilesAndNothingOnError() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = CaffeImportDriver.run(prototxt: fixtures + "/mini_vgg.v1.prototxt", caffemodel: fixtures + "/mini_vgg.v1.caffemodel",
                                        directory: dir, name: "mini")
        XCTAssertEqual(out.status, 0, out.stderr)
        XCTAssertTrue(out.stderr.contains("upgrading V1 layers to current format"), out.stderr)
        let program = try loadProgram(dir + "/mini.fn2e")
        XCTAssertEqual(Printer.print(program.verifiedRoot), try String(contentsOfFile: dir + "/mini.fn2e", encoding: .utf8))
        let compiled = try compile(path: dir + "/mini.fn2e", batch: 1)
        let report = try WeightLoader.load(dir + "/mini.safetensors", into: compiled.executor)
        XCTAssertEqual(report.loaded.count, 10)
        XCTAssertTrue(report.initialized.isEmpty)

        // An unknown layer type: file:line:col of its type, the supported types listed, no files.
        let bad = dir + "/bad"
        try FileManager.default.createDirectory(atPath: bad, withIntermediateDirectories: true)
        let proto = bad + "/net.prototxt"
        try """
        name: "x"
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
        layer { name: "odd" type: "Crop" bottom: "data" top: "odd" }
        """.write(toFile: proto, atomically: true, encoding: .utf8)
        let failed = CaffeImportDriver.run(prototxt: proto, caffemodel: nil, directory: bad + "/out", name: "net")
        XCTAssertEqual(failed.status, 1)
        XCTAssertTrue(failed.stderr.hasPrefix("\(proto):3:21: error: layer 'odd' has type 'Crop'"), failed.stderr)
        XCTAssertTrue(failed.stderr.contains("supported types: BatchNorm, Bias, Concat, Convolution"), failed.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad + "/out/net.fn2e"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad + "/out/net.safetensors"))
    }

    func testWeightShapeMismatchSaysToRenameTheLayer() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let changed = CaffeTestModels.miniVGG.replacingOccurrences(of: "num_output: 16", with: "num_output: 12")
        try changed.write(toFile: dir + "/changed.prototxt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CaffeToIR.importFiles(prototxt: dir + "/changed.prototxt", caffemodel: fixtures + "/mini_vgg.v1.caffemodel", name: "m")) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("layer 'fc6'"), text)
            XCTAssertTrue(text.contains("[1, 1, 16, 72]") && text.contains("[12, 72]"), text)
            XCTAssertTrue(text.contains("rename the layer to learn it from scratch"), text)
            XCTAssertTrue(text.hasPrefix(dir + "/changed.prototxt:"), text)
        }
        // Renamed, the layer keeps its initializers and the import says so.
        try CaffeTestModels.miniVGG.replacingOccurrences(of: "\"fc6\"", with: "\"fc6_new\"").replacingOccurrences(of: "bottom: \"fc6\"", with: "bottom: \"fc6_new\"")
            .write(toFile: dir + "/renamed.prototxt", atomically: true, encoding: .utf8)
        let renamed = try CaffeToIR.importFiles(prototxt: dir + "/renamed.prototxt", caffemodel: fixtures + "/mini_vgg.v1.caffemodel", name: "m")
        XCTAssertFalse(renamed.weights.contains { $0.0.hasPrefix("fc6_new.") })
        XCTAssertTrue(renamed.log.contains { $0.contains("fc6_new") }, "\(renamed.log)")
    }

    // MARK: Fuzzing the full import

    func testTruncatedAndBitFlippedFilesNeverCrash() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try XCTUnwrap(FileManager.default.contents(atPath: fixtures + "/mini_vgg.v1.caffemodel"))
        let proto = try XCTUnwrap(FileManager.default.contents(atPath: fixtures + "/mini_vgg.v1.prototxt"))
        var rng = Xoshiro256(seed: 42)
        var outcomes = (ok: 0, failed: 0)
        func attempt(_ protoBytes: Data?, _ modelBytes: Data?) {
            let p = dir + "/p.prototxt", m = dir + "/m.caffemodel"
            try? protoBytes?.write(to: URL(fileURLWithPath: p))
            try? modelBytes?.write(to: URL(fileURLWithPath: m))
            do {
                let imported = try CaffeToIR.importFiles(prototxt: protoBytes == nil ? nil : p, caffemodel: modelBytes == nil ? nil : m, name: "f")
                _ = try CaffeImportDriver.canonicalText(imported)
                outcomes.ok += 1
            } catch {
                outcomes.failed += 1
            }
        }
        for cut in stride(from: 0, to: model.count, by: max(1, model.count / 60)) {
            attempt(proto, model.prefix(cut))
            attempt(nil, model.prefix(cut))
        }
        for cut in stride(from: 0, to: proto.count, by: max(1, proto.count / 60)) { attempt(proto.prefix(cut), model) }
        for _ in 0..<150 {
            var m = model, p = proto
            m[Int(rng.next() % UInt64(m.count))] ^= UInt8(1 << (rng.next() % 8))
            p[Int(rng.next() % UInt64(p.count))] ^= UInt8(1 << (rng.next() % 8))
            attempt(proto, m)
            attempt(nil, m)
            attempt(p, model)
        }
        print("fuzz: \(outcomes.ok) imported, \(outcomes.failed) rejected with an error")
        XCTAssertGreaterThan(outcomes.failed, 0)
    }
}
