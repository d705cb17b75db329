/// Every operation of the IR, listed once. The raw value is the name in the text format; the parser,
/// printer, verifier and shape inference all read this table.
public enum Op: String, CaseIterable, Sendable {
    // Convolution and pooling, NCHW.
    case conv2d
    case maxPool = "max_pool"
    case avgPool = "avg_pool"
    // Activations.
    case relu, prelu, sigmoid, tanh
    case dropout
    // Data movement.
    case flatten, reshape, transpose, concat, slice
    case channelReplicate = "channel_replicate"
    /// `x[N,C,H,W] {size=[OH,OW]}` -> [N,C,OH,OW], nearest neighbour: y[i][j] = x[i*H/OH][j*W/OW] (integer division).
    case resize
    // Elementwise arithmetic with NumPy broadcasting, and scalar affine y = x*scale + shift.
    case add, sub, mul, div, maximum
    case affine
    // Per-channel (axis 1) operations.
    case scale, bias
    /// `(x, mean[C], var[C]) {eps, momentum}` -> (x - mean[c]) / sqrt(var[c] + eps), with the given (running)
    /// statistics. momentum < 1 marks a layer trained with batch statistics: training graphs lower it to
    /// `batch_norm_train` and `batch_moments`, and the trainer keeps mean and var as running averages,
    /// `running = momentum * running + (1 - momentum) * batch` (see `LowerBatchNorm`).
    case batchNorm = "batch_norm"
    /// `x[N,C,...] {eps}` -> (x - mean[c]) / sqrt(var[c] + eps) with the batch's own statistics: mean and
    /// biased variance of channel c over every axis but 1. Its gradient flows through the statistics.
    case batchNormTrain = "batch_norm_train"
    /// `x[N,C,...]` -> f32[2,C]: row 0 the mean, row 1 the biased variance of each channel over every axis but 1.
    case batchMoments = "batch_moments"
    case lrn
    /// x divided by its L2 norm over C, H and W of each sample (across_spatial) or over C at each position.
    case l2Normalize = "l2_normalize"
    // Dense layers and classifiers.
    case linear
    case softmax
    case logSoftmax = "log_softmax"
    // Losses: scalar outputs.
    case softmaxCrossEntropy = "softmax_cross_entropy"
    case euclideanLoss = "euclidean_loss"
    // Reductions.
    case mean, sum
    // Another graph, called by name; its parameters are namespaced by the call.
    case call
    // Detection (the SSD fork of Caffe): default boxes of a feature map, and the decoding and
    // non-maximum suppression that turn box and class predictions into a table of detections.
    case priorBox = "prior_box"
    case detectionOutput = "detection_output"

