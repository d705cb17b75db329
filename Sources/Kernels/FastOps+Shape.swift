extension FastOps {
    /// Sum over `axes` of x `[shape]`; y gets the shape with those axes set to 1 (keepdims layout).
    /// With `times` (same shape, every axis but one summed), the sum of `x · times`, `times` normalized
    /// first when `normalizing` (see `channelSum`).
    public static func sum(x: UnsafePointer<Float>, times: UnsafePointer<Float>? = nil, normalizing: Normalizing? = nil,
                           shape: [Int], axes: [Int], y: UnsafeMutablePointer<Float>) {
        let kept = shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        // Every axis but one (a bias gradient): [outer, C, inner] summed to [C].
        let keptAxes = shape.indices.filter { !axes.contains($0) }
        if keptAxes.count == 1, let c = keptAxes.first, c > 0 || shape.count > 1 {
            channelSum(x: x, times: times, normalizing: normalizing, y: y, outer: shape[..<c].reduce(1, *), channels: shape[c], inner: shape[(c + 1)...].reduce(1, *))
            return
        }
        precondition(times == nil, "sum of a product: every axis but one must be summed")
        reduceToShape(g: x, gShape: shape, out: y, shape: kept)
    }

    /// x `[outer, channels, inner]` (times `times`, of the same shape, when given) summed over outer
    /// and inner → y `[channels]`; channels in parallel, sixteen Float partial sums per row, rows added in Double.
    /// With `normalizing` (times's per-channel statistics, `[2, C]` as `batchMoments` wrote them, and eps),
    /// the sum of `x · (times − mean[c]) / sqrt(var[c] + eps)`: a scale's gamma gradient `Σ dy · x̂`
    /// from the batch norm's input, x̂ never written (each x̂ rounded as `batchNormTrain` rounds it).
    public static func channelSum(x: UnsafePointer<Float>, times: UnsafePointer<Float>? = nil,
                                  normalizing: Normalizing? = nil, y: UnsafeMutablePointer<Float>,
                                  outer: Int, channels: Int, inner: Int) {
        Parallel.forChunks(channels, costPerItem: outer * inner) { cs in
            for c in cs {
                let (m, inv) = normalization(normalizing, c, channels: channels)
                var total: Double = 0
                for o in 0..<outer {
                    let row = x + (o * channels + c) * inner
                    if let t = times.map({ $0 + (o * channels + c) * inner }) {
                        total += Double(laneSum(inner, { lanes(row + $0) * ((lanes(t + $0) - m) * inv) }, { row[$0] * ((t[$0] - m) * inv) }))
                    } else {
                        total += Double(laneSum(inner, { lanes(row + $0) }, { row[$0] }))
                    }
                }
                y[c] = Float(total)
            }
        }
    }

    /// Mean over `axes` (see `sum`).
    public static func mean(x: UnsafePointer<Float>, shape: [Int], axes: [Int], y: UnsafeMutablePointer<Float>) {
        sum(x: x, shape: shape, axes: axes, y: y)
        let reduced = axes.reduce(1) { $0 * shape[$1] }
        let outCount = shape.reduce(1, *) / Swift.max(1, reduced)
        let inv = 1 / Float(Swift.max(1, reduced))
        for i in 0..<outCount { y[i] *= inv }
    }

    /// Permutes the axes of x (rank ≤ 6): y has shape `perm.map { shape[$0] }`.
    public static func transpose(x: UnsafePointer<Float>, shape: [Int], perm: [Int], y: UnsafeMutablePointer<Float>) {
        precondition(shape.count <= 6 && perm.count == shape.count && Set(perm) == Set(0..<shape.count),
                     "transpose: bad permutation \(perm) for shape \(shape)")
        var inStrides = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        // Pad to 6 dims on the left so one loop nest handles every rank.
        let pad = 6 - shape.count
        let d = [Int](repeating: 1, count: pad) + perm.map { shape[$0] }
        let s = [Int](repeating: 0, count: pad) + perm.map { inStrides[$0] }
        var o = 0
        for i0 in 0..<d[0] { for i1 in 0..<d[1] { for i2 in 0..<d[2] { for i3 in 0..<d[3] { for i4 in 0..<d[4] {
            let base = i0 * s[0] + i1 * s[1] + i2 * s[2] + i3 * s[3] + i4 * s[4]
            let (n5, s5) = (d[5], s[5])
            if s5 == 1 { for i5 in 0..<n5 { y[o + i5] = x[base + i5] } }
            else { for i5 in 0..<n5 { y[o + i5] = x[base + i5 * s5] } }
            o += n5
        } } } } }
    }

    /// Concatenates inputs (same shape except along `axis`) into y.
    public static func concat(inputs: [(data: UnsafePointer<Float>, shape: [Int])], axis: Int, y: UnsafeMutablePointer<Float>) {
        let shape0 = inputs[0].shape
        let outer = shape0[..<axis].reduce(1, *)
        let innerAfter = shape0[(axis + 1)...].reduce(1, *)
        let total = inputs.reduce(0) { $0 + $1.shape[axis] } * innerAfter
        var offset = 0
        for input in inputs {
            precondition(input.shape.count == shape0.count, "concat: rank mismatch \(input.shape) vs \(shape0)")
            let chunk = input.shape[axis] * innerAfter
            for o in 0..<outer { (y + o * total + offset).update(from: input.data + o * chunk, count: chunk) }
            offset += chunk
        }
    }

    /// Elements `start..<end` of x along `axis` → y.
    public static func slice(x: UnsafePointer<Float>, shape: [Int], axis: Int, start: Int, end: Int, y: UnsafeMutablePointer<Float>) {
        precondition(0 <= start && start <= end && end <= shape[axis], "slice: \(start)..<\(end) outside axis \(axis) of \(shape)")
        let outer = shape[..<axis].reduce(1, *)
        let innerAfter = shape[(axis + 1)...].reduce(1, *)
        let (full, chunk) = (shape[axis] * innerAfter, (end - start) * innerAfter)
        for o in 0..<outer { (y + o * chunk).update(from: x + o * full + start * innerAfter, count: chunk) }
    }

    /// Gradient of `slice`: dx (shape `xShape`, overwritten) is zero except dy at `start` along `axis`.
    public static func sliceBackward(dy: UnsafePointer<Float>, xShape: [Int], axis: Int, start: Int, length: Int,
                                     dx: UnsafeMutablePointer<Float>) {
        let outer = xShape[..<axis].reduce(1, *)
        let innerAfter = xShape[(axis + 1)...].reduce(1, *)
        let (full, chunk) = (xShape[axis] * innerAfter, length * innerAfter)
        dx.update(repeating: 0, count: xShape.reduce(1, *))
        for o in 0..<outer { (dx + o * full + start * innerAfter).update(from: dy + o * chunk, count: chunk) }
    }

    /// Nearest-neighbour resize of `planes` planes h x w to oh x ow: y[i][j] = x[i*h/oh][j*w/ow].
    public static func resize(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, planes: Int, h: Int, w: Int, oh: Int, ow: Int) {
        let columns = (0..<ow).map { $0 * w / ow }
        Parallel.forChunks(planes, costPerItem: oh * ow) { range in
            for p in range {
                for i in 0..<oh {
                    let src = x + (p * h + i * h / oh) * w, dst = y + (p * oh + i) * ow
                    for j in 0..<ow { dst[j] = src[columns[j]] }
                }
            }
        }
    }

    /// Gradient of `resize`: dx (`planes` planes h x w, overwritten) gathers the dy elements copied from each of its elements.
    public static func resizeBackward(dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, planes: Int, h: Int, w: Int, oh: Int, ow: Int) {
        let columns = (0..<ow).map { $0 * w / ow }
        Parallel.forChunks(planes, costPerItem: oh * ow) { range in
            for p in range {
                (dx + p * h * w).update(repeating: 0, count: h * w)
                for i in 0..<oh {
                    let dst = dx + (p * h + i * h / oh) * w, src = dy + (p * oh + i) * ow
                    for j in 0..<ow { dst[columns[j]] += src[j] }
                }
            }
        }
    }

    /// Repeats the single channel of x `[N, 1, spatial]` k times → y `[N, k, spatial]`.
    public static func channelReplicate(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, spatial: Int, k: Int) {
        for n in 0..<batch { for c in 0..<k { (y + (n * k + c) * spatial).update(from: x + n * spatial, count: spatial) } }
    }
}
