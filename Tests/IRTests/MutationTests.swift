import Foundation
import IR
import XCTest

/// Corrupted inputs either load or fail with diagnostics; none may crash or hang.
final class MutationTests: XCTestCase {
    /// SplitMix64: a fixed seed gives the same mutations on every machine.
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
        mutating func pick<T>(_ xs: [T]) -> T { xs[below(xs.count)] }
    }

    static let fragments: [String] = [
        "%", "@", "\"", "{", "}", "(", ")", "[", "]", ",", "=", ":", "#", "//", "\n", " ", "-", "0", "-1",
        "99999999999999999999", "9223372036854775807", "-9223372036854775808", "2147483647", "1e308", "nan", "inf",
        "N", "f32", "i32", "param", "graph", "return", "import", "call", "@vgg_face", "%x", "conv2d", "max_pool",
        "reshape", "{shape=[0,-1]}", "{axis=-7}", "{kernel=0}", "{pad=-3}", "{stride=[0,1]}", "{perm=[1,1]}",
        "{axes=[0,0]}", "{start=5, end=2}", "{groups=0}", "{output=\"\"}", "é", "日本", "\u{0}", "\t", "\r\n",
        "f32[N,N,N]", "f32[]", "{global=true}", "{round=ceil}", "{frozen=1}",
    ]
    static let invalidBytes: [[UInt8]] = [[0xFF], [0xC0, 0x80], [0xE2, 0x82], [0xF5, 0x80, 0x80, 0x80], [0xED, 0xA0, 0x80], [0x80]]

    static func mutate(_ input: [UInt8], _ rng: inout Rng) -> [UInt8] {
        var b = input
        let rounds = 1 + rng.below(3)
        for _ in 0..<rounds {
            let at = rng.below(b.count + 1)
            switch rng.below(9) {
            case 0: if !b.isEmpty { b.remove(at: min(at, b.count - 1)) }  // delete a byte
            case 1: b.insert(UInt8(rng.below(256)), at: at)  // insert a byte
            case 2: if !b.isEmpty { b[min(at, b.count - 1)] = UInt8(32 + rng.below(95)) }  // replace with ASCII
            case 3: b.insert(contentsOf: Array(rng.pick(fragments).utf8), at: at)  // insert a token or UTF-8 text
            case 4: b.insert(contentsOf: rng.pick(invalidBytes), at: at)  // invalid UTF-8
            case 5: b = Array(b.prefix(at))  // truncate
            case 6:  // duplicate a line
                var lines = b.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
                let k = rng.below(lines.count)
                lines.insert(lines[k], at: rng.below(lines.count + 1))
                b = Array(lines.joined(separator: [0x0A]))
            case 7:  // swap two tokens (space-separated words)
                var words = b.split(separator: 0x20, omittingEmptySubsequences: false).map(Array.init)
                if words.count > 1 {
                    words.swapAt(rng.below(words.count), rng.below(words.count))
                    b = Array(words.joined(separator: [0x20]))
                }
            default:  // delete a span
                let end = min(b.count, at + rng.below(40))
                if at < end { b.removeSubrange(at..<end) }
            }
        }
        return b
    }

    func testMutationsNeverCrashOrHang() {
        let files = Repo.files(in: Repo.graphs) + Repo.files(in: Repo.goldens, prefix: "print_")
        XCTAssertFalse(files.isEmpty)
        let perFile = 3000 / files.count + 1
        var rng = Rng(state: 0x00F2_E2E1)
        var (clean, rejected) = (0, 0)
        var slowest = (0.0, "")
        for file in files {
            let original = [UInt8](FileManager.default.contents(atPath: file) ?? Data())
            for k in 0..<perFile {
                let bytes = Self.mutate(original, &rng)
                let start = Date()
                do {
                    let program = try Loader.load(bytes: bytes, file: file)
                    // A clean load prints, and the print loads again.
                    _ = try Loader.load(text: Printer.print(program.verifiedRoot), file: file)
                    clean += 1
                } catch let list as DiagnosticList {
                    XCTAssertFalse(list.diagnostics.isEmpty, "\(file) mutation \(k): an empty diagnostic list")
                    rejected += 1
                } catch {
                    XCTFail("\(file) mutation \(k): \(error) is not a diagnostic list")
                }
                let seconds = Date().timeIntervalSince(start)
                if seconds > slowest.0 { slowest = (seconds, "\((file as NSString).lastPathComponent) #\(k)") }
            }
        }
        XCTAssertGreaterThanOrEqual(clean + rejected, 3000)
        XCTAssertGreaterThan(rejected, 0)
        XCTAssertLessThan(slowest.0, 2.0, "mutation \(slowest.1) took \(slowest.0) s")
        print("mutations: \(clean) loaded, \(rejected) rejected with diagnostics, slowest \(slowest.1) \(String(format: "%.3f", slowest.0)) s")
    }
}
