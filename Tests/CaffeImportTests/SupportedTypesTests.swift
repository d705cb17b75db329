import CaffeImport
import Foundation
import XCTest

/// The importer's list of supported layer types (`CaffeToIR.supportedTypes`, which its error for
/// an unknown type prints) is exactly the types its per-family functions match (`case ("Type", …)`
/// in `CaffeToIR+*.swift`): a layer cannot be half-added, converted but unlisted or listed but
/// refused.
final class SupportedTypesTests: XCTestCase {
    /// The types matched by `case ("Type"` (and `, ("Type"` on the same line) in `text`.
    static func matchedTypes(_ text: String) -> Set<String> {
        let pattern = try! NSRegularExpression(pattern: #"\(\s*"([A-Za-z0-9]+)"\s*,"#)
        var types: Set<String> = []
        for line in text.components(separatedBy: "\n") where line.trimmingCharacters(in: .whitespaces).hasPrefix("case (") {
            for m in pattern.matches(in: line, range: NSRange(line.startIndex..., in: line)) {
                types.insert(String(line[Range(m.range(at: 1), in: line)!]))
            }
        }
        return types
    }

    func testSupportedTypesAreTheFamilySwitches() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path + "/Sources/CaffeImport"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("CaffeToIR") && $0.hasSuffix(".swift") }
        var matched: Set<String> = []
        for f in files { matched.formUnion(Self.matchedTypes(try String(contentsOfFile: folder + "/" + f, encoding: .utf8))) }
        XCTAssertEqual(matched.subtracting(CaffeToIR.supportedTypes), [], "converted but not in supportedTypes")
        XCTAssertEqual(Set(CaffeToIR.supportedTypes).subtracting(matched), [], "in supportedTypes but no family converts it")
        XCTAssertEqual(CaffeToIR.supportedTypes.count, Set(CaffeToIR.supportedTypes).count, "listed twice")
    }

    /// The scan is not vacuous: it reads both patterns of a family's cases.
    func testScanReadsCases() {
        let text = """
                switch (layer.type, layer.typeParams) {
                case ("ReLU", .relu(let slope)):
                case ("Sigmoid", _), ("TanH", _):
                default: return false
                }
            """
        XCTAssertEqual(Self.matchedTypes(text), ["ReLU", "Sigmoid", "TanH"])
    }
}
