import CKernels

extension FastOps {
    /// Calls `body(oy, ox, max, index)` for every pooling window of one `[H, W]` plane: the window
    /// clipped to the plane, its largest value and that value's index `h · W + w` (the first of
    /// ties; -inf and -1 for a window wholly in the padding).
    @inline(__always)
    static func windowMaxima(_ src: UnsafePointer<Float>, geometry g: PoolGeometry, _ body: (Int, Int, Float, Int) -> Void) {
        let (h, w) = (g.height, g.width)
        for oy in 0..<g.outH {
            let hs = oy * g.strideH - g.padH
            let (h0, h1) = (max(hs, 0), min(hs + g.kernelH, h))
            for ox in 0..<g.outW {
                let ws = ox * g.strideW - g.padW
                let (w0, w1) = (max(ws, 0), min(ws + g.kernelW, w))
                var best = -Float.infinity, bestIdx = -1
                for iy in h0..<max(h0, h1) {
                    let row = src + iy * w
                    for ix in w0..<max(w0, w1) where row[ix] > best { best = row[ix]; bestIdx = iy * w + ix }
                }
                body(oy, ox, best, bestIdx)
            }
        }
    }

    /// Max pooling. x `[N, C, H, W]` → y `[N, C, OH, OW]`; the window is clipped to the image, so
    /// padding never wins; ties keep the first maximum. `argmax`, if given, receives one byte per
    /// output, `[N, C, OH, OW]`: the winner's place `i · kernelW + j` in its (unclipped) window,
    /// `noWinner` where there is none; with `reluMask` a winner that is not > 0 counts as none (the
    /// ReLU backward of a pooled ReLU output, applied ahead: `maxPoolBackward(argmax:)` then equals
    /// `maxPoolBackward(x:reluMask:)`). Windows of at most 255 cells. With `slopes` (no `argmax`), the
    /// pool of `prelu(x, slopes)` (`slopeCount` 1: one slope for every channel), never written.
    public static func maxPool(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<UInt8>?,
                               geometry g: PoolGeometry, reluMask: Bool = false, slopes: UnsafePointer<Float>? = nil, slopeCount: Int = 0) {
        let (h, w, oh, ow) = (g.height, g.width, g.outH, g.outW)
        if g.isDisjoint2x2 && slopes == nil {
            Parallel.forChunks(g.planes, costPerItem: oh * ow * 4) { planes in
                for p in planes {
                    for oy in 0..<oh {
                        let r0 = x + p * h * w + 2 * oy * w, o = (p * oh + oy) * ow
                        maxPool2x2Row(r0, r0 + w, y + o, argmax.map { $0 + o }, count: ow, reluMask: reluMask)
                    }
                }
            }
            return
        }
        if argmax == nil {
            // Inference: the window rows' column maxima, then the maxima across the window's columns,
            // each input row read once per window row (CKernels' fn2e_max_pool); with `slopes`, the
            // PReLU before the pool applied as each value is read.
            Parallel.forChunks(g.planes, costPerItem: oh * ow * g.kernelH * g.kernelW) { planes in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * w + 2) { column in
                    fn2e_max_pool(x, y, Int32(h), Int32(w), g.direct, slopes, Int32(slopeCount == 1 ? 1 : g.channels), column.baseAddress!,
                                  planes.lowerBound, planes.upperBound)
                }
            }
            return
        }
        precondition(slopes == nil, "maxPool: a PReLU is fused only where no winners are recorded")
        Parallel.forChunks(g.planes, costPerItem: oh * ow * g.kernelH * g.kernelW) { planes in
            for p in planes {
                windowMaxima(x + p * h * w, geometry: g) { oy, ox, best, bestIdx in
                    let o = (p * oh + oy) * ow + ox
                    y[o] = best
                    let i = bestIdx / w - (oy * g.strideH - g.padH), j = bestIdx % w - (ox * g.strideW - g.padW)
                    argmax?[o] = bestIdx < 0 || (reluMask && !(best > 0)) ? noWinner : UInt8(i * g.kernelW + j)
                }
            }
        }
    }

    /// What `maxPool` records for a window without a winner.
    public static let noWinner: UInt8 = 255

    /// One row of 2x2 windows: input rows `r0`, `r1`, `count` outputs at `d` and, when given, their
    /// winners at `a` (0, 1 in row 0, 2, 3 in row 1; the first maximum in window order, NaN never
    /// wins, `noWinner` for none or, with `reluMask`, a winner not > 0). Four windows at a time, as
    /// vectors of their even and odd columns, without branches.
    @inline(__always)
    static func maxPool2x2Row(_ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>,
                              _ a: UnsafeMutablePointer<UInt8>?, count: Int, reluMask: Bool) {
        typealias V = SIMD4<Float>
        typealias I = SIMD4<Int32>
        var ox = 0
        while ox + 4 <= count {
            let top = UnsafeRawPointer(r0 + 2 * ox).loadUnaligned(as: SIMD8<Float>.self)
            let bottom = UnsafeRawPointer(r1 + 2 * ox).loadUnaligned(as: SIMD8<Float>.self)
            var best = V(repeating: -.infinity), k = I(repeating: -1)
            @inline(__always) func candidate(_ v: V, _ at: I) {
                let wins = v .> best
                best.replace(with: v, where: wins)
                k.replace(with: at, where: wins)
            }
            candidate(top.evenHalf, I(repeating: 0))
            candidate(top.oddHalf, I(repeating: 1))
            candidate(bottom.evenHalf, I(repeating: 2))
            candidate(bottom.oddHalf, I(repeating: 3))
            UnsafeMutableRawPointer(d + ox).storeBytes(of: best, as: V.self)
            if let a {
                if reluMask { k.replace(with: -1, where: .!(best .> 0)) }
                UnsafeMutableRawPointer(a + ox).storeBytes(of: SIMD4<UInt8>(truncatingIfNeeded: k), as: SIMD4<UInt8>.self)
            }
            ox += 4
        }
        for ox in ox..<count {
            var best = -Float.infinity, k = noWinner
            if r0[2 * ox] > best { (best, k) = (r0[2 * ox], 0) }
            if r0[2 * ox + 1] > best { (best, k) = (r0[2 * ox + 1], 1) }
            if r1[2 * ox] > best { (best, k) = (r1[2 * ox], 2) }
            if r1[2 * ox + 1] > best { (best, k) = (r1[2 * ox + 1], 3) }
            d[ox] = best
            a?[ox] = reluMask && !(best > 0) ? noWinner : k
        }
    }

    /// Gradient of `maxPool` from the saved `argmax`: dx `[N, C, H, W]` (overwritten) gets each dy at
    /// its winner. Where 2x2 windows tile the plane, each window writes its four cells in one pass,
    /// four windows at a time as vectors (each row's eight cells: even and odd columns interleaved),
    /// the row's last windows one by one.
    public static func maxPoolBackward(dy: UnsafePointer<Float>, argmax: UnsafePointer<UInt8>, dx: UnsafeMutablePointer<Float>,
                                       geometry g: PoolGeometry) {
        let (h, w, oh, ow) = (g.height, g.width, g.outH, g.outW)
        let (hw, ohw) = (h * w, oh * ow)
        if g.isDisjoint2x2 && 2 * oh == h && 2 * ow == w {
            Parallel.forChunks(g.planes, costPerItem: hw) { planes in
                for p in planes {
                    for oy in 0..<oh {
                        let d0 = dx + p * hw + 2 * oy * w, d1 = d0 + w, o = (p * oh + oy) * ow
                        let vectors = ow / 4 * 4
                        for ox in stride(from: 0, to: vectors, by: 4) {
                            let k = SIMD4<Int32>(truncatingIfNeeded: UnsafeRawPointer(argmax + o + ox).loadUnaligned(as: SIMD4<UInt8>.self))
                            let v = UnsafeRawPointer(dy + o + ox).loadUnaligned(as: SIMD4<Float>.self)
                            func cells(_ at: Int32) -> SIMD8<Float> {  // a row's cells: dy where the winner is, else 0
                                let (e, f) = (v.replacing(with: 0, where: k .!= at), v.replacing(with: 0, where: k .!= at + 1))
                                return SIMD8(e[0], f[0], e[1], f[1], e[2], f[2], e[3], f[3])
                            }
                            UnsafeMutableRawPointer(d0 + 2 * ox).storeBytes(of: cells(0), as: SIMD8<Float>.self)
                            UnsafeMutableRawPointer(d1 + 2 * ox).storeBytes(of: cells(2), as: SIMD8<Float>.self)
                        }
                        for ox in vectors..<ow {
                            let k = argmax[o + ox], v = dy[o + ox]
                            (d0[2 * ox], d0[2 * ox + 1]) = (k == 0 ? v : 0, k == 1 ? v : 0)
                            (d1[2 * ox], d1[2 * ox + 1]) = (k == 2 ? v : 0, k == 3 ? v : 0)
                        }
                    }
                }
            }
            return
        }
        dx.update(repeating: 0, count: g.inputCount)
        Parallel.forChunks(g.planes, costPerItem: ohw) { planes in
            for p in planes {
                let d = dx + p * hw
                for o in (p * ohw)..<((p + 1) * ohw) where argmax[o] != noWinner {
                    let (k, oy, ox) = (Int(argmax[o]), o % ohw / ow, o % ow)
                    d[(oy * g.strideH - g.padH + k / g.kernelW) * w + ox * g.strideW - g.padW + k % g.kernelW] += dy[o]
                }
            }
        }
    }

    /// Gradient of `maxPool` recomputing the winners from x (no saved argmax, no scratch): each
    /// plane of dx `[N, C, H, W]` is zeroed and gets every dy at its window's winner (first maximum,
    /// as `maxPool`), planes in parallel. With `reluMask`, a winner ≤ 0 passes nothing: that is
    /// `relu_backward(x, ·)` fused in, for an x that is a ReLU's output.
    public static func maxPoolBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                       geometry g: PoolGeometry, reluMask: Bool = false) {
        let (h, w, oh, ow) = (g.height, g.width, g.outH, g.outW)
        if g.isDisjoint2x2 {
            // Windows tile the plane: each writes its four cells, the winner gets dy, the rest 0.
            Parallel.forChunks(g.planes, costPerItem: h * w) { planes in
                for p in planes {
                    let d = dx + p * h * w
                    if 2 * oh != h || 2 * ow != w { d.update(repeating: 0, count: h * w) }
                    for oy in 0..<oh {
                        let r0 = x + p * h * w + 2 * oy * w, r1 = r0 + w
                        let d0 = d + 2 * oy * w, d1 = d0 + w, gy = dy + (p * oh + oy) * ow
                        for ox in 0..<ow {
                            // Read all four cells before writing any: dx may be x itself (in place).
                            let (a, b, c, e) = (r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1])
                            var best = -Float.infinity, k = -1
                            if a > best { best = a; k = 0 }
                            if b > best { best = b; k = 1 }
                            if c > best { best = c; k = 2 }
                            if e > best { best = e; k = 3 }
                            let gv = (k < 0 || (reluMask && !(best > 0))) ? 0 : gy[ox]
                            d0[2 * ox] = k == 0 ? gv : 0
                            d0[2 * ox + 1] = k == 1 ? gv : 0
                            d1[2 * ox] = k == 2 ? gv : 0
                            d1[2 * ox + 1] = k == 3 ? gv : 0
                        }
                    }
                }
            }
            return
        }
        Parallel.forChunks(g.planes, costPerItem: h * w + oh * ow * g.kernelH * g.kernelW) { planes in
            for p in planes {
                let src = x + p * h * w, d = dx + p * h * w, gy = dy + p * oh * ow
                d.update(repeating: 0, count: h * w)
                windowMaxima(src, geometry: g) { oy, ox, best, bestIdx in
                    if bestIdx < 0 || (reluMask && !(best > 0)) { return }
                    d[bestIdx] += gy[oy * ow + ox]
                }
            }
        }
    }

    /// Caffe's average-pool window: the divisor counts the window clipped to the padded image,
    /// the sum covers the part inside the real image.
    @inline(__always)
    static func avgWindow(_ oy: Int, _ ox: Int, _ g: PoolGeometry) -> (h0: Int, h1: Int, w0: Int, w1: Int, size: Int) {
        let hs = oy * g.strideH - g.padH, ws = ox * g.strideW - g.padW
        let he = min(hs + g.kernelH, g.height + g.padH), we = min(ws + g.kernelW, g.width + g.padW)
        return (max(hs, 0), min(he, g.height), max(ws, 0), min(we, g.width), (he - hs) * (we - ws))
    }

    /// Average pooling with Caffe's divisor (see `avgWindow`). x `[N, C, H, W]` → y `[N, C, OH, OW]`.
    public static func avgPool(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, geometry g: PoolGeometry) {
        let (h, w, oh, ow) = (g.height, g.width, g.outH, g.outW)
        Parallel.forChunks(g.planes, costPerItem: oh * ow * g.kernelH * g.kernelW) { planes in
            for p in planes {
                let src = x + p * h * w
                for oy in 0..<oh { for ox in 0..<ow {
                    let win = avgWindow(oy, ox, g)
                    var s: Float = 0
                    for iy in win.h0..<max(win.h0, win.h1) {
                        let row = src + iy * w
                        for ix in win.w0..<max(win.w0, win.w1) { s += row[ix] }
                    }
                    y[(p * oh + oy) * ow + ox] = s / Float(win.size)
                } }
            }
        }
    }

    /// Gradient of `avgPool` (same divisor): dx `[N, C, H, W]` (overwritten).
    public static func avgPoolBackward(dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, geometry g: PoolGeometry) {
        let (h, w, oh, ow) = (g.height, g.width, g.outH, g.outW)
        dx.update(repeating: 0, count: g.inputCount)
        Parallel.forChunks(g.planes, costPerItem: oh * ow * g.kernelH * g.kernelW) { planes in
            for p in planes {
                let d = dx + p * h * w
                for oy in 0..<oh { for ox in 0..<ow {
                    let win = avgWindow(oy, ox, g)
                    let v = dy[(p * oh + oy) * ow + ox] / Float(win.size)
                    for iy in win.h0..<max(win.h0, win.h1) {
                        let row = d + iy * w
                        for ix in win.w0..<max(win.w0, win.w1) { row[ix] += v }
                    }
                } }
            }
        }
    }
}
