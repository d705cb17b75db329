import Foundation

extension FastOps {
    /// Softmax over axis 1 of x `[N, C, inner]` (inner = product of trailing dims), max subtracted
    /// first. When `log` is true, writes log-softmax instead. y may alias x. `workspace`: `2·N·inner`
    /// floats (each image's maxima and sums).
    public static func softmax(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                               inner: Int, log: Bool = false, workspace: UnsafeMutablePointer<Float>) {
        Parallel.forChunks(batch, costPerItem: channels * inner * 4) { images in
            for n in images {
                let m = workspace + 2 * n * inner, s = m + inner
                let (src, dst) = (x + n * channels * inner, y + n * channels * inner)
                m.update(from: src, count: inner)
                for c in 1..<max(1, channels) { let r = src + c * inner; for i in 0..<inner { m[i] = Swift.max(m[i], r[i]) } }
                s.update(repeating: 0, count: inner)
                if log {
                    for c in 0..<channels { let r = src + c * inner; for i in 0..<inner { s[i] += expf(r[i] - m[i]) } }
                    for i in 0..<inner { s[i] = m[i] + logf(s[i]) }
                    for c in 0..<channels { let (r, o) = (src + c * inner, dst + c * inner); for i in 0..<inner { o[i] = r[i] - s[i] } }
                } else {
                    for c in 0..<channels {
                        let (r, o) = (src + c * inner, dst + c * inner)
                        for i in 0..<inner { let e = expf(r[i] - m[i]); o[i] = e; s[i] += e }
                    }
                    for i in 0..<inner { s[i] = 1 / s[i] }
                    for c in 0..<channels { let o = dst + c * inner; for i in 0..<inner { o[i] *= s[i] } }
                }
            }
        }
    }

    /// Gradient of softmax from its output y: `dx = y · (dy − Σ_c dy · y)`. Shapes `[N, C, inner]`;
    /// `workspace`: `inner` floats.
    public static func softmaxBackward(dy: UnsafePointer<Float>, y: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                       batch: Int, channels: Int, inner: Int, workspace dot: UnsafeMutablePointer<Float>) {
        for n in 0..<batch {
            let off = n * channels * inner
            dot.update(repeating: 0, count: inner)
            for c in 0..<channels { let (g, p) = (dy + off + c * inner, y + off + c * inner); for i in 0..<inner { dot[i] += g[i] * p[i] } }
            for c in 0..<channels {
                let (g, p, d) = (dy + off + c * inner, y + off + c * inner, dx + off + c * inner)
                for i in 0..<inner { d[i] = p[i] * (g[i] - dot[i]) }
            }
        }
    }

    /// Gradient of log-softmax from its output y: `dx = dy − exp(y) · Σ_c dy`. Shapes `[N, C, inner]`;
    /// `workspace`: `inner` floats.
    public static func logSoftmaxBackward(dy: UnsafePointer<Float>, y: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                          batch: Int, channels: Int, inner: Int, workspace sum: UnsafeMutablePointer<Float>) {
        for n in 0..<batch {
            let off = n * channels * inner
            sum.update(repeating: 0, count: inner)
            for c in 0..<channels { let g = dy + off + c * inner; for i in 0..<inner { sum[i] += g[i] } }
            for c in 0..<channels {
                let (g, p, d) = (dy + off + c * inner, y + off + c * inner, dx + off + c * inner)
                for i in 0..<inner { d[i] = g[i] - expf(p[i]) * sum[i] }
            }
        }
    }

    /// Mean softmax cross-entropy of logits `[N, C]` against labels `[N]` (class indices in 0..<C).
    /// Writes the probabilities `[N, C]` (for the backward pass) and returns the loss.
    public static func softmaxCrossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                                           probs: UnsafeMutablePointer<Float>, batch: Int, classes: Int) -> Float {
        var loss: Double = 0
        for n in 0..<batch {
            let (x, p) = (logits + n * classes, probs + n * classes)
            let label = Int(labels[n])
            precondition(label >= 0 && label < classes, "softmaxCrossEntropy: label \(label) outside 0..<\(classes)")
            var m = -Float.infinity
            for c in 0..<classes { m = Swift.max(m, x[c]) }
            var s: Float = 0
            for c in 0..<classes { let e = expf(x[c] - m); p[c] = e; s += e }
            let inv = 1 / s
            for c in 0..<classes { p[c] *= inv }
            loss += Double(m + logf(s) - x[label])
        }
        return Float(loss / Double(batch))
    }

    /// Gradient of `softmaxCrossEntropy`: `dlogits = (p − onehot) / N · upstream`, `[N, C]`.
    public static func softmaxCrossEntropyBackward(probs: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                                                   dlogits: UnsafeMutablePointer<Float>, batch: Int, classes: Int,
                                                   upstream: Float = 1) {
        let scale = upstream / Float(batch)
        for i in 0..<(batch * classes) { dlogits[i] = probs[i] * scale }
        for n in 0..<batch { dlogits[n * classes + Int(labels[n])] -= scale }
    }

    /// `softmaxCrossEntropyBackward` from the logits `[N, C]`: the probabilities are computed again
    /// into the workspace's slice `probs` (`N·C` floats; `max_sum`, `2·N`, is the softmax's own).
    public static func softmaxCrossEntropyBackward(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                                                   dlogits: UnsafeMutablePointer<Float>, batch: Int, classes: Int, upstream: Float,
                                                   workspace: Workspace) {
        let probs = workspace.slice("probs")
        softmax(x: logits, y: probs, batch: batch, channels: classes, inner: 1, workspace: workspace.slice("max_sum"))
        softmaxCrossEntropyBackward(probs: probs, labels: labels, dlogits: dlogits, batch: batch, classes: classes, upstream: upstream)
    }

    /// Caffe EuclideanLoss: `Σ (a − b)² / (2 · batch)` over `count` values (accumulated in Double).
    public static func euclideanLoss(a: UnsafePointer<Float>, b: UnsafePointer<Float>, count: Int, batch: Int) -> Float {
        var s: Double = 0
        for i in 0..<count { let d = Double(a[i] - b[i]); s += d * d }
        return Float(s / (2 * Double(batch)))
    }

    /// Gradient of `euclideanLoss` for a: `da = (a − b) / batch · upstream` (for b it is −da).
    public static func euclideanLossBackward(a: UnsafePointer<Float>, b: UnsafePointer<Float>, da: UnsafeMutablePointer<Float>,
                                             count: Int, batch: Int, upstream: Float = 1) {
        let scale = upstream / Float(batch)
        for i in 0..<count { da[i] = (a[i] - b[i]) * scale }
    }
}
