import Detection
import IR
import Kernels

/// `[batch, channels, spatial]` view of a tensor with channels on axis 1.
public struct ChannelView: Hashable, Sendable {
    public var batch, channels, spatial: Int
}

/// Where a max pool records each window's winner for its gradients: a byte per pooled value, its
/// place in the window (see `FastOps.maxPool`), packed four to an i32 (see `Scheduler.recordPoolWinners`).
public struct PoolWinners: Hashable, Sendable {
    /// The i32 buffer, a quarter of the pool's output rounded up.
    public var buffer: String
    /// A winner that is not > 0 is recorded as none: the ReLU backward fused into the gradients.
    public var reluMask: Bool
}

/// One kernel launch, lowered: which kernel and every size it needs. The Executor binds buffers
/// to it and nothing else; whatever the call needs beyond its operands and output is its workspace,
/// which the memory planner places in the arena.
public enum KernelCall {
    case conv2d(ConvGeometry, Activation, ConvAlgorithm)
    /// Convolutions, each read only by the next, then a max pool, image by image: no full-batch
    /// convolution output ever exists (see `Scheduler.fuseConvPool`).
    case conv2dMaxPool([ChainedConv], PoolGeometry, PoolWinners?)
    case conv2dBackwardData(ConvGeometry, ConvAlgorithm)
    case conv2dBackwardFilter(ConvGeometry, ConvAlgorithm)
    /// x `[rows, inputs]` · wᵀ `[outputs, inputs]` + bias, then the activation.
    case linear(rows: Int, inputs: Int, outputs: Int, Activation)
    case matmul(m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool)
    case maxPool(PoolGeometry, PoolWinners?)
    /// `(x, slopes)`: the max pool of `prelu(x, slopes)`, the activation applied as the pool reads
    /// (see `Scheduler.foldPReLUIntoPool`).
    case preluMaxPool(PoolGeometry, slopes: Int)
    case avgPool(PoolGeometry)
    /// `(x, dy)`: the winners searched again in x. With `reluMask`, relu_backward of the pooled
    /// ReLU output is fused in (the scheduler's FusePoolReluBackward).
    case maxPoolBackward(PoolGeometry, reluMask: Bool)
    /// `(winners, dy)`: each dy to the winner its max pool recorded.
    case maxPoolBackwardFromWinners(PoolGeometry, reluMask: Bool)
    /// `(x, winners, dy)`: the direct weight gradient (`filter`) of the convolution the pool read, or
    /// `(winners, dy)`: its bias gradient (nil), from `maxPoolBackwardFromWinners` never built whole.
    case maxPoolBackwardInto(PoolGeometry, filter: ConvGeometry?)
    case avgPoolBackward(PoolGeometry)
    case relu(count: Int, negativeSlope: Float)
    case reluBackward(count: Int, negativeSlope: Float)
    case prelu(ChannelView, slopes: Int)
    case preluBackwardInput(ChannelView, slopes: Int)
    case preluBackwardSlope(ChannelView, slopes: Int)
    case sigmoid(count: Int), sigmoidBackward(count: Int)
    case tanh(count: Int), tanhBackward(count: Int)
    /// Flatten, reshape and inference-time dropout: a copy (nothing when in place).
    case copy(count: Int)
    case affine(count: Int, scale: Float, shift: Float)
    case transpose(shape: [Int], perm: [Int])
    case concat(shapes: [[Int]], axis: Int)
    case slice(shape: [Int], axis: Int, start: Int, end: Int)
    case sliceBackward(shape: [Int], axis: Int, start: Int, length: Int)
    case channelReplicate(batch: Int, spatial: Int, count: Int)
    case resize(planes: Int, h: Int, w: Int, oh: Int, ow: Int)
    case resizeBackward(planes: Int, h: Int, w: Int, oh: Int, ow: Int)
    case binary(FastOps.BinaryOp, aShape: [Int], bShape: [Int])
    /// `(a, b, dy)`: dy where a wins (operand 0: a ≥ b; operand 1: b > a), a and b broadcast to `shape`.
    case maximumBackward(aShape: [Int], bShape: [Int], shape: [Int], operand: Int)
    /// scale (operands x, s[, b]) or bias (x, b) per channel, then the activation; `normalized` (a
    /// batch norm's eps): operands `(x, s, b, moments)`, x normalized first (`Scheduler.foldBatchNormTrain`).
    case channelScale(ChannelView, hasScale: Bool, Activation, normalized: Float? = nil)
    case batchNorm(ChannelView, eps: Float)
    case batchNormBackward(ChannelView, eps: Float)
    /// Normalization with the batch's statistics (`batch_norm_train`, operands `(x[, moments])`), its
    /// gradient (`(x, dy[, moments[, gamma]])`), and the statistics alone; `moments` is the layer's
    /// `batch_moments` value when the scheduler shares it (`Scheduler.shareBatchMoments`), `gamma` the
    /// following scale's when its gradient is folded in (`Scheduler.foldScaleIntoBatchNormBackward`).
    case batchNormTrain(ChannelView, eps: Float)
    case batchNormTrainBackward(ChannelView, eps: Float)
    case batchMoments(ChannelView)
    case lrnAcross(ChannelView, size: Int, alpha: Float, beta: Float, k: Float)
    case lrnWithin(ChannelView, height: Int, width: Int, size: Int, alpha: Float, beta: Float)
    case lrnBackward(ChannelView, size: Int, alpha: Float, beta: Float, k: Float)
    case l2Normalize(ChannelView, acrossSpatial: Bool, eps: Float)
    case l2NormalizeBackward(ChannelView, acrossSpatial: Bool, eps: Float)
    case priorBox([Float])
    case detectionOutput(DetectionSpec, batch: Int, priors: Int)
    case softmax(outer: Int, channels: Int, inner: Int, log: Bool)
    case softmaxBackward(outer: Int, channels: Int, inner: Int, log: Bool)
    case softmaxCrossEntropy(batch: Int, classes: Int)
    case softmaxCrossEntropyBackward(batch: Int, classes: Int)
    case euclideanLoss(count: Int, batch: Int)
    case euclideanLossBackward(count: Int, batch: Int)
    /// Operands `(x[, times])`: with `times`, the sum of `x · times` (`Scheduler.foldProductIntoSum`);
    /// `normalized` (a batch norm's eps): operands `(x, times, moments)`, times normalized first (`Scheduler.foldBatchNormTrain`).
    case reduce(shape: [Int], axes: [Int], mean: Bool, normalized: Float? = nil)
    /// dy of shape `kept` (reduced axes 1) broadcast to `shape`, times `factor`.
    case reduceBackward(kept: [Int], shape: [Int], factor: Float)
    case sumTo(from: [Int], to: [Int])
    /// Row k of the mask draws from its own generator when row seeds are set (see Executor.rowSeeds).
    case dropoutMask(count: Int, rows: Int, ratio: Float)
    case fill(count: Int, value: Float)

