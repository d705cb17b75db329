import Autodiff
import Distributed
import Foundation
import IR
import Runtime
import Scheduler
import Tensors

/// The compiled training step of a flat graph: its gradient graph lowered for one batch size, the
/// solver over its trainable parameters, and (with `cache_frozen`) the frozen part compiled on its
/// own, whose results are computed once per (sample, augmentation) and reused from a cache.
public final class TrainingStep {
    public let batch: Int
    public let loss: String
    /// Runs forward and backward: the loss and `%grad.<param>` of every trainable parameter.
    public let exec: Executor
    /// The part that reaches no trainable parameter, when it is cached.
    public let cut: FrozenCut?
    let frozenExec: Executor?
    public let solver: Solver
    /// Frozen boundary values by cache key (sample and augmentation), one row per boundary value.
    private var cache: [String: [[Float]]] = [:]
    public private(set) var cacheStats = (computed: 0, reused: 0)
    /// The processes that share each batch, `batch` samples each (nil: this process alone).
    public let world: Communicator?
    /// Trainable slots in groups of at most `bucketFloats` gradient values (or one larger slot),
    /// each group summed over the ranks by one all-reduce.
    let buckets: [Range<Int>]
    private var staging: [Float]
    static let bucketFloats = 1 << 22
    /// Seconds spent averaging gradients and loss over the ranks, and (with `FN2E_PROFILE=1`, which
    /// adds a barrier before each reduction to tell them apart) of those, waiting for the slowest rank.
    public private(set) var reduceSeconds = 0.0
    public private(set) var waitSeconds: Double?

    /// Compiles `graph` (flat: calls inlined) for `batch` samples; the solver's kind and constants
    /// come from the settings.
    public init(graph: Graph, loss: String, batch: Int, seed: UInt64, settings: Settings, world: Communicator? = nil) throws {
        self.batch = batch
        self.world = world
        self.loss = loss
        cut = settings.bool("cache_frozen") && !settings.augmentsContinuously ? FrozenCut.find(graph, loss: loss) : nil
        let forward = cut?.trainable ?? graph
        let gradGraph = try Autodiff.gradient(of: forward, loss: loss)
        let exec = try CompiledGraph(graph: gradGraph, seed: seed).executor(batch: batch)
        self.exec = exec
        frozenExec = try cut.map { try CompiledGraph(graph: $0.frozen, seed: seed).executor(batch: batch) }
        solver = Solver(kind: settings.string("solver"), executor: exec, momentum: settings.double("momentum"),
                        weightDecay: settings.double("weight_decay"), beta1: settings.double("beta1"),
                        beta2: settings.double("beta2"), epsilon: settings.double("epsilon"))
        solver.averages = try LowerBatchNorm.runningAverages(forward).map { r in
            guard let p = gradGraph.param(r.param), let w = exec.pointer(r.param), let m = exec.pointer(r.moments) else {
                throw TrainingError("the running statistic '%\(r.param)' or the batch moments '%\(r.moments)' are not in the training step")
            }
            let c = p.type.count(batch: 1)
            return Solver.Average(param: p, weights: w, source: UnsafePointer(m + r.row * c), count: c, momentum: Float(r.momentum),
                                  correction: Float(r.correction(batch: batch)))
        }
        let counts = solver.slots.map(\.count)
        buckets = TrainingStep.buckets(counts, limit: TrainingStep.bucketFloats)
        let packed = buckets.filter { $0.count > 1 }.map { counts[$0].reduce(0, +) }
        staging = world.map { $0.size > 1 } == true ? [Float](repeating: 0, count: packed.max() ?? 0) : []
        waitSeconds = ProcessInfo.processInfo.environment["FN2E_PROFILE"] == "1" ? 0 : nil
    }

    /// Consecutive index ranges whose counts add up to at most `limit` (a larger count alone).
    static func buckets(_ counts: [Int], limit: Int) -> [Range<Int>] {
        var out: [Range<Int>] = [], start = 0, size = 0
        for (k, c) in counts.enumerated() {
            if size > 0, size + c > limit { out.append(start..<k); (start, size) = (k, 0) }
            size += c
        }
        return out + [start..<counts.count]
    }

