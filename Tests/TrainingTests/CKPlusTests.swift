import Foundation
import Training
import XCTest

/// A short from-scratch run on CK+ (needs FN2E_DATA): Graphs/ckplus_scratch.train, fold 0 of 10.
final class CKPlusTests: XCTestCase {
    static let epochs = 6
    /// Held-out fold 0 accuracy after `epochs` epochs; the majority class (surprise) is about 25%.
    static let minAccuracy = 0.40

    func testShortRunLearnsWellAboveChance() throws {
        _ = try Toy.dataPath("ckplus48/index.csv")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        var s = try Settings(file: root + "/Graphs/ckplus_scratch.train")
        try s.override(["epochs=\(Self.epochs)", "output=" + Toy.output("ckplus")])
        let t = try Toy.trainer(s)
        XCTAssertEqual(t.data.samples.count, 981)
        let started = Date()
        let evals = try t.train()
        let test = try XCTUnwrap(evals.first { $0.split == "test" })
        print(String(format: "CK+ from scratch, fold 0 of 10, %d epochs (%d steps) in %.1f s: ", Self.epochs, t.totalSteps,
                     Date().timeIntervalSince(started)) + test.summary)
        let majority = Double(test.confusion.map { $0.reduce(0, +) }.max() ?? 0) / Double(max(test.count, 1))
        print(String(format: "majority class of the fold: %.1f%%", 100 * majority))
        XCTAssertGreaterThan(test.accuracy, Self.minAccuracy, test.summary)
        XCTAssertGreaterThan(test.accuracy, majority + 0.1, test.summary)
    }
}