    /// The scratch the call books while it runs, by name (placed in the arena, live for this
    /// kernel only; the kernel is granted it by the same names).
    public var booking: WorkspaceBooking {
        switch self {
        case .conv2d(let g, _, let alg): return .one("conv", floats: g.forwardWorkspace(alg))
        case .conv2dMaxPool(let convs, _, _): return FastOps.conv2dMaxPoolBooking(convs)
        case .conv2dBackwardData(let g, let alg), .conv2dBackwardFilter(let g, let alg):
            let data = if case .conv2dBackwardData = self { true } else { false }
            switch alg {
            case .im2col, .direct: return .one("col", floats: alg == .direct && !data ? g.directWorkspace(filter: true) : g.workspaceCount)
            case .pointwise: return WorkspaceBooking()
            case .batched: return .one("col", floats: g.batchedWorkspaceCount)
            case .winograd: return .one("winograd", floats: data ? g.winogradBackwardDataWorkspace : g.winogradBackwardFilterWorkspace)
            }
        case .maxPoolBackwardInto(_, let g): return g.map { .one("col", floats: $0.directWorkspace(filter: true)) } ?? WorkspaceBooking()
        case .softmaxCrossEntropy(let b, let c): return .one("probs", floats: b * c)
        case .softmaxCrossEntropyBackward(let b, let c):
            var booking = WorkspaceBooking.one("probs", floats: b * c)
            booking.book("max_sum", floats: 2 * b)
            return booking
        case .preluBackwardSlope(let v, let slopes):
            var b = WorkspaceBooking()
            b.book("dx", floats: v.batch * v.channels * v.spatial)
            b.book("ones", floats: slopes)
            return b
        case .maximumBackward(_, _, let shape, _): return .one("mask", floats: shape.reduce(1, *))
        case .lrnAcross(let v, _, _, _, _): return .one("scale", floats: v.batch * v.channels * v.spatial)
        case .lrnWithin(let v, _, _, _, _, _): return .one("squares", floats: v.batch * v.channels * v.spatial)
        case .lrnBackward(let v, _, _, _, _): return .one("scale_ratio", floats: 2 * v.batch * v.channels * v.spatial)
        case .l2Normalize(let v, let across, _), .l2NormalizeBackward(let v, let across, _):
            return .one("norms", floats: v.batch * FastOps.l2NormalizeWorkspace(channels: v.channels, spatial: v.spatial, acrossSpatial: across))
        case .softmax(let outer, _, let inner, _): return .one("max_sum", floats: 2 * outer * inner)
        case .softmaxBackward(_, _, let inner, _): return .one("sum", floats: inner)
        case .linear, .matmul, .maxPool, .preluMaxPool, .avgPool, .maxPoolBackward, .maxPoolBackwardFromWinners, .avgPoolBackward, .relu,
             .reluBackward, .prelu, .preluBackwardInput, .sigmoid, .sigmoidBackward, .tanh, .tanhBackward, .copy, .affine, .transpose, .concat,
             .slice, .sliceBackward, .channelReplicate, .resize, .resizeBackward, .binary, .channelScale, .batchNorm,
             .batchNormBackward, .batchNormTrain, .batchNormTrainBackward, .batchMoments, .priorBox, .detectionOutput, .euclideanLoss, .euclideanLossBackward, .reduce,
             .reduceBackward, .sumTo, .dropoutMask, .fill:
            return WorkspaceBooking()
        }
    }

