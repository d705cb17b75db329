// Naive Double-precision reference ops: the oracle for every numeric test in the project.
// Direct nested loops only (no im2col, no BLAS, no threads), written to be obviously correct
// rather than fast (forward conv orders its direct loops along rows; see there). Layout is NCHW,
// row-major. This file must not import IR or Kernels (the shape formulas come from Shapes).

import Shapes

/// Naive reference implementations of every forward and backward kernel, over `[Double]` with
/// explicit shapes. Semantics follow Caffe where Caffe and PyTorch differ (pool rounding, avg-pool
/// divisor, LRN, InnerProduct weight layout).
public enum RefOps {
    // MARK: - Shape helpers

    /// Row-major strides of `shape`.
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
        return s
    }

    /// Multi-index of flat position `flat` in `shape`.
    public static func unravel(_ flat: Int, _ shape: [Int]) -> [Int] {
        var idx = [Int](repeating: 0, count: shape.count)
        var r = flat
        for i in stride(from: shape.count - 1, through: 0, by: -1) where shape[i] > 0 {
            idx[i] = r % shape[i]; r /= shape[i]
        }
        return idx
    }

    // MARK: - Convolution

    /// 2-D convolution (cross-correlation). x `[N, C, H, W]`, w `[O, C/groups, KH, KW]`, bias `[O]`;
    /// returns `[N, O, OH, OW]`.
    public static func conv2d(x: [Double], xShape: [Int], w: [Double], wShape: [Int], bias: [Double]?,
                              stride: (Int, Int), pad: (Int, Int), dilation: (Int, Int) = (1, 1),
                              groups: Int = 1) -> (out: [Double], shape: [Int]) {
        let (n, c, h, wd) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let (o, cg, kh, kw) = (wShape[0], wShape[1], wShape[2], wShape[3])
        precondition(c == cg * groups && o % groups == 0, "conv2d: channels \(c), weight \(wShape), groups \(groups)")
        let oh = convOutputSize(input: h, kernel: kh, stride: stride.0, pad: pad.0, dilation: dilation.0)
        let ow = convOutputSize(input: wd, kernel: kw, stride: stride.1, pad: pad.1, dilation: dilation.1)
        let og = o / groups
        var out = [Double](repeating: 0, count: n * o * oh * ow)
        // Direct loops, ordered so the innermost runs along an output row (the only concession to
        // speed: VGG-Face at 224x224 must stay testable). Each output is its bias plus the taps in
        // the same (ic, i, j) order as the textbook loop.
        x.withUnsafeBufferPointer { x in w.withUnsafeBufferPointer { w in out.withUnsafeMutableBufferPointer { out in
            for b in 0..<n { for oc in 0..<o {
                let g = oc / og
                let plane = out.baseAddress! + (b * o + oc) * oh * ow
                plane.update(repeating: bias?[oc] ?? 0, count: oh * ow)
                for ic in 0..<cg { for i in 0..<kh { for j in 0..<kw {
                    let wv = w[((oc * cg + ic) * kh + i) * kw + j]
                    let src = x.baseAddress! + (b * c + g * cg + ic) * h * wd
                    let jx = j * dilation.1 - pad.1
                    // Output columns whose input column xo·stride + jx lies inside 0..<wd.
                    let lo = jx >= 0 ? 0 : (-jx + stride.1 - 1) / stride.1
                    let hi = min(ow, wd - jx <= 0 ? 0 : (wd - jx + stride.1 - 1) / stride.1)
                    for y in 0..<oh {
                        let iy = y * stride.0 - pad.0 + i * dilation.0
                        if iy < 0 || iy >= h || lo >= hi { continue }
                        let row = src + iy * wd + jx, dst = plane + y * ow
                        if stride.1 == 1 {
                            for xo in lo..<hi { dst[xo] += wv * row[xo] }
                        } else {
                            for xo in lo..<hi { dst[xo] += wv * row[xo * stride.1] }
                        }
                    }
                } } }
            } }
        } } }
        return (out, [n, o, oh, ow])
    }

    /// Every kernel tap of a convolution that lands inside the input, in a fixed order: calls
    /// `visit(dyIndex, xIndex, wIndex)` with flat indices into dy `[N, O, OH, OW]`, x `[N, C, H, W]`
    /// and w `[O, C/groups, KH, KW]`. Both conv gradients are sums over this walk.
    static func forEachConvTap(xShape: [Int], wShape: [Int], stride: (Int, Int), pad: (Int, Int), dilation: (Int, Int),
                               groups: Int, _ visit: (Int, Int, Int) -> Void) {
        let (n, c, h, wd) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let (o, cg, kh, kw) = (wShape[0], wShape[1], wShape[2], wShape[3])
        let oh = convOutputSize(input: h, kernel: kh, stride: stride.0, pad: pad.0, dilation: dilation.0)
        let ow = convOutputSize(input: wd, kernel: kw, stride: stride.1, pad: pad.1, dilation: dilation.1)
        let og = o / groups
        for b in 0..<n { for oc in 0..<o {
            let g = oc / og
            for y in 0..<oh { for xo in 0..<ow {
                let d = ((b * o + oc) * oh + y) * ow + xo
                for ic in 0..<cg { for i in 0..<kh { for j in 0..<kw {
                    let iy = y * stride.0 - pad.0 + i * dilation.0
                    let ix = xo * stride.1 - pad.1 + j * dilation.1
                    if iy < 0 || iy >= h || ix < 0 || ix >= wd { continue }
                    visit(d, ((b * c + g * cg + ic) * h + iy) * wd + ix, ((oc * cg + ic) * kh + i) * kw + j)
                } } }
            } }
        } }
    }

    /// Gradient of `conv2d` with respect to x: dy `[N, O, OH, OW]` → dx `[N, C, H, W]` (`xShape`).
    public static func conv2dBackwardData(dy: [Double], w: [Double], wShape: [Int], xShape: [Int],
                                          stride: (Int, Int), pad: (Int, Int), dilation: (Int, Int) = (1, 1),
                                          groups: Int = 1) -> [Double] {
        var dx = [Double](repeating: 0, count: xShape.reduce(1, *))
        forEachConvTap(xShape: xShape, wShape: wShape, stride: stride, pad: pad, dilation: dilation, groups: groups) { d, xi, wi in
            dx[xi] += dy[d] * w[wi]
        }
        return dx
    }

    /// Gradient of `conv2d` with respect to w: returns dw `[O, C/groups, KH, KW]`, summed over the batch.
    public static func conv2dBackwardFilter(dy: [Double], x: [Double], xShape: [Int], wShape: [Int],
                                            stride: (Int, Int), pad: (Int, Int), dilation: (Int, Int) = (1, 1),
                                            groups: Int = 1) -> [Double] {
        var dw = [Double](repeating: 0, count: wShape.reduce(1, *))
        forEachConvTap(xShape: xShape, wShape: wShape, stride: stride, pad: pad, dilation: dilation, groups: groups) { d, xi, wi in
            dw[wi] += dy[d] * x[xi]
        }
        return dw
    }

    /// Bias gradient: dy `[N, C, ...]` summed over every axis but 1 → `[C]`.
    public static func biasGradient(dy: [Double], shape: [Int]) -> [Double] {
        let (n, c) = (shape[0], shape[1])
        let inner = shape.dropFirst(2).reduce(1, *)
        var db = [Double](repeating: 0, count: c)
        for b in 0..<n { for ch in 0..<c { for i in 0..<inner { db[ch] += dy[(b * c + ch) * inner + i] } } }
        return db
    }

    // MARK: - Linear (Caffe InnerProduct)

    /// out `[N, M]` = x `[N, K]` · wᵀ (w `[M, K]`) + bias `[M]`.
    public static func linear(x: [Double], n: Int, k: Int, w: [Double], m: Int, bias: [Double]?) -> [Double] {
        var out = [Double](repeating: 0, count: n * m)
        for i in 0..<n { for j in 0..<m {
            var acc = bias?[j] ?? 0
            for p in 0..<k { acc += x[i * k + p] * w[j * k + p] }
            out[i * m + j] = acc
        } }
        return out
    }

    /// Gradients of `linear`: dx `[N, K]` = dy·w, dw `[M, K]` = dyᵀ·x, db `[M]` = Σₙ dy.
    public static func linearBackward(dy: [Double], x: [Double], w: [Double], n: Int, k: Int, m: Int)
        -> (dx: [Double], dw: [Double], db: [Double]) {
        var dx = [Double](repeating: 0, count: n * k)
        var dw = [Double](repeating: 0, count: m * k)
        var db = [Double](repeating: 0, count: m)
        for i in 0..<n { for j in 0..<m {
            let g = dy[i * m + j]
            db[j] += g
            for p in 0..<k { dx[i * k + p] += g * w[j * k + p]; dw[j * k + p] += g * x[i * k + p] }
        } }
        return (dx, dw, db)
    }

    // MARK: - Pooling

    /// Max pooling over x `[N, C, H, W]` → `[N, C, OH, OW]`; the window is clipped to the image so
    /// padding never wins. `argmax` holds `h * W + w` of the winner within its plane (first max on ties).
    public static func maxPool(x: [Double], xShape: [Int], kernel: (Int, Int), stride: (Int, Int),
                               pad: (Int, Int), ceil: Bool) -> (out: [Double], shape: [Int], argmax: [Int]) {
        let (n, c, h, w) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let oh = poolOutputSize(input: h, kernel: kernel.0, stride: stride.0, pad: pad.0, ceil: ceil)
        let ow = poolOutputSize(input: w, kernel: kernel.1, stride: stride.1, pad: pad.1, ceil: ceil)
        var out = [Double](repeating: 0, count: n * c * oh * ow)
        var arg = [Int](repeating: -1, count: out.count)
        for p in 0..<(n * c) { for y in 0..<oh { for xo in 0..<ow {
            let hs = y * stride.0 - pad.0, ws = xo * stride.1 - pad.1
            var best = -Double.infinity, bestIdx = -1
            for iy in max(hs, 0)..<min(hs + kernel.0, h) { for ix in max(ws, 0)..<min(ws + kernel.1, w) {
                let v = x[p * h * w + iy * w + ix]
                if v > best { best = v; bestIdx = iy * w + ix }
            } }
            out[(p * oh + y) * ow + xo] = best
            arg[(p * oh + y) * ow + xo] = bestIdx
        } } }
        return (out, [n, c, oh, ow], arg)
    }

    /// Gradient of `maxPool`: each dy goes to its window's argmax (recomputed from x).
    public static func maxPoolBackward(dy: [Double], x: [Double], xShape: [Int], kernel: (Int, Int),
                                       stride: (Int, Int), pad: (Int, Int), ceil: Bool) -> [Double] {
        let (_, _, h, w) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let (_, shape, arg) = maxPool(x: x, xShape: xShape, kernel: kernel, stride: stride, pad: pad, ceil: ceil)
        let (oh, ow) = (shape[2], shape[3])
        var dx = [Double](repeating: 0, count: x.count)
        for i in 0..<dy.count where arg[i] >= 0 {
            let plane = i / (oh * ow)
            dx[plane * h * w + arg[i]] += dy[i]
        }
        return dx
    }

    /// Average pooling, Caffe semantics: the divisor is the window size clipped to the padded image
    /// (`hend = min(hstart + k, H + pad)`) before clipping to the real image; the sum runs over the
    /// real pixels only.
    public static func avgPool(x: [Double], xShape: [Int], kernel: (Int, Int), stride: (Int, Int),
                               pad: (Int, Int), ceil: Bool) -> (out: [Double], shape: [Int]) {
        let (n, c, h, w) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let oh = poolOutputSize(input: h, kernel: kernel.0, stride: stride.0, pad: pad.0, ceil: ceil)
        let ow = poolOutputSize(input: w, kernel: kernel.1, stride: stride.1, pad: pad.1, ceil: ceil)
        var out = [Double](repeating: 0, count: n * c * oh * ow)
        for p in 0..<(n * c) { for y in 0..<oh { for xo in 0..<ow {
            let (hs, he, ws, we, size) = avgWindow(y, xo, h, w, kernel, stride, pad)
            var sum = 0.0
            for iy in hs..<he { for ix in ws..<we { sum += x[p * h * w + iy * w + ix] } }
            out[(p * oh + y) * ow + xo] = sum / Double(size)
        } } }
        return (out, [n, c, oh, ow])
    }

    /// Gradient of `avgPool` (same Caffe divisor): dx `[N, C, H, W]`.
    public static func avgPoolBackward(dy: [Double], xShape: [Int], kernel: (Int, Int), stride: (Int, Int),
                                       pad: (Int, Int), ceil: Bool) -> [Double] {
        let (n, c, h, w) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let oh = poolOutputSize(input: h, kernel: kernel.0, stride: stride.0, pad: pad.0, ceil: ceil)
        let ow = poolOutputSize(input: w, kernel: kernel.1, stride: stride.1, pad: pad.1, ceil: ceil)
        var dx = [Double](repeating: 0, count: n * c * h * w)
        for p in 0..<(n * c) { for y in 0..<oh { for xo in 0..<ow {
            let (hs, he, ws, we, size) = avgWindow(y, xo, h, w, kernel, stride, pad)
            let g = dy[(p * oh + y) * ow + xo] / Double(size)
            for iy in hs..<he { for ix in ws..<we { dx[p * h * w + iy * w + ix] += g } }
        } } }
        return dx
    }

    private static func avgWindow(_ y: Int, _ x: Int, _ h: Int, _ w: Int, _ k: (Int, Int), _ s: (Int, Int),
                                  _ p: (Int, Int)) -> (Int, Int, Int, Int, Int) {
        var hs = y * s.0 - p.0, ws = x * s.1 - p.1
        var he = min(hs + k.0, h + p.0), we = min(ws + k.1, w + p.1)
        let size = (he - hs) * (we - ws)
        hs = max(hs, 0); ws = max(ws, 0); he = min(he, h); we = min(we, w)
        return (hs, he, ws, we, size)
    }

    // MARK: - Activations

    /// Leaky ReLU: `x > 0 ? x : slope·x`.
    public static func relu(_ x: [Double], negativeSlope: Double = 0) -> [Double] {
        x.map { $0 > 0 ? $0 : negativeSlope * $0 }
    }

    public static func reluBackward(dy: [Double], x: [Double], negativeSlope: Double = 0) -> [Double] {
        (0..<x.count).map { x[$0] > 0 ? dy[$0] : negativeSlope * dy[$0] }
    }

    /// PReLU over x `[N, C, ...]` with `slope` of count C (per channel) or 1 (shared).
    public static func prelu(x: [Double], shape: [Int], slope: [Double]) -> [Double] {
        let (c, inner) = (shape[1], shape.dropFirst(2).reduce(1, *))
        return (0..<x.count).map { i in
            let a = slope.count == 1 ? slope[0] : slope[(i / inner) % c]
            return x[i] > 0 ? x[i] : a * x[i]
        }
    }

    /// Gradients of `prelu`: dx like x, dslope like slope.
    public static func preluBackward(dy: [Double], x: [Double], shape: [Int], slope: [Double]) -> (dx: [Double], dslope: [Double]) {
        let (c, inner) = (shape[1], shape.dropFirst(2).reduce(1, *))
        var dx = [Double](repeating: 0, count: x.count)
        var ds = [Double](repeating: 0, count: slope.count)
        for i in 0..<x.count {
            let ch = slope.count == 1 ? 0 : (i / inner) % c
            if x[i] > 0 { dx[i] = dy[i] } else { dx[i] = slope[ch] * dy[i]; ds[ch] += x[i] * dy[i] }
        }
        return (dx, ds)
    }

    public static func sigmoid(_ x: [Double]) -> [Double] { x.map { 1 / (1 + _exp(-$0)) } }
    /// Gradient of sigmoid from its output y: `dy · y · (1 − y)`.
    public static func sigmoidBackward(dy: [Double], y: [Double]) -> [Double] { (0..<y.count).map { dy[$0] * y[$0] * (1 - y[$0]) } }
    public static func tanh(_ x: [Double]) -> [Double] { x.map { _tanh($0) } }
    /// Gradient of tanh from its output y: `dy · (1 − y²)`.
    public static func tanhBackward(dy: [Double], y: [Double]) -> [Double] { (0..<y.count).map { dy[$0] * (1 - y[$0] * y[$0]) } }

    /// Dropout with a given mask (values 0 or 1/(1 − ratio)): `x · mask`. Its backward is the same product.
    public static func dropout(_ x: [Double], mask: [Double]) -> [Double] { (0..<x.count).map { x[$0] * mask[$0] } }

    // MARK: - Broadcasting elementwise

    public enum BinaryOp: String, CaseIterable, Sendable { case add, sub, mul, div, maximum }

    /// Flat index into `shape` for an index of the (larger) broadcast `outShape`.
    static func broadcastIndex(_ outIdx: [Int], _ shape: [Int]) -> Int {
        let off = outIdx.count - shape.count
        var flat = 0
        for i in 0..<shape.count { flat = flat * shape[i] + (shape[i] == 1 ? 0 : outIdx[i + off]) }
        return flat
    }

    /// Elementwise `a op b` with NumPy broadcasting.
    public static func binary(_ op: BinaryOp, a: [Double], aShape: [Int], b: [Double], bShape: [Int]) -> (out: [Double], shape: [Int]) {
        guard let shape = broadcastShape(aShape, bShape) else { preconditionFailure("\(op): cannot broadcast \(aShape) with \(bShape)") }
        let count = shape.reduce(1, *)
        var out = [Double](repeating: 0, count: count)
        for i in 0..<count {
            let idx = unravel(i, shape)
            let u = a[broadcastIndex(idx, aShape)], v = b[broadcastIndex(idx, bShape)]
            switch op {
            case .add: out[i] = u + v
            case .sub: out[i] = u - v
            case .mul: out[i] = u * v
            case .div: out[i] = u / v
            case .maximum: out[i] = max(u, v)
            }
        }
        return (out, shape)
    }

    /// Sums a gradient of the broadcast shape `gShape` back to the source `shape`.
    public static func reduceToShape(_ g: [Double], gShape: [Int], to shape: [Int]) -> [Double] {
        var out = [Double](repeating: 0, count: shape.reduce(1, *))
        for i in 0..<g.count { out[broadcastIndex(unravel(i, gShape), shape)] += g[i] }
        return out
    }

    /// `y = x · scale + shift` with scalar scale and shift.
    public static func affine(_ x: [Double], scale: Double, shift: Double) -> [Double] { x.map { $0 * scale + shift } }

    // MARK: - Per-channel ops (axis 1 of [N, C, ...])

    /// `y = x · g[c] (+ b[c])`.
    public static func channelScale(x: [Double], shape: [Int], scale: [Double], bias: [Double]?) -> [Double] {
        let (c, inner) = (shape[1], shape.dropFirst(2).reduce(1, *))
        return (0..<x.count).map { i in let ch = (i / inner) % c; return x[i] * scale[ch] + (bias?[ch] ?? 0) }
    }

    /// Gradients of `channelScale`: dx, dscale `[C]`, dbias `[C]`.
    public static func channelScaleBackward(dy: [Double], x: [Double], shape: [Int], scale: [Double])
        -> (dx: [Double], dscale: [Double], dbias: [Double]) {
        let (c, inner) = (shape[1], shape.dropFirst(2).reduce(1, *))
        var dx = [Double](repeating: 0, count: x.count)
        var dg = [Double](repeating: 0, count: c), db = [Double](repeating: 0, count: c)
        for i in 0..<x.count {
            let ch = (i / inner) % c
            dx[i] = dy[i] * scale[ch]; dg[ch] += dy[i] * x[i]; db[ch] += dy[i]
        }
        return (dx, dg, db)
    }

    /// `y = x + b[c]`.
    public static func channelBias(x: [Double], shape: [Int], bias: [Double]) -> [Double] {
        channelScale(x: x, shape: shape, scale: [Double](repeating: 1, count: shape[1]), bias: bias)
    }

    /// Batch norm in inference form: `y = (x − mean[c]) / sqrt(var[c] + eps)`.
    public static func batchNorm(x: [Double], shape: [Int], mean: [Double], variance: [Double], eps: Double) -> [Double] {
        let (c, inner) = (shape[1], shape.dropFirst(2).reduce(1, *))
        return (0..<x.count).map { i in let ch = (i / inner) % c; return (x[i] - mean[ch]) / (variance[ch] + eps).squareRoot() }
    }

    /// Gradients of `batchNorm` with respect to x, mean `[C]` and variance `[C]`.
    public static func batchNormBackward(dy: [Double], x: [Double], shape: [Int], mean: [Double], variance: [Double],
                                         eps: Double) -> (dx: [Double], dmean: [Double], dvariance: [Double]) {
        let (c, inner) = (shape[1], shape.dropFirst(2).reduce(1, *))
        var dx = [Double](repeating: 0, count: x.count)
        var dm = [Double](repeating: 0, count: c), dv = [Double](repeating: 0, count: c)
        for i in 0..<x.count {
            let ch = (i / inner) % c
            let s = variance[ch] + eps
            dx[i] = dy[i] / s.squareRoot()
            dm[ch] -= dy[i] / s.squareRoot()
            dv[ch] += dy[i] * (x[i] - mean[ch]) * -0.5 / (s * s.squareRoot())
        }
        return (dx, dm, dv)
    }

    /// Each channel's mean and biased variance over every axis but 1.
    public static func batchMoments(x: [Double], shape: [Int]) -> (mean: [Double], variance: [Double]) {
        let (c, inner) = (shape[1], shape.dropFirst(2).reduce(1, *))
        let count = Double(x.count / c)
        var mean = [Double](repeating: 0, count: c), variance = mean
        for i in x.indices { mean[(i / inner) % c] += x[i] / count }
        for i in x.indices { let ch = (i / inner) % c; variance[ch] += (x[i] - mean[ch]) * (x[i] - mean[ch]) / count }
        return (mean, variance)
    }

    /// Batch norm with the batch's statistics: `batchNorm` of x with its own `batchMoments`.
    public static func batchNormTrain(x: [Double], shape: [Int], eps: Double) -> [Double] {
        let (m, v) = batchMoments(x: x, shape: shape)
        return batchNorm(x: x, shape: shape, mean: m, variance: v, eps: eps)
    }

    /// Gradient of `batchNormTrain` by the chain rule through the statistics: the given-statistics
    /// gradient plus dmean / M + dvar · 2 (x − mean) / M, M the elements of a channel.
    public static func batchNormTrainBackward(dy: [Double], x: [Double], shape: [Int], eps: Double) -> [Double] {
        let (c, inner) = (shape[1], shape.dropFirst(2).reduce(1, *))
        let (m, v) = batchMoments(x: x, shape: shape)
        let g = batchNormBackward(dy: dy, x: x, shape: shape, mean: m, variance: v, eps: eps)
        let count = Double(x.count / c)
        return x.indices.map { i in
            let ch = (i / inner) % c
            return g.dx[i] + g.dmean[ch] / count + g.dvariance[ch] * 2 * (x[i] - m[ch]) / count
        }
    }

    // MARK: - Local response normalisation (Caffe)

    /// The first channel of channel `c`'s window: Caffe pads `(size − 1) / 2` before.
    static func lrnWindow(_ ch: Int, size: Int, channels: Int) -> Range<Int> {
        let start = ch - (size - 1) / 2
        return max(start, 0)..<min(start + size, channels)
    }

    /// LRN across channels: `scale = k + alpha/size · Σ x²` over `size` channels centred on c,
    /// `y = x · scale^(−beta)`. x `[N, C, H, W]`.
    public static func lrnAcross(x: [Double], shape: [Int], size: Int, alpha: Double, beta: Double, k: Double) -> [Double] {
        let (n, c, inner) = (shape[0], shape[1], shape.dropFirst(2).reduce(1, *))
        var y = [Double](repeating: 0, count: x.count)
        for b in 0..<n { for ch in 0..<c { for i in 0..<inner {
            var sum = 0.0
            for j in lrnWindow(ch, size: size, channels: c) { let v = x[(b * c + j) * inner + i]; sum += v * v }
            let scale = k + alpha / Double(size) * sum
            y[(b * c + ch) * inner + i] = x[(b * c + ch) * inner + i] * _pow(scale, -beta)
        } } }
        return y
    }

    /// Gradient of `lrnAcross` by the chain rule written out term by term.
    public static func lrnAcrossBackward(dy: [Double], x: [Double], shape: [Int], size: Int, alpha: Double,
                                         beta: Double, k: Double) -> [Double] {
        let (n, c, inner) = (shape[0], shape[1], shape.dropFirst(2).reduce(1, *))
        var dx = [Double](repeating: 0, count: x.count)
        for b in 0..<n { for i in 0..<inner {
            var scale = [Double](repeating: 0, count: c)
            for ch in 0..<c {
                var sum = 0.0
                for j in lrnWindow(ch, size: size, channels: c) { let v = x[(b * c + j) * inner + i]; sum += v * v }
                scale[ch] = k + alpha / Double(size) * sum
            }
            for ch in 0..<c {  // y[ch] = x[ch] · scale[ch]^-beta; scale[ch] depends on x[j] for j in window(ch)
                let at = (b * c + ch) * inner + i
                dx[at] += dy[at] * _pow(scale[ch], -beta)
                let common = dy[at] * x[at] * -beta * _pow(scale[ch], -beta - 1) * alpha / Double(size)
                for j in lrnWindow(ch, size: size, channels: c) {
                    let jat = (b * c + j) * inner + i
                    dx[jat] += common * 2 * x[jat]
                }
            }
        } }
        return dx
    }

    /// LRN within channel (Caffe WITHIN_CHANNEL): a `size × size` spatial window padded by
    /// `(size − 1) / 2`, `scale = 1 + alpha/size² · Σ x²`, `y = x · scale^(−beta)`. x `[N, C, H, W]`.
    public static func lrnWithin(x: [Double], shape: [Int], size: Int, alpha: Double, beta: Double) -> [Double] {
        let (nc, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        var y = [Double](repeating: 0, count: x.count)
        for p in 0..<nc { for iy in 0..<h { for ix in 0..<w {
            var sum = 0.0
            for wy in lrnWindow(iy, size: size, channels: h) { for wx in lrnWindow(ix, size: size, channels: w) {
                let v = x[(p * h + wy) * w + wx]; sum += v * v
            } }
            let scale = 1 + alpha / Double(size * size) * sum
            y[(p * h + iy) * w + ix] = x[(p * h + iy) * w + ix] * _pow(scale, -beta)
        } } }
        return y
    }

    // MARK: - Softmax and losses

    /// An array of `[N, C, ...]`'s size filled one column (one (n, inner) position, all C channels) at a
    /// time: `fill(at, out)` writes the column, `at(ch)` being each channel's flat index. The walk every
    /// softmax here shares.
    static func byColumns(_ shape: [Int], _ fill: (_ at: (Int) -> Int, _ out: inout [Double]) -> Void) -> [Double] {
        let (n, c, inner) = (shape[0], shape[1], shape.dropFirst(2).reduce(1, *))
        var out = [Double](repeating: 0, count: n * c * inner)
        for b in 0..<n { for i in 0..<inner { fill({ (b * c + $0) * inner + i }, &out) } }
        return out
    }

    /// The max of x over one column's channels, and Σ exp(x − max) there.
    static func maxAndExpSum(_ x: [Double], _ c: Int, _ at: (Int) -> Int) -> (max: Double, sum: Double) {
        var m = -Double.infinity
        for ch in 0..<c { m = max(m, x[at(ch)]) }
        var sum = 0.0
        for ch in 0..<c { sum += _exp(x[at(ch)] - m) }
        return (m, sum)
    }

    /// Softmax over axis 1 of `[N, C, ...]` (max subtracted first).
    public static func softmax(x: [Double], shape: [Int]) -> [Double] {
        byColumns(shape) { at, y in
            let (m, sum) = maxAndExpSum(x, shape[1], at)
            for ch in 0..<shape[1] { y[at(ch)] = _exp(x[at(ch)] - m) / sum }
        }
    }

    /// Log-softmax over axis 1 of `[N, C, ...]`.
    public static func logSoftmax(x: [Double], shape: [Int]) -> [Double] {
        byColumns(shape) { at, y in
            let (m, sum) = maxAndExpSum(x, shape[1], at)
            let lse = m + _log(sum)
            for ch in 0..<shape[1] { y[at(ch)] = x[at(ch)] - lse }
        }
    }

    /// Gradient of softmax from its output y: `dx = y · (dy − Σ_c dy·y)`.
    public static func softmaxBackward(dy: [Double], y: [Double], shape: [Int]) -> [Double] {
        byColumns(shape) { at, dx in
            var dot = 0.0
            for ch in 0..<shape[1] { dot += dy[at(ch)] * y[at(ch)] }
            for ch in 0..<shape[1] { dx[at(ch)] = y[at(ch)] * (dy[at(ch)] - dot) }
        }
    }

    /// Gradient of log-softmax from its output y: `dx = dy − exp(y) · Σ_c dy`.
    public static func logSoftmaxBackward(dy: [Double], y: [Double], shape: [Int]) -> [Double] {
        byColumns(shape) { at, dx in
            var sum = 0.0
            for ch in 0..<shape[1] { sum += dy[at(ch)] }
            for ch in 0..<shape[1] { dx[at(ch)] = dy[at(ch)] - _exp(y[at(ch)]) * sum }
        }
    }

    /// Mean softmax cross-entropy of logits `[N, C]` against labels `[N]` (class indices);
    /// also returns the probabilities `[N, C]` for the backward pass.
    public static func softmaxCrossEntropy(logits: [Double], n: Int, c: Int, labels: [Int32]) -> (loss: Double, probs: [Double]) {
        let logp = logSoftmax(x: logits, shape: [n, c])
        var loss = 0.0
        for b in 0..<n { loss -= logp[b * c + Int(labels[b])] }
        return (loss / Double(n), logp.map { _exp($0) })
    }

    /// Gradient of `softmaxCrossEntropy`: `(p − onehot) / N · upstream`.
    public static func softmaxCrossEntropyBackward(probs: [Double], n: Int, c: Int, labels: [Int32], upstream: Double = 1) -> [Double] {
        var d = probs
        for b in 0..<n { d[b * c + Int(labels[b])] -= 1 }
        return d.map { $0 / Double(n) * upstream }
    }

    /// Caffe EuclideanLoss: `Σ (a − b)² / (2 N)` with N the batch size.
    public static func euclideanLoss(a: [Double], b: [Double], batch: Int) -> Double {
        var s = 0.0
        for i in 0..<a.count { s += (a[i] - b[i]) * (a[i] - b[i]) }
        return s / (2 * Double(batch))
    }

    /// Gradient of `euclideanLoss` with respect to a: `(a − b) / N · upstream` (for b, negate).
    public static func euclideanLossBackward(a: [Double], b: [Double], batch: Int, upstream: Double = 1) -> [Double] {
        (0..<a.count).map { (a[$0] - b[$0]) / Double(batch) * upstream }
    }

    // MARK: - Reductions and data movement

    /// Sum over `axes` (nil = all). With `keepDims` reduced axes stay as 1, otherwise they are dropped.
    public static func sum(x: [Double], shape: [Int], axes: [Int]?, keepDims: Bool = false) -> (out: [Double], shape: [Int]) {
        let axesSet = Set(axes ?? Array(0..<shape.count))
        let kept = shape.enumerated().map { axesSet.contains($0.offset) ? 1 : $0.element }
        var out = [Double](repeating: 0, count: kept.reduce(1, *))
        for i in 0..<x.count { out[broadcastIndex(unravel(i, shape), kept)] += x[i] }
        let outShape = keepDims ? kept : shape.enumerated().filter { !axesSet.contains($0.offset) }.map(\.element)
        return (out, outShape)
    }

    /// Mean over `axes` (nil = all): `sum / (number of reduced elements)`.
    public static func mean(x: [Double], shape: [Int], axes: [Int]?, keepDims: Bool = false) -> (out: [Double], shape: [Int]) {
        let r = sum(x: x, shape: shape, axes: axes, keepDims: keepDims)
        let n = Double(max(1, x.count / max(1, r.out.count)))
        return (r.out.map { $0 / n }, r.shape)
    }

    /// Permutes axes: `out.shape[i] = shape[perm[i]]`.
    public static func transpose(x: [Double], shape: [Int], perm: [Int]) -> (out: [Double], shape: [Int]) {
        let outShape = perm.map { shape[$0] }
        let inStrides = strides(shape)
        var out = [Double](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let idx = unravel(i, outShape)
            var src = 0
            for d in 0..<perm.count { src += idx[d] * inStrides[perm[d]] }
            out[i] = x[src]
        }
        return (out, outShape)
    }

    /// Concatenates tensors along `axis` (other dims equal).
    public static func concat(_ inputs: [(data: [Double], shape: [Int])], axis: Int) -> (out: [Double], shape: [Int]) {
        var shape = inputs[0].shape
        shape[axis] = inputs.map { $0.shape[axis] }.reduce(0, +)
        var out = [Double](repeating: 0, count: shape.reduce(1, *))
        var offset = 0
        for input in inputs {
            for i in 0..<input.data.count {
                var idx = unravel(i, input.shape)
                idx[axis] += offset
                var flat = 0
                for d in 0..<shape.count { flat = flat * shape[d] + idx[d] }
                out[flat] = input.data[i]
            }
            offset += input.shape[axis]
        }
        return (out, shape)
    }

    /// Elements `start..<end` along `axis`.
    public static func slice(x: [Double], shape: [Int], axis: Int, start: Int, end: Int) -> (out: [Double], shape: [Int]) {
        var outShape = shape
        outShape[axis] = end - start
        var out = [Double](repeating: 0, count: outShape.reduce(1, *))
        for i in 0..<out.count {
            var idx = unravel(i, outShape)
            idx[axis] += start
            var flat = 0
            for d in 0..<shape.count { flat = flat * shape[d] + idx[d] }
            out[i] = x[flat]
        }
        return (out, outShape)
    }

    /// Gradient of `slice`: dy placed at `start` along `axis` of zeros shaped `xShape`.
    public static func sliceBackward(dy: [Double], xShape: [Int], axis: Int, start: Int, length: Int) -> [Double] {
        var dyShape = xShape
        dyShape[axis] = length
        var dx = [Double](repeating: 0, count: xShape.reduce(1, *))
        for i in 0..<dy.count {
            var idx = unravel(i, dyShape)
            idx[axis] += start
            var flat = 0
            for d in 0..<xShape.count { flat = flat * xShape[d] + idx[d] }
            dx[flat] += dy[i]
        }
        return dx
    }

    /// Nearest-neighbour resize of `[N, C, H, W]` to `[N, C, oh, ow]`: y[i][j] = x[i*H/oh][j*W/ow].
    public static func resize(x: [Double], shape: [Int], oh: Int, ow: Int) -> [Double] {
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        var out = [Double](repeating: 0, count: planes * oh * ow)
        for p in 0..<planes { for i in 0..<oh { for j in 0..<ow {
            out[(p * oh + i) * ow + j] = x[(p * h + i * h / oh) * w + j * w / ow]
        } } }
        return out
    }

    /// The adjoint of `resize`: dy `[N, C, oh, ow]` summed into dx `[N, C, H, W]` at each element's source.
    public static func resizeBackward(dy: [Double], dyShape: [Int], h: Int, w: Int) -> [Double] {
        let (planes, oh, ow) = (dyShape[0] * dyShape[1], dyShape[2], dyShape[3])
        var dx = [Double](repeating: 0, count: planes * h * w)
        for p in 0..<planes { for i in 0..<oh { for j in 0..<ow {
            dx[(p * h + i * h / oh) * w + j * w / ow] += dy[(p * oh + i) * ow + j]
        } } }
        return dx
    }

    /// Repeats the single channel of `[N, 1, H, W]` k times → `[N, k, H, W]`.
    public static func channelReplicate(x: [Double], shape: [Int], k: Int) -> (out: [Double], shape: [Int]) {
        let (n, inner) = (shape[0], shape.dropFirst(2).reduce(1, *))
        var out = [Double](repeating: 0, count: n * k * inner)
        for b in 0..<n { for ch in 0..<k { for i in 0..<inner { out[(b * k + ch) * inner + i] = x[b * inner + i] } } }
        return (out, [n, k] + shape.dropFirst(2))
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _exp(_ x: Double) -> Double { Glibc.exp(x) }
@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func _pow(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }
@inline(__always) func _tanh(_ x: Double) -> Double { Glibc.tanh(x) }
#else
import Darwin
@inline(__always) func _exp(_ x: Double) -> Double { Darwin.exp(x) }
@inline(__always) func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) func _pow(_ x: Double, _ y: Double) -> Double { Darwin.pow(x, y) }
@inline(__always) func _tanh(_ x: Double) -> Double { Darwin.tanh(x) }
#endif

extension RefOps {
    /// The groups `l2Normalize` divides by its norm: every value of a sample when `acrossSpatial`,
    /// else the C values at each position. Indices into x `[N, C, inner]`.
    static func l2Groups(shape: [Int], acrossSpatial: Bool) -> [[Int]] {
        let (n, c, inner) = (shape[0], shape[1], shape.dropFirst(2).reduce(1, *))
        if acrossSpatial { return (0..<n).map { b in Array(b * c * inner..<(b + 1) * c * inner) } }
        return (0..<n).flatMap { b in (0..<inner).map { i in (0..<c).map { ch in (b * c + ch) * inner + i } } }
    }

    /// `y = x / sqrt(Σ_group x² + eps)`.
    public static func l2Normalize(x: [Double], shape: [Int], acrossSpatial: Bool, eps: Double) -> [Double] {
        var y = x
        for group in l2Groups(shape: shape, acrossSpatial: acrossSpatial) {
            let norm = (group.reduce(0.0) { $0 + x[$1] * x[$1] } + eps).squareRoot()
            for i in group { y[i] = x[i] / norm }
        }
        return y
    }

    /// Gradient of `l2Normalize` by the quotient rule: `dx_i = dy_i / n − x_i · Σ_j dy_j x_j / n³`.
    public static func l2NormalizeBackward(dy: [Double], x: [Double], shape: [Int], acrossSpatial: Bool, eps: Double) -> [Double] {
        var dx = x
        for group in l2Groups(shape: shape, acrossSpatial: acrossSpatial) {
            let norm = (group.reduce(0.0) { $0 + x[$1] * x[$1] } + eps).squareRoot()
            let dot = group.reduce(0.0) { $0 + dy[$1] * x[$1] }
            for i in group { dx[i] = dy[i] / norm - x[i] * dot / (norm * norm * norm) }
        }
        return dx
    }
}
