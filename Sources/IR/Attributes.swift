/// An attribute value as written in `{name=value, ...}`.
public enum AttrValue: Hashable, Sendable, CustomStringConvertible {
    case int(Int)
    case float(Double)
    case bool(Bool)
    case string(String)
    /// A bare word from a fixed set, such as `ceil` or `across_channels`.
    case word(String)
    case ints([Int])
    case floats([Double])

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .float(let v): return formatFloat(v)
        case .bool(let v): return v ? "true" : "false"
        case .string(let s): return quoteString(s)
        case .word(let w): return w
        case .ints(let vs): return "[" + vs.map(String.init).joined(separator: ",") + "]"
        case .floats(let vs): return "[" + vs.map(formatFloat).joined(separator: ",") + "]"
        }
    }
}

/// Shortest text that reads back as the same Double, always with a point or exponent.
public func formatFloat(_ v: Double) -> String {
    if v.isNaN { return "nan" }
    if v.isInfinite { return v < 0 ? "-inf" : "inf" }
    return v.description
}

/// A string literal with `"` and `\` and control characters escaped.
public func quoteString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += "\\u{\(String(u.value, radix: 16))}" } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

/// What an attribute may hold; the parser reads a value by its kind and the verifier checks ranges.
public enum AttrKind: Hashable, Sendable, CustomStringConvertible {
    case int, float, bool, string
    case word([String])
    /// A list of integers; `count` fixes its length when set.
    case ints(count: Int?)
    case floats

    public var description: String {
        switch self {
        case .int: return "an integer"
        case .float: return "a number"
        case .bool: return "true or false"
        case .string: return "a string"
        case .word(let ws): return "one of " + ws.joined(separator: ", ")
        case .ints(let c): return c.map { "a list of \($0) integers" } ?? "a list of integers"
        case .floats: return "a list of numbers"
        }
    }
}

/// The values an attribute may take beyond its kind. Every number is also bounded whatever the
/// range: floats finite, integers within `maxDimension` (so shape arithmetic cannot overflow).
public enum AttrRange: Sendable {
    case any, positive, nonNegative
    /// [0, 1): a probability that leaves something (dropout's ratio).
    case probability
    /// [0, 1]: a weight (batch_norm's momentum).
    case fraction

    /// Why `v` is out of range, or nil.
    public func problem(_ v: AttrValue) -> String? {
        let ints: [Int]? = { if case .int(let i) = v { return [i] }; if case .ints(let s) = v { return s }; return nil }()
        switch (self, v) {
        case (.positive, _) where ints.map({ !$0.allSatisfy { $0 > 0 } }) ?? false: return "must be positive"
        case (.nonNegative, _) where ints.map({ !$0.allSatisfy { $0 >= 0 } }) ?? false: return "must not be negative"
        case (.probability, .float(let r)) where !(r >= 0 && r < 1): return "must be in [0, 1)"
        case (.fraction, .float(let r)) where !(r >= 0 && r <= 1): return "must be in [0, 1]"
        case (_, .float(let f)) where !f.isFinite: return "must be finite"
        case (_, .floats(let fs)) where !fs.allSatisfy(\.isFinite): return "must be finite"
        case (_, _) where ints.map({ !$0.allSatisfy { $0.magnitude <= UInt(maxDimension) } }) ?? false: return "is out of range"
        default: return nil
        }
    }
}

/// One attribute an op accepts; `defaultValue == nil` means it is required.
public struct AttrSpec: Sendable {
    public var name: String
    public var kind: AttrKind
    public var defaultValue: AttrValue?
    public var range: AttrRange

    public init(_ name: String, _ kind: AttrKind, _ defaultValue: AttrValue? = nil, range: AttrRange = .any) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.range = range
    }
}

/// A node's attributes with the op's defaults filled in.
public struct Attrs: Hashable, Sendable {
    public var values: [String: AttrValue]

    public init(_ values: [String: AttrValue] = [:]) { self.values = values }

    public subscript(name: String) -> AttrValue? {
        get { values[name] }
        set { values[name] = newValue }
    }

    public func int(_ name: String) -> Int {
        if case .int(let v)? = values[name] { return v }
        preconditionFailure("attribute \(name) is not an int: \(String(describing: values[name]))")
    }

    public func float(_ name: String) -> Double {
        switch values[name] {
        case .float(let v)?: return v
        case .int(let v)?: return Double(v)
        default: preconditionFailure("attribute \(name) is not a number")
        }
    }

    public func bool(_ name: String) -> Bool {
        if case .bool(let v)? = values[name] { return v }
        preconditionFailure("attribute \(name) is not a bool")
    }

    public func ints(_ name: String) -> [Int] {
        if case .ints(let v)? = values[name] { return v }
        preconditionFailure("attribute \(name) is not an int list")
    }

    public func floats(_ name: String) -> [Double] {
        if case .floats(let v)? = values[name] { return v }
        preconditionFailure("attribute \(name) is not a number list")
    }

    public func string(_ name: String) -> String {
        switch values[name] {
        case .string(let s)?, .word(let s)?: return s
        default: preconditionFailure("attribute \(name) is not a string")
        }
    }

    /// A pair attribute such as `stride=[2,2]`.
    public func pair(_ name: String) -> (Int, Int) {
        let v = ints(name)
        return (v[0], v[1])
    }
}
