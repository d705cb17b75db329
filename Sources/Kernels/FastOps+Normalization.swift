import Foundation

extension FastOps {
    /// Channels `lo..<hi` of channel `c`'s LRN window: Caffe pads `(size − 1) / 2` before.
    @inline(__always)
    static func lrnWindow(_ c: Int, size: Int, channels: Int) -> (Int, Int) {
        let start = c - (size - 1) / 2
        return (max(start, 0), min(start + size, channels))
    }

    /// The LRN scale `k + alpha/size · Σ x²` over each channel's window, for one image:
    /// x `[C, spatial]` → scale `[C, spatial]`.
    static func lrnScale(_ x: UnsafePointer<Float>, _ scale: UnsafeMutablePointer<Float>, channels: Int, spatial: Int,
                         size: Int, alpha: Float, k: Float) {
        let a = alpha / Float(size)
        for c in 0..<channels {
            let s = scale + c * spatial
            s.update(repeating: k, count: spatial)
            let (lo, hi) = lrnWindow(c, size: size, channels: channels)
            for j in lo..<hi {
                let v = x + j * spatial
                for i in 0..<spatial { s[i] += a * v[i] * v[i] }
            }
        }
    }

    /// LRN across channels (Caffe ACROSS_CHANNELS): `y = x · (k + alpha/size · Σ_window x²)^(−beta)`.
    /// x, y `[N, C, spatial]`; `workspace`: `N·C·spatial` floats (each image's scale).
    public static func lrnAcross(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, channels: Int, spatial: Int,
                                 size: Int, alpha: Float, beta: Float, k: Float, workspace: UnsafeMutablePointer<Float>) {
        let per = channels * spatial
        Parallel.forChunks(batch, costPerItem: per * (size + 8)) { images in
            for n in images {
                let scale = workspace + n * per
                lrnScale(x + n * per, scale, channels: channels, spatial: spatial, size: size, alpha: alpha, k: k)
                let (s, d) = (x + n * per, y + n * per)
                for i in 0..<per { d[i] = s[i] * powf(scale[i], -beta) }
            }
        }
    }

    /// Gradient of `lrnAcross` (Caffe's formula): `dx_c = dy_c · scale_c^(−beta) −
    /// (2 alpha beta / size) · x_c · Σ_{c' whose window holds c} dy_c' · y_c' / scale_c'`.
    /// dy, x, y, dx `[N, C, spatial]`; y is the forward output. `workspace`: `2·N·C·spatial` floats
    /// (each image's scale and ratio).
    public static func lrnAcrossBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, y: UnsafePointer<Float>,
                                         dx: UnsafeMutablePointer<Float>, batch: Int, channels: Int, spatial: Int,
                                         size: Int, alpha: Float, beta: Float, k: Float, workspace: UnsafeMutablePointer<Float>) {
        let per = channels * spatial
        let pre = (size - 1) / 2
        let factor = 2 * alpha * beta / Float(size)
        Parallel.forChunks(batch, costPerItem: per * (2 * size + 8)) { images in
            for n in images {
                let scale = workspace + 2 * n * per, ratio = scale + per
                let (xs, ys, gs, ds) = (x + n * per, y + n * per, dy + n * per, dx + n * per)
                lrnScale(xs, scale, channels: channels, spatial: spatial, size: size, alpha: alpha, k: k)
                for i in 0..<per { ratio[i] = gs[i] * ys[i] / scale[i] }
                for c in 0..<channels {
                    let d = ds + c * spatial, g = gs + c * spatial, xv = xs + c * spatial, s = scale + c * spatial
                    for i in 0..<spatial { d[i] = g[i] * powf(s[i], -beta) }
                    // c' with c inside window(c'): c' in [c + pre − size + 1, c + pre].
                    let lo = max(0, c + pre - size + 1), hi = min(channels - 1, c + pre)
                    if lo > hi { continue }
                    for j in lo...hi {
                        let r = ratio + j * spatial
                        for i in 0..<spatial { d[i] -= factor * xv[i] * r[i] }
                    }
                }
            }
        }
    }

    /// LRN within channel (Caffe WITHIN_CHANNEL): `size × size` window padded by `(size − 1) / 2`,
    /// `y = x · (1 + alpha/size² · Σ x²)^(−beta)`. x, y `[N, C, H, W]`; `workspace`: `N·C·H·W` floats (the squares).
    public static func lrnWithin(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                                 height h: Int, width w: Int, size: Int, alpha: Float, beta: Float, workspace: UnsafeMutablePointer<Float>) {
        let a = alpha / Float(size * size)
        Parallel.forChunks(batch * channels, costPerItem: h * w * size * size) { planes in
            for p in planes {
                let sq = workspace + p * h * w
                let (s, d) = (x + p * h * w, y + p * h * w)
                for i in 0..<(h * w) { sq[i] = s[i] * s[i] }
                for iy in 0..<h {
                    let (y0, y1) = lrnWindow(iy, size: size, channels: h)
                    for ix in 0..<w {
                        let (x0, x1) = lrnWindow(ix, size: size, channels: w)
                        var sum: Float = 0
                        for wy in y0..<y1 { for wx in x0..<x1 { sum += sq[wy * w + wx] } }
                        d[iy * w + ix] = s[iy * w + ix] * powf(1 + a * sum, -beta)
                    }
                }
            }
        }
    }
}

