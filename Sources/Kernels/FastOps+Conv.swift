import CBLAS

extension FastOps {
    /// The valid output columns `lo..<hi` whose input column `o·stride − pad + offset` is inside `0..<size`.
    @inline(__always)
    static func validRange(out: Int, size: Int, stride: Int, pad: Int, offset: Int) -> (Int, Int) {
        // o·stride ≥ pad − offset  and  o·stride < size + pad − offset
        let a = pad - offset
        var lo = a <= 0 ? 0 : (a + stride - 1) / stride
        let b = size + pad - offset
        var hi = b <= 0 ? 0 : (b + stride - 1) / stride
        lo = min(lo, out); hi = min(max(hi, lo), out)
        return (lo, hi)
    }

    /// im2col for one image and one group: x `[groupInChannels, H, W]` (the group's channels) →
    /// col `[groupInChannels · KH · KW, OH · OW]`, zeros where the window reads padding. Rows are
    /// `rowStride` floats apart (default OH · OW; more when the images of a batch sit side by side).
    public static func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, _ g: ConvGeometry, rowStride: Int? = nil) {
        let (h, w, oh, ow) = (g.height, g.width, g.outH, g.outW)
        let ld = rowStride ?? oh * ow
        let (kh, kw) = (g.kernelH, g.kernelW)
        Parallel.forChunks(g.colRows, costPerItem: oh * ow) { rows in
            for row in rows {
                let c = row / (kh * kw), i = (row / kw) % kh, j = row % kw
                let plane = x + c * h * w
                let dst = col + row * ld
                let (xlo, xhi) = validRange(out: ow, size: w, stride: g.strideW, pad: g.padW, offset: j * g.dilationW)
                for oy in 0..<oh {
                    let d = dst + oy * ow
                    let iy = oy * g.strideH - g.padH + i * g.dilationH
                    if iy < 0 || iy >= h { d.update(repeating: 0, count: ow); continue }
                    let src = plane + iy * w - g.padW + j * g.dilationW
                    for ox in 0..<xlo { d[ox] = 0 }
                    if g.strideW == 1 {
                        for ox in xlo..<xhi { d[ox] = src[ox] }
                    } else {
                        for ox in xlo..<xhi { d[ox] = src[ox * g.strideW] }
                    }
                    for ox in xhi..<ow { d[ox] = 0 }
                }
            }
        }
    }

    /// col2im for one image and one group: adds col `[groupInChannels · KH · KW, OH · OW]` (rows
    /// `rowStride` apart, as `im2col`) into dx `[groupInChannels, H, W]` (which the caller has zeroed
    /// or wants accumulated into).
    public static func col2im(_ col: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ g: ConvGeometry, rowStride: Int? = nil) {
        let (h, w, oh, ow) = (g.height, g.width, g.outH, g.outW)
        let ld = rowStride ?? oh * ow
        let (kh, kw) = (g.kernelH, g.kernelW)
        // Parallel over channels: each channel's rows only touch that channel's plane.
        Parallel.forChunks(g.groupInChannels, costPerItem: kh * kw * oh * ow) { channels in
            for c in channels {
                let plane = dx + c * h * w
                for i in 0..<kh { for j in 0..<kw {
                    let src = col + ((c * kh + i) * kw + j) * ld
                    let (xlo, xhi) = validRange(out: ow, size: w, stride: g.strideW, pad: g.padW, offset: j * g.dilationW)
                    for oy in 0..<oh {
                        let iy = oy * g.strideH - g.padH + i * g.dilationH
                        if iy < 0 || iy >= h { continue }
                        let d = plane + iy * w - g.padW + j * g.dilationW
                        let s = src + oy * ow
                        for ox in xlo..<xhi { d[ox * g.strideW] += s[ox] }
                    }
                } }
            }
        }
    }

    /// Adds `bias[c]` and applies `activation` to y `[planes, spatial]` (plane p has channel p % channels).
    public static func biasActivationEpilogue(_ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
                                              activation: Activation, planes: Int, channels: Int, spatial: Int) {
        if bias == nil && activation == .none { return }
        Parallel.forChunks(planes, costPerItem: spatial) { range in
            for p in range {
                let v = y + p * spatial
                let b = bias?[p % channels] ?? 0
                switch activation {
                case .none: for i in 0..<spatial { v[i] += b }
                case let .relu(slope): for i in 0..<spatial { let t = v[i] + b; v[i] = t > 0 ? t : t * slope }
                }
            }
        }
    }

    /// 2-D convolution by im2col + one `cblas_sgemm` per image and group (1x1/stride-1/pad-0 kernels
    /// skip im2col), then bias and activation while the output is hot.
    /// x `[N, C, H, W]`, w `[O, C/groups, KH, KW]`, bias `[O]` → y `[N, O, OH, OW]`.
    /// `workspace` holds `g.workspaceCount` floats (unused by 1x1 kernels).
    public static func conv2d(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              y: UnsafeMutablePointer<Float>, geometry g: ConvGeometry, activation: Activation = .none,
                              workspace col: UnsafeMutablePointer<Float>) {
        let ohw = g.outH * g.outW, hw = g.height * g.width
        let (cg, og, k) = (g.groupInChannels, g.groupOutChannels, g.colRows)
        for n in 0..<g.batch {
            for grp in 0..<g.groups {
                let xg = x + (n * g.inChannels + grp * cg) * hw
                let b: UnsafePointer<Float>
                if g.isPointwise { b = xg } else { im2col(xg, col, g); b = UnsafePointer(col) }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                            Int32(og), Int32(ohw), Int32(k),  // M = group's output channels, N = OH·OW, K = C/groups·KH·KW
                            1, w + grp * og * k, Int32(k),     // A: the group's weights [og, k]
                            b, Int32(ohw),                     // B: im2col (or x itself) [k, OH·OW]
                            0, y + (n * g.outChannels + grp * og) * ohw, Int32(ohw))  // C: y[n, grp·og ..], overwritten
            }
            biasActivationEpilogue(y + n * g.outChannels * ohw, bias: bias, activation: activation,
                                   planes: g.outChannels, channels: g.outChannels, spatial: ohw)
        }
    }

    /// Gradient of `conv2d` with respect to x: dcol = wᵀ · dy per image and group, then col2im.
    /// dy `[N, O, OH, OW]`, w `[O, C/groups, KH, KW]` → dx `[N, C, H, W]` (overwritten); `workspace` as for `conv2d`.
    public static func conv2dBackwardData(dy: UnsafePointer<Float>, w: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                          geometry g: ConvGeometry, workspace col: UnsafeMutablePointer<Float>) {
        let ohw = g.outH * g.outW, hw = g.height * g.width
        let (cg, og, k) = (g.groupInChannels, g.groupOutChannels, g.colRows)
        if !g.isPointwise { dx.update(repeating: 0, count: g.inputCount) }
        for n in 0..<g.batch {
            for grp in 0..<g.groups {
                let dxg = dx + (n * g.inChannels + grp * cg) * hw
                let c = g.isPointwise ? dxg : col
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                            Int32(k), Int32(ohw), Int32(og),   // M = C/groups·KH·KW, N = OH·OW, K = group's output channels
                            1, w + grp * og * k, Int32(k),     // A: the group's weights stored [og, k], used transposed
                            dy + (n * g.outChannels + grp * og) * ohw, Int32(ohw),  // B: the group's dy [og, OH·OW]
                            0, c, Int32(ohw))                  // C: dcol [k, OH·OW] (dx itself on the 1x1 path)
                if !g.isPointwise { col2im(col, dxg, g) }
            }
        }
    }

    /// Gradient of `conv2d` with respect to w: dw += dy · im2col(x)ᵀ, summed over the batch.
    /// dy `[N, O, OH, OW]`, x `[N, C, H, W]` → dw `[O, C/groups, KH, KW]` (overwritten unless `accumulate`);
    /// `workspace` as for `conv2d`.
    public static func conv2dBackwardFilter(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                                            geometry g: ConvGeometry, accumulate: Bool = false,
                                            workspace col: UnsafeMutablePointer<Float>) {
        let ohw = g.outH * g.outW, hw = g.height * g.width
        let (cg, og, k) = (g.groupInChannels, g.groupOutChannels, g.colRows)
        if !accumulate { dw.update(repeating: 0, count: g.weightCount) }
        for n in 0..<g.batch {
            for grp in 0..<g.groups {
                let xg = x + (n * g.inChannels + grp * cg) * hw
                let b: UnsafePointer<Float>
                if g.isPointwise { b = xg } else { im2col(xg, col, g); b = UnsafePointer(col) }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                            Int32(og), Int32(k), Int32(ohw),   // M = group's output channels, N = C/groups·KH·KW, K = OH·OW
                            1, dy + (n * g.outChannels + grp * og) * ohw, Int32(ohw),  // A: the group's dy [og, OH·OW]
                            b, Int32(ohw),                     // B: im2col stored [k, OH·OW], used transposed
                            1, dw + grp * og * k, Int32(k))    // C: the group's rows of dw, accumulated over images
            }
        }
    }

}
