import Driver
import Foundation
import IR
import Reference
import Scheduler
import Tensors
@testable import Training
import XCTest

/// Batch normalization in training: batch statistics in the step, running averages kept by the
/// solver, saved in checkpoints and the model, and used by evaluation and prediction.
final class BatchNormTrainingTests: XCTestCase {
    /// The toy conv net with a training-mode batch norm, a learned scale and shift, and dropout.
    static let graphPath: String = {
        let text = """
            fn2e 1

            graph @toy_bn(%data: f32[N,1,16,16], %label: i32[N]) {
              param %conv.weight: f32[8,1,3,3] = msra
              param %bn.gamma: f32[8] = constant(1.0)
              param %bn.beta: f32[8] = zeros
              param %bn.mean: f32[8] = zeros {trainable=false}
              param %bn.var: f32[8] = constant(1.0) {trainable=false}
              param %fc.weight: f32[3,32] = xavier
              param %fc.bias: f32[3] = zeros
              %conv = f32[N,8,16,16] conv2d(%data, %conv.weight) {pad=1}
              %bn = f32[N,8,16,16] batch_norm(%conv, %bn.mean, %bn.var) {momentum=0.8}
              %affine = f32[N,8,16,16] scale(%bn, %bn.gamma, %bn.beta)
              %relu = f32[N,8,16,16] relu(%affine)
              %pool = f32[N,8,2,2] max_pool(%relu) {kernel=8, stride=8}
              %flat = f32[N,32] flatten(%pool)
              %drop = f32[N,32] dropout(%flat) {ratio=0.3}
              %fc = f32[N,3] linear(%drop, %fc.weight, %fc.bias)
              %loss = f32[] softmax_cross_entropy(%fc, %label)
              return %loss
            }

            """
        let path = Toy.dir + "/toy_bn.fn2e"
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }()

    static func settings(_ name: String, iterations: Int, _ extra: [String: String] = [:]) throws -> Settings {
        try Toy.settings(name, ["graph": graphPath, "mirror": "true", "iterations": String(iterations), "eval_interval": "5",
                                "checkpoint_interval": "5", "lr": "0.05"].merging(extra) { $1 })
    }

    /// With batch normalization the toy conv net learns the synthetic patterns as it does without
    /// (TrainerTests.toyAccuracy in 100 steps), evaluated with the running statistics. (At lr 0.01:
    /// 94%; 0.03: 89%; 0.1, where the net without batch norm reaches 92%: 61%; 0.3: chance.)
    func testToyNetWithBatchNormLearns() throws {
        let evals = try Toy.trainer(try Self.settings("bn-learn", iterations: 100, ["lr": "0.01", "mirror": "false", "eval_interval": "20"])).train()
        let test = try XCTUnwrap(evals.first { $0.split == "test" })
        print("toy conv net with batch norm, fold 0 of 5, 100 steps: \(test.summary)")
        XCTAssertGreaterThanOrEqual(test.accuracy, TrainerTests.toyAccuracy, test.summary)
    }

    /// One step's running averages are momentum · initial + (1 − momentum) · the batch's statistics
    /// of the convolution's output (the variance unbiased), the statistics being the reference's.
    func testRunningAveragesFoldInTheBatchStatistics() throws {
        let t = try Toy.trainer(try Self.settings("bn-one-step", iterations: 1))
        let names = t.solver.averages.map(\.param.name)
        XCTAssertEqual(names, ["bn.mean", "bn.var"])
        try t.feed(t.prepare(step: 0))
        _ = try t.compiled.forwardBackward(step: 0)
        let x = try XCTUnwrap(t.compiled.exec.tensor("data")), w = try XCTUnwrap(t.compiled.exec.tensor("conv.weight"))
        let conv = RefOps.conv2d(x: x.data.map(Double.init), xShape: x.shape, w: w.data.map(Double.init), wShape: w.shape, bias: nil,
                                 stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 1).out
        let (m, v) = RefOps.batchMoments(x: conv, shape: [x.shape[0], 8, 16, 16])
        try t.compiled.update(lr: 0, step: 0)
        let count = Double(conv.count / 8)
        let running = t.solver.parameterTensors.reduce(into: [String: [Float]]()) { $0[$1.0] = $1.1.data }
        for c in 0..<8 {
            XCTAssertEqual(Double(running["bn.mean"]![c]), 0.2 * m[c], accuracy: 1e-5)
            XCTAssertEqual(Double(running["bn.var"]![c]), 0.8 + 0.2 * v[c] * count / (count - 1), accuracy: 1e-4 * (1 + v[c]))
        }
    }

