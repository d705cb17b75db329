import Driver
import Foundation
import IR
import Runtime
import Tensors
@testable import Training
import XCTest

/// A flipped bit in each kind of file fn2e writes and reads back: the checkpoint falls back to the
/// previous one (and the run ends where an undisturbed one does), the model and imported weights
/// are errors naming the tensor, a frozen-store entry is discarded and computed again.
final class IntegrityTests: XCTestCase {
    /// Flips the lowest bit of the byte in the middle of a safetensors file's data.
    static func flipMiddle(_ path: String) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let start = 8 + Int(bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        bytes[start + (bytes.count - start) / 2] ^= 1
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    static func settings(_ name: String, iterations: Int) throws -> Settings {
        try Toy.settings(name, ["iterations": String(iterations), "eval_interval": "5", "checkpoint_interval": "5"])
    }

    func testDamagedCheckpointFallsBackToThePreviousOne() throws {
        let straight = try Self.settings("integrity-straight", iterations: 15)
        _ = try Toy.trainer(straight).train()
        let s = try Self.settings("integrity-damaged", iterations: 10)
        _ = try Toy.trainer(s).train()
        let out = s.path("output")
        XCTAssertEqual(try SafeTensors.read(path: out + "/checkpoint.prev.safetensors").metadata["step"], "5")
        try Self.flipMiddle(out + "/checkpoint.safetensors")
        var more = s
        try more.set("iterations", "15", origin: "test")
        var logs: [String] = []
        let resumed = try Trainer(settings: more, log: { logs.append($0) })
        _ = try resumed.train(resume: true)
        let all = logs.joined(separator: "\n")
        XCTAssert(all.contains("warning: the latest checkpoint \(out)/checkpoint.safetensors cannot be used (\(out)/checkpoint.safetensors: error: tensor '"), all)
        XCTAssert(all.contains("checksum mismatch"), all)
        XCTAssert(all.contains("resumed from \(out)/checkpoint.prev.safetensors at step 5"), all)
        try Toy.assertSameTensors(straight.path("output") + "/model.safetensors", out + "/model.safetensors")
        XCTAssertEqual(Toy.text(straight.path("output") + "/metrics.jsonl"), Toy.text(out + "/metrics.jsonl"))

        // Both damaged: an error naming both files, nothing trained.
        try Self.flipMiddle(out + "/checkpoint.safetensors")
        try Self.flipMiddle(out + "/checkpoint.prev.safetensors")
        XCTAssertThrowsError(try Toy.trainer(more).train(resume: true)) { error in
            let text = "\(error)"
            XCTAssert(text.contains("\(out)/checkpoint.safetensors: error: tensor '") && text.contains("the previous checkpoint cannot be used either: \(out)/checkpoint.prev.safetensors: error: tensor '"), text)
        }
    }

    func testDamagedModelIsAnErrorForPredictionAndForTheNextStage() throws {
        let s = try Self.settings("integrity-model", iterations: 5)
        _ = try Toy.trainer(s).train()
        let model = s.path("output") + "/model.safetensors"
        XCTAssertNoThrow(try Predictor(runDirectory: s.path("output")))
        try Self.flipMiddle(model)
        XCTAssertThrowsError(try Predictor(runDirectory: s.path("output"))) { XCTAssert("\($0)".hasPrefix("\(model): error: tensor '") && "\($0)".contains("checksum mismatch"), "\($0)") }
        // As the teacher or initial weights of another run.
        let next = try Toy.settings("integrity-next", ["weights": model, "iterations": "1"])
        XCTAssertThrowsError(try Toy.trainer(next)) { XCTAssert("\($0)".contains("\(model): error: tensor '"), "\($0)") }
    }

    /// Imported weights (written by the importers' streaming writer) are checked like the rest.
    func testDamagedImportedWeightsAreAnError() throws {
        let dir = Toy.output("integrity-import")
        let text = "fn2e 1\n\ngraph @g(%x: f32[N,4]) {\n  param %w: f32[3,4] = zeros\n  %y = f32[N,3] linear(%x, %w)\n  return %y\n}\n"
        let weights = [("w", Tensor(shape: [3, 4], seed: 5))]
        _ = try Importing.write(text: text, weights: weights, source: "test", directory: dir, name: "net")
        let path = dir + "/net.safetensors"
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), try SafeTensors.serialize(weights, metadata: ["source": "test"]))
        XCTAssertTrue(try SafeTensors.verify(path: path).checksummed)
        let g = try Loader.load(text: text, file: "g.fn2e").graphs["g"]!
        let ex = try CompiledGraph(graph: g).executor(batch: 1)
        XCTAssertNoThrow(try WeightLoader.load(path, into: ex))
        try Self.flipMiddle(path)
        XCTAssertThrowsError(try WeightLoader.load(path, into: ex)) { XCTAssert("\($0)".hasPrefix("\(path): error: tensor 'w': checksum mismatch"), "\($0)") }
    }

    /// A damaged store entry is discarded with a warning and its rows computed again, the same as
    /// an undisturbed run's.
    func testDamagedFrozenStoreEntryIsRecomputed() throws {
        _ = try TrainerPartsTests.step(cacheFrozen: false)  // writes the graph
        let dir = Toy.dir + "/store-integrity-\(UUID().uuidString)"
        let extra = ["graph": Toy.dir + "/frozen_head.fn2e", "iterations": "4", "frozen_store": dir]
        _ = try Toy.trainer(try Toy.settings("store-int-1", extra)).train()
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".safetensors") }
        XCTAssertFalse(entries.isEmpty)
        for e in entries { try Self.flipMiddle(dir + "/" + e) }
        var logs: [String] = []
        let second = try Trainer(settings: try Toy.settings("store-int-2", extra), log: { logs.append($0) })
        _ = try second.train()
        XCTAssertGreaterThan(second.cacheStats.computed, 0, "nothing read from the damaged store")
        let all = logs.joined(separator: "\n")
        XCTAssert(all.contains("warning: frozen store: ") && all.contains("checksum mismatch") && all.contains("its values are computed again"), all)
        for e in entries { XCTAssertTrue(try SafeTensors.verify(path: dir + "/" + e).checksummed, "\(e) written again") }
        let plain = try Toy.trainer(Toy.settings("store-int-plain", extra.merging(["frozen_store": ""]) { $1 }))
        _ = try plain.train()
        try Toy.assertSameTensors(second.outputDir + "/model.safetensors", plain.outputDir + "/model.safetensors")
    }
}
