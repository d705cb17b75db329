import CBLAS

/// Convolution with the whole batch in one GEMM, for late layers whose images are too small for
/// a GEMM each (a 7x7 output gives a 49-column GEMM per image): the im2col matrices of all images
/// sit side by side, `[C·KH·KW, N·OH·OW]`, and the channel-major result `[O, N·OH·OW]` is moved
/// to NCHW afterwards (with bias and activation on the way). Groups of 1 only.
extension ConvGeometry {
    /// Floats of workspace each batched entry point needs: the batch's im2col matrix and one
    /// channel-major `[O, N·OH·OW]` matrix.
    public var batchedWorkspaceCount: Int { (colRows + outChannels) * batch * outH * outW }
}

extension FastOps {
    /// `[N, O, S]` → `[O, N·S]` (`toChannelMajor`) or back, plane by plane.
    static func moveChannels(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                             spatial: Int, toChannelMajor: Bool) {
        Parallel.forChunks(batch * channels, costPerItem: spatial) { planes in
            for p in planes {
                let (n, o) = (p / channels, p % channels)
                let nchw = p * spatial, major = (o * batch + n) * spatial
                if toChannelMajor {
                    (dst + major).update(from: src + nchw, count: spatial)
                } else {
                    (dst + nchw).update(from: src + major, count: spatial)
                }
            }
        }
    }

    /// im2col of every image into `col` `[C·KH·KW, N·OH·OW]`.
    static func im2colBatch(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        let (ohw, hw) = (g.outH * g.outW, g.height * g.width)
        for n in 0..<g.batch { im2col(x + n * g.inChannels * hw, col + n * ohw, g, rowStride: g.batch * ohw) }
    }

    /// Same contract as `conv2d` (groups 1), one GEMM for the batch.
    public static func conv2dBatched(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                     y: UnsafeMutablePointer<Float>, geometry g: ConvGeometry, activation: Activation,
                                     workspace: UnsafeMutablePointer<Float>) {
        precondition(g.groups == 1, "conv2dBatched: groups \(g.groups)")
        let cols = g.batch * g.outH * g.outW
        let col = workspace, out = workspace + g.colRows * cols
        im2colBatch(x, col, g)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                    Int32(g.outChannels), Int32(cols), Int32(g.colRows),  // M = O, N = N·OH·OW, K = C·KH·KW
                    1, w, Int32(g.colRows),                               // A: weights [O, K]
                    col, Int32(cols),                                     // B: im2col [K, N·OH·OW]
                    0, out, Int32(cols))                                  // C: [O, N·OH·OW]
        moveChannels(out, y, batch: g.batch, channels: g.outChannels, spatial: g.outH * g.outW, toChannelMajor: false)
        biasActivationEpilogue(y, bias: bias, activation: activation, planes: g.batch * g.outChannels,
                               channels: g.outChannels, spatial: g.outH * g.outW)
    }

    /// Same contract as `conv2dBackwardData` (groups 1): dcol = wᵀ · dy for the batch, then col2im per image.
    public static func conv2dBackwardDataBatched(dy: UnsafePointer<Float>, w: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                                 geometry g: ConvGeometry, workspace: UnsafeMutablePointer<Float>) {
        precondition(g.groups == 1, "conv2dBackwardDataBatched: groups \(g.groups)")
        let (ohw, hw) = (g.outH * g.outW, g.height * g.width)
        let cols = g.batch * ohw
        let dcol = workspace, dyMajor = workspace + g.colRows * cols
        moveChannels(dy, dyMajor, batch: g.batch, channels: g.outChannels, spatial: ohw, toChannelMajor: true)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                    Int32(g.colRows), Int32(cols), Int32(g.outChannels),  // M = C·KH·KW, N = N·OH·OW, K = O
                    1, w, Int32(g.colRows),                               // A: weights stored [O, K], used transposed
                    dyMajor, Int32(cols),                                 // B: dy [O, N·OH·OW]
                    0, dcol, Int32(cols))                                 // C: dcol [K, N·OH·OW]
        dx.update(repeating: 0, count: g.inputCount)
        for n in 0..<g.batch { col2im(dcol + n * ohw, dx + n * g.inChannels * hw, g, rowStride: cols) }
    }

    /// Same contract as `conv2dBackwardFilter` without accumulation (groups 1): dw = dy · im2col(x)ᵀ
    /// over the batch in one GEMM.
    public static func conv2dBackwardFilterBatched(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                                                   geometry g: ConvGeometry, workspace: UnsafeMutablePointer<Float>) {
        precondition(g.groups == 1, "conv2dBackwardFilterBatched: groups \(g.groups)")
        let ohw = g.outH * g.outW, cols = g.batch * ohw
        let col = workspace, dyMajor = workspace + g.colRows * cols
        im2colBatch(x, col, g)
        moveChannels(dy, dyMajor, batch: g.batch, channels: g.outChannels, spatial: ohw, toChannelMajor: true)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                    Int32(g.outChannels), Int32(g.colRows), Int32(cols),  // M = O, N = C·KH·KW, K = N·OH·OW
                    1, dyMajor, Int32(cols),                              // A: dy [O, N·OH·OW]
                    col, Int32(cols),                                     // B: im2col stored [K, N·OH·OW], used transposed
                    0, dw, Int32(g.colRows))                              // C: dw [O, K]
    }
}
