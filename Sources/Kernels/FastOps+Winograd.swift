import CBLAS
import CKernels
import Dispatch

// Winograd F(4x4, 3x3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks").
//
// One 4x4 output tile of a 3x3 convolution is  Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A  where d is the 6x6
// input patch under the tile and g the 3x3 kernel. Summed over input channels, the elementwise
// product becomes, for each of the 36 positions ξ of the 6x6 transformed tile, one matrix product
//     M_ξ [O x T] = U_ξ [O x C] · V_ξ [C x T]
// over a chunk of T tiles (tiles of all images of the batch are numbered together, image-major, then
// tile row, then tile column). So one chunk is: input transform (x → V), 36 `cblas_sgemm`, output
// transform (M → y, with bias and activation, clipped at the bottom/right borders).
//
// The tile transforms (C, Sources/CKernels/winograd.c, vectorized as wide as the CPU allows) work on
// 16 consecutive tiles at once, one lane per tile: the 6x6 patches of 16 tiles are gathered into a small
// stack buffer (zeros where they read padding or past the last tile), then transformed lane-wise and
// stored into V, where the 16 tiles are consecutive floats (16, not 8: the transforms then run as whole
// AVX-512 vectors and the GEMMs' tile dimension is a multiple of 16; the C transforms on 8 lanes took
// as much CPU time as Swift's, on 16 about 15% less, and ExpNet48's training step ran 1.34x faster in
// docs/bench-2026-12-07e.md).
// Chunks are padded to a multiple of 16 tiles; the padding lanes are zero in V and
// never written out.
//
// Backward data is the same forward convolution applied to dy with the kernel rotated by 180° and
// its O and C swapped, padding 2 − pad. The weight gradient is dU_ξ [O x C] = Σ_t M'_ξ[o, t] V_ξ[c, t]
// with M' = A dY Aᵀ the transformed 4x4 dy tile, followed by dw = Gᵀ dU_ξ G.
//
// Small layers (the 48x48 nets' 16-128 channels) run several chunks at once, one per worker, each
// small enough that its V and M stay in the core's L2 cache between the transforms and the GEMMs
// (which then run on one OpenBLAS thread each); large layers run one big chunk at a time, the
// transforms split over the workers and the 36 GEMMs spread over them, each on one OpenBLAS thread
// (`Winograd.chunking`, `Winograd.gemms`).
//
// Workspace (floats), with T the chunk size and W the chunks in flight chosen by `Winograd.chunking`:
//   forward:        36·O·C (U) + W·36·(C + O)·T (V and M)
//   backward data:  36·C·O (U) + W·36·(O + C)·T (V of dy and M)
//   weight grad:    W·36·O·C (dU) + W·36·(C + O)·T (V of x and M' of dy)

extension ConvGeometry {
    /// 3x3 kernel, stride 1, dilation 1, groups 1, pad 0...2 on each axis.
    public var winogradEligible: Bool {
        kernelH == 3 && kernelW == 3 && strideH == 1 && strideW == 1 && dilationH == 1 && dilationW == 1
            && groups == 1 && (0...2).contains(padH) && (0...2).contains(padW)
    }

    /// Floats of workspace `FastOps.conv2dWinograd` needs: transformed weights plus V and M of the chunks in flight.
    public var winogradForwardWorkspace: Int {
        Winograd.Plan(forward: self).workspace(dU: false)
    }

    /// Floats of workspace `FastOps.conv2dBackwardDataWinograd` needs.
    public var winogradBackwardDataWorkspace: Int { Winograd.Plan(backwardData: self).workspace(dU: false) }

    /// Floats of workspace `FastOps.conv2dBackwardFilterWinograd` needs: a dU accumulator, V (of x) and
    /// M' (of dy) for each chunk in flight.
    public var winogradBackwardFilterWorkspace: Int { Winograd.Plan(forward: self).workspace(dU: true) }
}