    /// Floats of scratch the call needs while it runs (its booking's total).
    public var workspace: Int { booking.floats }

    /// Whether the output may share its first operand's buffer (when that operand dies at this
    /// kernel and has the same size): elementwise kernels, views, and the max-pool backward whose
    /// 2x2 windows tile the plane (each window reads its four cells before writing them).
    public var mayOverwriteFirstOperand: Bool {
        switch self {
        case .relu, .reluBackward, .prelu, .sigmoid, .tanh, .copy, .affine, .channelScale, .batchNorm, .batchNormTrain, .binary:
            return true
        case .maxPoolBackward(let g, let reluMask):
            return reluMask && g.isDisjoint2x2 && 2 * g.outH == g.height && 2 * g.outW == g.width
        case .conv2d, .conv2dMaxPool, .conv2dBackwardData, .conv2dBackwardFilter, .linear, .matmul, .maxPool, .preluMaxPool, .avgPool,
             .maxPoolBackwardFromWinners, .maxPoolBackwardInto, .avgPoolBackward, .preluBackwardInput, .preluBackwardSlope, .sigmoidBackward, .tanhBackward, .transpose, .concat, .slice,
             .sliceBackward, .channelReplicate, .resize, .resizeBackward, .maximumBackward, .batchNormBackward, .batchNormTrainBackward,
             .batchMoments, .lrnAcross, .lrnWithin, .lrnBackward, .l2Normalize, .l2NormalizeBackward, .priorBox, .detectionOutput, .softmax,
             .softmaxBackward, .softmaxCrossEntropy, .softmaxCrossEntropyBackward, .euclideanLoss, .euclideanLossBackward,
             .reduce, .reduceBackward, .sumTo, .dropoutMask, .fill:
            return false
        }
    }

