// Errors of the Caffe reading layer, printed as `file:line:col: error: message`.

/// A place in a prototxt: 1-based line and column (columns count bytes).
public struct CaffeSourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
    public var description: String { "\(line):\(column)" }
}

/// An error found while reading or writing a Caffe file. `location` is nil for binary files, whose
/// messages name the byte offset instead.
public struct CaffeError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var location: CaffeSourceLocation?
    public var message: String

    public init(file: String, location: CaffeSourceLocation? = nil, _ message: String) {
        self.file = file
        self.location = location
        self.message = message
    }

    /// One line: `file:line:col: error: message` (or `file: error: message`).
    public var description: String {
        if let location { return "\(file):\(location.line):\(location.column): error: \(message)" }
        return "\(file): error: \(message)"
    }

    /// The one-line form followed by the offending source line and a caret under the column.
    public func rendered(source: String) -> String {
        guard let location else { return description }
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        guard location.line >= 1, location.line <= lines.count else { return description }
        let text = String(lines[location.line - 1])
        let caret = String(repeating: " ", count: max(0, location.column - 1)) + "^"
        return "\(description)\n\(text)\n\(caret)"
    }
}
