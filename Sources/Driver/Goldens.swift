import Foundation

/// Golden-file cases: `NAME.fn2e` names its stage on a line `# RUN: STAGE [--batch N] [--graph NAME] [--loss NAME] [--bind K=V]`
/// (default `check`), and `NAME.fn2e.expected` beside it holds what the stage prints (stdout, then
/// diagnostics, then `exit: STATUS` when it is not 0). One runner serves `swift test` and
/// `fn2e-compile test DIR`. With `update`, mismatching expectations are rewritten in place and the
/// case still fails, so a recording run can never pass.
public enum Goldens {
    public struct Outcome {
        public var file: String
        public var passed: Bool
        /// A line diff of expected against actual, empty when the case passed.
        public var diff: String
    }

    /// The `.fn2e` cases of `directory`, sorted by name.
    public static func cases(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".fn2e") }.sorted().map { directory + "/" + $0 }
    }

    /// What the case's stage prints, with the case's folder stripped from file names.
    public static func actual(for file: String) -> String {
        let data = FileManager.default.contents(atPath: file) ?? Data()
        let text = String(decoding: data, as: UTF8.self)
        var stage = "check"
        var options = Stages.StageOptions()
        for line in text.split(separator: "\n") where line.hasPrefix("# RUN:") {
            var words = line.dropFirst(6).split(separator: " ").map(String.init)
            if !words.isEmpty { stage = words.removeFirst() }
            while words.count >= 2 {
                let (k, v) = (words.removeFirst(), words.removeFirst())
                if k == "--batch" { options.batch = Int(v) } else if k == "--graph" { options.graph = v } else if k == "--loss" { options.loss = v }
                if k == "--bind" { try? options.bind(v) }
            }
            break
        }
        let out = Stages.run(stage, path: file, options: options)
        let dir = (file as NSString).deletingLastPathComponent + "/"
        var s = out.combined.replacingOccurrences(of: dir, with: "")
        if out.status != 0 { s += "exit: \(out.status)\n" }
        return s
    }

    public static func run(directory: String, update: Bool) -> [Outcome] {
        cases(in: directory).map { file in
            let expectedPath = file + ".expected"
            let got = actual(for: file)
            let want = (FileManager.default.contents(atPath: expectedPath)).map { String(decoding: $0, as: UTF8.self) }
            if want == got { return Outcome(file: file, passed: true, diff: "") }
            if update { try? got.write(toFile: expectedPath, atomically: true, encoding: .utf8) }
            let diff = want.map { lineDiff($0, got) } ?? "missing \(expectedPath)\n" + got
            return Outcome(file: file, passed: false, diff: diff + (update ? "(rewritten: \(expectedPath))\n" : ""))
        }
    }

    /// A unified-style line diff (`-` expected, `+` actual) from a longest common subsequence.
    public static func lineDiff(_ a: String, _ b: String) -> String {
        let x = a.split(separator: "\n", omittingEmptySubsequences: false)
        let y = b.split(separator: "\n", omittingEmptySubsequences: false)
        let n = x.count, m = y.count
        var lcs = Array(repeating: Array(repeating: 0, count: m + 1), count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                lcs[i][j] = x[i] == y[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        var out = ""
        var i = 0, j = 0
        while i < n || j < m {
            if i < n, j < m, x[i] == y[j] {
                i += 1; j += 1
            } else if j < m, i == n || lcs[i][j + 1] >= lcs[i + 1][j] {
                out += "+\(y[j])  (line \(j + 1))\n"; j += 1
            } else {
                out += "-\(x[i])  (line \(i + 1))\n"; i += 1
            }
        }
        return out
    }
}
