// The dlib importer against the real face-recognition ResNet in $FN2E_DATA/dlib (never copied into
// the repository) and dlib's own descriptors (Tests/Fixtures/Dlib/parity.json, written by
// Tools/dlib/parity_fixture.py with dlib-bin): parity, the summary's parameter count, bad files,
// and face verification on CK+.
import DlibImport
import Driver
import Foundation
import IR
import Tensors
import XCTest

/// `$FN2E_DATA/<relative>`, or a skip that says why.
func dataPath(_ relative: String) throws -> String {
    let found = SharedData.find(relative)
    guard let path = found.path else { throw XCTSkip(found.reason) }
    return path
}

func temporaryDirectory() throws -> String {
    let dir = NSTemporaryDirectory() + "fn2e-dlib-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

let modelFile = "dlib/dlib_face_recognition_resnet_model_v1.dat"

/// Tests/Fixtures/Dlib/parity.json.
struct ParityFixture: Decodable {
    struct Chip: Decodable {
        var path: String
        var descriptor: [Float]
    }
    struct Verification: Decodable {
        var threshold: Double
        var images: Int
        var same_pairs: Int
        var same_accepted: Int
        var different_pairs: Int
        var different_rejected: Int
    }
    var model_sha256: String
    var parity: [Chip]
    var verification: Verification

    static func load() throws -> ParityFixture {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/Dlib/parity.json")
        return try JSONDecoder().decode(ParityFixture.self, from: Data(contentsOf: url))
    }
}

/// The face chip of a 48x48 gray CK+ crop: upscaled to 150x150 by integer nearest neighbour,
/// chip[y][x] = gray[(y * 48) / 150][(x * 48) / 150], the gray value in R, G and B (as the fixture's
/// generator builds it for dlib). Appended to `batch` as `[3, 150, 150]`.
func appendChip(_ relative: String, to batch: inout [Float]) throws {
    let gray = try Images.load(path: try dataPath(relative), channels: 1)
    XCTAssertEqual(gray.shape, [1, 48, 48], relative)
    var plane = [Float](repeating: 0, count: 150 * 150)
    for y in 0..<150 { for x in 0..<150 { plane[y * 150 + x] = gray.data[(y * 48 / 150) * 48 + x * 48 / 150] } }
    batch += plane + plane + plane
}

final class RealModelTests: XCTestCase {
    nonisolated(unsafe) static var cached: DlibImported?

    func imported() throws -> DlibImported {
        let path = try dataPath(modelFile)
        if let c = Self.cached { return c }
        let c = try DlibToIR.importFile(path, name: "dlib_face")
        Self.cached = c
        return c
    }

    /// Descriptors `[count, 128]` of the chips of `paths` (relative to FN2E_DATA), run in batches.
    func descriptors(_ paths: [String]) throws -> [[Float]] {
        let model = try imported()
        let batch = 16
        let ex = try Importing.executor(model.graph, weights: model.weights, batch: batch, keepAll: false)
        var out: [[Float]] = []
        for start in stride(from: 0, to: paths.count, by: batch) {
            var data: [Float] = []
            for k in 0..<batch { try appendChip(paths[min(start + k, paths.count - 1)], to: &data) }
            let y = try ex.run(inputs: ["image": Tensor(shape: [batch, 3, 150, 150], data: data)])
            let d = try XCTUnwrap(y[model.graph.outputs[0]])
            XCTAssertEqual(d.shape, [batch, 128])
            for k in 0..<min(batch, paths.count - start) { out.append(Array(d.data[k * 128..<(k + 1) * 128])) }
        }
        return out
    }

    func testDescriptorsMatchDlib() throws {
        let fixture = try ParityFixture.load()
        _ = try imported()
        let ours = try descriptors(fixture.parity.map(\.path))
        var worst = 0.0, worstPath = "", maxAbs = 0.0, norms: [Double] = []
        for (chip, mine) in zip(fixture.parity, ours) {
            var num = 0.0, den = 0.0
            for (a, b) in zip(mine, chip.descriptor) {
                num += (Double(a) - Double(b)) * (Double(a) - Double(b))
                den += Double(b) * Double(b)
                maxAbs = max(maxAbs, abs(Double(a) - Double(b)))
            }
            norms.append(den.squareRoot())
            let relative = (num / den).squareRoot()
            if relative > worst { (worst, worstPath) = (relative, chip.path) }
        }
        print("dlib parity: \(ours.count) chips, worst relative error ‖fn2e − dlib‖/‖dlib‖ = \(worst) (\(worstPath)), max |difference| \(maxAbs), dlib norms \(norms.min()!)...\(norms.max()!)")
        XCTAssertGreaterThanOrEqual(ours.count, 20)
        XCTAssertLessThanOrEqual(worst, 1e-4)
    }

    func testFixtureIsForThisModel() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: try dataPath(modelFile)))
        XCTAssertEqual(data.count, 22_466_066)
        XCTAssertEqual(try ParityFixture.load().model_sha256.prefix(8), "55533b28")
    }

    /// Same subject closer than different subjects: dlib's rule (distance < 0.6 = same person) over
    /// every pair of the last frames of the CK+ sequences, against dlib's own counts on those pairs.
    func testVerificationOnCKPlus() throws {
        let fixture = try ParityFixture.load()
        let index = try String(contentsOfFile: try dataPath("ckplus48/index.csv"), encoding: .utf8)
        var last: [String: (frame: Int, path: String, subject: String)] = [:]
        for line in index.split(whereSeparator: \.isNewline).dropFirst() {
            let f = line.split(separator: ",").map(String.init)
            let key = f[2] + "_" + f[3]
            if let seen = last[key], seen.frame >= Int(f[4])! { continue }
            last[key] = (Int(f[4])!, "ckplus48/" + f[0], f[2])
        }
        let sample = last.keys.sorted().map { last[$0]! }
        XCTAssertEqual(sample.count, fixture.verification.images)
        let d = try descriptors(sample.map(\.path))
        var same = 0, accepted = 0, different = 0, rejected = 0
        for i in d.indices {
            for j in (i + 1)..<d.count {
                var s = 0.0
                for k in 0..<128 { s += (Double(d[i][k]) - Double(d[j][k])) * (Double(d[i][k]) - Double(d[j][k])) }
                let accept = s.squareRoot() < fixture.verification.threshold
                if sample[i].subject == sample[j].subject {
                    same += 1
                    if accept { accepted += 1 }
                } else {
                    different += 1
                    if !accept { rejected += 1 }
                }
            }
        }
        let tar = Double(accepted) / Double(same), tnr = Double(rejected) / Double(different)
        let v = fixture.verification
        print("dlib verification at \(v.threshold) on CK+: \(sample.count) images, same-subject pairs accepted \(accepted)/\(same) (\(tar)), different-subject pairs rejected \(rejected)/\(different) (\(tnr)), balanced accuracy \((tar + tnr) / 2); dlib itself: \(v.same_accepted)/\(v.same_pairs), \(v.different_rejected)/\(v.different_pairs)")
        XCTAssertEqual(same, v.same_pairs)
        XCTAssertEqual(different, v.different_pairs)
        // Descriptors within 1e-4 of dlib's flip only pairs right at the threshold.
        XCTAssertLessThanOrEqual(abs(accepted - v.same_accepted), 2)
        XCTAssertLessThanOrEqual(abs(rejected - v.different_rejected), max(2, v.different_pairs / 2000))
        XCTAssertGreaterThan((tar + tnr) / 2, 0.8, "balanced verification accuracy should be far above chance (0.5)")
    }

    func testSummaryCountsEveryFloatRead() throws {
        let model = try imported()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = DlibImportDriver.run(file: try dataPath(modelFile), directory: dir, name: "dlib_face")
        XCTAssertEqual(out.status, 0, out.stderr)
        let summary = Stages.run("summary", path: dir + "/dlib_face.fn2e", options: .init(batch: 1))
        XCTAssertEqual(summary.status, 0, summary.stderr)
        let line = try XCTUnwrap(summary.stdout.split(separator: "\n").first { $0.hasPrefix("parameters: ") })
        print("summary of the imported net: \(line)")
        // Every float the file holds in a layer, plus the input layer's three channel means.
        let read = model.net.parameterCount + model.net.inputMeans.count
        var digits = String(read), grouped = ""
        while digits.count > 3 {
            grouped = "," + digits.suffix(3) + grouped
            digits.removeLast(3)
        }
        XCTAssertTrue(line.hasPrefix("parameters: \(digits + grouped) "), "\(line) vs \(read)")
        XCTAssertEqual(model.weights.reduce(0) { $0 + $1.1.count }, read)
        XCTAssertEqual(model.net.layers.filter { if case .con = $0.details { return true } else { return false } }.count, 29)
    }

    /// Graphs/dlib_face.fn2e, which the dlib stage graphs import, is the importer's output for the real file.
    func testCommittedGraphIsWhatTheImporterWrites() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = DlibImportDriver.run(file: try dataPath(modelFile), directory: dir, name: "dlib_face")
        XCTAssertEqual(out.status, 0, out.stderr)
        let graphs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Graphs")
        let committed = try String(contentsOf: graphs.appendingPathComponent("dlib_face.fn2e"), encoding: .utf8)
        XCTAssertEqual(try String(contentsOfFile: dir + "/dlib_face.fn2e", encoding: .utf8), committed,
                       "re-import the model into Graphs/ (docs/DLIB.md)")
    }

    // MARK: Bad files

    /// Every prefix of the real file that ends before a layer finishes is a clean truncation error.
    func testTruncatedFilesAreClearErrors() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try dataPath(modelFile))))
        let net = try DlibNet(bytes: bytes, file: "full.dat")
        let marks = net.layers.map(\.offset)
        var cuts = [0, 1, 2, 3, 10, 17, 100, 500, 19_380, 19_381, 19_400, bytes.count / 2, bytes.count - 1]
        cuts += marks.prefix(12).flatMap { [$0, $0 + 1, $0 + 7] }
        for cut in cuts {
            XCTAssertThrowsError(try DlibNet(bytes: Array(bytes[0..<cut]), file: "cut.dat"), "cut at \(cut)") { error in
                guard let e = error as? DlibError else { return XCTFail("\(error)") }
                let text = "\(e)"
                XCTAssertTrue(text.hasPrefix("cut.dat: error: at byte "), text)
                XCTAssertTrue(text.contains("truncated"), "cut at \(cut): \(text)")
                XCTAssertLessThanOrEqual(e.offset ?? .max, cut, text)
            }
        }
    }

    func testCorruptFilesNameWhatWasExpected() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try dataPath(modelFile))))
        func replacing(_ old: String, _ new: String, occurrence: Int = 0) -> [UInt8] {
            var b = bytes
            let o = Array(old.utf8)
            var seen = 0
            for i in 0...(b.count - o.count) where Array(b[i..<i + o.count]) == o {
                if seen == occurrence {
                    b.replaceSubrange(i..<i + o.count, with: Array(new.utf8))
                    return b
                }
                seen += 1
            }
            XCTFail("\(old) not found")
            return b
        }
        func expectError(_ b: [UInt8], _ fragments: [String], line: UInt = #line) {
            XCTAssertThrowsError(try DlibNet(bytes: b, file: "bad.dat"), line: line) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("bad.dat: error: at byte "), text, line: line)
                for f in fragments { XCTAssertTrue(text.contains(f), "\(text) lacks \(f)", line: line) }
            }
        }
        expectError(replacing("loss_metric_2", "loss_mmod_xx2"), ["at byte 2:", "expected the loss layer loss_metric_ or loss_metric_2", "found 'loss_mmod_xx2'"])
        // The first con layer (the bottom one, layer<130>) turned into another layer type.
        expectError(replacing("con_4", "sig_4"), ["layer<130>", "expected a con layer", "found 'sig_4'"])
        expectError(replacing("relu_", "prelu"), ["layer<128>", "expected a relu layer", "found 'prelu'"])
        expectError(replacing("max_pool_2", "max_pool_9"), ["layer<127>", "found 'max_pool_9'"])
        // The first add_layer version (layer<1>, the fc; byte 29, after the loss and its two floats) becomes 7.
        var b = bytes
        XCTAssertEqual(Array(b[29..<31]), [0x01, 0x02])
        b[30] = 0x07
        expectError(b, ["at byte 29:", "expected the version of layer<1> (fc) (1 to 2), found 7"])
        // A control byte that announces 9 bytes.
        b = bytes
        b[29] = 0x09
        expectError(b, ["at byte 29:", "expected the version of layer<1> (fc)", "control byte 0x9"])
        expectError(bytes + [0], ["expected the end of the file after the last layer, found 1 more bytes"])
    }

    /// The command writes nothing when the file is bad: no graph, no weights, no temporary files.
    func testBadFileWritesNothing() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: try dataPath(modelFile)))
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cut = dir + "/cut.dat"
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: cut))
        let out = DlibImportDriver.run(file: cut, directory: dir + "/out", name: "net")
        XCTAssertEqual(out.status, 1)
        XCTAssertTrue(out.stderr.hasPrefix("\(cut): error: at byte "), out.stderr)
        XCTAssertTrue(out.stderr.contains("truncated"), out.stderr)
        XCTAssertEqual(out.stdout, "")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out"))
        let missing = DlibImportDriver.run(file: dir + "/nope.dat", directory: dir + "/out", name: "net")
        XCTAssertEqual(missing.stderr, "\(dir)/nope.dat: error: no such file\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["cut.dat"])
    }
}
