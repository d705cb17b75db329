import Foundation
import Tensors
import Training
import XCTest

/// Fixed splits by a column (`split = usage:Training/PublicTest`), the stratified validation subset
/// drawn from the training rows, and the nested, stratified training subsets of a learning curve.
final class SplitTests: XCTestCase {
    /// The toy images with a `usage` column: subjects 0-19 Training, 20-26 PublicTest, 27-29 PrivateTest.
    static let index: String = {
        let rows = Toy.text(Toy.dir + "/index.csv").split(separator: "\n").dropFirst()
        var csv = "path,label,subject,usage\n"
        for r in rows {
            let subject = Int(r.split(separator: ",")[2].dropFirst())!
            csv += "\(r),\(subject < 20 ? "Training" : subject < 27 ? "PublicTest" : "PrivateTest")\n"
        }
        let path = Toy.dir + "/usage.csv"
        try! csv.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }()

    static let split = FixedSplit(column: "usage", train: "Training", test: "PublicTest")

    /// 7 classes of very different sizes, every row Training.
    func skewed() -> Dataset {
        var samples: [Sample] = []
        for (c, n) in [400, 44, 410, 720, 500, 480, 317].enumerated() {
            for k in 0..<n { samples.append(Sample(path: "c\(c)_\(k).png", label: c, group: "c\(c)_\(k).png", part: "Training")) }
        }
        return Dataset(samples: samples, classes: (0..<7).map { "c\($0)" })
    }

    func testSplitByColumnKeepsEveryRowInOneSet() throws {
        let data = try Dataset.load(index: Self.index, select: ("usage", ["Training", "PublicTest"]))
        XCTAssertEqual(data.samples.count, 27 * 6, "PrivateTest rows are not loaded")
        let s = try Splits(data, split: Self.split, valFraction: 0.2, seed: 3)
        XCTAssertEqual(s.test.count, 7 * 6)
        XCTAssertTrue(s.test.allSatisfy { data.samples[$0].part == "PublicTest" })
        XCTAssertTrue((s.train + s.validation).allSatisfy { data.samples[$0].part == "Training" })
        XCTAssertEqual(s.train.count + s.validation.count, 20 * 6)
        XCTAssertEqual(Set(s.train + s.validation + s.test).count, s.train.count + s.validation.count + s.test.count, "no row in two sets")
        // Stratified: 40 training rows per class, 8 of each held out.
        XCTAssertEqual(data.classCounts(s.validation), [8, 8, 8])
        let again = try Splits(data, split: Self.split, valFraction: 0.2, seed: 3)
        XCTAssertEqual([again.train, again.validation, again.test], [s.train, s.validation, s.test])
        XCTAssertNotEqual(try Splits(data, split: Self.split, valFraction: 0.2, seed: 4).validation, s.validation)
    }

    func testSubsetsAreStratifiedAndNested() throws {
        let data = skewed()
        let rows = Array(data.samples.indices)
        var previous: Set<Int> = []
        for size in [7, 50, 500, 1000, 2000, 2871] {
            let sub = try Splits.subset(rows, of: data, size: size, seed: 1)
            XCTAssertEqual(sub.count, size)
            XCTAssertTrue(previous.isSubset(of: sub), "the subset of \(size) holds the smaller one")
            previous = Set(sub)
            let counts = data.classCounts(sub), all = data.classCounts(rows)
            for c in 0..<7 {
                let share = Double(size) * Double(all[c]) / Double(rows.count)
                XCTAssertLessThanOrEqual(abs(Double(counts[c]) - share), 1, "class \(c) of the subset of \(size): \(counts[c]), share \(share)")
            }
            XCTAssertEqual(try Splits.subset(rows, of: data, size: size, seed: 1), sub, "the same for the same seed")
        }
        XCTAssertNotEqual(try Splits.subset(rows, of: data, size: 500, seed: 2), try Splits.subset(rows, of: data, size: 500, seed: 1))
        XCTAssertThrowsError(try Splits.subset(rows, of: data, size: 2872, seed: 1)) { XCTAssert("\($0)".contains("more than the 2871"), "\($0)") }
    }

