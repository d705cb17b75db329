// `fn2e-run detect` through Driver's FaceCommands: photos from files, folders and CSV lists; CSV and
// JSON out; a photo with no face and a corrupt file among good ones.
import Driver
import Faces
import Foundation
import Tensors
import XCTest

final class DetectCommandTests: XCTestCase {
    var tmp = ""
    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "fn2e-detect-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func testPhotoListsFromFoldersAndCSV() throws {
        for name in ["b.png", "a.JPG", "notes.txt"] { FileManager.default.createFile(atPath: "\(tmp)/\(name)", contents: Data()) }
        try "id,path\n1,b.png\n2,/abs/c.jpg\n".write(toFile: "\(tmp)/list.csv", atomically: true, encoding: .utf8)
        XCTAssertEqual(try FaceCommands.photos([tmp, "\(tmp)/list.csv", "x.bmp"]),
                       ["\(tmp)/a.JPG", "\(tmp)/b.png", "\(tmp)/b.png", "/abs/c.jpg", "x.bmp"])
        try "id,path\n1,\n".write(toFile: "\(tmp)/bad.csv", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try FaceCommands.photos(["\(tmp)/bad.csv"])) { e in
            XCTAssertTrue("\(e)".contains("bad.csv:2: error: no photo path"), "\(e)")
        }
    }

    /// Two faces in test1.jpg, none in a flat gray picture, and a corrupt file: the error names it,
    /// the other photos are still reported, and the status is 1. The annotated folder gets one PNG
    /// per readable photo, the size of the photo.
    func testFacesNoFaceAndCorruptFile() throws {
        let dir = try dataPath("caffe/mtcnn")
        let detector = try MTCNN(directory: dir)
        try Images.writePNG(Tensor(shape: [3, 120, 160], data: Array(repeating: 128, count: 3 * 120 * 160)), to: "\(tmp)/gray.png")
        FileManager.default.createFile(atPath: "\(tmp)/corrupt.jpg", contents: Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]))
        let photos = ["\(tmp)/corrupt.jpg", dir + "/test1.jpg", "\(tmp)/gray.png"]
        let out = FaceCommands.run(photos, detector: detector, annotate: "\(tmp)/annotated", json: false)
        XCTAssertEqual(out.status, 1)
        XCTAssertTrue(out.stderr.contains("\(tmp)/corrupt.jpg: error: "), out.stderr)
        XCTAssertTrue(out.stderr.contains("\(tmp)/gray.png: no face found"), out.stderr)
        let rows = out.stdout.split(separator: "\n")
        XCTAssertEqual(rows.count, 3, out.stdout)
        XCTAssertTrue(rows[0].hasPrefix("photo,face,x1,y1,x2,y2,score,left_eye_x"))
        XCTAssertTrue(rows[1].hasPrefix(dir + "/test1.jpg,0,") && rows[2].hasPrefix(dir + "/test1.jpg,1,"))
        XCTAssertEqual(rows[1].split(separator: ",").count, 17)
        XCTAssertEqual(try Images.load(path: "\(tmp)/annotated/test1.png").shape, [3, 344, 450])
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(tmp)/annotated/gray.png"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(tmp)/annotated/corrupt.png"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(tmp)/annotated").sorted(), ["gray.png", "test1.png"],
                       "no temporary file left behind")

        let json = FaceCommands.run([dir + "/test2.jpg"], detector: detector, annotate: "\(tmp)/one.png", json: true)
        XCTAssertEqual(json.status, 0, json.stderr)
        let records = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual((records[0]["box"] as? [Double])?.count, 4)
        XCTAssertEqual((records[0]["landmarks"] as? [[Double]])?.count, 5)
        XCTAssertGreaterThan(records[0]["score"] as? Double ?? 0, 0.7)
        XCTAssertEqual(try Images.load(path: "\(tmp)/one.png").shape, [3, 431, 450])
    }
}

final class StageClockTests: XCTestCase {
    /// With profiling on, each net's stage adds the arithmetic its schedule does per run, and the
    /// report gives it in GFLOP and GFLOP/s beside the seconds; stages without arithmetic say none.
    func testNetsReportTheirArithmetic() throws {
        let detector = try MTCNN(directory: try dataPath("caffe/mtcnn"))
        let image = try Images.load(path: try dataPath("caffe/mtcnn") + "/test1.jpg", channels: 3)
        StageClock.enabled = true
        defer { StageClock.enabled = ProcessInfo.processInfo.environment["FN2E_PROFILE"] == "1" }
        StageClock.time("test stage", flops: 3_000_000_000) { usleep(20_000) }
        StageClock.time("test no arithmetic") {}
        XCTAssertEqual(try detector.detect([image])[0].count, 2)
        let lines = StageClock.report().split(separator: "\n").map(String.init)
        func line(_ stage: String) throws -> [Substring] {
            try XCTUnwrap(lines.first { $0.hasPrefix("  " + stage + " ") }, lines.joined(separator: "\n")).split(separator: " ")
        }
        let test = try line("test stage")
        XCTAssertEqual(test[test.count - 4], "3.000", "\(test)")
        XCTAssertLessThan(Double(test[test.count - 2]) ?? 1e9, 3 / 0.02, "\(test)")
        XCTAssertFalse(try line("test no arithmetic").contains("GFLOP"))
        XCTAssertFalse(try line("transpose").contains("GFLOP"), "\(lines)")
        for net in ["P-Net run", "R-Net run", "O-Net run"] {
            let l = try line(net)
            XCTAssertEqual(l.last, "GFLOP/s", "\(l)")
            XCTAssertGreaterThan(Double(l[l.count - 4]) ?? 0, 0, "\(l)")
        }
    }
}