/// The pieces of the Winograd F(4x4, 3x3) kernels.
enum Winograd {
    typealias Vec = SIMD8<Float>
    /// Tiles per block of the transforms (one lane each).
    static let lanes = 16

    /// Sizes of one Winograd convolution: input `[batch, cin, h, w]` → output `[batch, cout, outH, outW]`,
    /// 3x3 kernel, stride 1, `padH`/`padW`, and the tiling of the output.
    struct Plan {
        var batch, cin, h, w, cout, outH, outW, padH, padW: Int
        var tilesH, tilesW, tiles, chunk, workers: Int

        init(batch: Int, cin: Int, h: Int, w: Int, cout: Int, outH: Int, outW: Int, padH: Int, padW: Int) {
            (self.batch, self.cin, self.h, self.w, self.cout) = (batch, cin, h, w, cout)
            (self.outH, self.outW, self.padH, self.padW) = (outH, outW, padH, padW)
            tilesH = (outH + 3) / 4
            tilesW = (outW + 3) / 4
            tiles = batch * tilesH * tilesW
            (chunk, workers) = Winograd.chunking(cin: cin, cout: cout, tiles: tiles)
        }

        /// Floats of workspace: U (or, with `dU`, one weight-gradient accumulator per chunk in flight),
        /// then V and M of each chunk in flight.
        func workspace(dU: Bool) -> Int { 36 * cin * cout * (dU ? workers : 1) + 36 * (cin + cout) * chunk * workers }

        /// The forward convolution of `g` (also the tiling of the weight gradient).
        init(forward g: ConvGeometry) {
            self.init(batch: g.batch, cin: g.inChannels, h: g.height, w: g.width, cout: g.outChannels,
                      outH: g.outH, outW: g.outW, padH: g.padH, padW: g.padW)
        }

        /// Backward data of `g` as a forward convolution of dy: O → C channels, pad 2 − pad, output H x W.
        init(backwardData g: ConvGeometry) {
            self.init(batch: g.batch, cin: g.outChannels, h: g.outH, w: g.outW, cout: g.inChannels,
                      outH: g.height, outW: g.width, padH: 2 - g.padH, padW: 2 - g.padW)
        }

        /// The tiling as the C transforms take it.
        var tiling: fn2e_wino {
            let v = [cin, h, w, cout, outH, outW, padH, padW, tilesH, tilesW].map(Int32.init)
            return fn2e_wino(cin: v[0], h: v[1], w: v[2], cout: v[3], oh: v[4], ow: v[5], ph: v[6], pw: v[7], tiles_h: v[8], tiles_w: v[9])
        }
    }

    /// Tiles per chunk and chunks in flight. One chunk per worker where a chunk of at least 32 tiles
    /// keeps its V and M within 512 KiB (in L2 from transform to GEMM to transform) and the batch has
    /// two such chunks per worker (with one worker, `FN2E_THREADS=1`, such chunks one after another). Else one chunk at a time: V and M take about 16 MiB, but at least
    /// 128 tiles (GEMMs with fewer columns run well below peak). Never more tiles than the batch has
    /// (rounded up to 16), always a multiple of 16.
    static func chunking(cin: Int, cout: Int, tiles: Int) -> (chunk: Int, workers: Int) {
        let small = (128 << 10) / (36 * (cin + cout)) / lanes * lanes
        if small >= 32, tiles >= 2 * Parallel.workers * small { return (small, Parallel.workers) }
        let budget = 4 << 20  // floats
        var t = max(128, budget / (36 * (cin + cout)))
        t = min(t, (tiles + lanes - 1) / lanes * lanes)
        return (max(lanes, t / lanes * lanes), 1)
    }

