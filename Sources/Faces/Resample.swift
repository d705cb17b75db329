import Tensors

/// Resampling as the MTCNN release does it (Piotr Dollár's `imResample`, 'bilinear'): each axis on
/// its own; shrinking averages the source pixels an output pixel covers (fractional edges weighted
/// by their overlap), growing interpolates linearly between pixel centres (edges clamp).
enum Resample {
    /// Source indices and weights of each output pixel along an axis of `n` pixels resampled to `m`.
    static func weights(from n: Int, to m: Int) -> [[(Int, Float)]] {
        let ratio = Double(n) / Double(m)
        return (0..<m).map { k in
            if m < n {
                let lo = Double(k) * ratio, hi = Double(k + 1) * ratio
                return (Int(lo)..<min(n, Int(hi.rounded(.up)))).compactMap { i in
                    let overlap = min(hi, Double(i + 1)) - max(lo, Double(i))
                    return overlap > 0 ? (i, Float(overlap / ratio)) : nil
                }
            }
            let f = max(0, (Double(k) + 0.5) * ratio - 0.5)
            let i0 = min(Int(f), n - 1), i1 = min(i0 + 1, n - 1)
            let a = Float(f - Double(i0))
            return a == 0 ? [(i0, Float(1))] : [(i0, 1 - a), (i1, a)]
        }
    }

    /// `weights` flattened: output pixel k reads `index[start[k]..<start[k + 1]]` with `weight`, in
    /// buffers of their own (read without bounds checks in the loops below).
    final class Taps {
        let start: UnsafeMutableBufferPointer<Int>, index: UnsafeMutableBufferPointer<Int>, weight: UnsafeMutableBufferPointer<Float>
        init(from n: Int, to m: Int) {
            let taps = Resample.weights(from: n, to: m)
            let count = taps.reduce(0) { $0 + $1.count }
            (start, index, weight) = (.allocate(capacity: m + 1), .allocate(capacity: count), .allocate(capacity: count))
            start[0] = 0
            for (k, pixel) in taps.enumerated() {
                for (j, (i, a)) in pixel.enumerated() { (index[start[k] + j], weight[start[k] + j]) = (i, a) }
                start[k + 1] = start[k] + pixel.count
            }
        }
        deinit { start.deallocate(); index.deallocate(); weight.deallocate() }
    }

    /// `[C, H, W]` to `[C, outH, outW]`.
    static func image(_ image: Tensor, height outH: Int, width outW: Int) -> Tensor {
        let (c, h, w) = (image.shape[0], image.shape[1], image.shape[2])
        var out = [Float](repeating: 0, count: c * outH * outW)
        out.withUnsafeMutableBufferPointer { o in
            transposed(image).data.withUnsafeBufferPointer { src in
                resample(src.baseAddress!, channels: c, height: h, width: w, window: (0, 0, h, w),
                         x: Taps(from: w, to: outW), y: Taps(from: h, to: outH)) { ch, x, column in
                    for y in 0..<outH { o[(ch * outH + y) * outW + x] = column[y] }
                }
            }
        }
        return Tensor(shape: [c, outH, outW], data: out)
    }

    /// `[C, H, W]` as `[C, W, H]` (columns contiguous: what `resample` reads), 8 rows at a time.
    static func transposed(_ image: Tensor) -> Tensor {
        let (c, h, w) = (image.shape[0], image.shape[1], image.shape[2])
        let out = [Float](unsafeUninitializedCapacity: c * h * w) { o, n in
            image.data.withUnsafeBufferPointer { s in
                for ch in 0..<c {
                    let (src, dst) = (s.baseAddress! + ch * h * w, o.baseAddress! + ch * h * w)
                    for y0 in stride(from: 0, to: h, by: 8) {
                        let y1 = min(h, y0 + 8)
                        for x in 0..<w {
                            for y in y0..<y1 { dst[x * h + y] = src[y * w + x] }
                        }
                    }
                }
            }
            n = c * h * w
        }
        return Tensor(shape: [c, w, h], data: out)
    }

    /// The window (`top`, `left`, `height`, `width`; pixels outside the image count as 0) of an
    /// image `[channels, height, width]` resampled by the taps `x` (columns first) and `y`, read
    /// from `src`, the image transposed (`[channels, width, height]`, as `transposed` gives).
    /// `store(channel, column, values)` takes each output column, its rows contiguous. Each value
    /// is the same sum, in the same order, as resampling rows first then columns of the untransposed
    /// image: over a column, sum of the x taps along each row; then the y taps.
    @inline(__always)
    static func resample(_ src: UnsafePointer<Float>, channels c: Int, height h: Int, width w: Int, window: (top: Int, left: Int, height: Int, width: Int),
                         x: Taps, y: Taps, store: (Int, Int, UnsafePointer<Float>) -> Void) {
        let (outH, outW) = (y.start.count - 1, x.start.count - 1)
        let wh = window.height
        // The window's rows inside the image: `lo..<hi` (rows outside it add nothing).
        let (lo, hi) = (max(0, -window.top), max(0, min(wh, h - window.top)))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: wh + outH)
        defer { scratch.deallocate() }
        let (line, column) = (scratch, scratch + wh)
        let (xs, xi, xw, ys, yi, yw) = (x.start, x.index, x.weight, y.start, y.index, y.weight)
        for ch in 0..<c {
            for k in 0..<outW {
                line.update(repeating: 0, count: wh)
                for t in xs[k]..<xs[k + 1] {
                    let ix = window.left + xi[t]
                    guard ix >= 0 && ix < w, lo < hi else { continue }
                    let (a, s) = (xw[t], src + (ch * w + ix) * h + window.top)
                    for r in lo..<hi { line[r] += a * s[r] }
                }
                for r in 0..<outH {
                    var v: Float = 0
                    for t in ys[r]..<ys[r + 1] { v += yw[t] * line[yi[t]] }
                    column[r] = v
                }
                store(ch, k, column)
            }
        }
    }
}
