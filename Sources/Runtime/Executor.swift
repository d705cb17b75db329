import Detection
import Foundation
import IR
import Kernels
import Scheduler
import Tensors

/// Runs a `Schedule`: parameters, inputs, outputs and folded values in their own memory, every
/// temporary at its planned offset in one arena. Each kernel is bound to its buffers once, at
/// construction, so a step is a plain loop over closures.
public final class Executor {
    public let schedule: Schedule
    private var memory: [String: UnsafeMutableRawPointer] = [:]
    private var owned: [UnsafeMutableRawPointer] = []
    private let arena: UnsafeMutableRawPointer
    private var prologue: [() -> Void] = []
    private var steps: [() -> Void] = []
    private var workspace: UnsafeMutablePointer<Float>?
    /// Seconds spent in each kernel over all runs, when `FN2E_PROFILE=1` (nil otherwise).
    private var kernelSeconds: [Double]?
    private var profiledRuns = 0
    /// Draws dropout masks when `rowSeeds` is empty; part of the training state.
    public var rng: Xoshiro256
    /// One seed per batch row: row k of every dropout mask then draws from its own generator,
    /// seeded by `rowSeeds[k]` and the mask's name, so a sample's mask is the same whichever batch
    /// or process it is in (data-parallel training splits a batch across processes).
    public var rowSeeds: [UInt64] = []

    /// Builds the executor; parameters start from their initializers (seeded), then `weights` override.
    public init(schedule: Schedule, seed: UInt64 = 0) throws {
        self.schedule = schedule
        self.rng = Xoshiro256(seed: seed ^ 0x5EED)
        arena = UnsafeMutableRawPointer.allocate(byteCount: max(schedule.arenaBytes, 64), alignment: 64)
        owned.append(arena)
        for (name, b) in schedule.buffers {
            switch b.storage {
            case .arena(let off): memory[name] = arena + off
            default:
                let p = UnsafeMutableRawPointer.allocate(byteCount: max(b.bytes, 4), alignment: 64)
                p.initializeMemory(as: UInt8.self, repeating: 0, count: max(b.bytes, 4))
                owned.append(p)
                memory[name] = p
            }
        }
        // One im2col workspace shared by every conv kernel, forward and backward (kernels run one at a time).
        let convWork = (schedule.prologue + schedule.kernels).compactMap { k -> Int? in
            Executor.anyConvGeometry(k.node, schedule).map { $0.isPointwise ? 0 : $0.workspaceCount }
        }.max() ?? 0
        if convWork > 0 { workspace = .allocate(capacity: convWork) }
        for p in schedule.graph.params {
            setParam(p.name, Initializers.tensor(for: p, seed: seed))
        }
        prologue = try schedule.prologue.map(bind)
        steps = try schedule.kernels.map(bind)
        if ProcessInfo.processInfo.environment["FN2E_PROFILE"] == "1" { kernelSeconds = Array(repeating: 0, count: steps.count) }
        refold()
    }

    deinit {
        for p in owned { p.deallocate() }
        workspace?.deallocate()
    }

    // MARK: Values

    public func pointer(_ name: String) -> UnsafeMutablePointer<Float>? {
        memory[name]?.assumingMemoryBound(to: Float.self)
    }

    /// A copy of any value the schedule keeps (parameter, input, output, folded; a temporary only
    /// until the arena reuses its bytes).
    public func tensor(_ name: String) -> Tensor? {
        guard let b = schedule.buffers[name], let p = pointer(name) else { return nil }
        let shape = b.type.shape ?? []
        if b.type.dtype == .i32 {
            let q = UnsafeRawPointer(p).assumingMemoryBound(to: Int32.self)
            return Tensor(shape: shape, data: (0..<b.bytes / 4).map { Float(q[$0]) })
        }
        return Tensor(shape: shape, data: Array(UnsafeBufferPointer(start: p, count: b.bytes / 4)))
    }