    /// Runs `body(first, count, worker)` on each chunk of tiles: one after another, or, with several
    /// workers, each worker its own chunks in turn (and its own slice of the workspace), OpenBLAS on
    /// one thread meanwhile.
    static func eachChunk(_ p: Plan, _ body: (_ first: Int, _ count: Int, _ worker: Int) -> Void) {
        let chunks = (p.tiles + p.chunk - 1) / p.chunk
        func run(_ k: Int, _ w: Int) { body(k * p.chunk, min(p.chunk, p.tiles - k * p.chunk), w) }
        guard p.workers > 1 else { return (0..<chunks).forEach { run($0, 0) } }
        oneBLASThread {
            Parallel.perform(iterations: p.workers) { w in
                for k in stride(from: w, to: chunks, by: p.workers) { run(k, w) }
            }
        }
    }

    /// Runs `gemm(ξ)` for the 36 positions of a chunk: in turn in a worker's chunk, else spread over
    /// the workers as they come free, each GEMM on one OpenBLAS thread (GEMMs split over OpenBLAS'
    /// threads wait for each other at every call, and a core taken by another process stalls both).
    static func gemms(_ p: Plan, _ gemm: (Int) -> Void) {
        if p.workers > 1 || Parallel.workers == 1 { return (0..<36).forEach(gemm) }
        oneBLASThread { Parallel.perform(iterations: 36, gemm) }
    }

    static func oneBLASThread(_ body: () -> Void) {
        let threads = BLAS.threads
        BLAS.threads = 1
        body()
        BLAS.threads = threads
    }

