// `fn2e-run predict RUN PHOTO... --detect`: faces found, cut out as the run's `align` setting says,
// classified by the run's model; a run that cannot say how is a clear error.
import Driver
import Faces
import Foundation
import Tensors
import Training
import XCTest

final class PredictDetectTests: XCTestCase {
    var tmp = ""
    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "fn2e-predict-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp + "/run", withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    static let classes = ["dark", "bright"]

    /// A linear model over 48x48 gray crops with K classes; its weights say what it computes.
    static let brightnessGraph = """
            fn2e 1

            graph @brightness(%data: f32[N,1,48,48], %label: i32[N]) {
              param %fc.weight: f32[K,2304] = zeros
              param %fc.bias: f32[K] = zeros
              %flat = f32[N,2304] flatten(%data)
              %fc = f32[N,K] linear(%flat, %fc.weight, %fc.bias)
              %loss = f32[] softmax_cross_entropy(%fc, %label)
              return %loss
            }

            """

    /// A run folder as `fn2e-run train` leaves it, for a model over 48x48 gray crops whose two
    /// class scores are the crop's mean brightness (in 0-1) and its negation: "bright" wins for a
    /// crop brighter than mid-gray.
    func makeRun(align: String?) throws -> String {
        let run = tmp + "/run"
        try Self.brightnessGraph.write(toFile: run + "/brightness.fn2e", atomically: true, encoding: .utf8)
        try ("graph = brightness.fn2e\nscale = 0.00390625\n" + (align.map { "align = \($0)\n" } ?? ""))
            .write(toFile: run + "/settings.txt", atomically: true, encoding: .utf8)
        let w = Tensor(shape: [2, 2304], data: Array(repeating: -1 / 2304, count: 2304) + Array(repeating: 1 / 2304, count: 2304))
        try SafeTensors.write([("fc.weight", w), ("fc.bias", Tensor(shape: [2], data: [0.5, -0.5]))],
                              metadata: ["classes": Self.classes.joined(separator: ","), "logits": "fc"], to: run + "/model.safetensors")
        return run
    }

    /// test1.jpg's two faces, a picture with none and a broken file, as JSON: one record per face
    /// with both probabilities, which are those of the aligned CK+48-style crop (recomputed here).
    func testOneRecordPerFaceWithProbabilities() throws {
        let dir = try dataPath("caffe/mtcnn")
        let detector = try MTCNN(directory: dir)
        let predictor = try Predictor(runDirectory: try makeRun(align: "ckplus48"))
        try Images.writePNG(Tensor(shape: [3, 100, 100], data: Array(repeating: 200, count: 30000)), to: "\(tmp)/blank.png")
        FileManager.default.createFile(atPath: "\(tmp)/broken.png", contents: Data("not a png".utf8))
        let photos = [dir + "/test1.jpg", "\(tmp)/broken.png", "\(tmp)/blank.png"]
        let out = FaceCommands.run(photos, detector: detector, predictor: predictor, annotate: "\(tmp)/ann", json: true)
        XCTAssertEqual(out.status, 1, "the broken file fails the command")
        XCTAssertTrue(out.stderr.contains("\(tmp)/broken.png: error: "), out.stderr)
        XCTAssertTrue(out.stderr.contains("\(tmp)/blank.png: no face found"), out.stderr)
        let records = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(records.count, 2)
        let image = try Images.load(path: dir + "/test1.jpg")
        let faces = try detector.detect(image)
        for (k, r) in records.enumerated() {
            XCTAssertEqual(r["photo"] as? String, dir + "/test1.jpg")
            XCTAssertEqual(r["face"] as? Int, k)
            let p = try XCTUnwrap(r["probabilities"] as? [String: Double])
            XCTAssertEqual(Set(p.keys), Set(Self.classes))
            XCTAssertEqual(p.values.reduce(0, +), 1, accuracy: 1e-9)
            // The model's scores are ±(mean brightness of the aligned crop - 0.5): recompute them.
            let crop = Align.crop(image, landmarks: faces[k].landmarks, template: .ckplus48)
            let mean = Double(crop.data.reduce(0, +)) / Double(crop.count) / 256
            XCTAssertEqual(p["bright"]!, 1 / (1 + exp(-2 * (mean - 0.5))), accuracy: 1e-4)
            XCTAssertEqual(r["class"] as? String, mean > 0.5 ? "bright" : "dark")
        }
        XCTAssertEqual(try Images.load(path: "\(tmp)/ann/test1.png").shape, [3, 344, 450])

        let csv = FaceCommands.run([dir + "/test1.jpg"], detector: detector, predictor: predictor, annotate: nil, json: false)
        XCTAssertEqual(csv.status, 0, csv.stderr)
        let lines = csv.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        XCTAssertTrue(lines[0].hasSuffix(",predicted,dark,bright"), String(lines[0]))
    }

