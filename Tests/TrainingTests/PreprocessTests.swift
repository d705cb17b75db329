import Foundation
import Tensors
@testable import Training
import XCTest

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/Equalize").path

/// `equalize = hist` against OpenCV's equalizeHist (Tests/Fixtures/Equalize, written by
/// Tools/equalize/fixture.sh), and the training augmentations: what each does to a known image, and
/// that they are drawn the same for the same (seed, sample, epoch).
final class PreprocessTests: XCTestCase {
    struct Case: Decodable { var name: String; var height: Int; var width: Int; var equalized_again_changes_pixels: Int }
    struct Manifest: Decodable { var opencv: String; var images: [Case] }

    func testEqualizeIsOpenCVsEqualizeHist() throws {
        let m = try JSONDecoder().decode(Manifest.self, from: try Data(contentsOf: URL(fileURLWithPath: fixtures + "/manifest.json")))
        XCTAssertEqual(m.images.count, 6)
        for c in m.images {
            let input = try Images.load(path: "\(fixtures)/\(c.name).png", channels: 1)
            let expected = try Images.load(path: "\(fixtures)/\(c.name).equalized.png", channels: 1)
            XCTAssertEqual(input.shape, [1, c.height, c.width])
            let out = Images.equalizeHistogram(input)
            XCTAssertEqual(out.data, expected.data, "\(c.name): not OpenCV \(m.opencv)'s output")
            // On equalized input: OpenCV's equalizeHist is not exactly idempotent (levels merged into
            // the darkest one change its scale); ours changes the pixels OpenCV's does, by one level at most.
            let again = Images.equalizeHistogram(out)
            XCTAssertEqual(zip(again.data, out.data).filter { $0 != $1 }.count, c.equalized_again_changes_pixels, c.name)
            XCTAssertLessThanOrEqual(zip(again.data, out.data).map { abs($0 - $1) }.max()!, 1, c.name)
        }
        // A colour image: each channel on its own.
        let a = try Images.load(path: "\(fixtures)/noise.png", channels: 1), b = try Images.load(path: "\(fixtures)/lowcontrast.png", channels: 1)
        let rgb = Images.equalizeHistogram(Tensor(shape: [3, 48, 48], data: a.data + b.data + a.data))
        XCTAssertEqual(rgb.data, Images.equalizeHistogram(a).data + Images.equalizeHistogram(b).data + Images.equalizeHistogram(a).data)
    }

    /// Training and evaluation read equalized images, settings.txt records it, and `predict` (files,
    /// or crops as `--detect` cuts them) equalizes the same way.
    func testEqualizeWhereverImagesAreRead() throws {
        let s = try Toy.settings("equalize", ["equalize": "hist", "iterations": "2", "eval_interval": "2"])
        let t = try Toy.trainer(s)
        let raw = try Images.load(path: t.data.samples[5].path, channels: 1)
        XCTAssertEqual(t.images[5].data, Images.equalizeHistogram(raw).data)
        _ = try t.train()
        XCTAssert(Toy.text(s.path("output") + "/settings.txt").contains("equalize = hist\n"))
        let p = try Predictor(runDirectory: s.path("output"))
        XCTAssertTrue(p.pre.equalize)
        let fromFile = try p.probabilities([t.data.samples[5].path]), fromCrop = try p.probabilities(crops: [raw])
        XCTAssertEqual(fromFile, fromCrop)
        XCTAssertNotEqual(p.pre.stored(raw).data, raw.data, "equalizing changes what the model sees")
    }

    // MARK: Augmentation

    /// An 8x8 image whose pixel (y, x) is 10 x + y: each augmentation's effect is known.
    let ramp = Tensor(shape: [1, 8, 8], data: (0..<64).map { Float(10 * ($0 % 8) + $0 / 8) })
    let pre = Preprocess(channels: 1, inputHeight: 8, inputWidth: 8)

    func out(_ a: Preprocess.Augmentation, _ p: Preprocess? = nil) -> [Float] {
        var buf = [Float](repeating: 0, count: 64)
        buf.withUnsafeMutableBufferPointer { (p ?? pre).apply(ramp, into: $0.baseAddress!, a) }
        return buf
    }

    func assertClose(_ a: [Float], _ b: [Float], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(worst, 1e-3, "\(message): worst difference \(worst)", file: file, line: line)
    }

