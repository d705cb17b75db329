import Foundation
import Tensors
import Training
import XCTest

/// Grouped splits, index and image errors, settings errors and the preprocessing pipeline.
final class DataTests: XCTestCase {
    // MARK: Grouped k-fold

    /// Checks every fold of a grouped k-fold: no group in two folds, test folds cover everything,
    /// fold sizes differ by at most the largest group, validation shares no group with train or test.
    func checkFolds(_ data: Dataset, folds: Int, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws -> [Int] {
        var seen = Set<Int>()
        var foldSizes: [Int] = []
        var groupFold: [String: Int] = [:]
        for f in 0..<folds {
            let s = try Splits(data, folds: folds, fold: f, valFraction: 0.15, seed: seed)
            XCTAssertEqual(Set(s.train).union(s.validation).union(s.test).count, data.samples.count, file: file, line: line)
            XCTAssertEqual(s.train.count + s.validation.count + s.test.count, data.samples.count, file: file, line: line)
            XCTAssertFalse(s.validation.isEmpty, file: file, line: line)
            let groups = [s.train, s.validation, s.test].map { Set($0.map { data.samples[$0].group }) }
            XCTAssert(groups[0].isDisjoint(with: groups[1]) && groups[0].isDisjoint(with: groups[2]) && groups[1].isDisjoint(with: groups[2]),
                      "fold \(f): a group is in two of train/validation/test", file: file, line: line)
            for g in groups[2] {
                if let other = groupFold[g] { XCTFail("group \(g) is in test folds \(other) and \(f)", file: file, line: line) }
                groupFold[g] = f
            }
            XCTAssert(seen.isDisjoint(with: s.test), file: file, line: line)
            seen.formUnion(s.test)
            foldSizes.append(s.test.count)
        }
        XCTAssertEqual(seen.count, data.samples.count, "the test folds together are the whole data set", file: file, line: line)
        var sizes: [String: Int] = [:]
        for s in data.samples { sizes[s.group, default: 0] += 1 }
        XCTAssertLessThanOrEqual(foldSizes.max()! - foldSizes.min()!, sizes.values.max()!,
                                 "folds \(foldSizes) differ by more than the largest group", file: file, line: line)
        return foldSizes
    }

    func testGroupedFoldsOnSkewedGroups() throws {
        // 40 groups of 1 to 30 samples.
        var samples: [Sample] = []
        for g in 0..<40 {
            for k in 0..<(1 + (g * g * 7) % 30) { samples.append(Sample(path: "g\(g)_\(k).png", label: k % 3, group: "G\(g)")) }
        }
        let data = Dataset(samples: samples, classes: ["a", "b", "c"])
        let sizes = try checkFolds(data, folds: 5, seed: 1)
        print("skewed groups: \(samples.count) samples in 5 folds of \(sizes)")
        _ = try checkFolds(data, folds: 7, seed: 2)
        XCTAssertEqual(Splits.foldOfGroup(data, folds: 5, seed: 1), Splits.foldOfGroup(data, folds: 5, seed: 1))
        XCTAssertNotEqual(Splits.foldOfGroup(data, folds: 5, seed: 1), Splits.foldOfGroup(data, folds: 5, seed: 2))
        let a = try Splits(data, folds: 5, fold: 2, valFraction: 0.2, seed: 1), b = try Splits(data, folds: 5, fold: 2, valFraction: 0.2, seed: 1)
        XCTAssertEqual([a.train, a.validation, a.test], [b.train, b.validation, b.test])
        // fold -1 trains on everything but validation.
        let all = try Splits(data, folds: 5, fold: -1, valFraction: 0, seed: 1)
        XCTAssertEqual(all.train.count, samples.count)
        XCTAssertThrowsError(try Splits(data, folds: 5, fold: 5, valFraction: 0, seed: 1)) { XCTAssert("\($0)".contains("fold 5 does not exist"), "\($0)") }
    }

    func testGroupedFoldsOnCKPlusSubjects() throws {
        let data = try Dataset.load(index: try Toy.dataPath("ckplus48/index.csv"))
        XCTAssertEqual(data.samples.count, 981)
        XCTAssertEqual(Set(data.samples.map(\.group)).count, 118)
        XCTAssertEqual(data.classes, ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"])
        let sizes = try checkFolds(data, folds: 10, seed: 1)
        print("CK+ subject-independent folds (seed 1): \(sizes)")
        XCTAssertNotEqual(Splits.foldOfGroup(data, folds: 10, seed: 1), Splits.foldOfGroup(data, folds: 10, seed: 2))
    }

    // MARK: Index and image errors

    func write(_ text: String, _ name: String) throws -> String {
        let dir = Toy.dir + "/errors"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        return dir + "/" + name
    }

    func error(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "no error" } catch { return "\(error)" }
    }

    func testIndexErrorsNameFileAndLine() throws {
        let rows = try write("path,label,subject\na.png,x,S1\nb.png,y\n", "rows.csv")
        XCTAssertEqual(error { try Dataset.load(index: rows) }, "\(rows):3:1: error: expected 3 columns, found 2")
        let header = try write("file,class\na.png,x\n", "header.csv")
        let e = error { try Dataset.load(index: header) }
        XCTAssert(e.hasPrefix("\(header):1:1: error:") && e.contains("'path' and 'label'"), e)
        let empty = try write("path,label\n,x\n", "empty.csv")
        XCTAssertEqual(error { try Dataset.load(index: empty) }, "\(empty):2:1: error: empty path or label")
        XCTAssert(error { try Dataset.load(index: Toy.dir + "/none.csv") }.contains("none.csv: error: no such file"))
        let quoted = try write("path,label,subject\n\"a,b.png\",x,S1\n", "quoted.csv")
        XCTAssertEqual(try Dataset.load(index: quoted).samples.first?.path, Toy.dir + "/errors/a,b.png")
    }

    func testMissingAndUndecodableImages() throws {
        let bad = Toy.dir + "/errors/bad.png"
        try Data("not a PNG".utf8).write(to: URL(fileURLWithPath: bad))
        let good = Toy.text(Toy.dir + "/index.csv").split(separator: "\n").dropFirst().prefix(12)
            .map { "\(Toy.dir)/\($0)" }.joined(separator: "\n")
        let missingIndex = try write("path,label,subject\n\(good)\nmissing.png,blob,S99\n", "missing.csv")
        let badIndex = try write("path,label,subject\n\(good)\nbad.png,hbar,S98\n", "bad.csv")
        let both = try write("path,label,subject\nbad.png,hbar,S98\n\(good)\nmissing.png,blob,S99\n", "both.csv")
        let pre = Preprocess(channels: 1, inputHeight: 16, inputWidth: 16)
        var d1 = try Dataset.load(index: missingIndex)
        let e1 = error { try pre.decode(&d1, skipBad: false) }
        XCTAssert(e1.contains(Toy.dir + "/errors/missing.png"), e1)
        var d2 = try Dataset.load(index: badIndex)
        let e2 = error { try pre.decode(&d2, skipBad: false) }
        XCTAssert(e2.contains(bad), e2)

        let t = try Toy.trainer(try Toy.settings("skip-bad", ["data": both, "skip_bad": "true", "folds": "2", "iterations": "1"]))
        XCTAssertEqual(t.data.skipped, 2)
        XCTAssertEqual(t.data.samples.count, 12)
        XCTAssert(t.dataReport.contains("12 images, 3 classes (blob, hbar, vbar), 2 unreadable images skipped"), t.dataReport)
        let e3 = error { try Toy.trainer(try Toy.settings("no-skip", ["data": both, "folds": "2"])) }
        XCTAssert(e3.contains(bad), e3)
    }

    // MARK: Settings errors

    func testSettingsErrorsNameFileLineAndColumn() throws {
        let unknown = try write("lr = 0.1\n  bogus = 3\n", "unknown.train")
        XCTAssert(error { try Settings(file: unknown) }.hasPrefix("\(unknown):2:3: error: unknown setting 'bogus'"))
        let value = try write("# comment\nlr = fast\n", "value.train")
        XCTAssertEqual(error { try Settings(file: value) }, "\(value):2:1: error: setting 'lr' expects a number, found 'fast'")
        let noEq = try write("lr 0.1\n", "noeq.train")
        XCTAssertEqual(error { try Settings(file: noEq) }, "\(noEq):1:1: error: expected 'key = value'")
        let unset = try write("data = ${FN2E_TEST_SURELY_UNSET}/index.csv\n", "unset.train")
        XCTAssertEqual(error { try Settings(file: unset) }, "\(unset):1:1: error: environment variable FN2E_TEST_SURELY_UNSET is not set")
        let word = try write("solver = rmsprop\n", "word.train")
        XCTAssertEqual(error { try Settings(file: word) }, "\(word):1:1: error: setting 'solver' expects one of sgd, adam, found 'rmsprop'")

        // Good files: comments, `${HOME}` expansion, overrides and where each value came from.
        let good = try write("lr = 0.5  # half\nbatch = 8\ndata = ${HOME}/x.csv\n", "good.train")
        var s = try Settings(file: good)
        try s.override(["batch=4", "mirror=true"])
        XCTAssertEqual(s.double("lr"), 0.5)
        XCTAssertEqual(s.int("batch"), 4)
        XCTAssertTrue(s.bool("mirror"))
        XCTAssertEqual(s.string("data"), (ProcessInfo.processInfo.environment["HOME"] ?? "") + "/x.csv")
        XCTAssertEqual(s.origins["lr"], "\(good):1")
        XCTAssertEqual(s.origins["batch"], "--set")
        XCTAssert(error { try s.override(["batch"]) }.contains("--set expects key=value"))
        XCTAssert(error { try s.override(["batch=many"]) }.contains("setting 'batch' expects an integer, found 'many'"))
        // The saved settings read back to the same values.
        let saved = try write(s.fileText, "saved.train")
        let back = try Settings(file: saved)
        for k in Settings.keys where !["graph", "data", "root", "output", "weights"].contains(k.name) {
            XCTAssertEqual(back.string(k.name), s.string(k.name), k.name)
        }
    }

    // MARK: Preprocessing

    /// `[1, h, w]` with pixel (y, x) = y·w + x, so every value says where it came from.
    func ramp(_ h: Int, _ w: Int) -> Tensor { Tensor(shape: [1, h, w], data: (0..<(h * w)).map(Float.init)) }

    func apply(_ p: Preprocess, _ img: Tensor, train: Bool, seed: UInt64 = 0) -> [Float] {
        var out = [Float](repeating: .nan, count: p.channels * p.inputHeight * p.inputWidth)
        var rng = Xoshiro256(seed: seed)
        out.withUnsafeMutableBufferPointer { p.apply(img, into: $0.baseAddress!, train: train, rng: &rng) }
        return out
    }

    func crop(_ img: Tensor, y0: Int, x0: Int, h: Int, w: Int, flip: Bool = false) -> [Float] {
        let iw = img.shape[2]
        return (0..<h).flatMap { y in (0..<w).map { x in img.data[(y0 + y) * iw + x0 + (flip ? w - 1 - x : x)] } }
    }

    func testCenterCropMeanAndScale() {
        let img = ramp(6, 8)
        let p = Preprocess(channels: 1, inputHeight: 4, inputWidth: 4, randomCrop: true, mirror: true, mean: 10, scale: 0.5)
        // Evaluation: centre crop, no mirror, whatever the settings for training.
        XCTAssertEqual(apply(p, img, train: false), crop(img, y0: 1, x0: 2, h: 4, w: 4).map { ($0 - 10) * 0.5 })
        let plain = Preprocess(channels: 1, inputHeight: 6, inputWidth: 8)
        XCTAssertEqual(apply(plain, img, train: true), img.data)
    }

    func testRandomCropStaysInBoundsAndMirrorFlips() {
        let img = ramp(6, 8)
        let p = Preprocess(channels: 1, inputHeight: 4, inputWidth: 5, randomCrop: true)
        var origins = Set<[Int]>()
        for seed in 0..<300 {
            let out = apply(p, img, train: true, seed: UInt64(seed))
            let (y0, x0) = (Int(out[0]) / 8, Int(out[0]) % 8)
            XCTAssert((0...2).contains(y0) && (0...3).contains(x0), "crop at \(y0),\(x0) is out of bounds")
            XCTAssertEqual(out, crop(img, y0: y0, x0: x0, h: 4, w: 5))
            origins.insert([y0, x0])
        }
        XCTAssertEqual(origins.count, 3 * 4, "every crop position occurs")

        let m = Preprocess(channels: 1, inputHeight: 6, inputWidth: 8, mirror: true)
        var flips = 0
        for seed in 0..<200 {
            let out = apply(m, img, train: true, seed: UInt64(seed))
            if out == img.data { continue }
            XCTAssertEqual(out, crop(img, y0: 0, x0: 0, h: 6, w: 8, flip: true))
            flips += 1
        }
        XCTAssert((60...140).contains(flips), "\(flips) of 200 mirrored")
    }

    func testTransposeSwapsHeightAndWidth() {
        // A stored 3x4 image feeds a transposed network input of 4x3: input (y, x) = image (x, y).
        let img = ramp(3, 4)
        let p = Preprocess(channels: 1, inputHeight: 4, inputWidth: 3, transpose: true)
        let out = apply(p, img, train: false)
        for y in 0..<4 { for x in 0..<3 { XCTAssertEqual(out[y * 3 + x], img.data[x * 4 + y]) } }
        // Gray images replicated to three channels go through each plane alike.
        let rgb = Tensor(shape: [3, 3, 4], data: img.data + img.data.map { $0 + 100 } + img.data.map { $0 + 200 })
        let out3 = apply(Preprocess(channels: 3, inputHeight: 4, inputWidth: 3, transpose: true), rgb, train: false)
        XCTAssertEqual(Array(out3[12..<24]), out.map { $0 + 100 })
    }
}
