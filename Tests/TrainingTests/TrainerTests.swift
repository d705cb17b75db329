import Driver
import Foundation
import Tensors
import Training
import XCTest

/// End-to-end training on the synthetic patterns: learning, determinism, exact resume (also after an
/// interrupt), the stop on non-finite values, and the solvers' arithmetic against hand computation.
final class TrainerTests: XCTestCase {
    /// Held-out fold accuracy the toy conv net must reach in 100 steps (chance is 33%; seeds 1-7 give 97-100%).
    static let toyAccuracy = 0.9

    func testLearnsSyntheticPatternsAndRunsAreIdentical() throws {
        let a = try Toy.settings("learn-a"), b = try Toy.settings("learn-b")
        let evals = try Toy.trainer(a).train()
        let test = try XCTUnwrap(evals.first { $0.split == "test" })
        print("toy conv net, fold 0 of 5, 100 steps: \(test.summary)")
        XCTAssertGreaterThanOrEqual(test.accuracy, Self.toyAccuracy, test.summary)
        XCTAssertGreaterThanOrEqual(test.count, 30)

        _ = try Toy.trainer(b).train()
        let (ma, mb) = (Toy.text(a.path("output") + "/metrics.jsonl"), Toy.text(b.path("output") + "/metrics.jsonl"))
        XCTAssertEqual(ma.split(separator: "\n").count, 100 + 5)  // 100 steps, 5 test evaluations
        XCTAssertEqual(ma, mb, "two runs with one seed must write the same metrics.jsonl")
        try Toy.assertSameTensors(a.path("output") + "/model.safetensors", b.path("output") + "/model.safetensors")

        // The run folder plots: loss, accuracy and confusion matrix.
        let pngs = try plotRun(a.path("output"), classes: Toy.classes)
        XCTAssertEqual(pngs.map { ($0 as NSString).lastPathComponent }, ["loss.png", "accuracy.png", "confusion.png"])
        for p in pngs { XCTAssertNoThrow(try Images.load(path: p, channels: 3)) }
    }

    // MARK: Resume

    /// Dropout (its mask RNG is training state), mirror augmentation and a multistep schedule.
    static func resumeSettings(_ name: String, iterations: Int) throws -> Settings {
        try Toy.settings(name, ["graph": Toy.dir + "/toy_dropout.fn2e", "mirror": "true", "lr_policy": "multistep",
                                "stepvalues": "6,15", "iterations": String(iterations), "eval_interval": "5",
                                "checkpoint_interval": "5"])
    }

    /// The straight 20-step run both resume tests compare with.
    static let straight: Result<String, Error> = Result {
        let s = try resumeSettings("straight", iterations: 20)
        _ = try Toy.trainer(s).train()
        return s.path("output")
    }

    func testResumeAfterTenStepsIsBitwiseExact() throws {
        let straight = try Self.straight.get()
        let first = try Self.resumeSettings("resumed", iterations: 10)
        _ = try Toy.trainer(first).train()
        let out = first.path("output")
        XCTAssertEqual(try SafeTensors.read(path: out + "/checkpoint.safetensors").metadata["step"], "10")

        var more = first
        try more.set("iterations", "20", origin: "test")
        let rest = try Toy.trainer(more)
        _ = try rest.train(resume: true)
        XCTAssertEqual(rest.step, 20)
        try Toy.assertSameTensors(straight + "/model.safetensors", out + "/model.safetensors")
        try Toy.assertSameTensors(straight + "/checkpoint.safetensors", out + "/checkpoint.safetensors")
        XCTAssertEqual(Toy.text(straight + "/metrics.jsonl"), Toy.text(out + "/metrics.jsonl"))
    }

    func testInterruptWritesCheckpointAndResumesExactly() throws {
        let straight = try Self.straight.get()
        let s = try Self.resumeSettings("interrupted", iterations: 20)
        let t = try Toy.trainer(s)
        XCTAssertThrowsError(try t.train(shouldStop: { t.step >= 7 })) { error in
            XCTAssertEqual((error as? Trainer.Interrupted)?.step, 7, "\(error)")
            XCTAssertEqual("\(error)", "interrupted at step 7; checkpoint written")
        }
        let out = s.path("output")
        XCTAssertEqual(try SafeTensors.read(path: out + "/checkpoint.safetensors").metadata["step"], "7")

        let again = try Toy.trainer(s)
        _ = try again.train(resume: true)
        try Toy.assertSameTensors(straight + "/model.safetensors", out + "/model.safetensors")
        XCTAssertEqual(Toy.text(straight + "/metrics.jsonl"), Toy.text(out + "/metrics.jsonl"))
    }