    // Backward ops: what Autodiff emits. Each is one kernel; `dy` is the gradient of the forward
    // op's output and the result is the gradient of one forward operand. In their `shape` and
    // `input_size` attributes a 0 stands for the batch dimension N, so N stays symbolic.
    /// `(dy[N,O,OH,OW], w[O,C/g,KH,KW]) {conv2d attrs, input_size=[H,W]}` -> dx[N,C,H,W], the transposed convolution.
    case conv2dBackwardData = "conv2d_backward_data"
    /// `(x[N,C,H,W], dy[N,O,OH,OW]) {conv2d attrs, kernel=[KH,KW]}` -> dw[O,C/g,KH,KW], summed over N.
    case conv2dBackwardFilter = "conv2d_backward_filter"
    /// `(x, dy) {max_pool attrs, relu_mask}` -> dx like x: each window's dy goes to its argmax in x (first maximum in row-major window order), summed where windows overlap; with relu_mask a winner <= 0 gets nothing.
    case maxPoolBackward = "max_pool_backward"
    /// `(dy) {avg_pool attrs, input_size=[H,W]}` -> dx[N,C,H,W]: each window's dy divided by the forward divisor, spread over the window.
    case avgPoolBackward = "avg_pool_backward"
    /// `(s, dy) {negative_slope}` -> dy where s > 0, else negative_slope * dy; s is relu's output (slope >= 0) or input.
    case reluBackward = "relu_backward"
    /// `(x, slope, dy)` -> dy where x > 0, else slope[c] * dy.
    case preluBackwardInput = "prelu_backward_input"
    /// `(x, dy) {channel_shared}` -> [C] (or [1]): sum of dy * x where x <= 0, over all but axis 1 (over all when shared).
    case preluBackwardSlope = "prelu_backward_slope"
    /// `(y, dy)` -> dy * y * (1 - y).
    case sigmoidBackward = "sigmoid_backward"
    /// `(y, dy)` -> dy * (1 - y^2).
    case tanhBackward = "tanh_backward"
    /// `(y, dy) {axis}` -> y * (dy - sum(dy * y, axis, keepdims)).
    case softmaxBackward = "softmax_backward"
    /// `(y, dy) {axis}` -> dy - exp(y) * sum(dy, axis, keepdims).
    case logSoftmaxBackward = "log_softmax_backward"
    /// `(logits[N,K], labels i32[N], dloss[])` -> dloss * (softmax(logits) - onehot(labels)) / N.
    case softmaxCrossEntropyBackward = "softmax_cross_entropy_backward"
    /// `(a, b, dloss[])` -> dloss * (a - b) / N, N = a's first dimension (loss = sum((a-b)^2) / 2N); swap a and b for b's gradient.
    case euclideanLossBackward = "euclidean_loss_backward"
    /// `(a, b, dy) {operand}` -> like dy: dy where a >= b (operand=0) or b > a (operand=1), else 0; a and b broadcast.
    case maximumBackward = "maximum_backward"
    /// `(x, y, dy) {lrn attrs}` -> dx, Caffe's LRN backward (the scale is recomputed from x).
    case lrnBackward = "lrn_backward"
    /// `(var[C], dy) {eps}` -> dy / sqrt(var[c] + eps): batch_norm with given statistics.
    case batchNormBackward = "batch_norm_backward"
    /// `(x, dy) {eps}` -> dx = (dy - mean(dy) - x̂ mean(dy x̂)) / sqrt(var + eps), x̂ = batch_norm_train(x),
    /// the means per channel over every axis but 1: the gradient through the batch statistics too.
    case batchNormTrainBackward = "batch_norm_train_backward"
    /// `(x, dy) {l2_normalize attrs}` -> (dy - y * sum(dy * y)) / norm over each normalised group, y = x / norm.
    case l2NormalizeBackward = "l2_normalize_backward"
    /// `(dy) {axis, start, end, size}` -> dy placed at [start, end) of an axis of `size`, zeros elsewhere.
    case sliceBackward = "slice_backward"
    /// `(dy[N,C,OH,OW]) {size=[H,W]}` -> dx[N,C,H,W]: each dy element added to the x element `resize` copied it from.
    case resizeBackward = "resize_backward"
    /// `(dy) {axes, shape, mean}` -> shape: dy repeated along the reduced axes (all when empty), divided by their element count when mean.
    case reduceBackward = "reduce_backward"
    /// `(dy) {shape}` -> shape: dy summed over its leading extra axes and the axes where shape is 1 (NumPy broadcasting reversed).
    case sumTo = "sum_to"
    /// `(a, b) {transpose_a, transpose_b}` -> op(a) op(b) for rank-2 operands; linear's backward.
    case matmul
    /// `(x) {ratio}` -> like x: 0 with probability ratio, else 1 / (1 - ratio); training-mode dropout is `mul(x, mask)`.
    case dropoutMask = "dropout_mask"
    /// `() {shape, value}` -> a constant (the seed gradient 1 of the loss, the zero gradient of an unused parameter).
    case fill
}

/// The operands and attributes an op accepts.
public struct OpSignature: Sendable {
    /// Fewest and most operands; `maxOperands == nil` means any number.
    public var minOperands: Int
    public var maxOperands: Int?
    public var attrs: [AttrSpec]
    /// Operand positions that hold i32 values (class labels); every other operand is f32.
    public var intOperands: Set<Int> = []

    public func spec(_ name: String) -> AttrSpec? { attrs.first { $0.name == name } }
}

private let pair00 = AttrValue.ints([0, 0])
private let pair11 = AttrValue.ints([1, 1])
/// A fused activation on an op's output (conv2d, linear, scale), applied in the kernel's epilogue.
private let epilogueAttrs = [
    AttrSpec("activation", .word(["none", "relu"]), .word("none")),
    AttrSpec("negative_slope", .float, .float(0)),
]

