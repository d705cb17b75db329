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
    /// Register-tiled direct loops for 1-16 input channels (`ConvGeometry.directEligible`).
    case direct
}

extension ConvGeometry {
    /// The same convolution for one image.
    public var single: ConvGeometry { var g = self; g.batch = 1; return g }

    /// Floats of scratch the forward convolution needs by `algorithm`.
    public func forwardWorkspace(_ algorithm: ConvAlgorithm) -> Int {
        switch algorithm {
        case .im2col: return workspaceCount
        case .pointwise: return 0
        case .direct: return directWorkspace(filter: false)
        case .batched: return batchedWorkspaceCount
        case .winograd: return winogradForwardWorkspace
        }
    }
}

/// One convolution of a per-image chain (`FastOps.conv2dMaxPool`): its geometry (the batch's),
/// activation and algorithm, and where its weight and bias are among the kernel's operands.
public struct ChainedConv: Sendable {
    public var geometry: ConvGeometry
    public var activation: Activation
    public var algorithm: ConvAlgorithm
    public var weight: Int
    public var bias: Int?

    public init(geometry: ConvGeometry, activation: Activation, algorithm: ConvAlgorithm, weight: Int, bias: Int?) {
        (self.geometry, self.activation, self.algorithm, self.weight, self.bias) = (geometry, activation, algorithm, weight, bias)
    }

    /// Floats of Winograd-transformed weights, computed once per batch and kept for all images.
    public var transformedWeights: Int { algorithm == .winograd ? 36 * geometry.outChannels * geometry.inChannels : 0 }
    /// Floats of scratch one image's convolution needs besides its transformed weights.
    public var scratch: Int { geometry.single.forwardWorkspace(algorithm) - transformedWeights }
}

extension FastOps {
    /// A forward convolution by `algorithm`; `workspace` holds `g.forwardWorkspace(algorithm)` floats.
    public static func conv2d(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                              geometry g: ConvGeometry, activation: Activation, algorithm: ConvAlgorithm, workspace: UnsafeMutablePointer<Float>) {
        switch algorithm {
        case .im2col, .pointwise: conv2d(x: x, w: w, bias: bias, y: y, geometry: g, activation: activation, workspace: workspace)
        case .batched: conv2dBatched(x: x, w: w, bias: bias, y: y, geometry: g, activation: activation, workspace: workspace)
        case .winograd: conv2dWinograd(x: x, w: w, bias: bias, y: y, geometry: g, activation: activation, workspace: workspace)
        case .direct: conv2dDirect(x: x, w: w, bias: bias, y: y, geometry: g, activation: activation, workspace: workspace)
        }
    }

    /// A lone Winograd convolution whose image has too few tiles for GEMMs of its own (under 2,500
    /// output pixels: the 48x48 nets' layers) runs on the whole batch, each 4x4 output tile pooled
    /// as it is computed (2x2 pools only).
    public static func pooledWinograd(_ convs: [ChainedConv]) -> Bool {
        convs.count == 1 && convs[0].algorithm == .winograd && convs[0].geometry.outH * convs[0].geometry.outW < 2500
    }

    /// Workers that each run whole images of a `conv2dMaxPool` chain: all of them for direct
    /// convolutions (first layers), whose one image's rows are too few to share (ExpNet48's 48x48 conv1
    /// forked and joined 128 times a step, then pooled on one core); else one, the kernels threading themselves.
    static func imageWorkers(_ convs: [ChainedConv]) -> Int { convs.allSatisfy { $0.algorithm == .direct } ? Parallel.workers : 1 }

