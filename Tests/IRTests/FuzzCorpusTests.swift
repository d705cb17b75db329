// The minimised fuzz corpora (Tests/FuzzCorpus/TARGET, written by `Tools/fuzz/run.sh TARGET merge`)
// through their readers: every input that once reached new code still reads without a crash.
import Driver
import Foundation
import XCTest

final class FuzzCorpusTests: XCTestCase {
    func testEveryCorpusReplays() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("FuzzCorpus").path
        let counts = try FuzzTargets.replay(corpus: corpus)
        print("fuzz corpus replayed: " + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        XCTAssertEqual(Set(counts.keys), Set(FuzzTargets.all.keys), "every fuzz target has a committed corpus")
        for (target, n) in counts { XCTAssertGreaterThan(n, 0, target) }
    }
}