extension Op {
    public var signature: OpSignature {
        switch self {
        case .conv2d:
            return OpSignature(minOperands: 2, maxOperands: 3, attrs: [
                AttrSpec("stride", .ints(count: 2), pair11, range: .positive),
                AttrSpec("pad", .ints(count: 2), pair00, range: .nonNegative),
                AttrSpec("dilation", .ints(count: 2), pair11, range: .positive),
                AttrSpec("groups", .int, .int(1), range: .positive),
            ] + epilogueAttrs)
        case .maxPool, .avgPool:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [
                AttrSpec("kernel", .ints(count: 2), pair00, range: .nonNegative),
                AttrSpec("stride", .ints(count: 2), pair11, range: .positive),
                AttrSpec("pad", .ints(count: 2), pair00, range: .nonNegative),
                AttrSpec("round", .word(["floor", "ceil"]), .word("floor")),
                AttrSpec("global", .bool, .bool(false)),
            ])
        case .relu:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [AttrSpec("negative_slope", .float, .float(0))])
        case .prelu:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [])
        case .sigmoid, .tanh:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [])
        case .dropout:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [AttrSpec("ratio", .float, .float(0.5), range: .probability)])
        case .flatten:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [
                AttrSpec("axis", .int, .int(1)), AttrSpec("end_axis", .int, .int(-1)),
            ])
        case .reshape:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [AttrSpec("shape", .ints(count: nil))])
        case .transpose:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [AttrSpec("perm", .ints(count: nil))])
        case .concat:
            return OpSignature(minOperands: 1, maxOperands: nil, attrs: [AttrSpec("axis", .int, .int(1))])
        case .slice:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [
                AttrSpec("axis", .int, .int(1)), AttrSpec("start", .int), AttrSpec("end", .int),
            ])
        case .channelReplicate:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [AttrSpec("count", .int, .int(3))])
        case .resize, .resizeBackward:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [AttrSpec("size", .ints(count: 2))])
        case .add, .sub, .mul, .div, .maximum:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [])
        case .affine:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [
                AttrSpec("scale", .float, .float(1)), AttrSpec("shift", .float, .float(0)),
            ])
        case .scale:
            return OpSignature(minOperands: 2, maxOperands: 3, attrs: epilogueAttrs)
        case .bias:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [])
        case .batchNorm:
            return OpSignature(minOperands: 3, maxOperands: 3, attrs: [
                AttrSpec("eps", .float, .float(1e-5)), AttrSpec("momentum", .float, .float(1), range: .fraction),
            ])
        case .batchNormTrain:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [AttrSpec("eps", .float, .float(1e-5))])
        case .batchMoments:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [])
        case .lrn:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [
                AttrSpec("size", .int, .int(5), range: .positive),
                AttrSpec("alpha", .float, .float(1)),
                AttrSpec("beta", .float, .float(0.75)),
                AttrSpec("k", .float, .float(1)),
                AttrSpec("region", .word(["across_channels", "within_channel"]), .word("across_channels")),
            ])
        case .l2Normalize:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [
                AttrSpec("across_spatial", .bool, .bool(true)), AttrSpec("eps", .float, .float(1e-10)),
            ])
        case .linear:
            return OpSignature(minOperands: 2, maxOperands: 3, attrs: epilogueAttrs)
        case .softmax, .logSoftmax:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [AttrSpec("axis", .int, .int(1))])
        case .softmaxCrossEntropy:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [], intOperands: [1])
        case .euclideanLoss:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [])
        case .mean, .sum:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [AttrSpec("axes", .ints(count: nil), .ints([]))])
        case .call:
            return OpSignature(minOperands: 0, maxOperands: nil, attrs: [
                AttrSpec("output", .string, .string("")),
                AttrSpec("prefix", .string, .string("")),
                AttrSpec("frozen", .bool, .bool(false)),
                AttrSpec("frozen_through", .string, .string("")),
            ])
        case .priorBox:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [
                AttrSpec("min_sizes", .floats),
                AttrSpec("max_sizes", .floats, .floats([])),
                AttrSpec("aspect_ratios", .floats, .floats([])),
                AttrSpec("flip", .bool, .bool(true)),
                AttrSpec("clip", .bool, .bool(false)),
                AttrSpec("variances", .floats, .floats([])),
                AttrSpec("image_size", .ints(count: 2), pair00),
                AttrSpec("step", .floats, .floats([])),
                AttrSpec("offset", .float, .float(0.5)),
            ])
        case .detectionOutput:
            return OpSignature(minOperands: 3, maxOperands: 3, attrs: [
                AttrSpec("num_classes", .int),
                AttrSpec("share_location", .bool, .bool(true)),
                AttrSpec("background_label", .int, .int(0)),
                AttrSpec("nms_threshold", .float, .float(0.3)),
                AttrSpec("top_k", .int, .int(-1)),
                AttrSpec("eta", .float, .float(1)),
                AttrSpec("code_type", .word(["corner", "center_size", "corner_size"]), .word("corner")),
                AttrSpec("keep_top_k", .int, .int(-1)),
                AttrSpec("variance_encoded_in_target", .bool, .bool(false)),
                AttrSpec("confidence_threshold", .float, .float(-Double(Float.greatestFiniteMagnitude))),
            ])

        case .conv2dBackwardData:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: convAttrs + [AttrSpec("input_size", .ints(count: 2))])
        case .conv2dBackwardFilter:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: convAttrs + [AttrSpec("kernel", .ints(count: 2), range: .nonNegative)])
        case .maxPoolBackward:
            // relu_mask: x is a ReLU's output and relu_backward(x, ·) is fused in (a winner ≤ 0 passes nothing).
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: Op.maxPool.signature.attrs + [AttrSpec("relu_mask", .bool, .bool(false))])
        case .avgPoolBackward:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: Op.avgPool.signature.attrs + [AttrSpec("input_size", .ints(count: 2))])
        case .reluBackward:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: Op.relu.signature.attrs)
        case .preluBackwardInput:
            return OpSignature(minOperands: 3, maxOperands: 3, attrs: [])
        case .preluBackwardSlope:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [AttrSpec("channel_shared", .bool, .bool(false))])
        case .sigmoidBackward, .tanhBackward:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [])
        case .softmaxBackward, .logSoftmaxBackward:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [AttrSpec("axis", .int, .int(1))])
        case .softmaxCrossEntropyBackward:
            return OpSignature(minOperands: 3, maxOperands: 3, attrs: [], intOperands: [1])
        case .euclideanLossBackward:
            return OpSignature(minOperands: 3, maxOperands: 3, attrs: [])
        case .maximumBackward:
            return OpSignature(minOperands: 3, maxOperands: 3, attrs: [AttrSpec("operand", .int, .int(0))])
        case .lrnBackward:
            return OpSignature(minOperands: 3, maxOperands: 3, attrs: Op.lrn.signature.attrs)
        case .batchNormBackward:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [AttrSpec("eps", .float, .float(1e-5))])
        case .batchNormTrainBackward:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: Op.batchNormTrain.signature.attrs)
        case .l2NormalizeBackward:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: Op.l2Normalize.signature.attrs)
        case .sliceBackward:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: Op.slice.signature.attrs + [AttrSpec("size", .int, range: .positive)])
        case .reduceBackward:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [
                AttrSpec("axes", .ints(count: nil), .ints([])), AttrSpec("shape", .ints(count: nil)),
                AttrSpec("mean", .bool, .bool(false)),
            ])
        case .sumTo:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [AttrSpec("shape", .ints(count: nil))])
        case .matmul:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [
                AttrSpec("transpose_a", .bool, .bool(false)), AttrSpec("transpose_b", .bool, .bool(false)),
            ])
        case .dropoutMask:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: Op.dropout.signature.attrs)
        case .fill:
            return OpSignature(minOperands: 0, maxOperands: 0, attrs: [
                AttrSpec("shape", .ints(count: nil), .ints([])), AttrSpec("value", .float, .float(0)),
            ])
        }
    }

    /// Ops that can apply an activation to their output (`activation=relu`); the scheduler's
    /// fusion pass sets it, and every kernel and the reference interpreter honour it.
    public static let fusableProducers: Set<Op> = [.conv2d, .linear, .scale]

    /// conv2d's attributes, shared with its backward ops.
    private var convAttrs: [AttrSpec] { Op.conv2d.signature.attrs.filter { $0.name != "activation" && $0.name != "negative_slope" } }

    /// Ops that apply one function to each element of one input.
    public static let elementwiseUnary: Set<Op> = [.relu, .sigmoid, .tanh, .affine, .dropout]
    /// Binary elementwise ops with NumPy broadcasting.
    public static let broadcasting: Set<Op> = [.add, .sub, .mul, .div, .maximum]
    /// Ops whose output is a scalar loss.
    public static let losses: Set<Op> = [.softmaxCrossEntropy, .euclideanLoss]
    /// Ops that only move or view data.
    public static let movement: Set<Op> = [.flatten, .reshape, .transpose, .concat, .slice, .channelReplicate, .resize]
    /// The ops of gradient graphs (see the backward section of `Op`); `matmul`, `dropout_mask` and
    /// `fill` are ordinary ops that gradient graphs also use.
    public static let backward: Set<Op> = [
        .conv2dBackwardData, .conv2dBackwardFilter, .maxPoolBackward, .avgPoolBackward, .reluBackward,
        .preluBackwardInput, .preluBackwardSlope, .sigmoidBackward, .tanhBackward, .softmaxBackward,
        .logSoftmaxBackward, .softmaxCrossEntropyBackward, .euclideanLossBackward, .maximumBackward,
        .lrnBackward, .batchNormBackward, .batchNormTrainBackward, .l2NormalizeBackward, .sliceBackward, .resizeBackward,
        .reduceBackward, .sumTo,
    ]
    /// Whether the op gives the same result every time (dropout draws a mask), so that the
    /// scheduler may fold it when its operands are frozen.
    public var isDeterministic: Bool { self != .dropout && self != .dropoutMask }
    /// Ops whose output carries no gradient to their operands (random masks, constants).
    public static let constantOutput: Set<Op> = [.dropoutMask, .fill, .priorBox]
}
