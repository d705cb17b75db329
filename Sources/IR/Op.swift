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
    // Elementwise arithmetic with NumPy broadcasting, and scalar affine y = x*scale + shift.
    case add, sub, mul, maximum
    case affine
    // Per-channel (axis 1) operations.
    case scale, bias
    case batchNorm = "batch_norm"
    case lrn
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
/// A fused activation on a GEMM-based op's output, applied in the kernel's epilogue.
private let epilogueAttrs = [
    AttrSpec("activation", .word(["none", "relu"]), .word("none")),
    AttrSpec("negative_slope", .float, .float(0)),
]

extension Op {
    public var signature: OpSignature {
        switch self {
        case .conv2d:
            return OpSignature(minOperands: 2, maxOperands: 3, attrs: [
                AttrSpec("stride", .ints(count: 2), pair11),
                AttrSpec("pad", .ints(count: 2), pair00),
                AttrSpec("dilation", .ints(count: 2), pair11),
                AttrSpec("groups", .int, .int(1)),
            ] + epilogueAttrs)
        case .maxPool, .avgPool:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [
                AttrSpec("kernel", .ints(count: 2), pair00),
                AttrSpec("stride", .ints(count: 2), pair11),
                AttrSpec("pad", .ints(count: 2), pair00),
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
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [AttrSpec("ratio", .float, .float(0.5))])
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
        case .add, .sub, .mul, .maximum:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [])
        case .affine:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [
                AttrSpec("scale", .float, .float(1)), AttrSpec("shift", .float, .float(0)),
            ])
        case .scale:
            return OpSignature(minOperands: 2, maxOperands: 3, attrs: [])
        case .bias:
            return OpSignature(minOperands: 2, maxOperands: 2, attrs: [])
        case .batchNorm:
            return OpSignature(minOperands: 3, maxOperands: 3, attrs: [AttrSpec("eps", .float, .float(1e-5))])
        case .lrn:
            return OpSignature(minOperands: 1, maxOperands: 1, attrs: [
                AttrSpec("size", .int, .int(5)),
                AttrSpec("alpha", .float, .float(1)),
                AttrSpec("beta", .float, .float(0.75)),
                AttrSpec("k", .float, .float(1)),
                AttrSpec("region", .word(["across_channels", "within_channel"]), .word("across_channels")),
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
            ])
        }
    }

    /// Ops that can apply an activation to their output (`activation=relu`); the scheduler's
    /// fusion pass sets it, and every kernel and the reference interpreter honour it.
    public static let fusableProducers: Set<Op> = [.conv2d, .linear]

    /// Ops that apply one function to each element of one input.
    public static let elementwiseUnary: Set<Op> = [.relu, .sigmoid, .tanh, .affine, .dropout]
    /// Binary elementwise ops with NumPy broadcasting.
    public static let broadcasting: Set<Op> = [.add, .sub, .mul, .maximum]
    /// Ops whose output is a scalar loss.
    public static let losses: Set<Op> = [.softmaxCrossEntropy, .euclideanLoss]
    /// Ops that only move or view data.
    public static let movement: Set<Op> = [.flatten, .reshape, .transpose, .concat, .slice, .channelReplicate]
}