    /// A transform's loop over `n` items: split over the workers only when chunks are not already.
    static func items(_ n: Int, cost: Int, _ p: Plan, _ body: (Range<Int>) -> Void) {
        if p.workers > 1 { body(0..<n) } else { Parallel.forChunks(n, costPerItem: cost, body) }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Vec {
        UnsafeRawPointer(p).loadUnaligned(as: Vec.self)
    }

    @inline(__always) static func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self)
    }

    /// Input transform of one chunk (`fn2e_winograd_input`): for the tiles `first ..< first + count`
    /// (count rounded up to 16, the extra lanes zero) and every input channel c, V[ξ, c, t] = (Bᵀ d B)[ξ]
    /// with d the 6x6 patch of `x [batch, cin, h, w]` at rows 4·ty − padH ..< +6, columns 4·tx − padW ..< +6
    /// (zero outside). V is `[36, cin, ldv]`.
    static func transformInput(_ x: UnsafePointer<Float>, _ v: UnsafeMutablePointer<Float>, _ p: Plan,
                               first: Int, count: Int, ldv: Int) {
        let tiling = p.tiling
        items(p.cin * ((count + lanes - 1) / lanes), cost: 36 * lanes * 8, p) { r in
            fn2e_winograd_input(x, v, tiling, first, count, ldv, r.lowerBound, r.upperBound)
        }
    }

    /// Output transform of one chunk (`fn2e_winograd_output`): for tiles `first ..< first + count` and
    /// output channel o, the 4x4 tile Aᵀ M[·, o, t] A, plus `bias[o]`, through `activation`, written to
    /// `y [batch, cout, outH, outW]` (clipped at the bottom and right borders). M is `[36, cout, ldm]`.
    /// With `pool` (2x2 windows at stride 2), y is instead the pooled output: each tile's four windows
    /// pooled where it is computed, as `FastOps.maxPool`.
    static func transformOutput(_ m: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
                                activation: Activation, _ p: Plan, first: Int, count: Int, ldm: Int, pool: PooledOutput? = nil) {
        let tiling = p.tiling
        let slope: Float? = { if case let .relu(s) = activation { return s } else { return nil } }()
        var geometry = pool?.geometry.direct ?? fn2e_pool()
        withUnsafePointer(to: &geometry) { g in
            items(p.cout * ((count + lanes - 1) / lanes), cost: 36 * lanes * 6, p) { r in
                fn2e_winograd_output(m, y, bias, slope == nil ? 0 : 1, slope ?? 0, tiling, first, count, ldm, pool == nil ? nil : g,
                                     pool?.winners, pool?.reluMask == true ? 1 : 0, r.lowerBound, r.upperBound)
            }
        }
    }

    /// Transform of dy for the weight gradient (`fn2e_winograd_gradient`): for tiles `first ..< first + count`
    /// and output channel o, M'[ξ, o, t] = (A e Aᵀ)[ξ] with e the 4x4 tile of `dy [batch, cout, outH, outW]`
    /// (zero past the borders and in the padding lanes). M' is `[36, cout, ldm]`.
    static func transformGradient(_ dy: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ p: Plan,
                                  first: Int, count: Int, ldm: Int) {
        let tiling = p.tiling
        items(p.cout * ((count + lanes - 1) / lanes), cost: 36 * lanes * 6, p) { r in
            fn2e_winograd_gradient(dy, m, tiling, first, count, ldm, r.lowerBound, r.upperBound)
        }
    }

    /// Weight transform U[ξ, r, s] = (G g Gᵀ)[ξ] of the 3x3 kernels of `w [O, C, 3, 3]`.
    /// Forward: r = o, s = c (U is `[36, O, C]`). With `backwardData`, the kernel is rotated by 180° and
    /// r = c, s = o (U is `[36, C, O]`), the weights of the forward convolution that computes dx from dy.
    ///     G = [1/4 0 0; −1/6 −1/6 −1/6; −1/6 1/6 −1/6; 1/24 1/12 1/6; 1/24 −1/12 1/6; 0 0 1].
    /// Eight consecutive s at a time, one per lane, so the 36 stores of a group are 8-float vectors.
    static func transformWeights(_ w: UnsafePointer<Float>, _ u: UnsafeMutablePointer<Float>, outChannels o: Int,
                                 inChannels c: Int, backwardData: Bool) {
        let (rows, cols) = backwardData ? (c, o) : (o, c)
        let plane = o * c
        let (sixth, twelfth, twentyfourth): (Float, Float, Float) = (1 / 6, 1 / 12, 1 / 24)
        @inline(__always) func g1D(_ a: Vec, _ b: Vec, _ e: Vec) -> (Vec, Vec, Vec, Vec, Vec, Vec) {
            let ae: Vec = a * twentyfourth + e * sixth, bt: Vec = b * twelfth
            let sum: Vec = a + e
            return (a * 0.25, (sum + b) * -sixth, (sum - b) * -sixth, ae + bt, ae - bt, e)
        }
        // Kernel of (r, s) starts at w + r·rowStride + s·colStride.
        let (rowStride, colStride) = backwardData ? (9, c * 9) : (c * 9, 9)
        Parallel.forChunks(rows, costPerItem: cols * 150) { range in
            for r in range {
                for s0 in stride(from: 0, to: cols, by: Vec.scalarCount) {
                    let n = min(Vec.scalarCount, cols - s0)
                    let base = w + r * rowStride + s0 * colStride
                    // Tap (i, j) of the (rotated) kernel for the n lanes; zeros past the last.
                    @inline(__always) func g(_ i: Int, _ j: Int) -> Vec {
                        let t = backwardData ? (2 - i) * 3 + 2 - j : i * 3 + j
                        var v = Vec(repeating: 0)
                        for l in 0..<n { v[l] = base[l * colStride + t] }
                        return v
                    }
                    // G along each kernel row, then along the columns: c_b.a = U[a, b].
                    let r0 = g1D(g(0, 0), g(0, 1), g(0, 2))
                    let r1 = g1D(g(1, 0), g(1, 1), g(1, 2))
                    let r2 = g1D(g(2, 0), g(2, 1), g(2, 2))
                    let dst = u + r * cols + s0
                    @inline(__always) func put(_ col: Int, _ v: (Vec, Vec, Vec, Vec, Vec, Vec)) {
                        @inline(__always) func one(_ x: Vec, _ xi: Int) {
                            let d = dst + xi * plane
                            if n == Vec.scalarCount { store(x, d) } else { for l in 0..<n { d[l] = x[l] } }
                        }
                        one(v.0, col); one(v.1, 6 + col); one(v.2, 12 + col)
                        one(v.3, 18 + col); one(v.4, 24 + col); one(v.5, 30 + col)
                    }
                    put(0, g1D(r0.0, r1.0, r2.0)); put(1, g1D(r0.1, r1.1, r2.1)); put(2, g1D(r0.2, r1.2, r2.2))
                    put(3, g1D(r0.3, r1.3, r2.3)); put(4, g1D(r0.4, r1.4, r2.4)); put(5, g1D(r0.5, r1.5, r2.5))
                }
            }
        }
    }

    /// A 2x2 max pool at stride 2 of the output and where its winners go (see `FastOps.maxPool`).
    struct PooledOutput { var geometry: PoolGeometry, winners: UnsafeMutablePointer<UInt8>?, reluMask: Bool }

    /// The forward Winograd convolution of `x` with transformed weights `u [36, cout, cin]`, chunk by
    /// chunk, using `scratch` for V `[36, cin, chunk]` and M `[36, cout, chunk]`.
    static func forward(x: UnsafePointer<Float>, u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        y: UnsafeMutablePointer<Float>, plan p: Plan, activation: Activation,
                        scratch: UnsafeMutablePointer<Float>, pool: PooledOutput? = nil) {
        let ld = p.chunk
        eachChunk(p) { first, count, worker in
            let v = scratch + worker * 36 * (p.cin + p.cout) * ld, m = v + 36 * p.cin * ld
            let padded = (count + lanes - 1) / lanes * lanes
            transformInput(x, v, p, first: first, count: count, ldv: ld)
            gemms(p) { xi in
                cblas_sgemm(CblasRowMajor,               // all matrices row-major
                            CblasNoTrans,                // A = U_ξ [cout, cin]
                            CblasNoTrans,                // B = V_ξ [cin, tiles]
                            Int32(p.cout),               // M: output channels
                            Int32(padded),               // N: tiles of the chunk (padded to 16)
                            Int32(p.cin),                // K: input channels
                            1,                           // alpha
                            u + xi * p.cout * p.cin,     // A
                            Int32(p.cin),                // lda
                            v + xi * p.cin * ld,         // B
                            Int32(ld),                   // ldb
                            0,                           // beta: overwrite M_ξ
                            m + xi * p.cout * ld,        // C = M_ξ [cout, tiles]
                            Int32(ld))                   // ldc
            }
            transformOutput(m, y, bias: bias, activation: activation, p, first: first, count: count, ldm: ld, pool: pool)
        }
    }
}

