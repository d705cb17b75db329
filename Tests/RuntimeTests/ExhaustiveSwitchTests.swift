import Foundation
import XCTest

/// Every `switch` over an op (`Op`) or a lowered kernel call (`KernelCall`) in Sources/ lists its
/// cases: no `default:`, so adding an op makes the compiler name every place that must handle it.
/// Nor is there a `default:` in disguise: a chain of `if case .x = op { return … }` lines that
/// ends in `return nil` for every other op.
final class ExhaustiveSwitchTests: XCTestCase {
    /// The `default:` lines of switches over ops or kernel calls in `text`, and how many such
    /// switches there are. A switch is over ops when its subject is `op`, `….op`, `call`, `….call`,
    /// or `self` inside `enum`/`extension` `Op` or `KernelCall`.
    static let typeDecl = try! NSRegularExpression(pattern: #"^\s*(?:public\s+|private\s+)?(?:enum|extension|struct|final class|class)\s+(\w+)"#)

    /// Whether `s` names an op or a kernel call: `op`, `….op`, `call`, `….call`, or `self` inside `Op` or `KernelCall`.
    static func isOpSubject(_ s: String, enclosing: String) -> Bool {
        s == "op" || s.hasSuffix(".op") || s == "call" || s.hasSuffix(".call") || (s == "self" && (enclosing == "Op" || enclosing == "KernelCall"))
    }

    static func scan(_ text: String) -> (switches: Int, defaults: [Int]) {
        let (n, defaults) = scanSwitches(text)
        return (n, (defaults + scanIfCaseChains(text)).sorted())
    }

    /// The `return nil` lines that end a chain of `if case … = SUBJECT { … return … }` statements
    /// over ops or kernel calls (subjects as for switches), on one line or several, or that make its
    /// `else { return nil }`.
    static func scanIfCaseChains(_ text: String) -> [Int] {
        let lines = text.components(separatedBy: "\n")
        let ifCase = try! NSRegularExpression(pattern: #"^\s*if case\b.*=\s*([A-Za-z_.]+)\s*\{"#)
        let elseNil = try! NSRegularExpression(pattern: #"\belse\s*\{\s*(return nil)\s*\}"#)
        var found: [Int] = [], enclosing = "", inChain = false, i = 0
        while i < lines.count {
            let line = lines[i], range = NSRange(line.startIndex..., in: line)
            if let m = Self.typeDecl.firstMatch(in: line, range: range) { enclosing = String(line[Range(m.range(at: 1), in: line)!]) }
            if let m = ifCase.firstMatch(in: line, range: range) {
                // The statement runs to the line where its braces balance.
                var depth = 0, end = i
                for j in i..<lines.count {
                    depth += lines[j].filter { $0 == "{" }.count - lines[j].filter { $0 == "}" }.count
                    end = j
                    if depth <= 0 { break }
                }
                let statement = lines[i...end].joined(separator: "\n")
                inChain = isOpSubject(String(line[Range(m.range(at: 1), in: line)!]), enclosing: enclosing) && statement.contains("return")
                if inChain, let e = elseNil.firstMatch(in: statement, range: NSRange(statement.startIndex..., in: statement)) {
                    let before = statement.utf16.prefix(e.range(at: 1).location)
                    found.append(i + 1 + before.filter { $0 == 10 }.count)
                }
                i = end + 1
                continue
            }
            if inChain, line.trimmingCharacters(in: .whitespaces) == "return nil" { found.append(i + 1) }
            if !line.trimmingCharacters(in: .whitespaces).isEmpty { inChain = false }
            i += 1
        }
        return found
    }

    static func scanSwitches(_ text: String) -> (switches: Int, defaults: [Int]) {
        let lines = text.components(separatedBy: "\n")
        let subject = try! NSRegularExpression(pattern: #"\bswitch\s+([A-Za-z_.]+)\s*\{"#)
        var switches = 0, defaults: [Int] = []
        var enclosing = ""
        for (i, line) in lines.enumerated() {
            let range = NSRange(line.startIndex..., in: line)
            if let m = Self.typeDecl.firstMatch(in: line, range: range) { enclosing = String(line[Range(m.range(at: 1), in: line)!]) }
            guard let m = subject.firstMatch(in: line, range: range) else { continue }
            let s = String(line[Range(m.range(at: 1), in: line)!])
            guard isOpSubject(s, enclosing: enclosing) else { continue }
            switches += 1
            // Walk the switch body by braces; `default:` at the switch's own depth is the finding.
            var depth = 0
            var started = false
            let open = line[line.index(line.startIndex, offsetBy: m.range.location)...]
            scanning: for (j, l) in ([String(open)] + lines[(i + 1)...]).enumerated() {
                for ch in l {
                    if ch == "{" { depth += 1; started = true }
                    if ch == "}" { depth -= 1 }
                    if started && depth == 0 { break scanning }
                }
                if depth == 1, l.trimmingCharacters(in: .whitespaces).hasPrefix("default:") { defaults.append(i + j + 1) }
            }
        }
        return (switches, defaults)
    }

    func testNoDefaultInSwitchesOverOps() throws {
        let sources = Repo.root + "/Sources"
        let files = FileManager.default.enumerator(atPath: sources)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        var total = 0
        for f in files.sorted() {
            let (n, defaults) = Self.scan(try String(contentsOfFile: sources + "/" + f, encoding: .utf8))
            total += n
            for line in defaults { XCTFail("Sources/\(f):\(line): default: in a switch over ops, or an if-case chain over ops ending in return nil") }
        }
        // The op table, shape inference, autodiff, the reference interpreter, lowering and the
        // executor each switch over every op or kernel call.
        XCTAssertGreaterThanOrEqual(total, 8, "the scan found too few switches over ops to mean anything")
    }

    /// The scanner is not vacuous: it finds a default in a switch over ops, and only there.
    func testScannerFindsADefault() {
        let text = """
            func f(n: Node) -> Int {
                switch n.op {
                case .relu: return 1
                default:
                    switch x { default: return 0 }
                }
            }
            func g(v: Int) -> Int {
                switch v {
                default: return 2
                }
            }
            extension KernelCall {
                var algorithm: ConvAlgorithm? {
                    if case .conv2d(_, _, let a) = self { return a }
                    if case .conv2dBackwardData(_, let a) = self { return a }
                    return nil
                }
            }
            func h(v: Int?) -> Int? {
                if case .some(let x) = v { return x }
                return nil
            }
            func flops(_ k: Kernel) -> Int? {
                if case let .linear(rows, inputs, outputs, _) = k.call {
                    return 2 * rows * inputs * outputs
                }

                return nil
            }
            func bias(_ n: Node) -> String? {
                if case .conv2d = n.op { return n.operands[2] } else { return nil }
            }
            func slope(_ n: Node) -> String? {
                if case .prelu = n.op {
                    return n.operands[1]
                } else {
                    return nil
                }
            }
            """
        let (n, defaults) = Self.scan(text)
        XCTAssertEqual(n, 1)
        XCTAssertEqual(defaults, [4, 17, 29, 32, 38])
    }
}
