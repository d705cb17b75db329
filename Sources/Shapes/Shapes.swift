// The shape formulas the IR's shape inference, the fast kernels and the Double reference all use:
// one copy, so they cannot disagree. No dependencies; every stage may import it.

/// Output size of a convolution along one axis: `(input + 2 pad - (dilation (kernel - 1) + 1)) / stride + 1`, floored.
public func convOutputSize(input: Int, kernel: Int, stride: Int, pad: Int, dilation: Int) -> Int {
    (input + 2 * pad - (dilation * (kernel - 1) + 1)) / stride + 1
}

/// Output size of a pooling window along one axis. Floor mode: `(input + 2 pad - kernel) / stride + 1`.
/// Ceil mode (Caffe): `ceil((input + 2 pad - kernel) / stride) + 1`, minus one when the last window
/// would start inside the padding (`pad > 0 && (out - 1) stride >= input + pad`).
public func poolOutputSize(input: Int, kernel: Int, stride: Int, pad: Int, ceil: Bool) -> Int {
    let span = input + 2 * pad - kernel
    if !ceil { return span / stride + 1 }
    var out = (span + stride - 1) / stride + 1
    if pad > 0 && (out - 1) * stride >= input + pad { out -= 1 }
    return out
}

/// NumPy broadcasting of two shapes: aligned from the right, each pair of dimensions equal or one of
/// them `one`, which stretches; nil when they do not broadcast. Generic so that the IR can broadcast
/// symbolic dimensions.
public func broadcastShapes<D: Equatable>(_ a: [D], _ b: [D], one: D) -> [D]? {
    let r = max(a.count, b.count)
    var out: [D] = []
    for k in 0..<r {
        let da = k < r - a.count ? one : a[k - (r - a.count)]
        let db = k < r - b.count ? one : b[k - (r - b.count)]
        if da == db || db == one { out.append(da) } else if da == one { out.append(db) } else { return nil }
    }
    return out
}

/// `broadcastShapes` of concrete shapes.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? { broadcastShapes(a, b, one: 1) }
