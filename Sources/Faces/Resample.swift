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

    /// `[C, H, W]` to `[C, outH, outW]`.
    static func image(_ image: Tensor, height outH: Int, width outW: Int) -> Tensor {
        let (c, h, w) = (image.shape[0], image.shape[1], image.shape[2])
        let wx = weights(from: w, to: outW), wy = weights(from: h, to: outH)
        var rows = [Float](repeating: 0, count: c * h * outW)  // columns first
        image.data.withUnsafeBufferPointer { src in
            for ch in 0..<c {
                for y in 0..<h {
                    let s = (ch * h + y) * w, d = (ch * h + y) * outW
                    for x in 0..<outW {
                        var v: Float = 0
                        for (i, a) in wx[x] { v += a * src[s + i] }
                        rows[d + x] = v
                    }
                }
            }
        }
        var out = [Float](repeating: 0, count: c * outH * outW)
        for ch in 0..<c {
            for y in 0..<outH {
                let d = (ch * outH + y) * outW
                for (i, a) in wy[y] {
                    let s = (ch * h + i) * outW
                    for x in 0..<outW { out[d + x] += a * rows[s + x] }
                }
            }
        }
        return Tensor(shape: [c, outH, outW], data: out)
    }
}
