import CKernels

extension ConvGeometry {
    /// Convolutions with 1-16 input channels and stride 1 (first layers, MTCNN's P-Net conv2): a
    /// direct kernel beats im2col, whose GEMM has K = C·KH·KW of 9-144 and is bound by memory (P-Net's
    /// conv2, 10 channels in: 75 GFLOP/s direct, 38 by im2col, one thread).
    public var directEligible: Bool { groups == 1 && inChannels <= 16 && strideH == 1 && strideW == 1 && dilationH == 1 && dilationW == 1 }

    var direct: fn2e_conv {
        let v = [inChannels, height, width, outChannels, kernelH, kernelW, strideH, strideW, padH, padW, outH, outW].map(Int32.init)
        return fn2e_conv(c: v[0], h: v[1], w: v[2], o: v[3], kh: v[4], kw: v[5], sh: v[6], sw: v[7], ph: v[8], pw: v[9], oh: v[10], ow: v[11])
    }

    /// Floats of workspace the direct forward (`filter` false) or weight-gradient kernel needs: every
    /// worker's padded input rows, and for the gradient its partial sums and its own copy of dw.
    public func directWorkspace(filter: Bool) -> Int { Parallel.workers * (Int(fn2e_conv_direct_scratch(direct, filter ? 1 : 0)) + (filter ? weightCount : 0)) }
}

extension PoolGeometry {
    var direct: fn2e_pool {
        let v = [kernelH, kernelW, strideH, strideW, padH, padW, outH, outW].map(Int32.init)
        return fn2e_pool(kh: v[0], kw: v[1], sh: v[2], sw: v[3], ph: v[4], pw: v[5], oh: v[6], ow: v[7])
    }
}

extension FastOps {
    /// Calls `body(scratch, r0, r1)` once per worker with its scratch and its share of the batch's output rows
    /// (or of `rows`).
    static func directRows(_ g: ConvGeometry, filter: Bool, rows: Int? = nil, _ ws: UnsafeMutablePointer<Float>,
                           _ body: (UnsafeMutablePointer<Float>, Int, Int) -> Void) {
        let (rows, n, scratch) = (rows ?? g.batch * g.outH, Parallel.workers, g.directWorkspace(filter: filter) / Parallel.workers)
        Parallel.forChunks(n, costPerItem: max(1, rows / n) * g.outW * g.weightCount) { ts in
            for t in ts { body(ws + t * scratch, rows * t / n, rows * (t + 1) / n) }
        }
    }

    /// Same contract as `conv2d` for groups 1, no dilation, stride 1 across, by the direct kernel of
    /// Sources/CKernels; `workspace` holds `g.directWorkspace(filter: false)` floats. With `worker`, all
    /// rows on the calling thread, in that worker's share of the workspace.
    public static func conv2dDirect(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                                    geometry g: ConvGeometry, activation: Activation, workspace: UnsafeMutablePointer<Float>, worker: Int? = nil) {
        let (d, slope): (fn2e_conv, Float?) = (g.direct, { if case let .relu(s) = activation { s } else { nil } }())
        let rows: (UnsafeMutablePointer<Float>, Int, Int) -> Void = { fn2e_conv_direct(x, w, bias, y, d, slope == nil ? 0 : 1, slope ?? 0, $0, $1, $2) }
        guard let t = worker else { return directRows(g, filter: false, workspace, rows) }
        rows(workspace + t * g.directWorkspace(filter: false) / Parallel.workers, 0, g.batch * g.outH)
    }

    /// `conv2dDirect` then `maxPool` of `pool`'s 2x2 windows at stride 2 (`isDisjoint2x2`), two output
    /// rows at a time: the convolution's output is never written.
    static func conv2dDirectMaxPool(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                                    winners: UnsafeMutablePointer<UInt8>?, geometry g: ConvGeometry, pool: PoolGeometry, activation: Activation,
                                    reluMask: Bool, workspace: UnsafeMutablePointer<Float>) {
        let (d, p, slope): (fn2e_conv, fn2e_pool, Float?) = (g.direct, pool.direct, { if case let .relu(s) = activation { s } else { nil } }())
        directRows(g, filter: false, rows: g.batch * pool.outH, workspace) {
            fn2e_conv_direct_pool(x, w, bias, y, winners, d, p, slope == nil ? 0 : 1, slope ?? 0, reluMask ? 1 : 0, $0, $1, $2)
        }
    }

    /// Same contract as `conv2dBackwardFilter` without accumulation, as `conv2dDirect` (`workspace`:
    /// `g.directWorkspace(filter: true)`): each worker sums its rows into its own dw, then they are added.
    /// With `winners` (recorded by `maxPool` with geometry `pool` over the convolution's output), dy is
    /// the pool's output gradient and the convolution's, `maxPoolBackward(dy:argmax:)`, is built row by row.
    public static func conv2dBackwardFilterDirect(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                                                  geometry g: ConvGeometry, workspace: UnsafeMutablePointer<Float>,
                                                  winners: UnsafePointer<UInt8>? = nil, pool: PoolGeometry? = nil) {
        let (d, count, scratch) = (g.direct, g.weightCount, g.directWorkspace(filter: true) / Parallel.workers)
        let p = pool?.direct ?? fn2e_pool()
        directRows(g, filter: true, workspace) { fn2e_conv_direct_filter(dy, winners, p, x, $0, d, $0 + count, $1, $2) }
        for i in 0..<count { dw[i] = (0..<Parallel.workers).reduce(0) { $0 + workspace[$1 * scratch + i] } }
    }

    /// The bias gradient of a convolution whose output a max pool (geometry `p`) read and recorded
    /// `winners` of: db[c] sums `maxPoolBackward(dy:argmax:)` over all but channels without building it.
    public static func maxPoolBackwardChannelSum(dy: UnsafePointer<Float>, winners: UnsafePointer<UInt8>, db: UnsafeMutablePointer<Float>, pool p: PoolGeometry) {
        Parallel.forChunks(p.channels, costPerItem: p.batch * p.outH * p.outW) { cs in
            fn2e_pool_grad_channel_sum(dy, winners, db, p.batch, Int32(p.channels), p.outH * p.outW, Int32(cs.lowerBound), Int32(cs.upperBound))
        }
    }
}
