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

    /// `weights` flattened: output pixel k reads `index[start[k]..<start[k + 1]]` with `weight`.
    struct Taps {
        var start: [Int] = [0], index: [Int] = [], weight: [Float] = []
        init(from n: Int, to m: Int) {
            for taps in Resample.weights(from: n, to: m) {
                for (i, a) in taps { index.append(i); weight.append(a) }
                start.append(index.count)
            }
        }
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

    /// `[C, H, W]` as `[C, W, H]` (columns contiguous: what `resample` reads), in blocks.
    static func transposed(_ image: Tensor) -> Tensor {
        let (c, h, w) = (image.shape[0], image.shape[1], image.shape[2])
        var out = [Float](repeating: 0, count: c * h * w)
        out.withUnsafeMutableBufferPointer { o in
            image.data.withUnsafeBufferPointer { src in
                let block = 32
                for ch in 0..<c {
                    for y0 in stride(from: 0, to: h, by: block) {
                        for x0 in stride(from: 0, to: w, by: block) {
                            for y in y0..<min(h, y0 + block) {
                                for x in x0..<min(w, x0 + block) { o[(ch * w + x) * h + y] = src[(ch * h + y) * w + x] }
                            }
                        }
                    }
                }
            }
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
        for ch in 0..<c {
            for k in 0..<outW {
                line.update(repeating: 0, count: wh)
                for t in x.start[k]..<x.start[k + 1] {
                    let ix = window.left + x.index[t]
                    guard ix >= 0 && ix < w, lo < hi else { continue }
                    let (a, s) = (x.weight[t], src + (ch * w + ix) * h + window.top)
                    for r in lo..<hi { line[r] += a * s[r] }
                }
                for r in 0..<outH {
                    var v: Float = 0
                    for t in y.start[r]..<y.start[r + 1] { v += y.weight[t] * line[y.index[t]] }
                    column[r] = v
                }
                store(ch, k, column)
            }
        }
    }
}
