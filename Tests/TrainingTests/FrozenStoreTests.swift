import Foundation
import IR
import Runtime
import Tensors
@testable import Training
import XCTest

/// The store of frozen results shared by runs: content keys, reading a stored intermediate value
/// instead of computing it, and a second training that reads all its frozen results.
final class FrozenStoreTests: XCTestCase {
    static let text = """
        fn2e 1
        graph @g(%x: f32[N,1,2,2]) {
          param %w: f32[1,1,1,1] = constant(2.0) {trainable=false}
          param %v: f32[1,1,1,1] = constant(3.0) {trainable=false}
          %a = f32[N,1,2,2] conv2d(%x, %w)
          %b = f32[N,1,2,2] relu(%a)
          %c = f32[N,1,2,2] conv2d(%x, %v)
          return %b, %c
        }

        """

    func graph() throws -> Graph { try Loader.load(text: Self.text, file: "g.fn2e").graphs["g"]! }

    func executor(_ g: Graph) throws -> Executor {
        try CompiledGraph(graph: g).executor(batch: 2)
    }

    func testKeysFollowContent() throws {
        let g = try graph()
        let base = FrozenStore.keys(g, inputKey: "p", param: { $0 == "w" ? [2] : [3] })
        XCTAssertEqual(base, FrozenStore.keys(g, inputKey: "p", param: { $0 == "w" ? [2] : [3] }))
        let otherW = FrozenStore.keys(g, inputKey: "p", param: { $0 == "w" ? [2.5] : [3] })
        XCTAssertNotEqual(otherW["a"], base["a"])
        XCTAssertNotEqual(otherW["b"], base["b"])
        XCTAssertEqual(otherW["c"], base["c"], "a value that does not read w keeps its key")
        let otherInput = FrozenStore.keys(g, inputKey: "q", param: { $0 == "w" ? [2] : [3] })
        XCTAssert(["a", "b", "c"].allSatisfy { otherInput[$0] != base[$0] })
        XCTAssertEqual(Set(base.values).count, base.count, "every value has its own key")
    }

    /// A value the store holds for every sample is read, not computed: planted rows of %a give
    /// relu(planted) for %b; what was computed is stored and read the second time.
    func testStoredValuesAreReadAndResultsStored() throws {
        let g = try graph()
        let ex = try executor(g)
        let dir = NSTemporaryDirectory() + "fn2e-store-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = FrozenStore(directory: dir)
        let keys = FrozenStore.keys(g, inputKey: "p", param: { ex.tensor($0)?.data })
        store.save(keys["a"]!, value: "a", rows: ["s1": [-1, 1, -2, 2], "s2": [5, -5, 6, -6]])
        store.save(keys["b"]!, value: "b", rows: ["s1": [7, 7, 7]])  // a corrupt row (3 floats, not 4): ignored
        let pixels: [String: [Float]] = ["s1": [1, 2, 3, 4], "s2": [-1, -2, -3, -4], "s3": [0, 1, 0, 1]]
        func samples(_ names: [String]) -> [FrozenStore.Sample] {
            names.map { n in FrozenStore.Sample(key: n) { p in for i in 0..<4 { p[i] = pixels[n]![i] } } }
        }
        let first = try FrozenStore.compute(g, outputs: ["b"], params: ex, imageInput: "x", inputKey: "p",
                                            samples: samples(["s1", "s2"]), batch: 2, store: store, seed: 0)
        XCTAssertEqual(first.rows.map { $0[0] }, [[0, 1, 0, 2], [5, 0, 6, 0]], "relu of the planted rows, not of 2x")
        XCTAssertEqual(first.computed, 2)
        let again = try FrozenStore.compute(g, outputs: ["b"], params: ex, imageInput: "x", inputKey: "p",
                                            samples: samples(["s2", "s1"]), batch: 2, store: store, seed: 0)
        XCTAssertEqual(again.rows.map { $0[0] }, [[5, 0, 6, 0], [0, 1, 0, 2]])
        XCTAssertEqual(again.computed, 0, "both read from the store")
        // s3 is not stored for %a: the whole graph runs from the image for it (and for all missing).
        let third = try FrozenStore.compute(g, outputs: ["b", "c"], params: ex, imageInput: "x", inputKey: "p",
                                            samples: samples(["s3"]), batch: 2, store: store, seed: 0)
        XCTAssertEqual(third.rows[0], [[0, 2, 0, 2], [0, 3, 0, 3]])
        // Without a store: computed from the images.
        let plain = try FrozenStore.compute(g, outputs: ["b"], params: ex, imageInput: "x", inputKey: "p",
                                            samples: samples(["s1", "s2"]), batch: 2, store: nil, seed: 0)
        XCTAssertEqual(plain.rows.map { $0[0] }, [[2, 4, 6, 8], [0, 0, 0, 0]])
    }

    /// Two trainings with one store: the second reads every frozen result (and its target scale's
    /// inputs) and trains to the same weights as a training without a store.
    func testSecondRunReadsEverythingAndTrainsTheSame() throws {
        _ = try TrainerPartsTests.step(cacheFrozen: false)  // writes the graph
        let dir = Toy.dir + "/store-\(UUID().uuidString)"
        let extra = ["graph": Toy.dir + "/frozen_head.fn2e", "mirror": "true", "iterations": "8", "frozen_store": dir]
        var logs: [String] = []
        let first = try Trainer(settings: try Toy.settings("store-1", extra), log: { logs.append($0) })
        _ = try first.train()
        let n = first.splits.train.count
        XCTAssertEqual(first.cacheStats.computed, 2 * n)
        let second = try Trainer(settings: try Toy.settings("store-2", extra), log: { logs.append($0) })
        _ = try second.train()
        XCTAssertEqual(second.cacheStats.computed, 0)
        XCTAssert(logs.contains { $0.contains("(\(2 * n) read from \(dir); from the stored %flat)") }, logs.joined(separator: "\n"))
        let plain = try Toy.trainer(Toy.settings("store-plain", extra.merging(["frozen_store": ""]) { $1 }))
        _ = try plain.train()
        try Toy.assertSameTensors(second.outputDir + "/model.safetensors", plain.outputDir + "/model.safetensors")
    }
}
