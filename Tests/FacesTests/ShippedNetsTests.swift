// MTCNN's det1-det3 as the project ships them (Models/mtcnn): the same bytes a fresh import of the
// release's Caffe files gives, and what `fn2e-run detect` uses on a fresh clone, without FN2E_DATA.
import Driver
import Faces
import Foundation
import Tensors
import XCTest

final class ShippedNetsTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static var shipped: String { root + "/" + MTCNN.shippedFolder }

    func testShippedNetsAreAFreshImportBitForBit() throws {
        let caffe = try dataPath("caffe/mtcnn")
        let tmp = NSTemporaryDirectory() + "fn2e-mtcnn-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        for k in 1...3 {
            let out = CaffeImportDriver.run(prototxt: "\(caffe)/det\(k).prototxt", caffemodel: "\(caffe)/det\(k).caffemodel", directory: tmp, name: "det\(k)")
            XCTAssertEqual(out.status, 0, out.stderr)
            for ext in ["fn2e", "safetensors"] {
                let fresh = try Data(contentsOf: URL(fileURLWithPath: "\(tmp)/det\(k).\(ext)"))
                let repo = try Data(contentsOf: URL(fileURLWithPath: "\(Self.shipped)/det\(k).\(ext)"))
                XCTAssert(fresh == repo, "\(Self.shipped)/det\(k).\(ext) differs from a fresh import: run Tools/mtcnn/regenerate.sh")
            }
            XCTAssertTrue(try SafeTensors.verify(path: "\(Self.shipped)/det\(k).safetensors").checksummed)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: caffe + "/LICENSE")), try Data(contentsOf: URL(fileURLWithPath: Self.shipped + "/LICENSE")))
    }

    /// `fn2e-run detect` run from an empty folder with FN2E_DATA unset: the shipped nets find the
    /// two faces of MTCNN's sample photo (read from FN2E_DATA by the test, copied beside it).
    func testDetectOnAFreshCloneFindsTheSampleFaces() throws {
        let photo = try dataPath("caffe/mtcnn/test1.jpg")
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        guard let run = [exe + "/fn2e-run", exe + "/../fn2e-run"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("fn2e-run is not built beside the tests in \(exe); run `swift build` first")
        }
        let tmp = NSTemporaryDirectory() + "fn2e-fresh-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try FileManager.default.copyItem(atPath: photo, toPath: tmp + "/test1.jpg")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: run)
        p.arguments = ["detect", "test1.jpg"]
        p.currentDirectoryURL = URL(fileURLWithPath: tmp)
        var env = ProcessInfo.processInfo.environment
        env["FN2E_DATA"] = nil
        env["FN2E_HOME"] = nil
        p.environment = env
        let out = Pipe(), err = Pipe()
        (p.standardOutput, p.standardError) = (out, err)
        try p.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, stderr)
        let rows = stdout.split(separator: "\n")
        XCTAssertEqual(rows.count, 3, stdout + stderr)
        XCTAssert(rows.dropFirst().allSatisfy { $0.hasPrefix("test1.jpg,") }, stdout)
        XCTAssertFalse(stderr.contains("no fn2e checksums"), stderr)
    }
}