    /// The executors that hold the graph's parameters (the step, and the frozen part when cut off).
    public var executors: [Executor] { [exec] + (frozenExec.map { [$0] } ?? []) }

    /// Kernels, arena and trainable values.
    public var summary: String {
        let sch = exec.schedule
        return "step: \(sch.kernels.count) kernels (\(sch.prologue.count) folded), arena \(sch.arenaBytes / 1048576) MiB, "
            + "\(solver.slots.count) trainable tensors (\(solver.slots.reduce(0) { $0 + $1.count }) values)"
    }

    /// Where a batch's images are written, in place: the image input of the step, or of the frozen
    /// part when only that reads the images (nil when neither reads `imageInput`).
    public func input(_ imageInput: String) -> UnsafeMutablePointer<Float>? {
        exec.pointer(imageInput) ?? frozenExec?.pointer(imageInput)
    }

    /// Copies a batch of images into `input(imageInput)` (the shapes must match), then `feed`s the rest.
    public func feed(images: Tensor, imageInput: String, labels: [Int32], labelInput: String?, keys: [String]) throws {
        guard let owner = [exec, frozenExec].compactMap({ $0 }).first(where: { $0.schedule.buffers[imageInput] != nil }),
              let type = owner.schedule.buffers[imageInput]?.type, images.shape == type.shape else {
            throw TrainingError("'%\(imageInput)' of the step and the batch given (shape \(images.shape)) differ")
        }
        try owner.setValue(imageInput, images)
        try feed(imageInput: imageInput, labels: labels, labelInput: labelInput, keys: keys)
    }

    /// Completes a batch whose images are already in `input(imageInput)`: its labels, and the frozen
    /// boundary values from the cache, or from one run of the frozen part for the whole batch when
    /// any is missing. `keys` name each sample's augmentation. Only a miss allocates (its cache entry).
    public func feed(imageInput: String, labels: [Int32], labelInput: String?, keys: [String]) throws {
        if let l = labelInput, exec.schedule.buffers[l] != nil { try exec.setLabels(l, labels) }
        guard let cut, let frozenExec else { return }
        let misses = keys.filter { cache[$0] == nil }
        cacheStats.reused += keys.count - misses.count
        if !misses.isEmpty {
            // The step reads the images too: the frozen part gets a copy.
            if let images = exec.pointer(imageInput) { try frozenExec.setValue(imageInput, from: images) }
            frozenExec.run()
            for (k, key) in keys.enumerated() where cache[key] == nil {
                cache[key] = cut.boundary.map { frozenExec.row($0, k) }
                cacheStats.computed += 1
            }
        }
        for (j, v) in cut.boundary.enumerated() {
            for (k, key) in keys.enumerated() { exec.setRow(v, k, cache[key]![j]) }
        }
    }

    /// Fills the cache for the samples it lacks, all in batches: read from `store` where it holds
    /// them, computed otherwise (and added to the store). Returns how many were read, and the values
    /// read from the store.
    @discardableResult
    public func precompute(_ samples: [FrozenStore.Sample], imageInput: String, inputKey: String, store: FrozenStore?) throws -> (read: Int, values: [String]) {
        guard let cut, let frozenExec else { return (0, []) }
        let todo = samples.filter { cache[$0.key] == nil }
        let (rows, computed, values) = try FrozenStore.compute(cut.frozen, outputs: cut.boundary, params: frozenExec, imageInput: imageInput,
                                                       inputKey: inputKey, samples: todo, batch: batch, store: store, seed: 0,
                                                               whole: frozenExec)
        for (s, r) in zip(todo, rows) { cache[s.key] = r }
        cacheStats.computed += computed
        return (todo.count - computed, values)
    }