    func testResumeWithoutCheckpointOrWithAnotherSeedFails() throws {
        let s = try Toy.settings("no-checkpoint")
        XCTAssertThrowsError(try Toy.trainer(s).train(resume: true)) { XCTAssert("\($0)".contains("no checkpoint at"), "\($0)") }
        let other = try Toy.settings("no-checkpoint", ["seed": "8"])
        let straight = try Self.straight.get()
        try FileManager.default.createDirectory(atPath: other.path("output"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: straight + "/checkpoint.safetensors", toPath: other.path("output") + "/checkpoint.safetensors")
        XCTAssertThrowsError(try Toy.trainer(other).train(resume: true)) { XCTAssert("\($0)".contains("seed 7, this run has seed 8"), "\($0)") }
    }

    // MARK: Non-finite values

    func testAbsurdLearningRateStopsAndKeepsTheCheckpoint() throws {
        let s = try Toy.settings("diverge", ["lr": "1e6", "iterations": "200", "checkpoint_interval": "1"])
        var message = ""
        XCTAssertThrowsError(try Toy.trainer(s).train()) { message = "\($0)" }
        print("lr 1e6: \(message)")
        // "step N: non-finite value in %NAME ..."
        let words = message.split(separator: " ")
        XCTAssert(message.hasPrefix("step ") && words.count > 5 && words[2...4].joined(separator: " ") == "non-finite value in", message)
        let step = try XCTUnwrap(Int(words[1].dropLast()), message)
        XCTAssertGreaterThan(step, 1)
        XCTAssert(["loss", "conv.weight", "conv.bias", "fc.weight", "fc.bias"].contains { words[5].trimmingCharacters(in: .punctuationCharacters).hasSuffix($0) }, message)
        let (tensors, meta) = try SafeTensors.read(path: s.path("output") + "/checkpoint.safetensors")
        XCTAssertEqual(meta["step"], String(step - 1), "the checkpoint holds the last good step")
        for name in ["conv.weight", "conv.bias", "fc.weight", "fc.bias"] {
            let t = try XCTUnwrap(tensors[name])
            XCTAssert(t.data.allSatisfy(\.isFinite), "checkpointed '\(name)' is not finite")
        }
    }

    // MARK: Solvers

    struct Snapshot {
        var weights: [String: [Float]] = [:]
        var gradients: [String: [Float]] = [:]
        var moments: [String: [Float]] = [:]
        var seconds: [String: [Float]] = [:]
        var mults: [String: (lr: Double, decay: Double)] = [:]
    }

    static func snapshot(_ t: Trainer) -> Snapshot {
        var s = Snapshot()
        for slot in t.solver.slots {
            s.weights[slot.param.name] = Array(UnsafeBufferPointer(start: slot.weights, count: slot.count))
            s.gradients[slot.param.name] = Array(UnsafeBufferPointer(start: slot.gradient, count: slot.count))
            (s.moments[slot.param.name], s.seconds[slot.param.name]) = (slot.m, slot.v)
            s.mults[slot.param.name] = (slot.param.lrMult, slot.param.decayMult)
        }
        return s
    }

    /// Trains the linear graph for `steps` and returns the state before and after.
    static func solverRun(_ name: String, steps: Int, _ extra: [String: String]) throws -> (Snapshot, Snapshot) {
        let s = try Toy.settings(name, ["graph": Toy.dir + "/toy_linear.fn2e", "iterations": String(steps),
                                        "eval_interval": "1000"].merging(extra) { $1 })
        let t = try Toy.trainer(s)
        let before = snapshot(t)
        _ = try t.train()
        return (before, snapshot(t))
    }

    func testSGDStepsMatchCaffe() throws {
        let (lr, mom, wd) = (0.1, 0.9, 0.01)
        let opts = ["solver": "sgd", "lr": "\(lr)", "momentum": "\(mom)", "weight_decay": "\(wd)"]
        let (w0, one) = try Self.solverRun("sgd-1", steps: 1, opts)
        let (_, two) = try Self.solverRun("sgd-2", steps: 2, opts)
        XCTAssertEqual(one.mults["fc.weight"]?.lr, 0.5)
        XCTAssertEqual(one.mults["fc.bias"]?.decay, 0)
        for name in ["fc.weight", "fc.bias"] {
            let (lm, dm) = one.mults[name]!
            let (w, g1, v1, w1) = (w0.weights[name]!, one.gradients[name]!, one.moments[name]!, one.weights[name]!)
            let (g2, v2, w2) = (two.gradients[name]!, two.moments[name]!, two.weights[name]!)
            XCTAssert(g1.contains { $0 != 0 }, "no gradient for \(name)")
            for i in w.indices {
                // Caffe: v = momentum·v + lr·lr_mult·(g + weight_decay·decay_mult·w); w -= v.
                let e1 = lr * lm * (Double(g1[i]) + wd * dm * Double(w[i]))
                XCTAssertEqual(Double(v1[i]), e1, accuracy: 1e-7 + 1e-5 * abs(e1), "\(name)[\(i)] step 1")
                XCTAssertEqual(Double(w1[i]), Double(w[i]) - e1, accuracy: 1e-7 + 1e-5 * abs(Double(w[i])))
                let e2 = mom * Double(v1[i]) + lr * lm * (Double(g2[i]) + wd * dm * Double(w1[i]))
                XCTAssertEqual(Double(v2[i]), e2, accuracy: 1e-7 + 1e-5 * abs(e2), "\(name)[\(i)] step 2")
                XCTAssertEqual(Double(w2[i]), Double(w1[i]) - e2, accuracy: 1e-7 + 1e-5 * abs(Double(w1[i])))
            }
        }
    }

    func testAdamStepMatchesTheFormulaWithCaffesBiasCorrection() throws {
        let (lr, eps, wd) = (0.01, 1e-8, 0.01)
        // The solver holds its hyperparameters as Float; 1 - Float(0.999) is not 0.001.
        let (b1, b2) = (Double(Float(0.9)), Double(Float(0.999)))
        let (w0, one) = try Self.solverRun("adam-1", steps: 1, ["solver": "adam", "lr": "\(lr)", "beta1": "0.9", "beta2": "0.999",
                                                                 "epsilon": "\(eps)", "weight_decay": "\(wd)"])
        for name in ["fc.weight", "fc.bias"] {
            let (lm, dm) = one.mults[name]!
            let (w, g, m, v, w1) = (w0.weights[name]!, one.gradients[name]!, one.moments[name]!, one.seconds[name]!, one.weights[name]!)
            for i in w.indices {
                let gi = Double(g[i]) + wd * dm * Double(w[i])
                let (em, ev) = ((1 - b1) * gi, (1 - b2) * gi * gi)
                XCTAssertEqual(Double(m[i]), em, accuracy: 1e-9 + 1e-5 * abs(em))
                XCTAssertEqual(Double(v[i]), ev, accuracy: 1e-12 + 1e-5 * abs(ev))
                // Caffe's AdamSolver: lr_t = lr·sqrt(1 - β2^t)/(1 - β1^t); w -= lr_t·m/(sqrt(v) + ε).
                let expected = Double(w[i]) - lr * lm * ((1 - b2).squareRoot() / (1 - b1)) * em / (ev.squareRoot() + eps)
                XCTAssertEqual(Double(w1[i]), expected, accuracy: 1e-7 + 1e-5 * abs(expected), "\(name)[\(i)]")
            }
        }
    }

    func testLearningRatePolicies() {
        func policy(_ p: String, warmup: Int = 0) -> LRPolicy {
            LRPolicy(base: 0.1, policy: p, gamma: 0.5, stepsize: 10, stepvalues: [5, 12], power: 2, maxIter: 20, warmup: warmup)
        }
        func check(_ p: LRPolicy, _ expected: [Int: Double], line: UInt = #line) {
            for (it, v) in expected.sorted(by: { $0.key < $1.key }) {
                XCTAssertEqual(p.rate(at: it), v, accuracy: 1e-12, "\(p.policy) at \(it)", line: line)
            }
        }
        check(policy("fixed"), [0: 0.1, 7: 0.1, 100: 0.1])
        check(policy("step"), [0: 0.1, 9: 0.1, 10: 0.05, 25: 0.025])
        check(policy("multistep"), [0: 0.1, 4: 0.1, 5: 0.05, 11: 0.05, 12: 0.025, 19: 0.025])
        check(policy("poly"), [0: 0.1, 10: 0.025, 15: 0.1 * 0.0625, 20: 0])
        check(policy("cosine"), [0: 0.1, 10: 0.05, 5: 0.05 * (1 + cos(Double.pi / 4)), 20: 0, 30: 0])
        // Linear warm-up multiplies the first iterations by (iter + 1) / warmup.
        check(policy("fixed", warmup: 4), [0: 0.025, 1: 0.05, 3: 0.1, 4: 0.1])
        check(policy("step", warmup: 4), [0: 0.025, 2: 0.075, 10: 0.05])
    }
}
