import Autodiff
import Driver
import Foundation
import IR
import XCTest

private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The flat training graph of `Graphs/NAME` and its gradient graph.
private func gradient(_ file: String, wrt: [String]? = nil) throws -> (flat: Graph, grad: Graph) {
    let program = try Loader.load(path: root.appendingPathComponent("Graphs/" + file).path)
    let flat = Inliner.inline(program.graph()!, graphs: program.graphs)
    return (flat, try Autodiff.gradient(of: flat, loss: "loss", wrt: wrt))
}

final class AutodiffTests: XCTestCase {
    func testGoldens() {
        let update = ProcessInfo.processInfo.environment["FN2E_UPDATE_GOLDENS"] == "1"
        let outcomes = Goldens.run(directory: root.appendingPathComponent("Tests/AutodiffGoldens").path, update: update)
        XCTAssertGreaterThanOrEqual(outcomes.count, 9)
        for o in outcomes where !o.passed { XCTFail("\(o.file)\n\(o.diff)") }
    }

    /// Stage 1: the face net is frozen, so every backward node belongs to the five ExpNet conv blocks.
    func testStage1HasNoBackwardOnTheFaceNetSide() throws {
        let (_, g) = try gradient("expnet_stage1.fn2e")
        let backward = g.nodes.filter { $0.name.hasPrefix(Autodiff.prefix) }
        // Forward values computed only from the face net's side (its parameters, the replicated image).
        var faceSide: Set<String> = ["rgb"]
        for p in g.params where p.name.hasPrefix("face.") { faceSide.insert(p.name) }
        for n in g.nodes where !n.name.hasPrefix(Autodiff.prefix) && n.operands.allSatisfy(faceSide.contains) {
            faceSide.insert(n.name)
        }
        XCTAssertTrue(faceSide.contains("face_pool5"))
        let onFaceSide = backward.filter { n in !n.operands.isEmpty && n.operands.allSatisfy { faceSide.contains($0) } }
        XCTAssertEqual(onFaceSide.map(\.name), [])
        XCTAssertFalse(backward.contains { $0.name.hasPrefix("grad.face") })
        func count(_ op: Op) -> Int { backward.filter { $0.op == op }.count }
        XCTAssertEqual(count(.conv2dBackwardFilter), 5)
        XCTAssertEqual(count(.conv2dBackwardData), 4, "conv1 reads the image, which needs no gradient")
        XCTAssertEqual(count(.reluBackward), 5)
        XCTAssertEqual(count(.maxPoolBackward), 5)
        XCTAssertEqual(count(.euclideanLossBackward), 1)
        XCTAssertEqual(backward.filter { Op.backward.contains($0.op) }.count, 20)
        for n in backward where n.op == .conv2dBackwardFilter || n.op == .maxPoolBackward {
            XCTAssertTrue(n.operands.allSatisfy { $0.hasPrefix("expnet.") || $0.hasPrefix(Autodiff.prefix) || $0 == "data" }, n.name)
        }
    }

    func testFrozenParamsGetNoGradient() throws {
        let (flat, g) = try gradient("expnet_stage1.fn2e")
        let outputs = Set(g.outputs)
        let frozen = g.params.filter { !$0.trainable }
        XCTAssertEqual(frozen.count, 26)
        for p in frozen { XCTAssertFalse(outputs.contains("grad." + p.name), p.name) }
        let trainable = g.params.filter(\.trainable).map { "grad." + $0.name }
        XCTAssertEqual(trainable.count, 10, "ExpNet's conv weights and biases; fc6 and fc7 do not reach the stage-1 loss")
        XCTAssertEqual(g.outputs, ["loss"] + trainable)
        XCTAssertThrowsError(try Autodiff.gradient(of: flat, loss: "loss", wrt: ["face.conv1_1.weight"]))
    }

    func testWrtRestrictsTheGradients() throws {
        let (_, g) = try gradient("expnet_stage1.fn2e", wrt: ["expnet.conv5.weight"])
        XCTAssertEqual(g.outputs, ["loss", "grad.expnet.conv5.weight"])
        XCTAssertFalse(g.nodes.contains { $0.op == .conv2dBackwardData || $0.name == "grad.expnet.conv4" })
    }

    func testCallsMustBeInlinedFirst() throws {
        let program = try Loader.load(path: root.appendingPathComponent("Graphs/expnet_stage2.fn2e").path)
        XCTAssertThrowsError(try Autodiff.gradient(of: program.graph()!, loss: "loss")) { error in
            XCTAssertTrue("\(error)".contains("inline"), "\(error)")
        }
    }

    /// `fn2e-compile grad` works for every graph file with a loss, and its output is canonical IR.
    func testGradStageOnEveryTrainingGraph() throws {
        let dir = root.appendingPathComponent("Graphs").path
        var withLoss = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() where name.hasSuffix(".fn2e") {
            let path = dir + "/" + name
            let program = try Loader.load(path: path)
            let g = Inliner.inline(program.graph()!, graphs: program.graphs)
            let hasLoss = g.outputs.contains { g.node($0).map { Op.losses.contains($0.op) } ?? false }
            let out = Stages.run("grad", path: path)
            guard hasLoss else {
                XCTAssertEqual(out.status, 1, name)
                XCTAssertTrue(out.stderr.contains("--loss"), out.stderr)
                continue
            }
            withLoss += 1
            XCTAssertEqual(out.status, 0, "\(name): \(out.stderr)")
            XCTAssertTrue(out.stdout.contains("# Saved for backward"), name)
            let reparsed = try Loader.load(text: out.stdout, file: path)
            XCTAssertEqual(Printer.print(reparsed.verifiedRoot), out.stdout, name)
        }
        // expnet_stage1/2, expnet48_stage2, onet_stage0, dlib_stage0 and vgg48_stage2 (for any class count K),
        // onet_stage1, dlib_stage1, vgg48_onet_stage1, vgg_face_stage0.
        XCTAssertEqual(withLoss, 10)
    }
}
