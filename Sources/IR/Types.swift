/// Element types of IR values: `f32` for data and parameters, `i32` for class labels.
public enum DType: String, CaseIterable, Hashable, Sendable {
    case f32, i32

    /// Bytes per element.
    public var size: Int { 4 }
}

/// One dimension of a shape: a number, the batch size `N`, or another named size (`K`, a class
/// count) that is the same wherever the program names it. Both symbolic kinds are bound when a
/// graph is compiled.
public enum Dim: Hashable, Sendable, CustomStringConvertible {
    case fixed(Int)
    case batch
    case symbol(String)

    public var description: String {
        switch self {
        case .fixed(let n): return String(n)
        case .batch: return "N"
        case .symbol(let name): return name
        }
    }

    /// The size when the dimension is not symbolic.
    public var value: Int? {
        if case .fixed(let n) = self { return n }
        return nil
    }
}

/// The type of a value: element type and shape, printed `f32[N,3,224,224]`; `f32[]` is a scalar.
public struct TensorType: Hashable, Sendable, CustomStringConvertible {
    public var dtype: DType
    public var dims: [Dim]

    public init(_ dtype: DType, _ dims: [Dim]) {
        self.dtype = dtype
        self.dims = dims
    }

    public init(_ dtype: DType, fixed: [Int]) {
        self.init(dtype, fixed.map { .fixed($0) })
    }

    public var rank: Int { dims.count }
    public var description: String { "\(dtype)[\(dims.map(\.description).joined(separator: ","))]" }
    public var isScalar: Bool { dims.isEmpty }

    /// Concrete sizes, or nil while the batch dimension is unbound.
    public var shape: [Int]? {
        var out: [Int] = []
        for d in dims {
            guard let v = d.value else { return nil }
            out.append(v)
        }
        return out
    }

    /// Element count for a bound batch size.
    public func count(batch: Int) -> Int {
        dims.reduce(1) { $0 * ($1.value ?? batch) }
    }

    /// The same type with `N` replaced by `batch`.
    public func bound(batch: Int) -> TensorType {
        TensorType(dtype, dims.map { $0 == .batch ? .fixed(batch) : $0 })
    }

    public var usesBatch: Bool { dims.contains(.batch) }

    /// The named sizes other than `N` the type uses.
    public var symbols: [String] {
        dims.compactMap { if case .symbol(let name) = $0 { return name } else { return nil } }
    }

    /// The same type with named sizes replaced by their values (those not given stay symbolic).
    public func bound(symbols values: [String: Int]) -> TensorType {
        TensorType(dtype, dims.map { d in
            if case .symbol(let name) = d, let v = values[name] { return .fixed(v) }
            return d
        })
    }
}

/// A place in a source file: 1-based line and column (in bytes).
public struct SourceLoc: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}
