import Shapes

/// The activation fused into an epilogue (applied while the output is still in cache).
public enum Activation: Equatable, Sendable {
    case none
    /// `x > 0 ? x : negativeSlope · x` (0 gives plain ReLU).
    case relu(negativeSlope: Float)
}

/// Everything a 2-D convolution needs to know about its sizes. x `[batch, inChannels, height, width]`,
/// w `[outChannels, inChannels / groups, kernelH, kernelW]`, y `[batch, outChannels, outH, outW]`.
public struct ConvGeometry: Equatable, Sendable {
    public var batch, inChannels, height, width: Int
    public var outChannels, kernelH, kernelW: Int
    public var strideH, strideW, padH, padW, dilationH, dilationW, groups: Int

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int, kernel: (Int, Int),
                stride: (Int, Int) = (1, 1), pad: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1) {
        precondition(groups > 0 && inChannels % groups == 0 && outChannels % groups == 0,
                     "conv2d: channels \(inChannels) -> \(outChannels) not divisible by groups \(groups)")
        (self.batch, self.inChannels, self.height, self.width) = (batch, inChannels, height, width)
        (self.outChannels, self.kernelH, self.kernelW) = (outChannels, kernel.0, kernel.1)
        (self.strideH, self.strideW, self.padH, self.padW) = (stride.0, stride.1, pad.0, pad.1)
        (self.dilationH, self.dilationW, self.groups) = (dilation.0, dilation.1, groups)
        precondition(outH > 0 && outW > 0, "conv2d: empty output for input \(height)x\(width), kernel \(kernel)")
    }

    public var outH: Int { convOutputSize(input: height, kernel: kernelH, stride: strideH, pad: padH, dilation: dilationH) }
    public var outW: Int { convOutputSize(input: width, kernel: kernelW, stride: strideW, pad: padW, dilation: dilationW) }
    /// Input channels per group.
    public var groupInChannels: Int { inChannels / groups }
    /// Output channels per group.
    public var groupOutChannels: Int { outChannels / groups }
    /// Rows of the im2col matrix: `inChannels / groups · kernelH · kernelW`.
    public var colRows: Int { groupInChannels * kernelH * kernelW }
    /// Floats an im2col workspace needs (one image, one group).
    public var workspaceCount: Int { colRows * outH * outW }
    /// True for 1x1 kernels with stride 1 and no padding: x is already the im2col matrix.
    public var isPointwise: Bool { kernelH == 1 && kernelW == 1 && strideH == 1 && strideW == 1 && padH == 0 && padW == 0 }
    public var inputCount: Int { batch * inChannels * height * width }
    public var outputCount: Int { batch * outChannels * outH * outW }
    public var weightCount: Int { outChannels * colRows }
}

/// Sizes of a pooling op. x `[batch, channels, height, width]` → `[batch, channels, outH, outW]`.
public struct PoolGeometry: Equatable, Sendable {
    public var batch, channels, height, width: Int
    public var kernelH, kernelW, strideH, strideW, padH, padW: Int
    /// Caffe's rounding up of the output size (see `poolOutputSize`).
    public var ceilMode: Bool

    public init(batch: Int, channels: Int, height: Int, width: Int, kernel: (Int, Int), stride: (Int, Int),
                pad: (Int, Int) = (0, 0), ceil: Bool = true) {
        (self.batch, self.channels, self.height, self.width) = (batch, channels, height, width)
        (self.kernelH, self.kernelW, self.strideH, self.strideW) = (kernel.0, kernel.1, stride.0, stride.1)
        (self.padH, self.padW, self.ceilMode) = (pad.0, pad.1, ceil)
        precondition(outH > 0 && outW > 0, "pool: empty output for input \(height)x\(width), kernel \(kernel)")
    }

    /// Global pooling: one window covering the whole image.
    public static func global(batch: Int, channels: Int, height: Int, width: Int) -> PoolGeometry {
        PoolGeometry(batch: batch, channels: channels, height: height, width: width,
                     kernel: (height, width), stride: (1, 1), pad: (0, 0), ceil: false)
    }

    public var outH: Int { poolOutputSize(input: height, kernel: kernelH, stride: strideH, pad: padH, ceil: ceilMode) }
    public var outW: Int { poolOutputSize(input: width, kernel: kernelW, stride: strideW, pad: padW, ceil: ceilMode) }
    public var planes: Int { batch * channels }
    /// 2x2 windows at stride 2 without padding, all inside the image (the VGG/ExpNet pool): fast paths.
    public var isDisjoint2x2: Bool {
        kernelH == 2 && kernelW == 2 && strideH == 2 && strideW == 2 && padH == 0 && padW == 0
            && 2 * outH <= height && 2 * outW <= width
    }
    public var inputCount: Int { planes * height * width }
    public var outputCount: Int { planes * outH * outW }
}

/// Namespace of the fast float32 kernels. Every kernel works on raw buffers with explicit sizes
/// (NCHW, row-major) and writes its whole output unless it says it accumulates. Each one has a
/// naive Double twin in `Reference.RefOps`, and the tests hold them to it.
public enum FastOps {}