    func testAugmentationsOnAKnownImage() {
        let px = { (y: Int, x: Int) in Float(10 * x + y) }
        let grid = { (f: (Int, Int) -> Float) in (0..<64).map { f($0 / 8, $0 % 8) } }
        assertClose(out(.init(y0: 0, x0: 0, flip: false)), ramp.data, "identity")
        assertClose(out(.init(y0: 0, x0: 0, flip: true)), grid { px($0, 7 - $1) }, "mirror")
        // 90 degrees clockwise as seen: output (y, x) shows the image's (7 - x, y).
        assertClose(out(.init(y0: 0, x0: 0, flip: false, angle: 90)), grid { px(7 - $1, $0) }, "rotation by 90 degrees")
        // Scale 2 about the centre 3.5: bilinear sampling of a linear ramp is exact.
        assertClose(out(.init(y0: 0, x0: 0, flip: false, zoom: 2)), grid { y, x in
            10 * (3.5 + (Float(x) - 3.5) / 2) + 3.5 + (Float(y) - 3.5) / 2 }, "scale 2")
        // A crop reaching 2 rows above and 1 column right of the image repeats the edge pixels.
        assertClose(out(.init(y0: -2, x0: 1, flip: false)), grid { y, x in px(max(y - 2, 0), min(x + 1, 7)) }, "padded crop")
        assertClose(out(.init(y0: 0, x0: 0, flip: false, brightness: 20, contrast: 1.5)),
                    grid { min(255, max(0, (px($0, $1) - 127.5) * 1.5 + 127.5 + 20)) }, "brightness and contrast")
        var normalized = pre
        (normalized.mean, normalized.scale) = (50, 0.5)
        assertClose(out(.init(y0: 0, x0: 0, flip: false, angle: 90), normalized), grid { (px(7 - $1, $0) - 50) * 0.5 }, "mean and scale after")
    }

    func testAugmentationDraws() {
        var p = Preprocess(channels: 1, inputHeight: 8, inputWidth: 8, randomCrop: true, mirror: true)
        (p.cropPad, p.rotate, p.zoom, p.brightness, p.contrast) = (2, 10, 0.1, 20, 0.2)
        var plain = p
        (plain.rotate, plain.zoom, plain.brightness, plain.contrast) = (0, 0, 0, 0)
        var seen = Set<Int>()
        for seed in 0..<500 as Range<UInt64> {
            var r1 = Xoshiro256(seed: seed), r2 = Xoshiro256(seed: seed), r3 = Xoshiro256(seed: seed)
            let a = p.augmentation(height: 10, width: 10, train: true, rng: &r1)
            XCTAssertEqual(a, p.augmentation(height: 10, width: 10, train: true, rng: &r2), "the same draws from the same seed")
            let b = plain.augmentation(height: 10, width: 10, train: true, rng: &r3)
            XCTAssertEqual([a.y0, a.x0], [b.y0, b.x0], "crop and mirror are drawn first, as without the others")
            XCTAssertEqual(a.flip, b.flip)
            XCTAssert((-2...4).contains(a.y0) && (-2...4).contains(a.x0), "\(a)")
            XCTAssert(abs(a.angle) <= 10 && abs(a.zoom - 1) <= 0.1 && abs(a.brightness) <= 20 && abs(a.contrast - 1) <= 0.2, "\(a)")
            seen.insert(a.y0)
        }
        XCTAssertEqual(seen, Set(-2...4), "every offset of the padded range is drawn")
        var r = Xoshiro256(seed: 1)
        XCTAssertEqual(p.augmentation(height: 10, width: 10, train: false, rng: &r), .init(y0: 1, x0: 1, flip: false), "evaluation: the centre, as is")
        XCTAssertNil(p.everyAugmentation(height: 10, width: 10))
        XCTAssertEqual(plain.augmentation(height: 10, width: 10, train: false, rng: &r).description, "1:1:false", "the key of a crop alone is unchanged")
    }

    /// The trainer's batches: the same for the same (seed, sample position), so a resumed run or
    /// another rank draws the same; another epoch draws anew; a frozen part is not cached when the
    /// augmentations are continuous.
    func testTrainerAugmentsDeterministically() throws {
        let extra = ["crop_mode": "random", "crop_pad": "2", "mirror": "true", "rotate": "10", "zoom": "0.1", "brightness": "20",
                     "contrast": "0.2", "resize": "18x18", "graph": Toy.dir + "/toy.fn2e"]
        let a = try Toy.trainer(try Toy.settings("augment-a", extra)), b = try Toy.trainer(try Toy.settings("augment-b", extra))
        XCTAssertEqual(a.preparedImages(step: 3), b.preparedImages(step: 3))
        XCTAssertEqual(a.prepare(step: 3).keys, b.prepare(step: 3).keys)
        XCTAssertNotEqual(a.preparedImages(step: 3), a.preparedImages(step: 3 + a.stepsPerEpoch))
        let c = try Toy.trainer(try Toy.settings("augment-c", extra.merging(["seed": "8"]) { $1 }))
        XCTAssertNotEqual(a.prepare(step: 3).keys, c.prepare(step: 3).keys)
        XCTAssertThrowsError(try Toy.trainer(try Toy.settings("augment-d", ["crop_pad": "2"]))) { XCTAssert("\($0)".contains("crop_pad = 2 needs crop_mode = random"), "\($0)") }

        let path = Toy.dir + "/frozen_head.fn2e"
        try TrainerPartsTests.frozenGraph.write(toFile: path, atomically: true, encoding: .utf8)
        let frozen = try Toy.trainer(try Toy.settings("augment-frozen", ["graph": path, "rotate": "5"]))
        XCTAssertNil(frozen.compiled.cut)
        XCTAssert(frozen.compileReport.contains("frozen part run in every step"), frozen.compileReport)
        XCTAssertNotNil(try Toy.trainer(try Toy.settings("augment-frozen2", ["graph": path, "mirror": "true"])).compiled.cut)
    }