    /// Interrupted after 10 steps and resumed, the run ends bitwise where a straight 20-step run does:
    /// model, checkpoint (running statistics included) and metrics.
    func testResumeIsExactWithRunningStatistics() throws {
        let straight = try Self.settings("bn-straight", iterations: 20)
        _ = try Toy.trainer(straight).train()
        let first = try Self.settings("bn-resumed", iterations: 10)
        _ = try Toy.trainer(first).train()
        var more = first
        try more.set("iterations", "20", origin: "test")
        _ = try Toy.trainer(more).train(resume: true)
        let (a, b) = (straight.path("output"), first.path("output"))
        try Toy.assertSameTensors(a + "/model.safetensors", b + "/model.safetensors")
        try Toy.assertSameTensors(a + "/checkpoint.safetensors", b + "/checkpoint.safetensors")
        XCTAssertEqual(Toy.text(a + "/metrics.jsonl"), Toy.text(b + "/metrics.jsonl"))
        let (model, _) = try SafeTensors.read(path: a + "/model.safetensors")
        let (checkpoint, _) = try SafeTensors.read(path: a + "/checkpoint.safetensors")
        for name in ["bn.mean", "bn.var"] {
            let x = try XCTUnwrap(model[name], "model.safetensors lacks \(name)")
            XCTAssertEqual(checkpoint[name]?.data, x.data)
            XCTAssertNotEqual(x.data, [Float](repeating: name == "bn.mean" ? 0 : 1, count: 8), "\(name) was never updated")
        }
    }

    /// Evaluation and prediction normalize with the running statistics: their class scores match the
    /// reference interpreter on the graph as written (running mean and variance from the model), and
    /// differ from what the batch's own statistics give.
    func testEvaluationAndPredictionUseRunningStatistics() throws {
        let s = try Self.settings("bn-eval", iterations: 15)
        let t = try Toy.trainer(s)
        _ = try t.train()
        let samples = Array(t.splits.test.prefix(6))
        let (model, _) = try SafeTensors.read(path: s.path("output") + "/model.safetensors")
        let predictor = try Predictor(runDirectory: s.path("output"))
        let input = predictor.batch(samples.map { t.images[$0] })
        let predicted = try XCTUnwrap(predictor.run(input, outputs: ["fc"])["fc"]).data

        let ex = try t.evalExecutor(samples.count)
        try ex.setValue("data", input)
        ex.run()
        let evaluated = Array(UnsafeBufferPointer(start: ex.pointer("fc")!, count: samples.count * 3))

        var values = model.mapValues { $0.data.map(Double.init) }
        values["data"] = input.data.map(Double.init)
        values["label"] = [Double](repeating: 0, count: samples.count)
        let inference = try Scheduler.bind(t.graph, batch: samples.count)
        let running = try Interpreter.run(inference, values)["fc"]!
        var training = inference
        training.nodes = training.nodes.map { n in
            n.op == .batchNorm ? Node(name: n.name, op: .batchNormTrain, operands: [n.operands[0]], type: n.type, loc: n.loc) : n
        }
        let batchStatistics = try Interpreter.run(training, values)["fc"]!
        for (what, scores) in [("evaluation", evaluated), ("prediction", predicted)] {
            for i in running.indices { XCTAssertEqual(Double(scores[i]), running[i], accuracy: 1e-4 * (1 + abs(running[i])), what) }
        }
        let gap = zip(running, batchStatistics).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(gap, 1e-2, "running and batch statistics should give different scores here")
    }
}

/// The big 48x48 student (Graphs/vgg48_stage2.fn2e) trains, evaluates and predicts end to end: a
/// few steps on generated faces (FN2E_DATA not needed), then prediction from the run folder agrees
/// with the trainer's evaluation of the same images.
final class VGG48Tests: XCTestCase {
    static let graphs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/Graphs"

    func testVGG48TrainsEvaluatesAndPredicts() throws {
        let tmp = NSTemporaryDirectory() + "fn2e-vgg48-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let index = try SyntheticFaces.write(to: tmp + "/data", subjects: 4, perSubject: 7, seed: 5)
        var s = Settings()
        let values = ["graph": Self.graphs + "/vgg48_stage2.fn2e", "data": index, "group": "subject", "folds": "2", "fold": "0",
                      "channels": "1", "mean": "127.5", "scale": "0.0078125", "mirror": "true", "batch": "4", "iterations": "3",
                      "solver": "sgd", "lr": "0.01", "momentum": "0.9", "display": "1000", "seed": "1", "output": tmp + "/run"]
        for (k, v) in values.sorted(by: { $0.key < $1.key }) { try s.set(k, v, origin: "test") }
        let t = try Trainer(settings: s, log: { _ in })
        XCTAssertEqual(t.solver.averages.count, 16, "two running statistics per batch_norm, eight batch_norms")
        let evals = try t.train()
        let test = try XCTUnwrap(evals.first { $0.split == "test" })
        XCTAssertEqual(test.count, 14)
        let (model, _) = try SafeTensors.read(path: tmp + "/run/model.safetensors")
        XCTAssertNotEqual(model["vgg48.conv4_2.mean"]?.data.first, 0, "running mean never updated")

        let samples = Array(t.splits.test.prefix(3))
        let predictor = try Predictor(runDirectory: tmp + "/run")
        let input = predictor.batch(samples.map { t.images[$0] })
        let predicted = try XCTUnwrap(predictor.run(input, outputs: ["fc7"])["fc7"]).data
        let ex = try t.evalExecutor(samples.count)
        try ex.setValue("data", input)
        ex.run()
        let evaluated = Array(UnsafeBufferPointer(start: ex.pointer("fc7")!, count: predicted.count))
        XCTAssertEqual(predicted.count, 3 * 7)
        for i in predicted.indices { XCTAssertEqual(predicted[i], evaluated[i], accuracy: 1e-4 * (1 + abs(evaluated[i]))) }
    }
}
