import Foundation
import IR
import Tensors
@testable import Training
import XCTest

/// The trainer's parts on their own: the compiled step (with its frozen cache), the progress and
/// metrics reporter, and checkpoint save and restore.
final class TrainerPartsTests: XCTestCase {
    /// A linear head over a frozen 1x1 convolution: with `cache_frozen` the convolution is cut off.
    static let frozenGraph = """
        fn2e 1

        graph @frozen_head(%data: f32[N,1,16,16], %label: i32[N]) {
          param %face.weight: f32[2,1,1,1] = constant(0.5) {trainable=false}
          param %fc.weight: f32[3,512] = gaussian(0.01)
          %face = f32[N,2,16,16] conv2d(%data, %face.weight)
          %flat = f32[N,512] flatten(%face)
          %fc = f32[N,3] linear(%flat, %fc.weight)
          %loss = f32[] softmax_cross_entropy(%fc, %label)
          return %loss
        }

        """

    static func step(cacheFrozen: Bool, batch: Int = 4) throws -> TrainingStep {
        let path = Toy.dir + "/frozen_head.fn2e"
        try frozenGraph.write(toFile: path, atomically: true, encoding: .utf8)
        let s = try Toy.settings("parts-step", ["graph": path, "cache_frozen": cacheFrozen ? "true" : "false"])
        let g = try Trainer.flatGraph(s)
        return try TrainingStep(graph: g, loss: "loss", batch: batch, seed: 1, settings: s)
    }

    static func images(_ seed: UInt64, batch: Int = 4) -> Tensor {
        var rng = Xoshiro256(seed: seed)
        return Tensor(shape: [batch, 1, 16, 16], data: (0..<batch * 256).map { _ in rng.nextFloat() })
    }

    // MARK: TrainingStep

    func testStepComputesLossAndUpdatesOnlyTrainableParameters() throws {
        let step = try Self.step(cacheFrozen: false)
        XCTAssertNil(step.cut)
        XCTAssertEqual(step.solver.slots.map(\.param.name), ["fc.weight"])
        XCTAssert(step.summary.hasPrefix("step: "), step.summary)
        XCTAssert(step.summary.hasSuffix("1 trainable tensors (1536 values)"), step.summary)
        try step.feed(images: Self.images(1), imageInput: "data", labels: [0, 1, 2, 0], labelInput: "label", keys: ["a", "b", "c", "d"])
        let loss = try step.forwardBackward(step: 0)
        XCTAssertEqual(Double(loss), log(3.0), accuracy: 0.05, "near-zero weights score all three classes alike")
        let before = step.solver.parameterTensors[0].1.data
        try step.update(lr: 0.1, step: 0)
        XCTAssertNotEqual(step.solver.parameterTensors[0].1.data, before)
        XCTAssertEqual(step.cacheStats.computed, 0)
    }

    func testFrozenCacheComputesEachKeyOnceAndGivesTheSameLoss() throws {
        let plain = try Self.step(cacheFrozen: false), cached = try Self.step(cacheFrozen: true)
        XCTAssertEqual(cached.cut?.boundary, ["flat"], "the frozen part ends where the trainable linear layer reads it")
        XCTAssertEqual(cached.executors.count, 2)
        let labels: [Int32] = [0, 1, 2, 0], keys = ["a", "b", "c", "d"]
        for s in [plain, cached] {
            try s.feed(images: Self.images(1), imageInput: "data", labels: labels, labelInput: "label", keys: keys)
        }
        XCTAssertEqual(try plain.forwardBackward(step: 0), try cached.forwardBackward(step: 0))
        XCTAssertEqual(cached.cacheStats.computed, 4)
        // The same keys with other pixels: the cached results are reused, so the loss does not change.
        let first = try cached.forwardBackward(step: 0)
        try cached.feed(images: Self.images(2), imageInput: "data", labels: labels, labelInput: "label", keys: keys)
        XCTAssertEqual(try cached.forwardBackward(step: 1), first)
        XCTAssertEqual(cached.cacheStats.computed, 4)
        XCTAssertEqual(cached.cacheStats.reused, 4)
    }

