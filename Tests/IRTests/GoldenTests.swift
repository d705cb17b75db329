import Driver
import Foundation
import XCTest

/// Tests/Goldens through the same runner as `fn2e-compile test`. FN2E_UPDATE_GOLDENS=1 rewrites the
/// expected files in place and still fails.
final class GoldenTests: XCTestCase {
    func testGoldens() {
        let update = ProcessInfo.processInfo.environment["FN2E_UPDATE_GOLDENS"] == "1"
        let outcomes = Goldens.run(directory: Repo.goldens, update: update)
        XCTAssertGreaterThan(outcomes.count, 40, "golden cases not found in \(Repo.goldens)")
        let failures = outcomes.filter { !$0.passed }
        for f in failures {
            XCTFail("golden \((f.file as NSString).lastPathComponent) differs (- expected, + actual):\n\(f.diff)")
        }
    }

    func testGoldenKinds() {
        let names = Goldens.cases(in: Repo.goldens).map { ($0 as NSString).lastPathComponent }
        XCTAssertGreaterThanOrEqual(names.filter { $0.hasPrefix("err_") }.count, 30)
        XCTAssertGreaterThanOrEqual(names.filter { $0.hasPrefix("print_") }.count, 5)
        XCTAssertGreaterThanOrEqual(names.filter { $0.hasPrefix("summary_") }.count, 2)
        for n in names {
            XCTAssert(["err_", "print_", "summary_"].contains { n.hasPrefix($0) }, "\(n): name cases err_*, print_* or summary_*")
        }
    }

    /// Every error golden fails with a located diagnostic and a caret; print and summary goldens succeed.
    func testErrorGoldensPointIntoTheFile() {
        for file in Goldens.cases(in: Repo.goldens) {
            let name = (file as NSString).lastPathComponent
            let expected = Repo.read(file + ".expected")
            if name.hasPrefix("err_") {
                XCTAssert(expected.hasSuffix("exit: 1\n"), "\(name) should fail")
                if name != "err_summary_no_graph.fn2e" {
                    XCTAssert(expected.contains(".fn2e:") && expected.contains(": error: ") && expected.contains("^"),
                              "\(name): no located diagnostic with a caret")
                }
            } else {
                XCTAssertFalse(expected.contains("exit:"), "\(name) should succeed")
            }
        }
    }

    private func copyGoldens() throws -> String {
        let tmp = NSTemporaryDirectory() + "fn2e-goldens-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: Repo.goldens, toPath: tmp)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: tmp) }
        return tmp
    }

    func testEditedGoldenFailsWithDiff() throws {
        let dir = try copyGoldens()
        let expected = dir + "/err_unknown_op.fn2e.expected"
        let original = Repo.read(expected)
        try original.replacingOccurrences(of: "unknown op 'gelu'", with: "unknown op 'gelo'")
            .write(toFile: expected, atomically: true, encoding: .utf8)

        let outcomes = Goldens.run(directory: dir, update: false)
        let failed = outcomes.filter { !$0.passed }
        XCTAssertEqual(failed.map { ($0.file as NSString).lastPathComponent }, ["err_unknown_op.fn2e"])
        let diff = failed.first?.diff ?? ""
        XCTAssert(diff.contains("-err_unknown_op.fn2e:3:8: error: unknown op 'gelo'"), diff)
        XCTAssert(diff.contains("+err_unknown_op.fn2e:3:8: error: unknown op 'gelu'"), diff)
        XCTAssertEqual(Repo.read(expected), original.replacingOccurrences(of: "gelu'", with: "gelo'"), "checking must not rewrite")

        // Update mode rewrites the file yet still fails; the next run passes.
        let updating = Goldens.run(directory: dir, update: true)
        XCTAssertEqual(updating.filter { !$0.passed }.count, 1)
        XCTAssert(updating.contains { $0.diff.contains("rewritten") })
        XCTAssertEqual(Repo.read(expected), original)
        XCTAssert(Goldens.run(directory: dir, update: false).allSatisfy(\.passed))
    }

    func testMissingExpectationFails() throws {
        let dir = try copyGoldens()
        try FileManager.default.removeItem(atPath: dir + "/print_call.fn2e.expected")
        let failed = Goldens.run(directory: dir, update: false).filter { !$0.passed }
        XCTAssertEqual(failed.count, 1)
        XCTAssert(failed.first?.diff.hasPrefix("missing ") == true)
    }
}