extension FastOps {
    /// Floats of workspace per sample of `l2Normalize` and its gradient: per normalised group a
    /// Double sum, a Double dot product (gradient) and the Float inverse norm, kept 8-byte aligned.
    public static func l2NormalizeWorkspace(channels: Int, spatial: Int, acrossSpatial: Bool) -> Int {
        6 * (acrossSpatial ? 1 : spatial)
    }

    /// `1 / sqrt(Σ x² + eps)` of each normalised group of one sample `[C, spatial]` into `r`: one
    /// group (all values) when `acrossSpatial`, else one per position (over C). `sums`: one Double a group.
    static func inverseNorms(_ x: UnsafePointer<Float>, _ r: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Double>,
                             channels: Int, spatial: Int, acrossSpatial: Bool, eps: Float) {
        if acrossSpatial {
            var s = 0.0
            for i in 0..<channels * spatial { s += Double(x[i]) * Double(x[i]) }
            r[0] = Float(1 / (s + Double(eps)).squareRoot())
            return
        }
        sums.update(repeating: 0, count: spatial)
        for c in 0..<channels {
            let v = x + c * spatial
            for i in 0..<spatial { sums[i] += Double(v[i]) * Double(v[i]) }
        }
        for i in 0..<spatial { r[i] = Float(1 / (sums[i] + Double(eps)).squareRoot()) }
    }

    /// Sample `b`'s slices of an l2 normalisation workspace: Double sums, Double dots, Float inverse norms.
    static func l2Slices(_ workspace: UnsafeMutablePointer<Float>, sample b: Int, groups: Int)
        -> (sums: UnsafeMutablePointer<Double>, dots: UnsafeMutablePointer<Double>, r: UnsafeMutablePointer<Float>) {
        let base = UnsafeMutableRawPointer(workspace + 6 * groups * b)
        let sums = base.assumingMemoryBound(to: Double.self)
        return (sums, sums + groups, (base + 16 * groups).assumingMemoryBound(to: Float.self))
    }

    /// L2 normalisation (the SSD fork's Normalize, before its scale): `y = x / sqrt(Σ x² + eps)`,
    /// the sum over all C·spatial values of a sample (`acrossSpatial`) or over C at each position.
    /// x, y `[N, C, spatial]`; `workspace`: `N · l2NormalizeWorkspace` floats, 8-byte aligned.
    public static func l2Normalize(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, channels: Int, spatial: Int,
                                   acrossSpatial: Bool, eps: Float, workspace: UnsafeMutablePointer<Float>) {
        let groups = acrossSpatial ? 1 : spatial
        Parallel.forChunks(batch, costPerItem: 3 * channels * spatial) { range in for b in range {
            let xs = x + b * channels * spatial, ys = y + b * channels * spatial
            let (sums, _, r) = l2Slices(workspace, sample: b, groups: groups)
            inverseNorms(xs, r, sums: sums, channels: channels, spatial: spatial, acrossSpatial: acrossSpatial, eps: eps)
            for c in 0..<channels {
                for i in 0..<spatial { ys[c * spatial + i] = xs[c * spatial + i] * r[acrossSpatial ? 0 : i] }
            }
        } }
    }