    // MARK: Test-time views

    func testViewsOfAnImage() throws {
        var p = Preprocess(channels: 1, inputHeight: 8, inputWidth: 8, randomCrop: true)
        p.cropPad = 2
        let centre = Preprocess.Augmentation(y0: 1, x0: 1, flip: false)
        var r = Xoshiro256(seed: 3)
        XCTAssertEqual(p.views(height: 10, width: 10), [p.augmentation(height: 10, width: 10, train: false, rng: &r)])
        XCTAssertEqual(p.views(height: 10, width: 10), [centre])
        p.testViews = 2
        XCTAssertEqual(p.views(height: 10, width: 10), [centre, .init(y0: 1, x0: 1, flip: true)])
        p.testViews = 10
        let ten = p.views(height: 10, width: 12)
        XCTAssertEqual(ten.count, 10)
        XCTAssertEqual(Array(ten.prefix(2)), [.init(y0: 1, x0: 2, flip: false), .init(y0: 1, x0: 2, flip: true)], "the centre first")
        XCTAssertEqual(Set(ten.map { "\($0.y0),\($0.x0)" }), ["1,2", "-2,-2", "-2,6", "4,-2", "4,6"], "the corners as far as random crops reach")
        XCTAssertEqual(Set(ten), Set(ten.map { Preprocess.Augmentation(y0: $0.y0, x0: $0.x0, flip: !$0.flip) }), "each plain and mirrored")

        XCTAssertThrowsError(try Toy.settings("views-bad", ["test_views": "3"])) { XCTAssert("\($0)".contains("test_views"), "\($0)") }
        XCTAssertThrowsError(try Toy.trainer(try Toy.settings("views-centre", ["test_views": "10"]))) {
            XCTAssert("\($0)".contains("test_views = 10 needs crop_mode = random"), "\($0)")
        }
    }

    /// Evaluation (`eval`) and prediction average the probabilities of exactly the views: each view
    /// made by hand as an image whose centre crop it is, classified alone, then averaged.
    func testViewsAreAveraged() throws {
        let s = try Toy.settings("views", ["crop_mode": "random", "crop_pad": "2", "mirror": "true", "resize": "18x18", "iterations": "30", "eval_interval": "30"])
        let t = try Toy.trainer(s)
        _ = try t.train()
        let run = s.path("output")
        let one = try Predictor(runDirectory: run)
        let test = Array(t.splits.test.prefix(5))
        for views in [2, 10] {
            let many = try Predictor(runDirectory: run, overrides: ["test_views=\(views)"])
            XCTAssertEqual(many.pre.testViews, views)
            for i in test {
                let img = t.images[i]
                let (h, w) = (img.shape[1], img.shape[2])
                let byHand = try many.pre.views(height: h, width: w).map { v -> [Double] in
                    // An image whose centre crop (offset 1, 1) is the view: shifted, edges repeated, mirrored.
                    let data = (0..<h * w).map { k -> Float in
                        let (y, x) = (k / w, v.flip ? w - 1 - k % w : k % w)
                        return img.data[min(max(y + v.y0 - 1, 0), h - 1) * w + min(max(x + v.x0 - 1, 0), w - 1)]
                    }
                    return try one.probabilities(stored: [Tensor(shape: [1, h, w], data: data)])[0]
                }
                let mean = byHand.dropFirst().reduce(byHand[0]) { zip($0, $1).map(+) }.map { $0 / Double(views) }
                let averaged = try many.probabilities(stored: [img])[0]
                XCTAssertLessThan(zip(mean, averaged).map { abs($0 - $1) }.max()!, 1e-6, "\(views) views of image \(i)")
                XCTAssertNotEqual(averaged, try one.probabilities(stored: [img])[0], "the views change the answer")
            }
            // `eval` with the override: the trainer's evaluation is the predictor's averages, scored.
            var settings = try Settings(file: run + "/settings.txt")
            try settings.override(["test_views=\(views)"])
            let evaluator = try Toy.trainer(settings)
            try evaluator.loadTrained(run + "/model.safetensors")
            let e = try evaluator.evaluate(t.splits.test, split: "test")
            var expected = Evaluation(split: "test", classes: 3)
            expected.add(probabilities: try many.probabilities(stored: t.splits.test.map { t.images[$0] }), labels: t.splits.test.map { t.data.samples[$0].label })
            XCTAssertEqual(e.confusion, expected.confusion)
            XCTAssertEqual(e.loss, expected.loss, accuracy: 1e-6 * Double(e.count))
        }
    }
}
