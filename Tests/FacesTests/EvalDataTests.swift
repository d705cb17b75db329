// `fn2e-run eval RUN --data INDEX [--detect]`: a model evaluated on another data set's labels,
// matched by the alias table, on images and photos made so that the answer is known.
import Driver
import Faces
import Foundation
import Tensors
import Training
import XCTest

final class EvalDataTests: XCTestCase {
    var tmp = ""
    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "fn2e-evaldata-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp + "/run", withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    /// A run over 48x48 gray crops with classes sadness, happy, fear whose scores are -(b - 0.5),
    /// +(b - 0.5) and -10 for a crop of mean brightness b (0-1): "happy" for a crop brighter than
    /// mid-gray, "sadness" for a darker one, "fear" never.
    func makeRun() throws -> String {
        let run = tmp + "/run"
        try PredictDetectTests.brightnessGraph.write(toFile: run + "/brightness.fn2e", atomically: true, encoding: .utf8)
        try "graph = brightness.fn2e\nscale = 0.00390625\n".write(toFile: run + "/settings.txt", atomically: true, encoding: .utf8)
        let w = Tensor(shape: [3, 2304], data: Array(repeating: -1 / 2304, count: 2304) + Array(repeating: 1 / 2304, count: 2304) + Array(repeating: 0, count: 2304))
        try SafeTensors.write([("fc.weight", w), ("fc.bias", Tensor(shape: [3], data: [0.5, -0.5, -10]))],
                              metadata: ["classes": "sadness,happy,fear", "logits": "fc"], to: run + "/model.safetensors")
        return run
    }

    func gray(_ level: Float, _ seed: UInt64) -> Tensor {
        var rng = Xoshiro256(seed: seed)
        return Tensor(shape: [1, 48, 48], data: (0..<2304).map { _ in (level + 30 * (rng.nextFloat() - 0.5)).rounded() })
    }

    /// Crops labelled with FER2013's names: 5 dark "sad", 4 bright "happiness", 1 bright "sad"
    /// (wrong), 3 "neutral" (a class the model lacks); the model's "fear" is not in the data.
    func testCropsWithAliasesAndMissingClasses() throws {
        let run = try makeRun()
        var csv = "path,label,usage\n"
        let rows: [(Float, String, String)] = Array(repeating: (50, "sad", "PublicTest"), count: 5) + Array(repeating: (200, "happiness", "PublicTest"), count: 4)
            + [(210, "sad", "PublicTest")] + Array(repeating: (60, "neutral", "PublicTest"), count: 3) + [(200, "sad", "Training")]
        for (k, r) in rows.enumerated() {
            try Images.writePNG(gray(r.0, UInt64(k)), to: "\(tmp)/\(k).png")
            csv += "\(k).png,\(r.1),\(r.2)\n"
        }
        try csv.write(toFile: tmp + "/index.csv", atomically: true, encoding: .utf8)
        let e = try DataEvaluation.run(runDirectory: run, index: tmp + "/index.csv", select: ("usage", "PublicTest"), batch: 4)
        XCTAssertEqual(e.images, 13, "the Training row is left out")
        XCTAssertEqual(e.match.dataOnly, ["neutral"])
        XCTAssertEqual(e.match.modelOnly, ["fear"])
        XCTAssertEqual(e.counts, [[0, 4, 0], [3, 0, 0], [5, 1, 0]], "rows happiness, neutral, sad; columns sadness, happy, fear")
        XCTAssertEqual(e.matched.count, 10)
        XCTAssertEqual(e.matched.correct, 9)
        XCTAssertEqual(e.matched.meanClassAccuracy, (5.0 / 6 + 1) / 2, accuracy: 1e-12)
        XCTAssert(e.text.contains("classes matched by alias: happiness = happy, sad = sadness"), e.text)
        XCTAssert(e.text.contains("data classes the model lacks: neutral"), e.text)
        XCTAssert(e.text.contains("model classes the data lacks: fear"), e.text)
        XCTAssert(e.text.contains("neutral: 3 images, not in the accuracy; the model called them sadness 3"), e.text)
        XCTAssert(e.text.contains("accuracy 90.00% (9/10), mean per-class 91.67% over 2 classes"), e.text)
        let files = try e.write(to: tmp + "/out", title: "test")
        XCTAssertEqual(try Images.load(path: files[2]).shape[0], 3)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: files[1]))) as? [String: Any])
        XCTAssertEqual(json["accuracy"] as? Double, 0.9)

        XCTAssertEqual(ClassNames.canonical("Angry"), "anger")
        XCTAssertEqual(ClassNames.canonical("surprised"), "surprise")
        XCTAssertEqual(ClassNames.canonical("blob"), "blob")
        XCTAssertThrowsError(try ClassNames.match(data: ["sad", "sadness"], model: ["sadness"])) { XCTAssert("\($0)".contains("'sad' and 'sadness' are the same class"), "\($0)") }
        XCTAssertThrowsError(try DataEvaluation.run(runDirectory: run, index: tmp + "/index.csv", select: ("usage", "PrivateTest"))) {
            XCTAssert("\($0)".contains("no row has usage = PrivateTest"), "\($0)")
        }
    }

    /// Photos: test1.jpg darkened (labelled sad) and brightened (labelled happy), and a blank photo
    /// (labelled happy) with no face: the largest face of each is cut out with the run's template.
    func testPhotosThroughDetection() throws {
        let dir = try dataPath("caffe/mtcnn")
        let run = try makeRun()
        let photo = try Images.load(path: dir + "/test1.jpg")
        try Images.writePNG(Tensor(shape: photo.shape, data: photo.data.map { ($0 * 0.5).rounded() }), to: tmp + "/dark.png")
        try Images.writePNG(Tensor(shape: photo.shape, data: photo.data.map { (255 - (255 - $0) * 0.4).rounded() }), to: tmp + "/bright.png")
        try Images.writePNG(Tensor(shape: [3, 120, 120], data: Array(repeating: 90, count: 3 * 120 * 120)), to: tmp + "/blank.png")
        try "path,label\ndark.png,sad\nbright.png,happy\nblank.png,happy\n".write(toFile: tmp + "/photos.csv", atomically: true, encoding: .utf8)
        let e = try DataEvaluation.run(runDirectory: run, index: tmp + "/photos.csv", detector: try MTCNN(directory: dir))
        XCTAssertEqual(e.match.dataClasses, ["happy", "sad"])
        XCTAssertEqual(e.noFace.map(\.path), [tmp + "/blank.png"])
        XCTAssertEqual(e.counts, [[0, 1, 0], [1, 0, 0]], "the bright photo is happy, the dark one sad")
        XCTAssert(e.text.contains("no face found in 1 of 3 photos; counting them as wrong: accuracy 66.67% (2/3)"), e.text)
        XCTAssert(e.text.contains("photos with no face found:\n  \(tmp)/blank.png (happy)"), e.text)
    }
}
