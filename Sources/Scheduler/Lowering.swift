import Detection
import IR
import Kernels

/// How a convolution (or one of its gradients) is computed; the Scheduler chooses per layer.
public enum ConvAlgorithm: String, CaseIterable, Sendable {
    /// im2col per image, then one GEMM per image and group.
    case im2col
    /// 1x1, stride 1, no padding: the input already is the GEMM operand.
    case pointwise
    /// The batch's im2col matrices side by side, one GEMM per layer (small late layers).
    case batched
    /// Winograd F(4x4,3x3) over tiles of the whole batch (3x3, stride 1, no dilation or groups).
    case winograd
}

/// `[batch, channels, spatial]` view of a tensor with channels on axis 1.
public struct ChannelView: Hashable, Sendable {
    public var batch, channels, spatial: Int
}

/// Where a max pool records each window's winner for its gradients: `h · W + w` within the plane
/// as an i32 per pooled value, -1 for none (see `Scheduler.recordPoolWinners`).
public struct PoolWinners: Hashable, Sendable {
    /// The i32 buffer, shaped like the pool's output.
    public var buffer: String
    /// A winner that is not > 0 is recorded as none: the ReLU backward fused into the gradients.
    public var reluMask: Bool
}

/// One convolution of a per-image chain (`KernelCall.conv2dMaxPool`): its geometry (the batch's),
/// activation and algorithm, and where its weight and bias are among the kernel's operands.
public struct ChainedConv: Sendable {
    public var geometry: ConvGeometry
    public var activation: Activation
    public var algorithm: ConvAlgorithm
    public var weight: Int
    public var bias: Int?

    /// Floats of Winograd-transformed weights, computed once per batch and kept for all images.
    public var transformedWeights: Int { algorithm == .winograd ? 36 * geometry.outChannels * geometry.inChannels : 0 }
    /// Floats of scratch one image's convolution needs besides its transformed weights.
    public var scratch: Int { KernelCall.conv2d(geometry.single, .none, algorithm).workspace - transformedWeights }
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
    case avgPool(PoolGeometry)
    /// `(x, dy)`: the winners searched again in x. With `reluMask`, relu_backward of the pooled
    /// ReLU output is fused in (the scheduler's FusePoolReluBackward).
    case maxPoolBackward(PoolGeometry, reluMask: Bool)
    /// `(winners, dy)`: each dy to the winner its max pool recorded.
    case maxPoolBackwardFromWinners(PoolGeometry)
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
    /// scale (operands x, s[, b]) or bias (x, b) per channel.
    case channelScale(ChannelView, hasScale: Bool)
    case batchNorm(ChannelView, eps: Float)
    case batchNormBackward(ChannelView, eps: Float)
    /// Normalization with the batch's statistics (`batch_norm_train`), its gradient, and the statistics alone.
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
    case reduce(shape: [Int], axes: [Int], mean: Bool)
    /// dy of shape `kept` (reduced axes 1) broadcast to `shape`, times `factor`.
    case reduceBackward(kept: [Int], shape: [Int], factor: Float)
    case sumTo(from: [Int], to: [Int])
    /// Row k of the mask draws from its own generator when row seeds are set (see Executor.rowSeeds).
    case dropoutMask(count: Int, rows: Int, ratio: Float)
    case fill(count: Int, value: Float)

    /// Floats of scratch the call needs while it runs (placed in the arena, live for this kernel only).
    public var workspace: Int {
        switch self {
        case .conv2d(let g, _, let alg):
            switch alg {
            case .im2col: return g.workspaceCount
            case .pointwise: return 0
            case .batched: return g.batchedWorkspaceCount
            case .winograd: return g.winogradForwardWorkspace
            }
        case .conv2dMaxPool(let convs, _, _):
            // Each image's outputs of every convolution, the transformed weights, one scratch.
            return convs.reduce(0) { $0 + $1.geometry.single.outputCount + $1.transformedWeights } + (convs.map(\.scratch).max() ?? 0)
        case .conv2dBackwardData(let g, let alg):
            switch alg {
            case .im2col: return g.workspaceCount
            case .pointwise: return 0
            case .batched: return g.batchedWorkspaceCount
            case .winograd: return g.winogradBackwardDataWorkspace
            }
        case .conv2dBackwardFilter(let g, let alg):
            switch alg {
            case .im2col: return g.workspaceCount
            case .pointwise: return 0
            case .batched: return g.batchedWorkspaceCount
            case .winograd: return g.winogradBackwardFilterWorkspace
            }
        case .softmaxCrossEntropy(let b, let c), .softmaxCrossEntropyBackward(let b, let c): return b * c
        case .preluBackwardSlope(let v, let slopes): return v.batch * v.channels * v.spatial + slopes
        case .maximumBackward(_, _, let shape, _): return shape.reduce(1, *)
        case .linear, .matmul, .maxPool, .avgPool, .maxPoolBackward, .maxPoolBackwardFromWinners, .avgPoolBackward, .relu,
             .reluBackward, .prelu, .preluBackwardInput, .sigmoid, .sigmoidBackward, .tanh, .tanhBackward, .copy, .affine, .transpose, .concat,
             .slice, .sliceBackward, .channelReplicate, .resize, .resizeBackward, .binary, .channelScale, .batchNorm,
             .batchNormBackward, .batchNormTrain, .batchNormTrainBackward, .batchMoments, .lrnAcross, .lrnWithin, .lrnBackward,
             .l2Normalize, .l2NormalizeBackward, .priorBox, .detectionOutput, .softmax, .softmaxBackward, .euclideanLoss, .euclideanLossBackward, .reduce,
             .reduceBackward, .sumTo, .dropoutMask, .fill:
            return 0
        }
    }

