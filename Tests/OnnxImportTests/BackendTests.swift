// ONNX's backend node tests replayed through the importer: the folder written by
// Tools/onnx/backend_cases.py, named by FN2E_ONNX_BACKEND (a skip that says so when unset).
import Driver
import Foundation
import XCTest

final class BackendTests: XCTestCase {
    func testClaimedCasesPass() throws {
        guard let dir = ProcessInfo.processInfo.environment["FN2E_ONNX_BACKEND"], !dir.isEmpty else {
            throw XCTSkip("FN2E_ONNX_BACKEND is unset: write the cases with Tools/onnx/backend_cases.py DIR and set FN2E_ONNX_BACKEND=DIR to replay them")
        }
        let results = try OnnxBackend.run(directory: dir)
        print(OnnxBackend.table(results))
        XCTAssertGreaterThan(results.count, 100, "expected the ONNX backend cases in \(dir)")
        for r in results where r.outcome == .failed {
            XCTFail("\(r.name) [\(r.ops.joined(separator: ","))]: \(r.reason)")
        }
    }
}
