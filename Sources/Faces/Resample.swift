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
        let c = image.shape[0]
        var out = [Float](repeating: 0, count: c * outH * outW)
        out.withUnsafeMutableBufferPointer { o in
            image.data.withUnsafeBufferPointer { src in
                resample(src.baseAddress!, channels: c, height: image.shape[1], width: image.shape[2],
                         window: (0, 0, image.shape[1], image.shape[2]),
                         x: Taps(from: image.shape[2], to: outW), y: Taps(from: image.shape[1], to: outH)) { ch, y, x, v in
                    o[(ch * outH + y) * outW + x] = v
                }
            }
        }
        return Tensor(shape: [c, outH, outW], data: out)
    }

    /// The window (`top`, `left`, `height`, `width`; pixels outside the image count as 0) of the
    /// planar image `src` `[channels, height, width]` resampled by the taps `x` (columns first) and
    /// `y`; each output value goes to `store(channel, row, column, value)`. `image` is this over the
    /// whole image; the arithmetic is the same, value for value.
    @inline(__always)
    static func resample(_ src: UnsafePointer<Float>, channels c: Int, height h: Int, width w: Int, window: (top: Int, left: Int, height: Int, width: Int),
                         x: Taps, y: Taps, store: (Int, Int, Int, Float) -> Void) {
        let (outH, outW) = (y.start.count - 1, x.start.count - 1)
        let (wh, ww) = (window.height, window.width)
        var rows = [Float](repeating: 0, count: c * wh * outW)  // columns first
        var pixel = [Float](repeating: 0, count: max(ww, 1))
        // A window row inside the image is read where it lies; one that crosses its border is copied
        // with zeros outside first.
        let columnsInside = window.left >= 0 && window.left + ww <= w
        pixel.withUnsafeMutableBufferPointer { pixel in
            for ch in 0..<c {
                for r in 0..<wh {
                    let iy = window.top + r
                    let row: UnsafePointer<Float>
                    if columnsInside && iy >= 0 && iy < h {
                        row = src + (ch * h + iy) * w + window.left
                    } else {
                        for k in 0..<ww {
                            let ix = window.left + k
                            pixel[k] = iy >= 0 && iy < h && ix >= 0 && ix < w ? src[(ch * h + iy) * w + ix] : 0
                        }
                        row = UnsafePointer(pixel.baseAddress!)
                    }
                    let d = (ch * wh + r) * outW
                    for k in 0..<outW {
                        var v: Float = 0
                        for t in x.start[k]..<x.start[k + 1] { v += x.weight[t] * row[x.index[t]] }
                        rows[d + k] = v
                    }
                }
            }
        }
        var line = [Float](repeating: 0, count: outW)
        for ch in 0..<c {
            for r in 0..<outH {
                for k in 0..<outW { line[k] = 0 }
                for t in y.start[r]..<y.start[r + 1] {
                    let (s, a) = ((ch * wh + y.index[t]) * outW, y.weight[t])
                    for k in 0..<outW { line[k] += a * rows[s + k] }
                }
                for k in 0..<outW { store(ch, r, k, line[k]) }
            }
        }
    }
}