    /// Photos judged in groups by two workers give what each photo judged alone gives: the same
    /// faces (boxes, scores, landmarks to 1e-3) from `detect` over several images and from `detect`
    /// on each, and the same CSV (boxes, classes and probabilities as printed) from the command,
    /// whatever the grouping, with a broken file and a photo without a face among them.
    /// Groups of 8, the last two workers' worth in groups of 2; one worker: all groups of 8.
    func testGroupsShrinkAtTheEnd() {
        let groups = FaceCommands.groups(200, size: 8, workers: 2)
        XCTAssertEqual(groups.map(\.count), Array(repeating: 8, count: 23) + Array(repeating: 2, count: 8))
        XCTAssertEqual(groups.first?.lowerBound, 0)
        XCTAssertTrue(zip(groups, groups.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound } && groups.last?.upperBound == 200)
        XCTAssertEqual(FaceCommands.groups(10, size: 8, workers: 1).map(\.count), [8, 2])
        XCTAssertEqual(FaceCommands.groups(5, size: 8, workers: 2).map(\.count), [2, 2, 1])
        XCTAssertEqual(FaceCommands.groups(0, size: 8, workers: 2), [])
    }

    func testGroupsAndWorkersChangeNothing() throws {
        let dir = try dataPath("caffe/mtcnn")
        let detector = try MTCNN(directory: dir)
        let pictures = try parityPictures(dir).sorted { $0.key < $1.key }
        let images = pictures.map(\.value)
        let one = try images.map { try detector.detect($0) }
        // GEMMs over batches of other sizes may round differently in the last bits (about 1e-5 px).
        for (a, b) in zip(try detector.copy().detect(images), one) {
            XCTAssertEqual(a.count, b.count)
            for (f, g) in zip(a, b) {
                let ours = [f.x1, f.y1, f.x2, f.y2, f.score] + f.landmarks.flatMap { [$0.x, $0.y] }
                let alone = [g.x1, g.y1, g.x2, g.y2, g.score] + g.landmarks.flatMap { [$0.x, $0.y] }
                XCTAssertLessThan(zip(ours, alone).map { abs($0 - $1) }.max()!, 1e-3, "\(f) against \(g)")
            }
        }
        XCTAssertGreaterThanOrEqual(one.joined().count, 7)

        var paths: [String] = []
        for (name, image) in pictures {
            paths.append("\(tmp)/\(name).png")
            try Images.writePNG(image, to: paths.last!)
        }
        try Images.writePNG(Tensor(shape: [3, 100, 100], data: Array(repeating: 200, count: 30000)), to: "\(tmp)/blank.png")
        FileManager.default.createFile(atPath: "\(tmp)/broken.png", contents: Data("not a png".utf8))
        paths.insert("\(tmp)/broken.png", at: 2)
        paths.insert("\(tmp)/blank.png", at: 4)
        let predictor = try Predictor(runDirectory: try makeRun(align: "ckplus48"))
        let alone = paths.map { FaceCommands.run([$0], detector: detector, predictor: predictor, annotate: nil, json: false, workers: 1) }
        let header = alone[0].stdout.split(separator: "\n")[0]
        let expected = ([header] + alone.flatMap { $0.stdout.split(separator: "\n").dropFirst() }).joined(separator: "\n") + "\n"
        XCTAssertEqual(expected.split(separator: "\n").count, 1 + one.joined().count)
        for (workers, group) in [(2, 2), (2, 3), (1, 8)] {
            let out = FaceCommands.run(paths, detector: detector, predictor: predictor, annotate: nil, json: false, workers: workers, groupSize: group)
            XCTAssertEqual(out.stdout, expected, "\(workers) workers, groups of \(group)")
            XCTAssertEqual(out.stderr, alone.map(\.stderr).joined())
            XCTAssertEqual(out.status, 1)
        }
    }

    /// A run without settings (no preprocessing information) and one whose template is unknown.
    func testRunsThatCannotSayHowToCutFaces() throws {
        let run = try makeRun(align: "nosuch")
        let dir = try dataPath("caffe/mtcnn")
        let out = FaceCommands.run([dir + "/test1.jpg"], detector: try MTCNN(directory: dir), predictor: try Predictor(runDirectory: run),
                                   annotate: nil, json: false)
        XCTAssertEqual(out.status, 1)
        XCTAssertTrue(out.stderr.contains("settings.txt:3: error: unknown face template 'nosuch' (known: ckplus48, fer2013)"), out.stderr)
        XCTAssertEqual(out.stdout, "")
        try FileManager.default.removeItem(atPath: run + "/settings.txt")
        XCTAssertThrowsError(try Predictor(runDirectory: run)) { e in
            XCTAssertTrue("\(e)".contains("settings.txt: error: cannot read the settings file"), "\(e)")
        }
    }
}