extension FastOps {
    /// Winograd F(4x4, 3x3) convolution: y = conv2d(x, w) + bias, then activation. Same contract as
    /// `FastOps.conv2d` (y fully overwritten) for `g.winogradEligible` geometries. `workspace` holds
    /// `g.winogradForwardWorkspace` floats; nothing is allocated on the heap.
    /// With `pool` (2x2 windows at stride 2 over the output), y is the pooled output and `winners` its
    /// pool's winners, as `FastOps.maxPool` records them: no full-resolution output is written.
    public static func conv2dWinograd(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                      y: UnsafeMutablePointer<Float>, geometry g: ConvGeometry, activation: Activation,
                                      workspace: UnsafeMutablePointer<Float>, pool: PoolGeometry? = nil,
                                      winners: UnsafeMutablePointer<UInt8>? = nil, reluMask: Bool = false) {
        precondition(g.winogradEligible, "conv2dWinograd: geometry not eligible: \(g)")
        precondition(pool.map { $0.isDisjoint2x2 && ($0.height, $0.width) == (g.outH, g.outW) } ?? true, "conv2dWinograd: pool \(pool!) not 2x2 over \(g)")
        winogradWeights(w: w, geometry: g, into: workspace)
        Winograd.forward(x: x, u: workspace, bias: bias, y: y, plan: Winograd.Plan(forward: g), activation: activation,
                         scratch: workspace + 36 * g.outChannels * g.inChannels,
                         pool: pool.map { Winograd.PooledOutput(geometry: $0, winners: winners, reluMask: reluMask) })
    }