    /// Whether the output may share its first operand's buffer (when that operand dies at this
    /// kernel and has the same size): elementwise kernels, views, and the max-pool backward whose
    /// 2x2 windows tile the plane (each window reads its four cells before writing them).
    public var mayOverwriteFirstOperand: Bool {
        switch self {
        case .relu, .reluBackward, .prelu, .sigmoid, .tanh, .copy, .affine, .channelScale, .batchNorm, .batchNormTrain, .binary:
            return true
        case .maxPoolBackward(let g, let reluMask):
            return reluMask && g.isDisjoint2x2 && 2 * g.outH == g.height && 2 * g.outW == g.width
        case .conv2d, .conv2dMaxPool, .conv2dBackwardData, .conv2dBackwardFilter, .linear, .matmul, .maxPool, .avgPool,
             .maxPoolBackwardFromWinners, .avgPoolBackward, .preluBackwardInput, .preluBackwardSlope, .sigmoidBackward, .tanhBackward, .transpose, .concat, .slice,
             .sliceBackward, .channelReplicate, .resize, .resizeBackward, .maximumBackward, .batchNormBackward, .batchNormTrainBackward,
             .batchMoments, .lrnAcross, .lrnWithin, .lrnBackward, .l2Normalize, .l2NormalizeBackward, .priorBox, .detectionOutput, .softmax,
             .softmaxBackward, .softmaxCrossEntropy, .softmaxCrossEntropyBackward, .euclideanLoss, .euclideanLossBackward,
             .reduce, .reduceBackward, .sumTo, .dropoutMask, .fill:
            return false
        }
    }

    /// Floating-point operations: 2 per multiply-add of the direct algorithm for GEMM-based calls
    /// (so GFLOP/s compare across algorithms), else one per output element.
    public func flops(outputCount: Int) -> Int {
        switch self {
        case .conv2d(let g, _, _): return 2 * g.outputCount * g.colRows
        case .conv2dMaxPool(let convs, let p, _):
            return convs.reduce(0) { $0 + 2 * $1.geometry.outputCount * $1.geometry.colRows } + p.outputCount
        case .conv2dBackwardData(let g, _), .conv2dBackwardFilter(let g, _): return 2 * g.outputCount * g.colRows
        case .linear(let rows, let inputs, let outputs, _): return 2 * rows * inputs * outputs
        case .matmul(let m, let n, let k, _, _): return 2 * m * n * k
        case .maxPool, .avgPool, .maxPoolBackward, .maxPoolBackwardFromWinners, .avgPoolBackward, .relu, .reluBackward,
             .prelu, .preluBackwardInput, .preluBackwardSlope, .sigmoid, .sigmoidBackward, .tanh, .tanhBackward, .copy, .affine, .transpose, .concat,
             .slice, .sliceBackward, .channelReplicate, .resize, .resizeBackward, .binary, .maximumBackward, .channelScale,
             .batchNorm, .batchNormBackward, .batchNormTrain, .batchNormTrainBackward, .batchMoments, .lrnAcross, .lrnWithin,
             .lrnBackward, .l2Normalize, .l2NormalizeBackward, .priorBox, .detectionOutput, .softmax, .softmaxBackward, .softmaxCrossEntropy, .softmaxCrossEntropyBackward,
             .euclideanLoss, .euclideanLossBackward, .reduce, .reduceBackward, .sumTo, .dropoutMask, .fill:
            return outputCount
        }
    }

    /// The algorithm of a convolution call, for the printed schedule.
    public var algorithm: ConvAlgorithm? {
        if case .conv2d(_, _, let a) = self { return a }
        if case .conv2dMaxPool(let convs, _, _) = self { return convs.last?.algorithm }
        if case .conv2dBackwardData(_, let a) = self { return a }
        if case .conv2dBackwardFilter(_, let a) = self { return a }
        return nil
    }

    /// Where the call records a max pool's winners: a buffer it writes besides its node's value.
    public var winners: PoolWinners? {
        if case .maxPool(_, let w) = self { return w }
        if case .conv2dMaxPool(_, _, let w) = self { return w }
        return nil
    }
}

extension ConvGeometry {
    /// The same convolution for one image.
    public var single: ConvGeometry { var g = self; g.batch = 1; return g }
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
        case .add, .sub, .mul, .maximum:
            return .binary(FastOps.BinaryOp(rawValue: n.op.rawValue)!, aShape: ins[0], bShape: ins[1])
        case .maximumBackward:
            return .maximumBackward(aShape: ins[0], bShape: ins[1], shape: out, operand: a.int("operand"))
        case .scale: return .channelScale(view(ins[0]), hasScale: true)
        case .bias: return .channelScale(view(ins[0]), hasScale: false)
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