    /// With centre crops the trainer fills the cache before the first step, every (image, mirror)
    /// once, and trains exactly as without the cache; with random crops it fills it as batches come.
    func testTrainerPrecomputesEveryAugmentationOnce() throws {
        _ = try Self.step(cacheFrozen: false)  // writes the graph
        let graph = Toy.dir + "/frozen_head.fn2e"
        for mirror in [true, false] {
            let extra = ["graph": graph, "mirror": "\(mirror)", "iterations": "12", "eval_interval": "6"]
            let cached = try Toy.trainer(Toy.settings("precompute-\(mirror)", extra))
            _ = try cached.train()
            let n = cached.splits.train.count
            XCTAssertEqual(cached.cacheStats.computed, n * (mirror ? 2 : 1))
            XCTAssertEqual(cached.cacheStats.reused, 12 * 16, "every sample of every step comes from the cache")
            let plain = try Toy.trainer(Toy.settings("precompute-\(mirror)-plain", extra.merging(["cache_frozen": "false"]) { $1 }))
            _ = try plain.train()
            XCTAssertEqual(plain.cacheStats.computed, 0)
            try Toy.assertSameTensors(cached.outputDir + "/model.safetensors", plain.outputDir + "/model.safetensors")
        }
        let random = try Toy.trainer(Toy.settings("precompute-random", ["graph": graph, "mirror": "true", "crop_mode": "random",
                                                                         "resize": "18x18", "iterations": "3"]))
        _ = try random.train()
        XCTAssertEqual(random.cacheStats.computed + random.cacheStats.reused, 3 * 16, "filled as batches come")
    }

    /// A batch is preprocessed straight into the step's image input, row k the batch's k-th sample;
    /// when only the frozen part reads the images, into the frozen part's input.
    func testPrepareWritesTheBatchIntoTheStepsInput() throws {
        let t = try Toy.trainer(Toy.settings("parts-input"))
        let b = t.prepare(step: 2)
        let per = t.pre.channels * t.pre.inputHeight * t.pre.inputWidth
        var expected = [Float](repeating: 0, count: b.indices.count * per), rng = Xoshiro256(seed: 0)
        expected.withUnsafeMutableBufferPointer { p in
            // Centre crops, no mirror: the training augmentation is evaluation's.
            for (k, i) in b.indices.enumerated() { t.pre.apply(t.images[i], into: p.baseAddress! + k * per, train: false, rng: &rng) }
        }
        XCTAssertEqual(t.compiled.input(t.imageInput), t.compiled.exec.pointer(t.imageInput))
        XCTAssertEqual(t.compiled.exec.tensor(t.imageInput)?.data, expected)
        XCTAssertNotEqual(t.preparedImages(step: 3), expected)

        _ = try Self.step(cacheFrozen: false)  // writes the graph
        let frozen = try Toy.trainer(Toy.settings("parts-input-frozen", ["graph": Toy.dir + "/frozen_head.fn2e"]))
        XCTAssertNil(frozen.compiled.exec.pointer("data"), "the trainable part reads the frozen part's results only")
        XCTAssertEqual(frozen.compiled.input("data"), frozen.compiled.frozenExec?.pointer("data"))
    }

    /// The model file holds the frozen parameters too, so it is the whole network (the teacher that
    /// a stage 1 loads from a stage 0 that fine-tuned only the top of a face net).
    func testModelFileHoldsFrozenParameters() throws {
        _ = try Self.step(cacheFrozen: false)  // writes the graph
        for cache in ["true", "false"] {
            let t = try Toy.trainer(Toy.settings("frozen-saved-\(cache)", ["graph": Toy.dir + "/frozen_head.fn2e", "iterations": "2",
                                                                          "cache_frozen": cache]))
            _ = try t.train()
            let (tensors, _) = try SafeTensors.read(path: t.outputDir + "/model.safetensors")
            XCTAssertEqual(Set(tensors.keys), ["face.weight", "fc.weight"], cache)
            XCTAssertEqual(tensors["face.weight"]?.data, [0.5, 0.5], cache)
        }
    }

