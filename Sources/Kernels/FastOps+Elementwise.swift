import Foundation
import Shapes

extension FastOps {
    // MARK: - Activations (y may alias x)

    /// Leaky ReLU: `y = x > 0 ? x : negativeSlope · x` over `count` values.
    public static func relu(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int, negativeSlope: Float = 0) {
        Parallel.forChunks(count) { r in for i in r { let v = x[i]; y[i] = v > 0 ? v : v * negativeSlope } }
    }

    /// `dx = x > 0 ? dy : negativeSlope · dy`.
    public static func reluBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                    count: Int, negativeSlope: Float = 0) {
        Parallel.forChunks(count) { r in for i in r { dx[i] = x[i] > 0 ? dy[i] : dy[i] * negativeSlope } }
    }

    /// PReLU over x `[N, C, spatial]`: `slopeCount` is C (per channel) or 1 (shared).
    public static func prelu(x: UnsafePointer<Float>, slope: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                             batch: Int, channels: Int, spatial: Int, slopeCount: Int) {
        Parallel.forChunks(batch * channels, costPerItem: spatial) { planes in
            for p in planes {
                let a = slope[slopeCount == 1 ? 0 : p % channels]
                let (s, d) = (x + p * spatial, y + p * spatial)
                // Explicit vectors: in place (x = y, as scheduled), the compiler's overlap check
                // would send its own vector loop to the scalar one.
                var i = 0
                while i + 16 <= spatial {
                    let v = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(d + i).storeBytes(of: v.replacing(with: v * a, where: .!(v .> 0)), as: SIMD16<Float>.self)
                    i += 16
                }
                for i in i..<spatial { let v = s[i]; d[i] = v > 0 ? v : v * a }
            }
        }
    }

    /// Gradients of `prelu`: dx `[N, C, spatial]` (overwritten) and dslope `[slopeCount]` (overwritten).
    public static func preluBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, slope: UnsafePointer<Float>,
                                     dx: UnsafeMutablePointer<Float>, dslope: UnsafeMutablePointer<Float>?,
                                     batch: Int, channels: Int, spatial: Int, slopeCount: Int) {
        dslope?.update(repeating: 0, count: slopeCount)
        for p in 0..<(batch * channels) {
            let ch = slopeCount == 1 ? 0 : p % channels
            let a = slope[ch]
            let (g, s, d) = (dy + p * spatial, x + p * spatial, dx + p * spatial)
            var acc: Float = 0
            for i in 0..<spatial {
                let v = s[i]
                d[i] = v > 0 ? g[i] : g[i] * a
                acc += v > 0 ? 0 : v * g[i]
            }
            dslope?[ch] += acc
        }
    }

    /// The slope gradient of `prelu` alone, `dslope [slopeCount]` (overwritten): `preluBackward`
    /// with slopes of 1, so its dslope is the plain sum. `workspace`: slices `dx` (`N·C·spatial`
    /// floats, thrown away) and `ones` (`slopeCount`).
    public static func preluBackwardSlope(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dslope: UnsafeMutablePointer<Float>,
                                          batch: Int, channels: Int, spatial: Int, slopeCount: Int, workspace: Workspace) {
        let ones = workspace.slice("ones")
        ones.update(repeating: 1, count: slopeCount)
        preluBackward(dy: dy, x: x, slope: ones, dx: workspace.slice("dx"), dslope: dslope, batch: batch, channels: channels,
                      spatial: spatial, slopeCount: slopeCount)
    }

    /// `y = 1 / (1 + e^(−x))`.
    public static func sigmoid(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forChunks(count, costPerItem: 8) { r in for i in r { y[i] = 1 / (1 + expf(-x[i])) } }
    }

    /// Gradient of sigmoid from its output: `dx = dy · y · (1 − y)`.
    public static func sigmoidBackward(dy: UnsafePointer<Float>, y: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forChunks(count) { r in for i in r { dx[i] = dy[i] * y[i] * (1 - y[i]) } }
    }

    /// `y = tanh(x)`.
    public static func tanh(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forChunks(count, costPerItem: 8) { r in for i in r { y[i] = tanhf(x[i]) } }
    }

    /// Gradient of tanh from its output: `dx = dy · (1 − y²)`.
    public static func tanhBackward(dy: UnsafePointer<Float>, y: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forChunks(count) { r in for i in r { dx[i] = dy[i] * (1 - y[i] * y[i]) } }
    }

    /// `y = x · scale + shift` with scalars.
    public static func affine(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float) {
        Parallel.forChunks(count) { r in for i in r { y[i] = x[i] * scale + shift } }
    }

    /// Dropout with a precomputed mask (0 or 1/(1 − ratio), Caffe's inverted dropout): `y = x · mask`.
    /// The backward pass is the same call on dy.
    public static func dropout(x: UnsafePointer<Float>, mask: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forChunks(count) { r in for i in r { y[i] = x[i] * mask[i] } }
    }

    // MARK: - Per-channel ops over [N, C, spatial]

    /// `y = x · scale[c] (+ bias[c])`, then the activation; `scale` nil means 1 (a plain per-channel bias add).
    /// With `normalizing` (x's per-channel statistics, `[2, C]` as `batchMoments` wrote them, and eps), x is
    /// normalized first, `(x − mean[c]) / sqrt(var[c] + eps)`: `batch_norm_train` and the scale after it in
    /// one pass over the activation, the normalized x never written (rounded as `batchNormTrain` rounds it).
    public static func channelScale(x: UnsafePointer<Float>, scale: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                    y: UnsafeMutablePointer<Float>, batch: Int, channels: Int, spatial: Int, activation: Activation = .none,
                                    normalizing: Normalizing? = nil) {
        Parallel.forChunks(batch * channels, costPerItem: spatial) { planes in
            for p in planes {
                let c = p % channels
                let (m, inv) = normalization(normalizing, c, channels: channels)
                let (g, b) = (scale?[c] ?? 1, bias?[c] ?? 0)
                let (s, d) = (x + p * spatial, y + p * spatial)
                for i in 0..<spatial { d[i] = (s[i] - m) * inv * g + b }
                if case .relu(let slope) = activation { for i in 0..<spatial { d[i] = d[i] > 0 ? d[i] : d[i] * slope } }
            }
        }
    }

    /// Batch norm, inference form: `y = (x − mean[c]) / sqrt(variance[c] + eps)`.
    public static func batchNorm(x: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>, eps: Float,
                                 y: UnsafeMutablePointer<Float>, batch: Int, channels: Int, spatial: Int) {
        Parallel.forChunks(batch * channels, costPerItem: spatial) { planes in
            for p in planes {
                let c = p % channels
                let inv = 1 / (variance[c] + eps).squareRoot(), m = mean[c]
                let (s, d) = (x + p * spatial, y + p * spatial)
                for i in 0..<spatial { d[i] = (s[i] - m) * inv }
            }
        }
    }

    /// Gradients of `batchNorm` for x (optional), mean `[C]` and variance `[C]` (optional, overwritten).
    public static func batchNormBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: UnsafePointer<Float>,
                                         variance: UnsafePointer<Float>, eps: Float, dx: UnsafeMutablePointer<Float>?,
                                         dmean: UnsafeMutablePointer<Float>?, dvariance: UnsafeMutablePointer<Float>?,
                                         batch: Int, channels: Int, spatial: Int) {
        dmean?.update(repeating: 0, count: channels)
        dvariance?.update(repeating: 0, count: channels)
        for p in 0..<(batch * channels) {
            let c = p % channels
            let v = variance[c] + eps
            let inv = 1 / v.squareRoot(), m = mean[c]
            let (g, s) = (dy + p * spatial, x + p * spatial)
            if let dx { let d = dx + p * spatial; for i in 0..<spatial { d[i] = g[i] * inv } }
            var sg: Float = 0, sgx: Float = 0
            for i in 0..<spatial { sg += g[i]; sgx += g[i] * (s[i] - m) }
            dmean?[c] -= sg * inv
            dvariance?[c] += -0.5 * sgx * inv / v
        }
    }

    // MARK: - Broadcasting binary ops

    public enum BinaryOp: String, CaseIterable, Sendable { case add, sub, mul, div, maximum }

    /// Strides of `shape` read as the (right-aligned) broadcast `outShape`: 0 along broadcast dims.
    static func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
        var s = [Int](repeating: 0, count: outShape.count)
        var acc = 1
        let off = outShape.count - shape.count
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i + off] = shape[i] == 1 ? 0 : acc
            acc *= shape[i]
        }
        return s
    }

    @inline(__always)
    static func apply(_ op: BinaryOp, _ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                      _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        // One loop per op and stride pattern (f inlined into each), so each one vectorises.
        @inline(__always) func loop(_ f: (Float, Float) -> Float) {
            if sa == 1 && sb == 1 { for i in 0..<n { y[i] = f(a[i], b[i]) } }
            else if sa == 1 && sb == 0 { let v = b[0]; for i in 0..<n { y[i] = f(a[i], v) } }
            else { for i in 0..<n { y[i] = f(a[i * sa], b[i * sb]) } }
        }
        switch op {
        case .add: loop(+)
        case .sub: loop(-)
        case .mul: loop(*)
        case .div: loop(/)
        case .maximum: loop(Swift.max)
        }
    }

    /// `y = a op b` with NumPy broadcasting; y has `broadcastShape(aShape, bShape)` (any rank).
    /// Same shapes and a per-row operand (e.g. `[1, C, 1, 1]` against `[N, C, H, W]`) take contiguous paths.
    /// `outShape`, if given, is a shape both operands broadcast to (a broadcast beyond their own).
    public static func binary(_ op: BinaryOp, a: UnsafePointer<Float>, aShape: [Int], b: UnsafePointer<Float>, bShape: [Int],
                              y: UnsafeMutablePointer<Float>, outShape: [Int]? = nil) {
        guard let joint = broadcastShape(aShape, bShape), let shape = outShape ?? Optional(joint),
              broadcastShape(joint, shape) == shape else {
            preconditionFailure("\(op): cannot broadcast \(aShape) with \(bShape) to \(outShape.map { "\($0)" } ?? "their shape")")
        }
        let count = shape.reduce(1, *)
        if count == 0 { return }
        var sa = broadcastStrides(aShape, to: shape), sb = broadcastStrides(bShape, to: shape)
        // Merge adjacent dims with compatible strides so the inner loop is as long as possible.
        var dims = shape
        var i = dims.count - 1
        while i > 0 {
            if sa[i - 1] == sa[i] * dims[i] && sb[i - 1] == sb[i] * dims[i] {
                dims[i - 1] *= dims[i]; sa[i - 1] = sa[i]; sb[i - 1] = sb[i]
                dims.remove(at: i); sa.remove(at: i); sb.remove(at: i)
            }
            i -= 1
        }
        // Dims of size 1 carry no information; drop them (keeping at least one).
        let keep = dims.indices.filter { dims[$0] != 1 }
        if keep.isEmpty { apply(op, a, 0, b, 0, y, 1); return }
        dims = keep.map { dims[$0] }; sa = keep.map { sa[$0] }; sb = keep.map { sb[$0] }
        let inner = dims.last!, (ia, ib) = (sa.last!, sb.last!)
        let outer = count / inner
        let r = dims.count
        Parallel.forChunks(outer, costPerItem: inner) { rows in
            // Odometer over the outer dims, started at rows.lowerBound.
            var idx = [Int](repeating: 0, count: r)
            var rem = rows.lowerBound
            for d in stride(from: r - 2, through: 0, by: -1) { idx[d] = rem % dims[d]; rem /= dims[d] }
            var offA = 0, offB = 0
            for d in 0..<(r - 1) { offA += idx[d] * sa[d]; offB += idx[d] * sb[d] }
            for row in rows {
                apply(op, a + offA, ia, b + offB, ib, y + row * inner, inner)
                var d = r - 2
                while d >= 0 {
                    idx[d] += 1; offA += sa[d]; offB += sb[d]
                    if idx[d] < dims[d] { break }
                    offA -= sa[d] * dims[d]; offB -= sb[d] * dims[d]; idx[d] = 0
                    d -= 1
                }
            }
        }
    }

    /// y `[shape]` = x `[xShape]` broadcast to `shape` (NumPy rules), times `factor`.
    public static func broadcast(x: UnsafePointer<Float>, xShape: [Int], y: UnsafeMutablePointer<Float>, shape: [Int], factor: Float = 1) {
        var zero: Float = 0
        binary(.add, a: x, aShape: xShape, b: &zero, bShape: [1], y: y, outShape: shape)
        if factor != 1 { affine(x: y, y: y, count: shape.reduce(1, *), scale: factor, shift: 0) }
    }

    /// Gradient of `maximum` for one operand: dx `[shape]` = dy where that operand wins (operand 0:
    /// a ≥ b, operand 1: b > a, after broadcasting both to `shape`), else 0. `workspace`: `shape`'s count.
    public static func maximumBackward(a: UnsafePointer<Float>, aShape: [Int], b: UnsafePointer<Float>, bShape: [Int],
                                       dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, shape: [Int], operand: Int,
                                       workspace eb: UnsafeMutablePointer<Float>) {
        let count = shape.reduce(1, *)
        broadcast(x: a, xShape: aShape, y: dx, shape: shape)
        broadcast(x: b, xShape: bShape, y: eb, shape: shape)
        if operand == 0 {
            for i in 0..<count { dx[i] = dx[i] >= eb[i] ? dy[i] : 0 }
        } else {
            for i in 0..<count { dx[i] = eb[i] > dx[i] ? dy[i] : 0 }
        }
    }

    /// Gradient of `batch_norm` with given statistics: dx = dy / sqrt(variance[c] + eps), `[N, C, spatial]`.
    public static func batchNormGivenStatisticsBackward(dy: UnsafePointer<Float>, variance: UnsafePointer<Float>, eps: Float,
                                                        dx: UnsafeMutablePointer<Float>, batch: Int, channels: Int, spatial: Int) {
        Parallel.forChunks(batch * channels, costPerItem: spatial) { planes in
            for p in planes {
                let inv = 1 / (variance[p % channels] + eps).squareRoot()
                let (s, d) = (dy + p * spatial, dx + p * spatial)
                for i in 0..<spatial { d[i] = s[i] * inv }
            }
        }
    }

    /// A dropout mask: each element 0 with probability `ratio` (when `uniform()` < ratio), else 1 / (1 − ratio).
    public static func dropoutMask(y: UnsafeMutablePointer<Float>, count: Int, ratio: Float, uniform: () -> Float) {
        let keep = 1 / (1 - ratio)
        for i in 0..<count { y[i] = uniform() < ratio ? 0 : keep }
    }

    /// Sums g (shape `gShape`) down to `shape`, which broadcasts to `gShape` (right-aligned,
    /// dims 1 or equal): the gradient of a broadcast. out `[shape]` is overwritten.
    public static func reduceToShape(g: UnsafePointer<Float>, gShape: [Int], out: UnsafeMutablePointer<Float>, shape: [Int]) {
        precondition(broadcastShape(shape, gShape) == gShape, "reduceToShape: \(shape) does not broadcast to \(gShape)")
        let outCount = shape.reduce(1, *), count = gShape.reduce(1, *)
        out.update(repeating: 0, count: outCount)
        if count == 0 { return }
        if outCount == count { out.update(from: g, count: count); return }
        var so = broadcastStrides(shape, to: gShape)
        var dims = gShape
        var i = dims.count - 1
        while i > 0 {
            if so[i - 1] == so[i] * dims[i] || (so[i - 1] == 0 && so[i] == 0) {
                dims[i - 1] *= dims[i]; so[i - 1] = so[i]
                dims.remove(at: i); so.remove(at: i)
            }
            i -= 1
        }
        let inner = dims.last!, io = so.last!
        let outer = count / inner, r = dims.count
        var idx = [Int](repeating: 0, count: r)
        var off = 0
        for row in 0..<outer {
            let src = g + row * inner, dst = out + off
            if io == 0 {
                var s: Float = 0
                for k in 0..<inner { s += src[k] }
                dst[0] += s
            } else {
                for k in 0..<inner { dst[k * io] += src[k] }
            }
            var d = r - 2
            while d >= 0 {
                idx[d] += 1; off += so[d]
                if idx[d] < dims[d] { break }
                off -= so[d] * dims[d]; idx[d] = 0
                d -= 1
            }
        }
    }
}