    /// The call described, in one exhaustive switch: what the schedule printout and the profiler
    /// call it (the op it computes and what is fused into it), its convolution algorithm, and where
    /// it records a max pool's winners (a buffer it writes besides its output).
    var traits: (name: String, algorithm: ConvAlgorithm?, winners: PoolWinners?) {
        func fused(_ a: Activation) -> String { if case .relu = a { return "+bias+relu" } else { return "" } }
        var label: String, algorithm: ConvAlgorithm? = nil, winners: PoolWinners? = nil
        switch self {
        case .conv2d(_, let a, let alg): (label, algorithm) = ("conv2d" + fused(a), alg)
        case .conv2dMaxPool(let convs, _, let w):
            label = (convs.count > 1 ? "\(convs.count)x" : "") + "conv2d" + fused(convs[0].activation) + "+max_pool"
            (algorithm, winners) = (convs.last?.algorithm, w)
        case .conv2dBackwardData(_, let alg): (label, algorithm) = ("conv2d_backward_data", alg)
        case .conv2dBackwardFilter(_, let alg): (label, algorithm) = ("conv2d_backward_filter", alg)
        case .linear(_, _, _, let a): label = "linear" + fused(a)
        case .matmul: label = "matmul"
        case .maxPool(_, let w): (label, winners) = ("max_pool", w)
        case .preluMaxPool: label = "prelu+max_pool"
        case .avgPool: label = "avg_pool"
        case .maxPoolBackward(_, let mask): label = "max_pool_backward" + (mask ? "+relu_backward" : "")
        case .maxPoolBackwardFromWinners(_, let mask): label = "max_pool_backward" + (mask ? "+relu_backward" : "")
        case .maxPoolBackwardInto(_, let g): (label, algorithm) = ("max_pool_backward+" + (g == nil ? "sum" : "conv2d_backward_filter"), g.map { _ in .direct })
        case .avgPoolBackward: label = "avg_pool_backward"
        case .relu: label = "relu"
        case .reluBackward: label = "relu_backward"
        case .prelu: label = "prelu"
        case .preluBackwardInput: label = "prelu_backward_input"
        case .preluBackwardSlope: label = "prelu_backward_slope"
        case .sigmoid: label = "sigmoid"
        case .sigmoidBackward: label = "sigmoid_backward"
        case .tanh: label = "tanh"
        case .tanhBackward: label = "tanh_backward"
        case .copy: label = "copy"
        case .affine: label = "affine"
        case .transpose: label = "transpose"
        case .concat: label = "concat"
        case .slice: label = "slice"
        case .sliceBackward: label = "slice_backward"
        case .channelReplicate: label = "channel_replicate"
        case .resize: label = "resize"
        case .resizeBackward: label = "resize_backward"
        case .binary(let op, _, _): label = op.rawValue
        case .maximumBackward: label = "maximum_backward"
        case .channelScale(_, let hasScale, let act, let eps): label = (eps == nil ? "" : "batch_norm_train+") + (hasScale ? "scale" : "bias") + (act == .none ? "" : "+relu")
        case .batchNorm: label = "batch_norm"
        case .batchNormBackward: label = "batch_norm_backward"
        case .batchNormTrain: label = "batch_norm_train"
        case .batchNormTrainBackward: label = "batch_norm_train_backward"
        case .batchMoments: label = "batch_moments"
        case .lrnAcross: label = "lrn"
        case .lrnWithin: label = "lrn/within_channel"
        case .lrnBackward: label = "lrn_backward"
        case .l2Normalize: label = "l2_normalize"
        case .l2NormalizeBackward: label = "l2_normalize_backward"
        case .priorBox: label = "prior_box"
        case .detectionOutput: label = "detection_output"
        case .softmax(_, _, _, let log): label = log ? "log_softmax" : "softmax"
        case .softmaxBackward(_, _, _, let log): label = log ? "log_softmax_backward" : "softmax_backward"
        case .softmaxCrossEntropy: label = "softmax_cross_entropy"
        case .softmaxCrossEntropyBackward: label = "softmax_cross_entropy_backward"
        case .euclideanLoss: label = "euclidean_loss"
        case .euclideanLossBackward: label = "euclidean_loss_backward"
        case .reduce(_, _, let mean, let eps): label = (eps == nil ? "" : "batch_norm_train+") + (mean ? "mean" : "sum")
        case .reduceBackward: label = "reduce_backward"
        case .sumTo: label = "sum_to"
        case .dropoutMask: label = "dropout_mask"
        case .fill: label = "fill"
        }
        return (label, algorithm, winners)
    }

    /// The kernel's name, with its convolution algorithm when that is not im2col. From the call alone.
    public var label: String {
        let t = traits
        return t.name + (t.algorithm.map { $0 == .im2col ? "" : "/" + $0.rawValue } ?? "")
    }

    /// The algorithm of a convolution call, for the printed schedule.
    public var algorithm: ConvAlgorithm? { traits.algorithm }

    /// Where the call records a max pool's winners: a buffer it writes besides its node's value.
    public var winners: PoolWinners? { traits.winners }
}