    /// Copies a tensor into a parameter or input; the shape must match exactly.
    public func setValue(_ name: String, _ t: Tensor) throws {
        guard let b = schedule.buffers[name], let p = pointer(name) else {
            throw RuntimeError("no value '%\(name)' in the schedule")
        }
        let want = b.type.shape ?? []
        guard t.shape == want else { throw RuntimeError("'%\(name)' is \(b.type) but the tensor given has shape \(t.shape)") }
        if b.type.dtype == .i32 {
            let q = UnsafeMutableRawPointer(p).assumingMemoryBound(to: Int32.self)
            for i in 0..<t.count { q[i] = Int32(t.data[i]) }
        } else {
            t.data.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: t.count) }
        }
    }

    public func setParam(_ name: String, _ t: Tensor) {
        try? setValue(name, t)
    }

    /// Sets class labels of an i32 input.
    public func setLabels(_ name: String, _ labels: [Int32]) throws {
        guard let b = schedule.buffers[name], b.type.dtype == .i32, let p = memory[name] else {
            throw RuntimeError("'%\(name)' is not an i32 input")
        }
        guard labels.count == b.bytes / 4 else { throw RuntimeError("'%\(name)' holds \(b.bytes / 4) labels, given \(labels.count)") }
        let q = p.assumingMemoryBound(to: Int32.self)
        for i in labels.indices { q[i] = labels[i] }
    }

    /// Recomputes the folded values (call after changing frozen parameters).
    public func refold() { for s in prologue { s() } }

    /// Runs every kernel once.
    public func run() {
        guard kernelSeconds != nil else {
            for s in steps { s() }
            return
        }
        for (i, s) in steps.enumerated() {
            let t0 = DispatchTime.now().uptimeNanoseconds
            s()
            kernelSeconds![i] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
        profiledRuns += 1
    }

    /// Per-kernel time per run (`FN2E_PROFILE=1`), slowest first, with GFLOP/s; empty when not profiling.
    public func profileReport(top: Int = 40) -> String {
        guard let secs = kernelSeconds, profiledRuns > 0 else { return "" }
        let total = secs.reduce(0, +) / Double(profiledRuns)
        var out = String(format: "profile: %d runs, %.3f s per run in kernels\n", profiledRuns, total)
        var byLabel: [String: Double] = [:]
        for (i, k) in schedule.kernels.enumerated() { byLabel[k.label, default: 0] += secs[i] / Double(profiledRuns) }
        for (label, t) in byLabel.sorted(by: { $0.value > $1.value }) {
            out += String(format: "  %-28@ %8.3f s %5.1f%%\n", label as NSString, t, 100 * t / max(total, 1e-12))
        }
        for i in secs.indices.sorted(by: { secs[$0] > secs[$1] }).prefix(top) {
            let k = schedule.kernels[i], t = secs[i] / Double(profiledRuns)
            out += String(format: "  #%-4d %-28@ %-34@ %8.4f s %7.1f GFLOP/s\n", i, k.label as NSString,
                          k.node.name as NSString, t, Double(k.flops) / max(t, 1e-12) / 1e9)
        }
        return out
    }

    /// Sets inputs, runs, returns the graph outputs.
    public func run(inputs: [String: Tensor]) throws -> [String: Tensor] {
        for (k, v) in inputs { try setValue(k, v) }
        run()
        var out: [String: Tensor] = [:]
        for o in schedule.graph.outputs { out[o] = tensor(o) }
        return out
    }

    // MARK: Binding kernels to buffers

    static func shape(_ name: String, _ s: Schedule) -> [Int] { s.buffers[name]?.type.shape ?? [] }

    static func convGeometry(_ n: Node, _ s: Schedule) -> ConvGeometry? {
        guard n.op == .conv2d else { return nil }
        let x = shape(n.operands[0], s), w = shape(n.operands[1], s), a = n.fullAttrs
        return ConvGeometry(batch: x[0], inChannels: x[1], height: x[2], width: x[3], outChannels: w[0],
                            kernel: (w[2], w[3]), stride: a.pair("stride"), pad: a.pair("pad"),
                            dilation: a.pair("dilation"), groups: a.int("groups"))
    }

    /// The geometry of a conv2d or of either of its backward ops.
    static func anyConvGeometry(_ n: Node, _ s: Schedule) -> ConvGeometry? {
        let a = n.fullAttrs, out = shape(n.name, s)
        switch n.op {
        case .conv2d: return convGeometry(n, s)
        case .conv2dBackwardData:
            let w = shape(n.operands[1], s)
            return ConvGeometry(batch: out[0], inChannels: out[1], height: out[2], width: out[3], outChannels: w[0],
                                kernel: (w[2], w[3]), stride: a.pair("stride"), pad: a.pair("pad"),
                                dilation: a.pair("dilation"), groups: a.int("groups"))
        case .conv2dBackwardFilter:
            let x = shape(n.operands[0], s)
            return ConvGeometry(batch: x[0], inChannels: x[1], height: x[2], width: x[3], outChannels: out[0],
                                kernel: (out[2], out[3]), stride: a.pair("stride"), pad: a.pair("pad"),
                                dilation: a.pair("dilation"), groups: a.int("groups"))
        default: return nil
        }
    }

    static func poolGeometry(_ a: Attrs, input x: [Int]) -> PoolGeometry {
        if a.bool("global") { return .global(batch: x[0], channels: x[1], height: x[2], width: x[3]) }
        return PoolGeometry(batch: x[0], channels: x[1], height: x[2], width: x[3], kernel: a.pair("kernel"),
                            stride: a.pair("stride"), pad: a.pair("pad"), ceil: a.string("round") == "ceil")
    }

    static func activation(_ a: Attrs) -> Activation {
        a.string("activation") == "relu" ? .relu(negativeSlope: Float(a.float("negative_slope"))) : .none
    }

    /// `[N, C, spatial]` view of a tensor with channels on axis 1.
    static func ncs(_ s: [Int]) -> (Int, Int, Int) {
        (s[0], s.count > 1 ? s[1] : 1, s.count > 2 ? s[2...].reduce(1, *) : 1)
    }

    private func bind(_ k: Kernel) throws -> () -> Void {
        let n = k.node, a = n.fullAttrs, s = schedule
        let xs = n.operands.map { UnsafePointer(pointer($0)!) }
        let shapes = n.operands.map { Executor.shape($0, s) }
        let y = pointer(n.name)!
        let outShape = Executor.shape(n.name, s)
        let count = outShape.reduce(1, *)
        func copy() -> () -> Void {
            let src = xs[0]
            return { if src != UnsafePointer(y) { y.update(from: src, count: count) } }
        }
        switch n.op {
        case .conv2d:
            let g = Executor.convGeometry(n, s)!, act = Executor.activation(a), ws = workspace
            let bias = xs.count > 2 ? xs[2] : nil
            return { FastOps.conv2d(x: xs[0], w: xs[1], bias: bias, y: y, geometry: g, activation: act, workspace: ws) }
        case .linear:
            let act = Executor.activation(a), bias = xs.count > 2 ? xs[2] : nil
            let (nn, kk, mm) = (shapes[0][0], shapes[0][1], shapes[1][0])
            return { FastOps.linear(x: xs[0], w: xs[1], bias: bias, y: y, n: nn, k: kk, m: mm, activation: act) }
        case .maxPool:
            let g = Executor.poolGeometry(a, input: shapes[0])
            return { FastOps.maxPool(x: xs[0], y: y, argmax: nil, geometry: g) }
        case .avgPool:
            let g = Executor.poolGeometry(a, input: shapes[0])
            return { FastOps.avgPool(x: xs[0], y: y, geometry: g) }
        case .relu:
            let slope = Float(a.float("negative_slope"))
            return { FastOps.relu(x: xs[0], y: y, count: count, negativeSlope: slope) }
        case .prelu:
            let (b, c, sp) = Executor.ncs(shapes[0]), sc = shapes[1].reduce(1, *)
            return { FastOps.prelu(x: xs[0], slope: xs[1], y: y, batch: b, channels: c, spatial: sp, slopeCount: sc) }
        case .sigmoid:
            return { FastOps.sigmoid(x: xs[0], y: y, count: count) }
        case .tanh:
            return { FastOps.tanh(x: xs[0], y: y, count: count) }
        case .dropout, .flatten, .reshape:
            // Dropout is the identity outside training graphs (Autodiff turns it into a mask).
            return copy()
        case .affine:
            let (sc, sh) = (Float(a.float("scale")), Float(a.float("shift")))
            return { FastOps.affine(x: xs[0], y: y, count: count, scale: sc, shift: sh) }
        case .transpose:
            let perm = a.ints("perm")
            return { FastOps.transpose(x: xs[0], shape: shapes[0], perm: perm, y: y) }
        case .concat:
            let axis = a.int("axis") < 0 ? a.int("axis") + outShape.count : a.int("axis")
            let parts = Array(zip(xs, shapes))
            return { FastOps.concat(inputs: parts.map { (data: $0.0, shape: $0.1) }, axis: axis, y: y) }
        case .slice:
            let axis = a.int("axis") < 0 ? a.int("axis") + outShape.count : a.int("axis")
            let (st, en) = (a.int("start"), a.int("end"))
            return { FastOps.slice(x: xs[0], shape: shapes[0], axis: axis, start: st, end: en, y: y) }
        case .channelReplicate:
            let (b, _, sp) = Executor.ncs(shapes[0]), kk = a.int("count")
            return { FastOps.channelReplicate(x: xs[0], y: y, batch: b, spatial: sp, k: kk) }
        case .resize, .resizeBackward:
            let (x, o) = (shapes[0], outShape)
            let (from, to) = n.op == .resize ? (x, o) : (o, x)
            if n.op == .resize {
                return { FastOps.resize(x: xs[0], y: y, planes: x[0] * x[1], h: from[2], w: from[3], oh: to[2], ow: to[3]) }
            }
            return { FastOps.resizeBackward(dy: xs[0], dx: y, planes: x[0] * x[1], h: from[2], w: from[3], oh: to[2], ow: to[3]) }
        case .add, .sub, .mul, .maximum:
            let op = FastOps.BinaryOp(rawValue: n.op.rawValue)!
            return { FastOps.binary(op, a: xs[0], aShape: shapes[0], b: xs[1], bShape: shapes[1], y: y) }
        case .scale, .bias:
            let (b, c, sp) = Executor.ncs(shapes[0])
            let scale: UnsafePointer<Float>? = n.op == .scale ? xs[1] : nil
            let bias: UnsafePointer<Float>? = n.op == .bias ? xs[1] : (xs.count > 2 ? xs[2] : nil)
            return { FastOps.channelScale(x: xs[0], scale: scale, bias: bias, y: y, batch: b, channels: c, spatial: sp) }
        case .batchNorm:
            let (b, c, sp) = Executor.ncs(shapes[0]), eps = Float(a.float("eps"))
            return { FastOps.batchNorm(x: xs[0], mean: xs[1], variance: xs[2], eps: eps, y: y, batch: b, channels: c, spatial: sp) }
        case .lrn:
            let (b, c, sp) = Executor.ncs(shapes[0])
            let (size, alpha, beta, kk) = (a.int("size"), Float(a.float("alpha")), Float(a.float("beta")), Float(a.float("k")))
            if a.string("region") == "within_channel" {
                let (h, w) = (shapes[0][2], shapes[0][3])
                return { FastOps.lrnWithin(x: xs[0], y: y, batch: b, channels: c, height: h, width: w, size: size, alpha: alpha, beta: beta) }
            }
            return { FastOps.lrnAcross(x: xs[0], y: y, batch: b, channels: c, spatial: sp, size: size, alpha: alpha, beta: beta, k: kk) }
        case .l2Normalize:
            let (b, c, sp) = Executor.ncs(shapes[0]), across = a.bool("across_spatial"), eps = Float(a.float("eps"))
            return { FastOps.l2Normalize(x: xs[0], y: y, batch: b, channels: c, spatial: sp, acrossSpatial: across, eps: eps) }
        case .priorBox:
            let boxes = a.priorBoxes(feature: shapes[0], image: shapes[1])
            return { boxes.withUnsafeBufferPointer { y.update(from: $0.baseAddress!, count: $0.count) } }
        case .detectionOutput:
            let spec = try a.detectionSpec(), batch = shapes[0][0], priors = shapes[2][2] / 4
            return { DetectionOutput.run(spec, loc: xs[0], conf: xs[1], priors: xs[2], batch: batch, priorCount: priors, out: y) }
        case .softmax, .logSoftmax:
            let axis = a.int("axis") < 0 ? a.int("axis") + outShape.count : a.int("axis")
            let outer = outShape[..<axis].reduce(1, *), ch = outShape[axis], inner = outShape[(axis + 1)...].reduce(1, *)
            let log = n.op == .logSoftmax
            return { FastOps.softmax(x: xs[0], y: y, batch: outer, channels: ch, inner: inner, log: log) }
        case .softmaxCrossEntropy:
            let (b, c) = (shapes[0][0], shapes[0][1])
            let probs = UnsafeMutablePointer<Float>.allocate(capacity: b * c)
            owned.append(UnsafeMutableRawPointer(probs))
            let labels = UnsafeRawPointer(xs[1]).assumingMemoryBound(to: Int32.self)
            return { y[0] = FastOps.softmaxCrossEntropy(logits: xs[0], labels: labels, probs: probs, batch: b, classes: c) }
        case .euclideanLoss:
            let total = shapes[0].reduce(1, *), b = shapes[0][0]
            return { y[0] = FastOps.euclideanLoss(a: xs[0], b: xs[1], count: total, batch: b) }
        case .sum, .mean:
            let axes = a.ints("axes").map { $0 < 0 ? $0 + shapes[0].count : $0 }
            let all = axes.isEmpty ? Array(0..<shapes[0].count) : axes
            let isMean = n.op == .mean
            return {
                if isMean { FastOps.mean(x: xs[0], shape: shapes[0], axes: all, y: y) } else { FastOps.sum(x: xs[0], shape: shapes[0], axes: all, y: y) }
            }
        case .call:
            throw RuntimeError("'%\(n.name)': calls are inlined before scheduling")
        default:
            return try bindBackward(n, a, xs, shapes, y, outShape)
        }
    }

    /// Scratch memory owned by the executor for the kernel being bound.
    private func scratch(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
        owned.append(UnsafeMutableRawPointer(p))
        return p
    }

    /// The backward ops that Autodiff emits.
    private func bindBackward(_ n: Node, _ a: Attrs, _ xs: [UnsafePointer<Float>], _ shapes: [[Int]],
                              _ y: UnsafeMutablePointer<Float>, _ outShape: [Int]) throws -> () -> Void {
        let count = outShape.reduce(1, *)
        switch n.op {
        case .conv2dBackwardData:
            let (dy, w) = (shapes[0], shapes[1])
            let g = ConvGeometry(batch: outShape[0], inChannels: outShape[1], height: outShape[2], width: outShape[3],
                                 outChannels: w[0], kernel: (w[2], w[3]), stride: a.pair("stride"), pad: a.pair("pad"),
                                 dilation: a.pair("dilation"), groups: a.int("groups"))
            precondition(dy == [g.batch, g.outChannels, g.outH, g.outW])
            let ws = g.isPointwise ? nil : workspace
            return { FastOps.conv2dBackwardData(dy: xs[0], w: xs[1], dx: y, geometry: g, workspace: ws) }
        case .conv2dBackwardFilter:
            let x = shapes[0]
            let g = ConvGeometry(batch: x[0], inChannels: x[1], height: x[2], width: x[3], outChannels: outShape[0],
                                 kernel: (outShape[2], outShape[3]), stride: a.pair("stride"), pad: a.pair("pad"),
                                 dilation: a.pair("dilation"), groups: a.int("groups"))
            let ws = g.isPointwise ? nil : workspace
            return { FastOps.conv2dBackwardFilter(dy: xs[1], x: xs[0], dw: y, geometry: g, workspace: ws) }
        case .maxPoolBackward:
            let g = Executor.poolGeometry(a, input: shapes[0])
            return { FastOps.maxPoolBackward(dy: xs[1], x: xs[0], dx: y, geometry: g) }
        case .avgPoolBackward:
            let g = Executor.poolGeometry(a, input: outShape)
            return { FastOps.avgPoolBackward(dy: xs[0], dx: y, geometry: g) }
        case .reluBackward:
            let slope = Float(a.float("negative_slope"))
            return { FastOps.reluBackward(dy: xs[1], x: xs[0], dx: y, count: count, negativeSlope: slope) }
        case .preluBackwardInput:
            let (b, c, sp) = Executor.ncs(shapes[0]), sc = shapes[1].reduce(1, *)
            return { FastOps.preluBackward(dy: xs[2], x: xs[0], slope: xs[1], dx: y, dslope: nil, batch: b, channels: c, spatial: sp, slopeCount: sc) }
        case .preluBackwardSlope:
            let (b, c, sp) = Executor.ncs(shapes[0]), sc = count
            let dx = scratch(shapes[0].reduce(1, *)), ones = scratch(sc)
            ones.update(repeating: 1, count: sc)
            return { FastOps.preluBackward(dy: xs[1], x: xs[0], slope: ones, dx: dx, dslope: y, batch: b, channels: c, spatial: sp, slopeCount: sc) }
        case .sigmoidBackward:
            return { FastOps.sigmoidBackward(dy: xs[1], y: xs[0], dx: y, count: count) }
        case .tanhBackward:
            return { FastOps.tanhBackward(dy: xs[1], y: xs[0], dx: y, count: count) }
        case .softmaxBackward, .logSoftmaxBackward:
            let ax = a.int("axis") < 0 ? a.int("axis") + outShape.count : a.int("axis")
            let (outer, ch, inner) = (outShape[..<ax].reduce(1, *), outShape[ax], outShape[(ax + 1)...].reduce(1, *))
            if n.op == .softmaxBackward {
                return { FastOps.softmaxBackward(dy: xs[1], y: xs[0], dx: y, batch: outer, channels: ch, inner: inner) }
            }
            return { FastOps.logSoftmaxBackward(dy: xs[1], y: xs[0], dx: y, batch: outer, channels: ch, inner: inner) }
        case .softmaxCrossEntropyBackward:
            let (b, c) = (shapes[0][0], shapes[0][1])
            let probs = scratch(b * c)
            let labels = UnsafeRawPointer(xs[1]).assumingMemoryBound(to: Int32.self)
            return {
                FastOps.softmax(x: xs[0], y: probs, batch: b, channels: c, inner: 1)
                FastOps.softmaxCrossEntropyBackward(probs: probs, labels: labels, dlogits: y, batch: b, classes: c, upstream: xs[2][0])
            }
        case .euclideanLossBackward:
            let b = shapes[0][0]
            return { FastOps.euclideanLossBackward(a: xs[0], b: xs[1], da: y, count: count, batch: b, upstream: xs[2][0]) }
        case .maximumBackward:
            // Expand both operands to the gradient's shape, then route dy to the larger one.
            let zeros = scratch(count), ea = scratch(count), eb = scratch(count)
            let first = a.int("operand") == 0
            return {
                FastOps.binary(.add, a: xs[0], aShape: shapes[0], b: zeros, bShape: outShape, y: ea)
                FastOps.binary(.add, a: xs[1], aShape: shapes[1], b: zeros, bShape: outShape, y: eb)
                let dy = xs[2]
                for i in 0..<count { y[i] = (first ? ea[i] >= eb[i] : eb[i] > ea[i]) ? dy[i] : 0 }
            }
        case .l2NormalizeBackward:
            let (b, c, sp) = Executor.ncs(shapes[0]), across = a.bool("across_spatial"), eps = Float(a.float("eps"))
            return { FastOps.l2NormalizeBackward(x: xs[0], dy: xs[1], dx: y, batch: b, channels: c, spatial: sp, acrossSpatial: across, eps: eps) }
        case .lrnBackward:
            guard a.string("region") == "across_channels" else {
                throw RuntimeError("'%\(n.name)': lrn_backward supports region=across_channels only")
            }
            let (b, c, sp) = Executor.ncs(outShape)
            let (size, alpha, beta, kk) = (a.int("size"), Float(a.float("alpha")), Float(a.float("beta")), Float(a.float("k")))
            return { FastOps.lrnAcrossBackward(dy: xs[2], x: xs[0], y: xs[1], dx: y, batch: b, channels: c, spatial: sp, size: size, alpha: alpha, beta: beta, k: kk) }
        case .batchNormBackward:
            let (b, c, sp) = Executor.ncs(outShape), eps = Float(a.float("eps"))
            let inv = scratch(c)
            return {
                for i in 0..<c { inv[i] = 1 / (xs[0][i] + eps).squareRoot() }
                FastOps.channelScale(x: xs[1], scale: inv, bias: nil, y: y, batch: b, channels: c, spatial: sp)
            }
        case .sliceBackward:
            let ax = a.int("axis") < 0 ? a.int("axis") + outShape.count : a.int("axis")
            let (st, len) = (a.int("start"), a.int("end") - a.int("start"))
            return { FastOps.sliceBackward(dy: xs[0], xShape: outShape, axis: ax, start: st, length: len, dx: y) }
        case .reduceBackward:
            let axes = a.ints("axes").map { $0 < 0 ? $0 + outShape.count : $0 }
            let all = axes.isEmpty ? Array(outShape.indices) : axes
            let kept = outShape.enumerated().map { all.contains($0.offset) ? 1 : $0.element }
            let zeros = scratch(count)
            let factor: Float = a.bool("mean") ? 1 / Float(all.reduce(1) { $0 * outShape[$1] }) : 1
            return {
                FastOps.binary(.add, a: xs[0], aShape: kept, b: zeros, bShape: outShape, y: y)
                if factor != 1 { FastOps.affine(x: y, y: y, count: count, scale: factor, shift: 0) }
            }
        case .sumTo:
            let g = shapes[0]
            return { FastOps.reduceToShape(g: xs[0], gShape: g, out: y, shape: outShape) }
        case .matmul:
            let (ta, tb) = (a.bool("transpose_a"), a.bool("transpose_b"))
            let k = ta ? shapes[0][0] : shapes[0][1]
            let (m, nn) = (outShape[0], outShape[1])
            return { FastOps.matmul(a: xs[0], b: xs[1], c: y, m: m, n: nn, k: k, transposeA: ta, transposeB: tb) }
        case .dropoutMask:
            let ratio = Float(a.float("ratio")), keep = 1 / (1 - ratio)
            let rows = outShape.first ?? 1, salt = Digest.fnv1a64(n.name.utf8)
            func fill(_ range: Range<Int>, _ g: inout Xoshiro256) { for i in range { y[i] = g.nextFloat() < ratio ? 0 : keep } }
            return { [unowned self] in
                guard self.rowSeeds.count == rows, rows > 0 else { return fill(0..<count, &self.rng) }
                let per = count / rows
                for r in 0..<rows {
                    var g = Xoshiro256(seed: self.rowSeeds[r] ^ salt)
                    fill(r * per..<(r + 1) * per, &g)
                }
            }
        case .fill:
            let v = Float(a.float("value"))
            return { y.update(repeating: v, count: count) }
        default:
            throw RuntimeError("'%\(n.name)': no kernel for \(n.op.rawValue)")
        }
    }
}

public struct RuntimeError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}
