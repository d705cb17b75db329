/// An error or note with its place in a source file.
public struct Diagnostic: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning, note }

    public var severity: Severity
    public var message: String
    public var loc: SourceLoc?
    public var notes: [Diagnostic]

    public init(_ severity: Severity = .error, _ message: String, at loc: SourceLoc?, notes: [Diagnostic] = []) {
        self.severity = severity
        self.message = message
        self.loc = loc
        self.notes = notes
    }

    public static func error(_ message: String, at loc: SourceLoc?, notes: [Diagnostic] = []) -> Diagnostic {
        Diagnostic(.error, message, at: loc, notes: notes)
    }

    /// `file:line:col: error: message`, one line.
    public var description: String {
        let head = loc.map { "\($0): " } ?? ""
        return "\(head)\(severity.rawValue): \(message)"
    }
}

/// Several diagnostics reported together.
public struct DiagnosticList: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Source texts by file name, so that diagnostics can show the offending line with a caret.
public final class SourceManager: @unchecked Sendable {
    private var lines: [String: [Substring]] = [:]

    public init() {}

    public func add(file: String, text: String) {
        lines[file] = text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    public func line(_ loc: SourceLoc) -> Substring? {
        guard let ls = lines[loc.file], loc.line >= 1, loc.line <= ls.count else { return nil }
        return ls[loc.line - 1]
    }

    /// The diagnostic, the source line and a caret under the column; notes follow, each the same way.
    public func render(_ d: Diagnostic) -> String {
        var out = d.description
        if let loc = d.loc, let text = line(loc) {
            let shown = text.replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "\r", with: "")
            // Columns count bytes; pad with as many characters as the line has before the column.
            let prefix = shown.utf8.prefix(max(0, loc.column - 1))
            let pad = String(decoding: prefix, as: UTF8.self).count
            out += "\n" + shown + "\n" + String(repeating: " ", count: pad) + "^"
        }
        for n in d.notes { out += "\n" + render(n) }
        return out
    }

    public func render(_ ds: [Diagnostic]) -> String {
        ds.map { render($0) }.joined(separator: "\n")
    }
}
