import Foundation
import XCTest

/// One way to compile a graph: `Runtime/CompiledGraph.swift` is the only caller of the scheduler in
/// Sources/, Tests/ and Tools/, and the only place in Sources/ that makes executors (so there is
/// one executor cache, and the environment's switches hold everywhere). Like
/// `ExhaustiveSwitchTests`, a scan of the source text.
final class CompileEntryPointTests: XCTestCase {
    static let entryPoint = "Sources/Runtime/CompiledGraph.swift"
    static let schedulerCall = try! NSRegularExpression(pattern: #"\bScheduler\s*\.\s*schedule\s*\("#)
    static let executorInit = try! NSRegularExpression(pattern: #"\bExecutor\s*\(\s*schedule\s*:"#)

    /// The lines of `text` (1-based) where `pattern` matches outside a `//` comment.
    static func lines(_ text: String, _ pattern: NSRegularExpression) -> [Int] {
        text.components(separatedBy: "\n").enumerated().compactMap { i, line in
            let code = line.components(separatedBy: "//")[0]
            return pattern.firstMatch(in: code, range: NSRange(code.startIndex..., in: code)) == nil ? nil : i + 1
        }
    }

    /// Every Swift file under `folders` of the repository, by its path from the root, with its text;
    /// hidden folders (`.build`, venv links) are not entered.
    static func swiftFiles(_ folders: [String]) throws -> [(path: String, text: String)] {
        var out: [(path: String, text: String)] = []
        for folder in folders {
            let files = FileManager.default.enumerator(atPath: Repo.root + "/" + folder)
            while let f = files?.nextObject() as? String {
                if (f as NSString).lastPathComponent.hasPrefix(".") { files?.skipDescendants(); continue }
                guard f.hasSuffix(".swift") else { continue }
                out.append((folder + "/" + f, try String(contentsOfFile: Repo.root + "/" + folder + "/" + f, encoding: .utf8)))
            }
        }
        return out
    }

    func testOnlyTheCompileEntryPointCallsTheScheduler() throws {
        var found: [String] = []
        for (path, text) in try Self.swiftFiles(["Sources", "Tests", "Tools"]) {
            found += Self.lines(text, Self.schedulerCall).map { "\(path):\($0)" }
            if path.hasPrefix("Sources/") { found += Self.lines(text, Self.executorInit).map { "\(path):\($0)" } }
        }
        // The entry point itself is found, once for each: the scan sees real calls.
        XCTAssertEqual(found.filter { $0.hasPrefix(Self.entryPoint + ":") }.count, 2, "\(found)")
        for place in found where !place.hasPrefix(Self.entryPoint + ":") {
            XCTFail("\(place): compiles outside \(Self.entryPoint); use CompiledGraph (schedule(batch:) or executor(batch:))")
        }
    }

    /// The scanner finds a call split by spaces and skips one in a comment.
    func testScannerFindsACall() {
        let text = ["let s = try Scheduler" + " . schedule (g, graphs: [:], options: o)",
                    "// Scheduler" + ".schedule(g) is called in one place",
                    "let e = try Executor" + "(schedule: s)"].joined(separator: "\n")
        XCTAssertEqual(Self.lines(text, Self.schedulerCall), [1])
        XCTAssertEqual(Self.lines(text, Self.executorInit), [3])
    }
}