/// Lowering of one IR node to its kernel call: the one place that reads an op's attributes and
/// operand shapes to size a kernel.
enum Lowering {
    static func call(_ n: Node, shape: (String) -> [Int], allowed: Set<ConvAlgorithm>) throws -> KernelCall {
        let a = n.fullAttrs, out = shape(n.name), count = out.reduce(1, *)
        let ins = n.operands.map(shape)
        func view(_ s: [Int]) -> ChannelView {
            ChannelView(batch: s[0], channels: s.count > 1 ? s[1] : 1, spatial: s.count > 2 ? s[2...].reduce(1, *) : 1)
        }
        func axis(_ rank: Int) -> Int { a.int("axis") < 0 ? a.int("axis") + rank : a.int("axis") }
        func conv(x: [Int], o: Int, kernel: (Int, Int)) -> ConvGeometry {
            ConvGeometry(batch: x[0], inChannels: x[1], height: x[2], width: x[3], outChannels: o, kernel: kernel,
                         stride: a.pair("stride"), pad: a.pair("pad"), dilation: a.pair("dilation"), groups: a.int("groups"))
        }
        func pool(_ x: [Int]) -> PoolGeometry {
            if a.bool("global") { return .global(batch: x[0], channels: x[1], height: x[2], width: x[3]) }
            return PoolGeometry(batch: x[0], channels: x[1], height: x[2], width: x[3], kernel: a.pair("kernel"),
                                stride: a.pair("stride"), pad: a.pair("pad"), ceil: a.string("round") == "ceil")
        }
        let activation: Activation = a["activation"] == .word("relu") ? .relu(negativeSlope: Float(a.float("negative_slope"))) : .none
        func algorithm(_ g: ConvGeometry) -> ConvAlgorithm { Scheduler.convAlgorithm(g, allowed: allowed) }
        func softmaxSizes(_ s: [Int]) -> (Int, Int, Int) {
            let ax = axis(s.count)
            return (s[..<ax].reduce(1, *), s[ax], s[(ax + 1)...].reduce(1, *))
        }
        var lrn: (size: Int, alpha: Float, beta: Float, k: Float) {
            (a.int("size"), Float(a.float("alpha")), Float(a.float("beta")), Float(a.float("k")))
        }

        switch n.op {
        case .conv2d:
            let g = conv(x: ins[0], o: ins[1][0], kernel: (ins[1][2], ins[1][3]))
            return .conv2d(g, activation, algorithm(g))
        case .conv2dBackwardData:
            let g = conv(x: out, o: ins[1][0], kernel: (ins[1][2], ins[1][3]))
            return .conv2dBackwardData(g, algorithm(g))
        case .conv2dBackwardFilter:
            let g = conv(x: ins[0], o: out[0], kernel: (out[2], out[3]))
            return .conv2dBackwardFilter(g, algorithm(g))
        case .linear:
            return .linear(rows: ins[0][0], inputs: ins[0][1], outputs: ins[1][0], activation)
        case .matmul:
            let ta = a.bool("transpose_a")
            return .matmul(m: out[0], n: out[1], k: ta ? ins[0][0] : ins[0][1], transposeA: ta, transposeB: a.bool("transpose_b"))
        case .maxPool: return .maxPool(pool(ins[0]), nil)
        case .avgPool: return .avgPool(pool(ins[0]))
        case .maxPoolBackward: return .maxPoolBackward(pool(ins[0]), reluMask: a.bool("relu_mask"))
        case .avgPoolBackward: return .avgPoolBackward(pool(out))
        case .relu: return .relu(count: count, negativeSlope: Float(a.float("negative_slope")))
        case .reluBackward: return .reluBackward(count: count, negativeSlope: Float(a.float("negative_slope")))
        case .prelu: return .prelu(view(ins[0]), slopes: ins[1].reduce(1, *))
        case .preluBackwardInput: return .preluBackwardInput(view(ins[0]), slopes: ins[1].reduce(1, *))
        case .preluBackwardSlope: return .preluBackwardSlope(view(ins[0]), slopes: count)
        case .sigmoid: return .sigmoid(count: count)
        case .sigmoidBackward: return .sigmoidBackward(count: count)
        case .tanh: return .tanh(count: count)
        case .tanhBackward: return .tanhBackward(count: count)
        case .dropout, .flatten, .reshape:
            // Dropout is the identity outside training graphs (Autodiff turns it into a mask).
            return .copy(count: count)
        case .affine: return .affine(count: count, scale: Float(a.float("scale")), shift: Float(a.float("shift")))
        case .transpose: return .transpose(shape: ins[0], perm: a.ints("perm"))
        case .concat: return .concat(shapes: ins, axis: axis(out.count))
        case .slice: return .slice(shape: ins[0], axis: axis(out.count), start: a.int("start"), end: a.int("end"))
        case .sliceBackward:
            return .sliceBackward(shape: out, axis: axis(out.count), start: a.int("start"), length: a.int("end") - a.int("start"))
        case .channelReplicate:
            return .channelReplicate(batch: ins[0][0], spatial: view(ins[0]).spatial, count: a.int("count"))
        case .resize:
            return .resize(planes: ins[0][0] * ins[0][1], h: ins[0][2], w: ins[0][3], oh: out[2], ow: out[3])
        case .resizeBackward:
            return .resizeBackward(planes: out[0] * out[1], h: out[2], w: out[3], oh: ins[0][2], ow: ins[0][3])
        case .add, .sub, .mul, .div, .maximum:
            return .binary(FastOps.BinaryOp(rawValue: n.op.rawValue)!, aShape: ins[0], bShape: ins[1])
        case .maximumBackward:
            return .maximumBackward(aShape: ins[0], bShape: ins[1], shape: out, operand: a.int("operand"))
        case .scale, .bias: return .channelScale(view(ins[0]), hasScale: n.op == .scale, activation)
        case .batchNorm: return .batchNorm(view(ins[0]), eps: Float(a.float("eps")))
        case .batchNormBackward: return .batchNormBackward(view(out), eps: Float(a.float("eps")))
        case .batchNormTrain: return .batchNormTrain(view(out), eps: Float(a.float("eps")))
        case .batchNormTrainBackward: return .batchNormTrainBackward(view(out), eps: Float(a.float("eps")))
        case .batchMoments: return .batchMoments(view(ins[0]))
        case .lrn:
            if a.string("region") == "within_channel" {
                return .lrnWithin(view(ins[0]), height: ins[0][2], width: ins[0][3], size: lrn.size, alpha: lrn.alpha, beta: lrn.beta)
            }
            return .lrnAcross(view(ins[0]), size: lrn.size, alpha: lrn.alpha, beta: lrn.beta, k: lrn.k)
        case .lrnBackward:
            guard a.string("region") == "across_channels" else {
                throw SchedulerError("'%\(n.name)': lrn_backward supports region=across_channels only")
            }
            return .lrnBackward(view(out), size: lrn.size, alpha: lrn.alpha, beta: lrn.beta, k: lrn.k)
        case .l2Normalize: return .l2Normalize(view(ins[0]), acrossSpatial: a.bool("across_spatial"), eps: Float(a.float("eps")))
        case .l2NormalizeBackward:
            return .l2NormalizeBackward(view(ins[0]), acrossSpatial: a.bool("across_spatial"), eps: Float(a.float("eps")))
        case .priorBox: return .priorBox(a.priorBoxes(feature: ins[0], image: ins[1]))
        case .detectionOutput:
            do { return .detectionOutput(try a.detectionSpec(), batch: ins[0][0], priors: ins[2][2] / 4) } catch {
                throw SchedulerError("'%\(n.name)': \(error)")
            }
        case .softmax, .logSoftmax:
            let (o, c, i) = softmaxSizes(out)
            return .softmax(outer: o, channels: c, inner: i, log: n.op == .logSoftmax)
        case .softmaxBackward, .logSoftmaxBackward:
            let (o, c, i) = softmaxSizes(out)
            return .softmaxBackward(outer: o, channels: c, inner: i, log: n.op == .logSoftmaxBackward)
        case .softmaxCrossEntropy: return .softmaxCrossEntropy(batch: ins[0][0], classes: ins[0][1])
        case .softmaxCrossEntropyBackward: return .softmaxCrossEntropyBackward(batch: ins[0][0], classes: ins[0][1])
        case .euclideanLoss: return .euclideanLoss(count: ins[0].reduce(1, *), batch: ins[0][0])
        case .euclideanLossBackward: return .euclideanLossBackward(count: count, batch: ins[0][0])
        case .sum, .mean:
            let axes = a.ints("axes").map { $0 < 0 ? $0 + ins[0].count : $0 }
            return .reduce(shape: ins[0], axes: axes.isEmpty ? Array(ins[0].indices) : axes, mean: n.op == .mean)
        case .reduceBackward:
            let axes = a.ints("axes").map { $0 < 0 ? $0 + out.count : $0 }
            let all = axes.isEmpty ? Array(out.indices) : axes
            let kept = out.enumerated().map { all.contains($0.offset) ? 1 : $0.element }
            let factor: Float = a.bool("mean") ? 1 / Float(all.reduce(1) { $0 * out[$1] }) : 1
            return .reduceBackward(kept: kept, shape: out, factor: factor)
        case .sumTo: return .sumTo(from: ins[0], to: out)
        case .dropoutMask:
            return .dropoutMask(count: count, rows: out.first ?? 1, ratio: Float(a.float("ratio")))
        case .fill: return .fill(count: count, value: Float(a.float("value")))
        case .call:
            throw SchedulerError("'%\(n.name)': calls are inlined before scheduling")
        }
    }

}