    func testNonFiniteLossAndWeightsThrowWithTheStep() throws {
        let step = try Self.step(cacheFrozen: false)
        try step.feed(images: Self.images(1), imageInput: "data", labels: [0, 1, 2, 0], labelInput: "label", keys: ["a", "b", "c", "d"])
        _ = try step.forwardBackward(step: 0)
        XCTAssertThrowsError(try step.update(lr: .infinity, step: 4)) {
            XCTAssertEqual("\($0)", "step 5: non-finite value in %fc.weight after the update; stopped, the last checkpoint is intact")
        }
        XCTAssertThrowsError(try step.forwardBackward(step: 5)) {
            XCTAssert("\($0)".hasPrefix("step 6: non-finite value in %"), "\($0)")
        }
    }

    // MARK: ProgressReporter

    func reporter(_ name: String, display: Int, terminal: ((String) -> Void)?, lines: @escaping (String) -> Void,
                  classification: Bool = true) throws -> (ProgressReporter, String) {
        let dir = Toy.output(name)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/metrics.jsonl"
        let r = ProgressReporter(totalSteps: 10, stepsPerEpoch: 4, batch: 8, display: display, classification: classification,
                                 startStep: 2, metrics: try MetricsLog(path: path, append: false), log: lines, terminal: terminal)
        return (r, path)
    }

    func testReporterLogsFirstEveryDisplayAndLastStepAndWritesMetrics() throws {
        var lines: [String] = []
        let (r, path) = try reporter("parts-progress", display: 3, terminal: nil, lines: { lines.append($0) })
        for s in 3...10 { r.stepDone(s, loss: 1.5, lr: 0.01) }
        XCTAssertEqual(lines.map { $0.split(separator: " ")[3] }, ["3/10", "6/10", "9/10", "10/10"])
        XCTAssert(lines[0].hasPrefix("epoch 0.75 step 3/10 loss 1.50000 lr 0.01 "), lines[0])
        XCTAssert(lines[3].hasSuffix("ETA 0m00s"), lines[3])
        var e = Evaluation(split: "test", classes: 2)
        e.confusion = [[3, 1], [0, 4]]
        e.count = 8
        _ = r.evaluation(at: 10) { [e] }
        XCTAssertEqual(lines.last, e.summary)
        let m = MetricsLog.read(path)
        XCTAssertEqual(m.count, 9)
        XCTAssertEqual(m[0]["type"] as? String, "step")
        XCTAssertEqual(m[0]["epoch"] as? Double, 0.75)
        XCTAssertEqual(m[8]["type"] as? String, "eval")
        XCTAssertEqual(m[8]["step"] as? Int, 10)
        XCTAssertEqual(m[8]["confusion"] as? [[Int]], [[3, 1], [0, 4]])
    }

    func testReporterDrawsABarOnATerminalAndRegressionEvaluationsReportTheLoss() throws {
        var screen = "", lines: [String] = []
        let (r, path) = try reporter("parts-bar", display: 1, terminal: { screen += $0 }, lines: { lines.append($0) }, classification: false)
        r.stepDone(5, loss: 2, lr: 0.1)
        XCTAssert(screen.hasPrefix("\r[" + String(repeating: "=", count: 15) + String(repeating: " ", count: 15) + "] epoch 1.25 step 5/10"), screen)
        XCTAssert(lines.isEmpty)
        r.stepDone(10, loss: 2, lr: 0.1)
        XCTAssert(screen.hasSuffix("\u{1B}[K\n"), screen)
        var e = Evaluation(split: "validation", classes: 2)
        (e.loss, e.count) = (6, 4)
        _ = r.evaluation(at: 10) { [e] }
        XCTAssertEqual(lines, ["validation: loss 1.50000 (4 samples)"])
        let eval = try XCTUnwrap(MetricsLog.read(path).last)
        XCTAssertNil(eval["accuracy"])
        XCTAssertNil(eval["confusion"])
        XCTAssertEqual(eval["loss"] as? Double, 1.5)
    }