    /// Gradient of `l2Normalize`: `dx = r·dy − r³·x·Σ(dy·x)` per group, r the inverse norm.
    /// `workspace` as for `l2Normalize`.
    public static func l2NormalizeBackward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, batch: Int,
                                           channels: Int, spatial: Int, acrossSpatial: Bool, eps: Float,
                                           workspace: UnsafeMutablePointer<Float>) {
        let groups = acrossSpatial ? 1 : spatial
        Parallel.forChunks(batch, costPerItem: 6 * channels * spatial) { range in for b in range {
            let o = b * channels * spatial
            let xs = x + o, g = dy + o, d = dx + o
            let (sums, dots, r) = l2Slices(workspace, sample: b, groups: groups)
            inverseNorms(xs, r, sums: sums, channels: channels, spatial: spatial, acrossSpatial: acrossSpatial, eps: eps)
            dots.update(repeating: 0, count: groups)
            for c in 0..<channels {
                for i in 0..<spatial { dots[acrossSpatial ? 0 : i] += Double(g[c * spatial + i]) * Double(xs[c * spatial + i]) }
            }
            for c in 0..<channels {
                for i in 0..<spatial {
                    let k = acrossSpatial ? 0 : i, ri = r[k]
                    d[c * spatial + i] = ri * g[c * spatial + i] - ri * ri * ri * Float(dots[k]) * xs[c * spatial + i]
                }
            }
        } }
    }
}

// MARK: - Batch normalization with the batch's statistics

extension FastOps {
    /// Channel c's mean and biased variance over `[N, C, spatial]` (two passes, Double sums).
    @inline(__always)
    static func channelMoments(_ x: UnsafePointer<Float>, _ c: Int, batch: Int, channels: Int, spatial: Int) -> (mean: Float, variance: Float) {
        var sum = 0.0
        for n in 0..<batch {
            let s = x + (n * channels + c) * spatial
            sum += Double(laneSum(spatial, { lanes(s + $0) }, { s[$0] }))
        }
        let count = Double(batch * spatial), mean = Float(sum / count)
        var squares = 0.0
        for n in 0..<batch {
            let s = x + (n * channels + c) * spatial
            squares += Double(laneSum(spatial, { let d = lanes(s + $0) - mean; return d * d }, { let d = s[$0] - mean; return d * d }))
        }
        return (mean, Float(squares / count))
    }

    /// A batch norm's statistics for a kernel that normalizes its operand on the fly (`[2, C]` moments as
    /// `batchMoments` wrote them, and eps).
    public typealias Normalizing = (moments: UnsafePointer<Float>, eps: Float)

    /// Channel c's mean and 1 / sqrt(var + eps) under `n`; (0, 1), the identity, without.
    @inline(__always)
    static func normalization(_ n: Normalizing?, _ c: Int, channels: Int) -> (mean: Float, inv: Float) {
        n.map { ($0.moments[c], 1 / ($0.moments[channels + c] + $0.eps).squareRoot()) } ?? (0, 1)
    }

    /// Sixteen floats from `p` on.
    @inline(__always)
    static func lanes(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }

    /// `Σ_{i < n} f(i)` in sixteen Float partial sums (a reduction Swift does not vectorise on its
    /// own: it keeps the order of a scalar sum): `lanesAt(i)` gives f at i..<i+16, `at(i)` at i alone.
    @inline(__always)
    static func laneSum(_ n: Int, _ lanesAt: (Int) -> SIMD16<Float>, _ at: (Int) -> Float) -> Float {
        var acc = SIMD16<Float>(), i = 0
        while i + 16 <= n { acc += lanesAt(i); i += 16 }
        var s = acc.sum()
        while i < n { s += at(i); i += 1 }
        return s
    }

