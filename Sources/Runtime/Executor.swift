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
    /// The same pointers by `BufferID`, as kernels name their buffers.
    private var slots: [UnsafeMutableRawPointer] = []
    private var owned: [UnsafeMutableRawPointer] = []
    private let arena: UnsafeMutableRawPointer
    private let arenaBytes: Int
    private var prologue: [() -> Void] = []
    private var steps: [() -> Void] = []
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
        // The arena is mapped afresh (zero pages, returned to the system on deinit), never taken
        // from pages malloc already holds: a run then touches exactly the memory the plan says.
        arenaBytes = max(schedule.arenaBytes, 64)
        guard let mapped = mmap(nil, arenaBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), mapped != MAP_FAILED else {
            throw RuntimeError("cannot map an arena of \(arenaBytes) bytes: \(String(cString: strerror(errno)))")
        }
        arena = mapped
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
        slots = schedule.bufferNames.map { memory[$0]! }
        for p in schedule.graph.params where p.type.dtype == .f32 {
            if let ptr = pointer(p.name) { Initializers.fill(p, seed: seed, into: ptr) }
        }
        prologue = try schedule.prologue.map(bind)
        steps = try schedule.kernels.map(bind)
        if ProcessInfo.processInfo.environment["FN2E_PROFILE"] == "1" { kernelSeconds = Array(repeating: 0, count: steps.count) }
        refold()
    }

    deinit {
        for p in owned { p.deallocate() }
        munmap(arena, arenaBytes)
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

    /// Per-kernel time per run (`FN2E_PROFILE=1`), slowest first: seconds, share of the run,
    /// GFLOP/s and, given the sgemm peak measured in the same process, its percentage. First by
    /// kernel kind (label), then the `top` slowest kernels one by one. Empty when not profiling.
    public func profileReport(top: Int = 40, peakGFLOPS: Double? = nil) -> String {
        guard let secs = kernelSeconds, profiledRuns > 0 else { return "" }
        let runs = Double(profiledRuns)
        let total = secs.reduce(0, +) / runs
        func rate(_ flops: Int, _ t: Double) -> String {
            let g = Double(flops) / max(t, 1e-12) / 1e9
            return String(format: "%8.1f GFLOP/s", g) + (peakGFLOPS.map { String(format: " %5.1f%%", 100 * g / $0) } ?? "")
        }
        var out = String(format: "profile: %d runs, %.3f s per run in kernels", profiledRuns, total)
        out += peakGFLOPS.map { String(format: "; sgemm peak %.1f GFLOP/s (1024^3, this process, core %@)", $0, BLAS.corename as NSString) } ?? ""
        out += "\n"
        var byLabel: [String: (t: Double, flops: Int, n: Int)] = [:]
        for (i, k) in schedule.kernels.enumerated() {
            let e = byLabel[k.label] ?? (0, 0, 0)
            byLabel[k.label] = (e.t + secs[i] / runs, e.flops + k.flops, e.n + 1)
        }
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        let width = (schedule.kernels.map(\.label.count).max() ?? 0) + 1
        for (label, e) in byLabel.sorted(by: { $0.value.t > $1.value.t }) {
            out += "  " + pad(label, width) + String(format: "%3dx %8.3f s %5.1f%% ", e.n, e.t, 100 * e.t / max(total, 1e-12)) + rate(e.flops, e.t) + "\n"
        }
        let nameWidth = (schedule.kernels.map(\.node.name.count).max() ?? 0) + 1
        for i in secs.indices.sorted(by: { secs[$0] > secs[$1] }).prefix(top) {
            let k = schedule.kernels[i], t = secs[i] / runs
            out += String(format: "  #%-4d ", i) + pad(k.label, width) + pad(k.node.name, nameWidth) + String(format: "%8.4f s ", t) + rate(k.flops, t) + "\n"
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

    /// The kernel's call over its buffers: operands, output and the workspace it booked, granted
    /// at its planned offset. Nothing is sized or allocated here; the Scheduler's lowering decided everything.
    private func bind(_ k: Kernel) throws -> () -> Void {
        func floats(_ id: BufferID) -> UnsafeMutablePointer<Float> { slots[id.index].assumingMemoryBound(to: Float.self) }
        let xs = k.operands.map { UnsafePointer(floats($0)) }
        let y = floats(k.output)
        let grant = Workspace(base: (arena + k.workspaceOffset).assumingMemoryBound(to: Float.self), booking: k.call.booking)
        let ws = grant.base
        func int32s(_ p: UnsafePointer<Float>) -> UnsafePointer<Int32> { UnsafeRawPointer(p).assumingMemoryBound(to: Int32.self) }
        func bytes(_ p: UnsafePointer<Float>) -> UnsafePointer<UInt8> { UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self) }
        let record = k.winners.map { slots[$0.index].assumingMemoryBound(to: UInt8.self) }
        let optional = { (i: Int) -> UnsafePointer<Float>? in i < xs.count ? xs[i] : nil }
        switch k.call {
        case let .conv2d(g, act, alg):
            return { FastOps.conv2d(x: xs[0], w: xs[1], bias: optional(2), y: y, geometry: g, activation: act, algorithm: alg, workspace: ws) }
        case let .conv2dMaxPool(convs, p, winners):
            let mask = winners?.reluMask ?? false
            return { FastOps.conv2dMaxPool(xs, y: y, convs: convs, pool: p, winners: record, reluMask: mask, workspace: grant) }
        case let .conv2dBackwardData(g, alg):
            switch alg {
            case .im2col, .pointwise, .direct: return { FastOps.conv2dBackwardData(dy: xs[0], w: xs[1], dx: y, geometry: g, workspace: ws) }
            case .batched: return { FastOps.conv2dBackwardDataBatched(dy: xs[0], w: xs[1], dx: y, geometry: g, workspace: ws) }
            case .winograd: return { FastOps.conv2dBackwardDataWinograd(dy: xs[0], w: xs[1], dx: y, geometry: g, workspace: ws) }
            }
        case let .conv2dBackwardFilter(g, alg):
            switch alg {
            case .im2col, .pointwise: return { FastOps.conv2dBackwardFilter(dy: xs[1], x: xs[0], dw: y, geometry: g, workspace: ws) }
            case .batched: return { FastOps.conv2dBackwardFilterBatched(dy: xs[1], x: xs[0], dw: y, geometry: g, workspace: ws) }
            case .winograd: return { FastOps.conv2dBackwardFilterWinograd(dy: xs[1], x: xs[0], dw: y, geometry: g, workspace: ws) }
            case .direct: return { FastOps.conv2dBackwardFilterDirect(dy: xs[1], x: xs[0], dw: y, geometry: g, workspace: ws) }
            }
        case let .linear(rows, inputs, outputs, act):
            return { FastOps.linear(x: xs[0], w: xs[1], bias: optional(2), y: y, n: rows, k: inputs, m: outputs, activation: act) }
        case let .matmul(m, n, kk, ta, tb):
            return { FastOps.matmul(a: xs[0], b: xs[1], c: y, m: m, n: n, k: kk, transposeA: ta, transposeB: tb) }
        case let .maxPool(g, winners):
            let mask = winners?.reluMask ?? false
            return { FastOps.maxPool(x: xs[0], y: y, argmax: record, geometry: g, reluMask: mask) }
        case let .preluMaxPool(g, sc): return { FastOps.maxPool(x: xs[0], y: y, argmax: nil, geometry: g, slopes: xs[1], slopeCount: sc) }
        case let .avgPool(g): return { FastOps.avgPool(x: xs[0], y: y, geometry: g) }
        case let .maxPoolBackward(g, mask):
            return { FastOps.maxPoolBackward(dy: xs[1], x: xs[0], dx: y, geometry: g, reluMask: mask) }
        case let .maxPoolBackwardFromWinners(g, _): return { FastOps.maxPoolBackward(dy: xs[1], argmax: bytes(xs[0]), dx: y, geometry: g) }
        case let .maxPoolBackwardInto(p, g?):
            return { FastOps.conv2dBackwardFilterDirect(dy: xs[2], x: xs[0], dw: y, geometry: g, workspace: ws, winners: bytes(xs[1]), pool: p) }
        case let .maxPoolBackwardInto(p, nil): return { FastOps.maxPoolBackwardChannelSum(dy: xs[1], winners: bytes(xs[0]), db: y, pool: p) }
        case let .avgPoolBackward(g): return { FastOps.avgPoolBackward(dy: xs[0], dx: y, geometry: g) }
        case let .relu(count, slope): return { FastOps.relu(x: xs[0], y: y, count: count, negativeSlope: slope) }
        case let .reluBackward(count, slope):
            return { FastOps.reluBackward(dy: xs[1], x: xs[0], dx: y, count: count, negativeSlope: slope) }
        case let .prelu(v, sc):
            return { FastOps.prelu(x: xs[0], slope: xs[1], y: y, batch: v.batch, channels: v.channels, spatial: v.spatial, slopeCount: sc) }
        case let .preluBackwardInput(v, sc):
            return { FastOps.preluBackward(dy: xs[2], x: xs[0], slope: xs[1], dx: y, dslope: nil, batch: v.batch, channels: v.channels,
                                           spatial: v.spatial, slopeCount: sc) }
        case let .preluBackwardSlope(v, sc):
            return { FastOps.preluBackwardSlope(dy: xs[1], x: xs[0], dslope: y, batch: v.batch, channels: v.channels, spatial: v.spatial,
                                                slopeCount: sc, workspace: grant) }
        case let .sigmoid(count): return { FastOps.sigmoid(x: xs[0], y: y, count: count) }
        case let .sigmoidBackward(count): return { FastOps.sigmoidBackward(dy: xs[1], y: xs[0], dx: y, count: count) }
        case let .tanh(count): return { FastOps.tanh(x: xs[0], y: y, count: count) }
        case let .tanhBackward(count): return { FastOps.tanhBackward(dy: xs[1], y: xs[0], dx: y, count: count) }
        case let .copy(count):
            let src = xs[0]
            return { if src != UnsafePointer(y) { y.update(from: src, count: count) } }
        case let .affine(count, sc, sh): return { FastOps.affine(x: xs[0], y: y, count: count, scale: sc, shift: sh) }
        case let .transpose(shape, perm): return { FastOps.transpose(x: xs[0], shape: shape, perm: perm, y: y) }
        case let .concat(shapes, axis):
            let parts = zip(xs, shapes).map { (data: $0.0, shape: $0.1) }
            return { FastOps.concat(inputs: parts, axis: axis, y: y) }
        case let .slice(shape, axis, start, end):
            return { FastOps.slice(x: xs[0], shape: shape, axis: axis, start: start, end: end, y: y) }
        case let .sliceBackward(shape, axis, start, length):
            return { FastOps.sliceBackward(dy: xs[0], xShape: shape, axis: axis, start: start, length: length, dx: y) }
        case let .channelReplicate(b, sp, count): return { FastOps.channelReplicate(x: xs[0], y: y, batch: b, spatial: sp, k: count) }
        case let .resize(planes, h, w, oh, ow): return { FastOps.resize(x: xs[0], y: y, planes: planes, h: h, w: w, oh: oh, ow: ow) }
        case let .resizeBackward(planes, h, w, oh, ow):
            return { FastOps.resizeBackward(dy: xs[0], dx: y, planes: planes, h: h, w: w, oh: oh, ow: ow) }
        case let .binary(op, aShape, bShape): return { FastOps.binary(op, a: xs[0], aShape: aShape, b: xs[1], bShape: bShape, y: y) }
        case let .maximumBackward(aShape, bShape, shape, operand):
            return { FastOps.maximumBackward(a: xs[0], aShape: aShape, b: xs[1], bShape: bShape, dy: xs[2], dx: y, shape: shape,
                                             operand: operand, workspace: ws) }
        case let .channelScale(v, hasScale, act, eps):
            let scale = hasScale ? xs[1] : nil, bias = hasScale ? optional(2) : xs[1], norm = eps.map { (moments: xs[3], eps: $0) }
            return { FastOps.channelScale(x: xs[0], scale: scale, bias: bias, y: y, batch: v.batch, channels: v.channels, spatial: v.spatial,
                                          activation: act, normalizing: norm) }
        case let .batchNorm(v, eps):
            return { FastOps.batchNorm(x: xs[0], mean: xs[1], variance: xs[2], eps: eps, y: y, batch: v.batch, channels: v.channels, spatial: v.spatial) }
        case let .batchNormBackward(v, eps):
            return { FastOps.batchNormGivenStatisticsBackward(dy: xs[1], variance: xs[0], eps: eps, dx: y, batch: v.batch,
                                                              channels: v.channels, spatial: v.spatial) }
        case let .batchNormTrain(v, eps):
            return { FastOps.batchNormTrain(x: xs[0], moments: optional(1), y: y, eps: eps, batch: v.batch, channels: v.channels, spatial: v.spatial) }
        case let .batchNormTrainBackward(v, eps):
            return { FastOps.batchNormTrainBackward(x: xs[0], dy: xs[1], moments: optional(2), scale: optional(3), dx: y, eps: eps, batch: v.batch,
                                                    channels: v.channels, spatial: v.spatial) }
        case let .batchMoments(v):
            return { FastOps.batchMoments(x: xs[0], moments: y, batch: v.batch, channels: v.channels, spatial: v.spatial) }
        case let .lrnAcross(v, size, alpha, beta, kk):
            return { FastOps.lrnAcross(x: xs[0], y: y, batch: v.batch, channels: v.channels, spatial: v.spatial, size: size, alpha: alpha, beta: beta, k: kk, workspace: ws) }
        case let .lrnWithin(v, h, w, size, alpha, beta):
            return { FastOps.lrnWithin(x: xs[0], y: y, batch: v.batch, channels: v.channels, height: h, width: w, size: size, alpha: alpha, beta: beta, workspace: ws) }
        case let .lrnBackward(v, size, alpha, beta, kk):
            return { FastOps.lrnAcrossBackward(dy: xs[2], x: xs[0], y: xs[1], dx: y, batch: v.batch, channels: v.channels, spatial: v.spatial,
                                               size: size, alpha: alpha, beta: beta, k: kk, workspace: ws) }
        case let .l2Normalize(v, across, eps):
            return { FastOps.l2Normalize(x: xs[0], y: y, batch: v.batch, channels: v.channels, spatial: v.spatial, acrossSpatial: across, eps: eps, workspace: ws) }
        case let .l2NormalizeBackward(v, across, eps):
            return { FastOps.l2NormalizeBackward(x: xs[0], dy: xs[1], dx: y, batch: v.batch, channels: v.channels, spatial: v.spatial,
                                                 acrossSpatial: across, eps: eps, workspace: ws) }
        case let .priorBox(boxes): return { boxes.withUnsafeBufferPointer { y.update(from: $0.baseAddress!, count: $0.count) } }
        case let .detectionOutput(spec, batch, priors):
            return { DetectionOutput.run(spec, loc: xs[0], conf: xs[1], priors: xs[2], batch: batch, priorCount: priors, out: y) }
        case let .softmax(outer, ch, inner, log):
            return { FastOps.softmax(x: xs[0], y: y, batch: outer, channels: ch, inner: inner, log: log, workspace: ws) }
        case let .softmaxBackward(outer, ch, inner, log):
            if log { return { FastOps.logSoftmaxBackward(dy: xs[1], y: xs[0], dx: y, batch: outer, channels: ch, inner: inner, workspace: ws) } }
            return { FastOps.softmaxBackward(dy: xs[1], y: xs[0], dx: y, batch: outer, channels: ch, inner: inner, workspace: ws) }
        case let .softmaxCrossEntropy(b, c):
            return { y[0] = FastOps.softmaxCrossEntropy(logits: xs[0], labels: int32s(xs[1]), probs: ws, batch: b, classes: c) }
        case let .softmaxCrossEntropyBackward(b, c):
            return { FastOps.softmaxCrossEntropyBackward(logits: xs[0], labels: int32s(xs[1]), dlogits: y, batch: b, classes: c,
                                                         upstream: xs[2][0], workspace: grant) }
        case let .euclideanLoss(count, b): return { y[0] = FastOps.euclideanLoss(a: xs[0], b: xs[1], count: count, batch: b) }
        case let .euclideanLossBackward(count, b):
            return { FastOps.euclideanLossBackward(a: xs[0], b: xs[1], da: y, count: count, batch: b, upstream: xs[2][0]) }
        case let .reduce(shape, axes, mean, eps):
            if mean { return { FastOps.mean(x: xs[0], shape: shape, axes: axes, y: y) } }
            return { FastOps.sum(x: xs[0], times: optional(1), normalizing: eps.map { (xs[2], $0) }, shape: shape, axes: axes, y: y) }
        case let .reduceBackward(kept, shape, factor):
            return { FastOps.broadcast(x: xs[0], xShape: kept, y: y, shape: shape, factor: factor) }
        case let .sumTo(from, to): return { FastOps.reduceToShape(g: xs[0], gShape: from, out: y, shape: to) }
        case let .dropoutMask(count, rows, ratio):
            let salt = Digest.fnv1a64(k.node.name.utf8)
            return { [unowned self] in
                guard self.rowSeeds.count == rows, rows > 0 else {
                    return FastOps.dropoutMask(y: y, count: count, ratio: ratio) { self.rng.nextFloat() }
                }
                let per = count / rows
                for r in 0..<rows {
                    var g = Xoshiro256(seed: self.rowSeeds[r] ^ salt)
                    FastOps.dropoutMask(y: y + r * per, count: per, ratio: ratio) { g.nextFloat() }
                }
            }
        case let .fill(count, value): return { y.update(repeating: value, count: count) }
        }
    }
}

public struct RuntimeError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}