    func testDurations() {
        XCTAssertEqual(ProgressReporter.duration(65), "1m05s")
        XCTAssertEqual(ProgressReporter.duration(7380), "2h03m")
        XCTAssertEqual(ProgressReporter.duration(.infinity), "?")
    }

    // MARK: Checkpoint

    /// A loss-only evaluation (stage 1 has no class scores) reports its loss, not a 0% accuracy.
    func testEvaluationSummaryWithoutClassScores() {
        var e = Evaluation(split: "test", classes: 0)
        e.loss = 0.25
        XCTAssertEqual(e.summary, "test: loss 0.2500 (no class scores)")
        var c = Evaluation(split: "val", classes: 2)
        let scores: [Float] = [2, 0, 0, 2]
        c.add(scores: scores, labels: [0, 0], classes: 2)
        XCTAssertTrue(c.summary.hasPrefix("val: accuracy 50.00% (1/2), mean per-class 50.00%"), c.summary)
    }

    /// A write killed half way leaves `NAME.tmp-PID`; the next run removes it when PID is gone,
    /// and leaves alone one whose writer is alive (this process).
    func testAbandonedTemporariesAreRemoved() throws {
        let dir = NSTemporaryDirectory() + "fn2e-tmp-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dead = "checkpoint.safetensors.tmp-\(Int32.max - 7)", live = "model.safetensors.tmp-\(getpid())"
        for name in [dead, live, "checkpoint.safetensors", "notes.tmp-x"] {
            FileManager.default.createFile(atPath: dir + "/" + name, contents: Data([1]))
        }
        XCTAssertEqual(Checkpoint.removeAbandonedTemporaries(in: dir), [dead])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["checkpoint.safetensors", live, "notes.tmp-x"].sorted())
    }

    func testCheckpointRestoresParametersSolverStateStepAndRNG() throws {
        let a = try Self.step(cacheFrozen: false), b = try Self.step(cacheFrozen: false)
        try a.feed(images: Self.images(3), imageInput: "data", labels: [2, 1, 0, 0], labelInput: "label", keys: ["a", "b", "c", "d"])
        _ = try a.forwardBackward(step: 0)
        try a.update(lr: 0.1, step: 0)
        var rng = Xoshiro256(seed: 9)
        _ = rng.nextFloat()
        let dir = Toy.output("parts-checkpoint")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/checkpoint.safetensors"
        try Checkpoint.write(to: path, solver: a.solver, step: 3, rng: rng, seed: "7")
        XCTAssertEqual(try SafeTensors.read(path: path).metadata["format"], Checkpoint.format)

        let (step, restored) = try Checkpoint.restore(from: path, into: b.solver, seed: "7")
        XCTAssertEqual(step, 3)
        XCTAssertEqual(restored, rng)
        XCTAssertEqual(b.solver.t, 1)
        XCTAssertEqual(b.solver.parameterTensors.map(\.1.data), a.solver.parameterTensors.map(\.1.data))
        XCTAssertEqual(b.solver.slots.map(\.m), a.solver.slots.map(\.m))

        XCTAssertThrowsError(try Checkpoint.restore(from: path, into: b.solver, seed: "8")) {
            XCTAssertEqual("\($0)", "\(path) was written with seed 7, this run has seed 8")
        }
        let other = dir + "/model.safetensors"
        try SafeTensors.write(a.solver.parameterTensors, metadata: [:], to: other)
        XCTAssertThrowsError(try Checkpoint.restore(from: other, into: b.solver, seed: "7")) {
            XCTAssertEqual("\($0)", "\(other): not an fn2e checkpoint")
        }
    }

    func testMetricsTruncateKeepsLinesUpToTheStep() throws {
        let dir = Toy.output("parts-truncate")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/metrics.jsonl"
        let log = try MetricsLog(path: path, append: false)
        for s in 1...5 { log.write(["type": "step", "step": s]) }
        log.write(["type": "eval", "step": 5])
        try MetricsLog.truncate(path, after: 3)
        XCTAssertEqual(Toy.text(path), "{\"step\":1,\"type\":\"step\"}\n{\"step\":2,\"type\":\"step\"}\n{\"step\":3,\"type\":\"step\"}\n")
    }
}
