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

    /// Training-mode batch norm is lowered where a trainable parameter reaches its input; a frozen
    /// branch's keeps its running statistics. Running statistics must be frozen and belong to one layer.
    func testBatchNormTrainsOnlyWhereParametersLearn() throws {
        func graph(_ extra: String = "", mean: String = "{trainable=false}") -> String {
            """
            fn2e 1
            graph @g(%x: f32[N,2,4,4]) {
              param %wf: f32[2,2,1,1] = msra {trainable=false}
              param %wt: f32[2,2,1,1] = msra
              param %mf: f32[2] = zeros {trainable=false}
              param %vf: f32[2] = constant(1.0) {trainable=false}
              param %mt: f32[2] = zeros \(mean)
              param %vt: f32[2] = constant(1.0) {trainable=false}
              %cf = conv2d(%x, %wf)
              %bf = batch_norm(%cf, %mf, %vf) {momentum=0.9}
              %ct = conv2d(%x, %wt)
              %bt = batch_norm(%ct, %mt, %vt) {momentum=0.9}
              \(extra)
              %loss = euclidean_loss(%bt, %bf)
              return %loss
            }
            """
        }
        let g = try Autodiff.gradient(of: try Loader.load(text: graph(), file: "/bn.fn2e").graph()!, loss: "loss")
        XCTAssertEqual(g.node("bf")?.op, .batchNorm)
        XCTAssertEqual(g.node("bt")?.op, .batchNormTrain)
        XCTAssertEqual(g.node("bt.moments")?.op, .batchMoments)
        XCTAssertNil(g.node("bf.moments"))
        XCTAssertEqual(Array(g.outputs.prefix(4)), ["loss", "bt.moments", "mt", "vt"])
        XCTAssertEqual(LowerBatchNorm.runningAverages(try Loader.load(text: graph(), file: "/bn.fn2e").graph()!).map(\.param), ["mt", "vt"])
        for (text, message) in [(graph(mean: ""), "'%mt' must be a frozen parameter (trainable=false)"),
                                (graph("%b2 = batch_norm(%ct, %mt, %vf) {momentum=0.5}"), "'%mt' belongs to another batch_norm already")] {
            XCTAssertThrowsError(try Autodiff.gradient(of: try Loader.load(text: text, file: "/bn.fn2e").graph()!, loss: "loss")) {
                XCTAssert("\($0)".contains(message), "\($0)")
            }
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
