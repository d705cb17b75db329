/// A dense float32 tensor in row-major (C) order. `data.count == shape.reduce(1, *)`;
/// a scalar has `shape == []` and one element.
public struct Tensor: Equatable, Sendable {
    public var shape: [Int]
    public var data: [Float]

    /// A tensor over existing values. Traps if `data.count` does not match `shape`.
    public init(shape: [Int], data: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(data.count == shape.reduce(1, *),
                     "tensor data has \(data.count) values, shape \(shape) needs \(shape.reduce(1, *))")
        self.shape = shape
        self.data = data
    }

    /// The element count of `shape` times `elementSize`, or nil when a dimension is negative or
    /// the product overflows: what a reader checks against the bytes it has before allocating.
    public static func byteCount(_ shape: [Int], elementSize: Int = 1) -> Int? {
        var n = elementSize
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = p
        }
        return n
    }

    /// A tensor of zeros with the given shape.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// Gaussian values with mean 0 and standard deviation `std`, from `Xoshiro256(seed:)`:
    /// the same seed gives the same tensor on every run and platform.
    public init(shape: [Int], seed: UInt64, std: Float = 1) {
        var rng = Xoshiro256(seed: seed)
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n { values[i] = rng.nextGaussian() * std }
        self.init(shape: shape, data: values)
    }

    /// Number of elements (product of `shape`).
    public var count: Int { data.count }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The same values under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        guard newShape.reduce(1, *) == count else {
            throw TensorError.shape("cannot reshape \(shape) (\(count) values) to \(newShape)")
        }
        return Tensor(shape: newShape, data: data)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = data.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "f32\(shape) [\(head)\(count > 8 ? ", ..." : "")]"
    }
}