    /// Through the settings: the training subset is drawn after validation, from `split_seed`, so
    /// runs of different seeds (the methods' seeds) train on the same rows and validate on the same.
    func testSettingsDrawSplitsFromTheSplitSeed() throws {
        func splits(_ extra: [String: String]) throws -> (Dataset, Splits) {
            let s = try Toy.settings("split", ["data": Self.index, "split": "usage:Training/PublicTest", "val_fraction": "0.1"].merging(extra) { $1 })
            let data = try Dataset.load(index: s.path("data"), select: ("usage", ["Training", "PublicTest"]))
            return (data, try Splits(data, settings: s))
        }
        let (data, a) = try splits(["seed": "1", "split_seed": "5", "train_subset": "30"])
        let (_, b) = try splits(["seed": "2", "split_seed": "5", "train_subset": "30"])
        let (_, big) = try splits(["seed": "3", "split_seed": "5", "train_subset": "60"])
        XCTAssertEqual(a.train, b.train)
        XCTAssertEqual(a.validation, b.validation)
        XCTAssertEqual(data.classCounts(a.train), [10, 10, 10])
        XCTAssertTrue(Set(a.train).isSubset(of: big.train))
        XCTAssertTrue(Set(big.train).isDisjoint(with: a.validation))
        let (_, counted) = try splits(["val_fraction": "0", "val_count": "9", "train_subset": "30"])
        XCTAssertEqual(data.classCounts(counted.validation), [3, 3, 3], "val_count: stratified")
        XCTAssertEqual(counted.train.count, 30)
        XCTAssertTrue(Set(counted.train).isDisjoint(with: counted.validation))
        XCTAssertThrowsError(try splits(["val_count": "9"])) { XCTAssert("\($0)".contains("not both"), "\($0)") }
        let (_, c) = try splits(["seed": "1"])
        let (_, d) = try splits(["seed": "2"])
        XCTAssertNotEqual(c.validation, d.validation, "without split_seed the run's seed draws the validation rows")
    }

    func testTrainerWithAFixedSplit() throws {
        let t = try Toy.trainer(try Toy.settings("split-trainer", ["data": Self.index, "split": "usage:Training/PublicTest",
                                                                   "val_fraction": "0.25", "iterations": "1"]))
        XCTAssertEqual(t.splits.test.count, 42)
        XCTAssertEqual(t.splits.validation.count, 30)
        XCTAssert(t.dataReport.contains("test: 42 images"), t.dataReport)
    }

    func testSplitErrors() throws {
        func error(_ extra: [String: String]) -> String {
            do { _ = try Toy.trainer(try Toy.settings("split-errors", extra)); return "no error" } catch { return "\(error)" }
        }
        var s = Settings()
        XCTAssertThrowsError(try s.set("split", "usage:Training", origin: "test")) { XCTAssert("\($0)".contains("COLUMN:TRAIN/TEST"), "\($0)") }
        XCTAssertThrowsError(try s.set("train_subset", "-3", origin: "test")) { XCTAssert("\($0)".contains("may not be negative"), "\($0)") }
        let noColumn = error(["split": "usage:Training/PublicTest"])
        XCTAssert(noColumn.contains("index.csv:1:1: error: no column 'usage'"), noColumn)
        let noRows = error(["data": Self.index, "split": "usage:Train/PublicTest"])
        XCTAssert(noRows.contains("no sample has usage = Train") || noRows.contains("no row has usage"), noRows)
        let kfold = error(["val_count": "5"])
        XCTAssert(kfold.contains("val_count needs a fixed split"), kfold)
        let tooMany = error(["data": Self.index, "split": "usage:Training/PublicTest", "train_subset": "500"])
        XCTAssert(tooMany.contains("train_subset 500 is more than the 120 training rows"), tooMany)
    }
}