    /// The transformed weights `conv2dWinograd(x:transformedWeights:…)` reads: `36·O·C` floats at `u`.
    public static func winogradWeights(w: UnsafePointer<Float>, geometry g: ConvGeometry, into u: UnsafeMutablePointer<Float>) {
        Winograd.transformWeights(w, u, outChannels: g.outChannels, inChannels: g.inChannels, backwardData: false)
    }

    /// `conv2dWinograd` with the weights transformed once beforehand (`winogradWeights`), for a
    /// caller that runs the same weights over several pieces of a batch. `scratch` holds
    /// `g.winogradForwardWorkspace − 36·O·C` floats.
    public static func conv2dWinograd(x: UnsafePointer<Float>, transformedWeights u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                      y: UnsafeMutablePointer<Float>, geometry g: ConvGeometry, activation: Activation,
                                      scratch: UnsafeMutablePointer<Float>) {
        precondition(g.winogradEligible, "conv2dWinograd: geometry not eligible: \(g)")
        Winograd.forward(x: x, u: u, bias: bias, y: y, plan: Winograd.Plan(forward: g), activation: activation, scratch: scratch)
    }

    /// Winograd gradient of conv2d with respect to x: the forward Winograd convolution of dy with the
    /// 180°-rotated, O/C-swapped kernel and padding 2 − pad. Same contract as `FastOps.conv2dBackwardData`
    /// (dx fully overwritten). `workspace` holds `g.winogradBackwardDataWorkspace` floats.
    public static func conv2dBackwardDataWinograd(dy: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                                  dx: UnsafeMutablePointer<Float>, geometry g: ConvGeometry,
                                                  workspace: UnsafeMutablePointer<Float>) {
        precondition(g.winogradEligible, "conv2dBackwardDataWinograd: geometry not eligible: \(g)")
        let p = Winograd.Plan(backwardData: g)
        let u = workspace
        Winograd.transformWeights(w, u, outChannels: g.outChannels, inChannels: g.inChannels, backwardData: true)
        Winograd.forward(x: dy, u: u, bias: nil, y: dx, plan: p, activation: .none,
                         scratch: workspace + 36 * g.outChannels * g.inChannels)
    }