    /// Runs forward and backward and returns the loss; a non-finite loss or gradient throws
    /// (`step` numbers the message).
    public func forwardBackward(step: Int) throws -> Float {
        exec.run()
        var value = exec.pointer(loss)![0]
        if let world, world.size > 1 { value = averageOverRanks(world, loss: value) }
        if let bad = firstNonFinite(value) {
            throw TrainingError("step \(step + 1): non-finite value in %\(bad); stopped, the last checkpoint is intact")
        }
        return value
    }

    /// Applies the solver's update at learning rate `lr`; a non-finite updated weight throws.
    public func update(lr: Double, step: Int) throws {
        solver.step(lr: lr)
        // Each rank saw its own samples' statistics: all keep their mean.
        if let world, world.size > 1 {
            for a in solver.averages {
                world.sumInPlace(a.weights, count: a.count)
                for i in 0..<a.count { a.weights[i] /= Float(world.size) }
            }
        }
        // A finite gradient times a huge rate can still overflow; never checkpoint such weights.
        if let bad = solver.slots.first(where: { s in (0..<s.count).contains { !s.weights[$0].isFinite } })?.param.name {
            throw TrainingError("step \(step + 1): non-finite value in %\(bad) after the update; stopped, the last checkpoint is intact")
        }
    }

    /// Replaces every gradient by its mean over the ranks and returns the mean loss. Each rank's loss
    /// is a mean over its equal share of the batch (the loss ops divide by N), so these means are
    /// the whole batch's loss and gradients: every rank then applies the update one process would.
    /// The gradients go in buckets after backward; a bucket of one slot is reduced in place.
    func averageOverRanks(_ world: Communicator, loss: Float) -> Float {
        let t0 = Date()
        if let w = waitSeconds {
            world.barrier()
            waitSeconds = w + Date().timeIntervalSince(t0)
        }
        let scale = 1 / Float(world.size)
        for b in buckets where !b.isEmpty {
            guard b.count > 1 else {
                let s = solver.slots[b.lowerBound]
                world.sumInPlace(s.gradient, count: s.count)
                for i in 0..<s.count { s.gradient[i] *= scale }
                continue
            }
            staging.withUnsafeMutableBufferPointer { buf in
                var offset = 0
                for k in b {
                    (buf.baseAddress! + offset).update(from: solver.slots[k].gradient, count: solver.slots[k].count)
                    offset += solver.slots[k].count
                }
                world.sumInPlace(buf.baseAddress!, count: offset)
                offset = 0
                for k in b {
                    for i in 0..<solver.slots[k].count { solver.slots[k].gradient[i] = buf[offset + i] * scale }
                    offset += solver.slots[k].count
                }
            }
        }
        let mean = world.sum([Double(loss)])[0] / Double(world.size)
        reduceSeconds += Date().timeIntervalSince(t0)
        return Float(mean)
    }

    func firstNonFinite(_ lossValue: Float) -> String? {
        if !lossValue.isFinite { return loss }
        for s in solver.slots {
            for i in 0..<s.count where !s.gradient[i].isFinite { return Autodiff.prefix + s.param.name }
        }
        return nil
    }
}

extension Solver {
    /// A solver over every trainable parameter of a training-step executor (one that computes
    /// `%grad.<param>`), its state zero.
    public convenience init(kind: String, executor exec: Executor, momentum: Double, weightDecay: Double = 0,
                            beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8) {
        let slots = exec.schedule.graph.params.filter(\.trainable).compactMap { p -> Solver.Slot? in
            guard let wp = exec.pointer(p.name), let gp = exec.pointer(Autodiff.prefix + p.name) else { return nil }
            let n = p.type.count(batch: 1)
            return Solver.Slot(param: p, weights: wp, gradient: gp, count: n, m: [Float](repeating: 0, count: n),
                               v: kind == "adam" ? [Float](repeating: 0, count: n) : [])
        }
        self.init(kind: kind, slots: slots, momentum: momentum, weightDecay: weightDecay, beta1: beta1, beta2: beta2, epsilon: epsilon)
    }
}