    /// `batch_moments`: moments `[2, C]`, row 0 the mean and row 1 the biased variance of each channel of x `[N, C, spatial]`.
    public static func batchMoments(x: UnsafePointer<Float>, moments: UnsafeMutablePointer<Float>, batch: Int, channels: Int, spatial: Int) {
        Parallel.forChunks(channels, costPerItem: 2 * batch * spatial) { cs in
            for c in cs {
                (moments[c], moments[channels + c]) = channelMoments(x, c, batch: batch, channels: channels, spatial: spatial)
            }
        }
    }

    /// Channel c's statistics: read from `moments` (`[2, C]`, as `batchMoments` wrote them for this x)
    /// when given, else computed.
    @inline(__always)
    static func channelMoments(_ x: UnsafePointer<Float>, _ c: Int, given moments: UnsafePointer<Float>?, batch: Int, channels: Int,
                               spatial: Int) -> (mean: Float, variance: Float) {
        if let m = moments { return (m[c], m[channels + c]) }
        return channelMoments(x, c, batch: batch, channels: channels, spatial: spatial)
    }

    /// `batch_norm_train`: `y = (x − mean[c]) / sqrt(var[c] + eps)` with x's own per-channel statistics
    /// (`moments`, when `batchMoments` already computed them for this x); x, y `[N, C, spatial]` (y may
    /// be x: each channel is read whole before it is written).
    public static func batchNormTrain(x: UnsafePointer<Float>, moments: UnsafePointer<Float>? = nil, y: UnsafeMutablePointer<Float>, eps: Float,
                                      batch: Int, channels: Int, spatial: Int) {
        Parallel.forChunks(channels, costPerItem: (moments == nil ? 3 : 1) * batch * spatial) { cs in
            for c in cs {
                let (m, v) = channelMoments(x, c, given: moments, batch: batch, channels: channels, spatial: spatial)
                let inv = 1 / (v + eps).squareRoot()
                for n in 0..<batch {
                    let (s, d) = (x + (n * channels + c) * spatial, y + (n * channels + c) * spatial)
                    for i in 0..<spatial { d[i] = (s[i] - m) * inv }
                }
            }
        }
    }

    /// `batch_norm_train_backward`: `dx = (dy − mean(dy) − x̂ · mean(dy · x̂)) / sqrt(var + eps)`, x̂ the
    /// normalized x, means per channel over N and spatial; x, dy, dx `[N, C, spatial]`; `moments` as for `batchNormTrain`.
    /// With `scale` `[C]`, the gradient of `scale(batch_norm_train(x), scale)` instead (dy then the scale's
    /// output gradient): the gradient above of `scale[c] · dy`, which is linear in dy.
    public static func batchNormTrainBackward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, moments: UnsafePointer<Float>? = nil,
                                              scale: UnsafePointer<Float>? = nil, dx: UnsafeMutablePointer<Float>, eps: Float,
                                              batch: Int, channels: Int, spatial: Int) {
        Parallel.forChunks(channels, costPerItem: (moments == nil ? 5 : 3) * batch * spatial) { cs in
            for c in cs {
                let (m, v) = channelMoments(x, c, given: moments, batch: batch, channels: channels, spatial: spatial)
                let inv = 1 / (v + eps).squareRoot()
                var sumDy = 0.0, sumDyXhat = 0.0
                for n in 0..<batch {
                    let (s, g) = (x + (n * channels + c) * spatial, dy + (n * channels + c) * spatial)
                    sumDy += Double(laneSum(spatial, { lanes(g + $0) }, { g[$0] }))
                    sumDyXhat += Double(laneSum(spatial, { lanes(g + $0) * (lanes(s + $0) - m) }, { g[$0] * (s[$0] - m) })) * Double(inv)
                }
                let count = Double(batch * spatial)
                let meanDy = Float(sumDy / count), meanDyXhat = Float(sumDyXhat / count), factor = inv * (scale?[c] ?? 1)
                for n in 0..<batch {
                    let o = (n * channels + c) * spatial
                    let (s, g, d) = (x + o, dy + o, dx + o)
                    for i in 0..<spatial { d[i] = (g[i] - meanDy - (s[i] - m) * inv * meanDyXhat) * factor }
                }
            }
        }
    }
}