    /// Winograd gradient of conv2d with respect to w, summed over the batch: dU_ξ = Σ_t M'_ξ[·, t] V_ξ[·, t]ᵀ
    /// over all tiles, then dw = Gᵀ dU G. Same contract as `FastOps.conv2dBackwardFilter` with
    /// `accumulate: false` (dw overwritten). `workspace` holds `g.winogradBackwardFilterWorkspace` floats.
    public static func conv2dBackwardFilterWinograd(dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                                    dw: UnsafeMutablePointer<Float>, geometry g: ConvGeometry,
                                                    workspace: UnsafeMutablePointer<Float>) {
        precondition(g.winogradEligible, "conv2dBackwardFilterWinograd: geometry not eligible: \(g)")
        let p = Winograd.Plan(forward: g)
        let (o, c, ld) = (g.outChannels, g.inChannels, p.chunk)
        let plane = o * c, du = workspace
        du.update(repeating: 0, count: 36 * plane * p.workers)
        Winograd.eachChunk(p) { first, count, worker in
            let v = workspace + 36 * plane * p.workers + worker * 36 * (c + o) * ld, m = v + 36 * c * ld
            let padded = (count + Winograd.lanes - 1) / Winograd.lanes * Winograd.lanes
            Winograd.transformInput(x, v, p, first: first, count: count, ldv: ld)
            Winograd.transformGradient(dy, m, p, first: first, count: count, ldm: ld)
            Winograd.gemms(p) { xi in
                cblas_sgemm(CblasRowMajor,               // all matrices row-major
                            CblasNoTrans,                // A = M'_ξ [O, tiles]
                            CblasTrans,                  // B = V_ξ stored [C, tiles], used as [tiles, C]
                            Int32(o),                    // M: output channels
                            Int32(c),                    // N: input channels
                            Int32(padded),               // K: tiles of the chunk (padding lanes are zero)
                            1,                           // alpha
                            m + xi * o * ld,             // A
                            Int32(ld),                   // lda
                            v + xi * c * ld,             // B
                            Int32(ld),                   // ldb
                            1,                           // beta: accumulate over chunks
                            du + (worker * 36 + xi) * plane,  // C = dU_ξ [O, C] of this worker
                            Int32(c))                    // ldc
            }
        }
        for w in 1..<p.workers { for i in 0..<36 * plane { du[i] += du[w * 36 * plane + i] } }
        // dw[o, c] = Gᵀ dU[·, o, c] G (6x6 → 3x3), eight (o, c) at a time (contiguous in dU).
        typealias Vec = Winograd.Vec
        let (sixth, twelfth, twentyfourth): (Float, Float, Float) = (1 / 6, 1 / 12, 1 / 24)
        @inline(__always) func gt1D(_ u0: Vec, _ u1: Vec, _ u2: Vec, _ u3: Vec, _ u4: Vec, _ u5: Vec) -> (Vec, Vec, Vec) {
            let p12: Vec = u1 + u2, p34: Vec = u3 + u4
            let first: Vec = u0 * 0.25 - p12 * sixth + p34 * twentyfourth
            let second: Vec = (u2 - u1) * sixth + (u3 - u4) * twelfth
            let third: Vec = (p34 - p12) * sixth + u5
            return (first, second, third)
        }
        Parallel.forChunks((plane + Winograd.Vec.scalarCount - 1) / Winograd.Vec.scalarCount, costPerItem: 8 * 150) { range in
            for block in range {
                let k0 = block * Winograd.Vec.scalarCount, n = min(Winograd.Vec.scalarCount, plane - k0)
                @inline(__always) func at(_ xi: Int) -> Winograd.Vec {
                    let s = du + xi * plane + k0
                    if n == Winograd.Vec.scalarCount { return Winograd.load(s) }
                    var v = Winograd.Vec(repeating: 0)
                    for l in 0..<n { v[l] = s[l] }
                    return v
                }
                // Gᵀ along the rows of the 6x6 (ξ = 6·row + col), then along the columns.
                @inline(__always) func row(_ i: Int) -> (Winograd.Vec, Winograd.Vec, Winograd.Vec) {
                    gt1D(at(6 * i), at(6 * i + 1), at(6 * i + 2), at(6 * i + 3), at(6 * i + 4), at(6 * i + 5))
                }
                let (r0, r1, r2, r3, r4, r5) = (row(0), row(1), row(2), row(3), row(4), row(5))
                // c_j = kernel column j: (row 0, row 1, row 2).
                let c0 = gt1D(r0.0, r1.0, r2.0, r3.0, r4.0, r5.0)
                let c1 = gt1D(r0.1, r1.1, r2.1, r3.1, r4.1, r5.1)
                let c2 = gt1D(r0.2, r1.2, r2.2, r3.2, r4.2, r5.2)
                for l in 0..<n {
                    let d = dw + (k0 + l) * 9
                    d[0] = c0.0[l]; d[1] = c1.0[l]; d[2] = c2.0[l]
                    d[3] = c0.1[l]; d[4] = c1.1[l]; d[5] = c2.1[l]
                    d[6] = c0.2[l]; d[7] = c1.2[l]; d[8] = c2.2[l]
                }
            }
        }
    }
}