    /// The workspace of `conv2dMaxPool`: each convolution's output for one image (per image worker),
    /// its transformed weights (Winograd), and one scratch the convolutions share.
    public static func conv2dMaxPoolBooking(_ convs: [ChainedConv]) -> WorkspaceBooking {
        var b = WorkspaceBooking()
        if pooledWinograd(convs) { b.book("scratch", floats: convs[0].geometry.winogradForwardWorkspace); return b }
        for (k, c) in convs.enumerated() {
            b.book("output\(k)", floats: c.geometry.single.outputCount * imageWorkers(convs))
            b.book("weights\(k)", floats: c.transformedWeights)
        }
        b.book("scratch", floats: convs.map(\.scratch).max() ?? 0)
        return b
    }

    /// Convolutions, each read only by the next, then a max pool, image by image: no full-batch
    /// convolution output ever exists. `operands`: x `[N, C, H, W]`, then each convolution's weight
    /// and bias at its positions; y `[N, C', OH, OW]` the pooled output; `winners` (the pool's
    /// recorded winner per output, see `maxPool`) when given. `workspace`: `conv2dMaxPoolBooking`.
    public static func conv2dMaxPool(_ operands: [UnsafePointer<Float>], y: UnsafeMutablePointer<Float>, convs: [ChainedConv],
                                     pool p: PoolGeometry, winners: UnsafeMutablePointer<UInt8>?, reluMask: Bool, workspace: Workspace) {
        let image = PoolGeometry(batch: 1, channels: p.channels, height: p.height, width: p.width, kernel: (p.kernelH, p.kernelW),
                                 stride: (p.strideH, p.strideW), pad: (p.padH, p.padW), ceil: p.ceilMode)
        let scratch = workspace.slice("scratch")
        if convs.count == 1, convs[0].algorithm == .direct, p.isDisjoint2x2 {  // the whole batch, two rows at a time
            let c = convs[0]
            return conv2dDirectMaxPool(x: operands[0], w: operands[c.weight], bias: c.bias.map { operands[$0] }, y: y, winners: winners,
                                       geometry: c.geometry, pool: p, activation: c.activation, reluMask: reluMask, workspace: scratch)
        }
        if pooledWinograd(convs), let c = convs.first {
            return conv2dWinograd(x: operands[0], w: operands[c.weight], bias: c.bias.map { operands[$0] }, y: y, geometry: c.geometry,
                                  activation: c.activation, workspace: scratch, pool: p, winners: winners, reluMask: reluMask)
        }
        let outs = convs.indices.map { workspace.slice("output\($0)") }, us = convs.indices.map { workspace.slice("weights\($0)") }
        let (inStride, outStride) = (convs[0].geometry.single.inputCount, image.outputCount)
        // Winograd weights are transformed once for all images.
        for (k, c) in convs.enumerated() where c.algorithm == .winograd {
            winogradWeights(w: operands[c.weight], geometry: c.geometry.single, into: us[k])
        }
        let workers = imageWorkers(convs)
        Parallel.forChunks(workers, costPerItem: Parallel.minimumWork) { ts in for t in ts {
            for n in p.batch * t / workers..<p.batch * (t + 1) / workers {
                var x = operands[0] + n * inStride
                for (k, c) in convs.enumerated() {
                    let one = c.geometry.single, out = outs[k] + t * one.outputCount, bias = c.bias.map { operands[$0] }
                    if c.algorithm == .winograd {
                        conv2dWinograd(x: x, transformedWeights: us[k], bias: bias, y: out, geometry: one,
                                       activation: c.activation, scratch: scratch)
                    } else if workers > 1 {
                        conv2dDirect(x: x, w: operands[c.weight], bias: bias, y: out, geometry: one, activation: c.activation, workspace: scratch, worker: t)
                    } else {
                        conv2d(x: x, w: operands[c.weight], bias: bias, y: out, geometry: one, activation: c.activation,
                               algorithm: c.algorithm, workspace: scratch)
                    }
                    x = UnsafePointer(out)
                }
                maxPool(x: x, y: y + n * outStride, argmax: winners.map { $0 + n * outStride }, geometry: image, reluMask: reluMask)
            }
        } }
    }
}
