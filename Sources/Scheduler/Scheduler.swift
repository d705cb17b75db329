import IR
import Kernels

/// Lowers a verified graph to a `Schedule`: passes, batch binding, folding of frozen work,
/// one kernel per remaining node, and memory planning over the linear kernel order.
public enum Scheduler {
    /// The passes run before lowering, in order.
    public static func passes(fuse: Bool) -> [GraphPass] {
        var ps: [GraphPass] = [InlineCalls(), DeadCodeElimination()]
        if fuse { ps += [FuseActivations(), FusePoolReluBackward()] }
        return ps
    }

    public static func schedule(_ graph: Graph, graphs: [String: Graph], options: ScheduleOptions) throws -> Schedule {
        var g = graph
        var pm = PassManager(passes(fuse: options.fuse))
        try pm.run(&g, PassContext(graphs: graphs))
        g = try bind(g, batch: options.batch, symbols: options.symbols)

        // Lowering, and folding: nodes computed only from frozen parameters (and other folded nodes) run once.
        var constant = Set(g.params.filter { !$0.trainable }.map(\.name))
        var prologue: [Kernel] = []
        var kernels: [Kernel] = []
        let types = g.typeTable
        let shape = { (v: String) in types[v]?.bound(batch: options.batch).shape ?? [] }
        for n in g.nodes {
            let call = try Lowering.call(n, shape: shape, allowed: options.convAlgorithms)
            // FLOPs: 2 per multiply-add of the direct algorithm for GEMM-based calls (so GFLOP/s
            // compare across algorithms; the summary's count), else one per output element.
            let macs = Summary.macs(n, types, batch: options.batch)
            let k = Kernel(node: n, call: call, inPlace: false, flops: macs > 0 ? 2 * macs : shape(n.name).reduce(1, *),
                           workspaceBytes: call.workspace * MemoryLayout<Float>.size)
            if !n.operands.isEmpty || n.op == .fill, n.operands.allSatisfy(constant.contains), n.op.isDeterministic {
                constant.insert(n.name)
                prologue.append(k)
            } else {
                kernels.append(k)
            }
        }

        if options.fuse {
            kernels = fuseConvPool(recordPoolWinners(kernels, outputs: Set(g.outputs), taken: Set(types.keys)), outputs: Set(g.outputs))
            kernels = shareBatchMoments(fusePoolBackwardIntoFilter(kernels, outputs: Set(g.outputs)))
            for fold in [foldScaleIntoBatchNormBackward, foldProductIntoSum, foldBatchNormTrain, foldPReLUIntoPool] { kernels = fold(kernels, Set(g.outputs)) }
        }

        var buffers: [String: BufferInfo] = [:]
        func info(_ name: String, _ storage: Storage, def: Int) -> BufferInfo {
            let t = types[name]!
            return BufferInfo(name: name, type: t, bytes: t.count(batch: options.batch) * t.dtype.size,
                              storage: storage, def: def, lastUse: def)
        }
        for i in g.inputs { buffers[i.name] = info(i.name, .input, def: -1) }
        for p in g.params { buffers[p.name] = info(p.name, .param, def: -1) }
        for k in prologue { buffers[k.node.name] = info(k.node.name, .folded, def: -1) }
        let outputs = Set(g.outputs)
        for (idx, k) in kernels.enumerated() {
            for o in k.node.operands { buffers[o]?.lastUse = idx }
            buffers[k.node.name] = info(k.node.name, outputs.contains(k.node.name) ? .output : .arena(offset: 0), def: idx)
            if let w = k.call.winners {
                // One byte per pooled value (see `PoolWinners`), four to an i32 element.
                let t = TensorType(.i32, fixed: [(types[k.node.name]!.count(batch: options.batch) + 3) / 4])
                buffers[w.buffer] = BufferInfo(name: w.buffer, type: t, bytes: t.count(batch: options.batch) * t.dtype.size,
                                               storage: .arena(offset: 0), def: idx, lastUse: idx)
            }
        }
        for o in g.outputs { buffers[o]?.lastUse = kernels.count }

        var (arena, unplanned) = plan(&kernels, &buffers, options.planMemory)
        // The prologue runs before any step, while nothing in the arena is live: its workspaces start at 0.
        let prologueWorkspace = prologue.map { aligned($0.workspaceBytes) }.max() ?? 0
        arena = max(arena, prologueWorkspace)
        unplanned = max(unplanned, prologueWorkspace)
        // Operands by index, resolved once.
        let names = buffers.keys.sorted()
        let ids = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, BufferID(index: $0)) })
        func resolved(_ k: Kernel) -> Kernel {
            var k = k
            (k.operands, k.output, k.winners) = (k.node.operands.map { ids[$0]! }, ids[k.node.name]!, k.call.winners.map { ids[$0.buffer]! })
            return k
        }
        return Schedule(graph: g, batch: options.batch, prologue: prologue.map(resolved), kernels: kernels.map(resolved), buffers: buffers,
                        bufferNames: names, arenaBytes: arena, unplannedBytes: unplanned, passLog: pm.log)
    }

    /// The graph with N replaced by `batch` and each named size by its value everywhere,
    /// re-verified so every type is concrete. A named size left without a value is an error.
    public static func bind(_ graph: Graph, batch: Int, symbols: [String: Int] = [:]) throws -> Graph {
        let missing = graph.symbols.filter { symbols[$0] == nil }
        guard missing.isEmpty else {
            throw SchedulerError("graph '@\(graph.name)' has the named size\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")) with no value"
                                 + " (training binds K to the data's class count; a run's weights give it when they are loaded)")
        }
        var g: Graph
        do { g = try graph.substituting(symbols: symbols) } catch { throw SchedulerError("\(error)") }
        for k in g.inputs.indices { g.inputs[k].type = g.inputs[k].type.bound(batch: batch) }
        for k in g.nodes.indices {
            // A `shape` attribute (fill, sum_to, reduce_backward) writes N as 0; bind it too.
            if case .ints(let shape)? = g.nodes[k].attrs["shape"], shape.contains(0), g.nodes[k].op != .reshape {
                g.nodes[k].attrs["shape"] = .ints(shape.map { $0 == 0 ? batch : $0 })
            }
        }
        let problems = Verifier().verify(&g)
        guard problems.isEmpty else {
            let sizes = ["N=\(batch)"] + symbols.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            throw SchedulerError("binding \(sizes.joined(separator: ", ")) failed:\n" + problems.map(\.description).joined(separator: "\n"))
        }
        return g
    }

    /// A max pool whose input nothing but its own gradients reads records each window's winner (a
    /// byte per pooled value) for them, and they send each dy to its recorded winner: the pooled
    /// input, a full-size activation (ExpNet's first is 411 MB at batch 32), then dies at the pool
    /// instead of living through the forward and backward passes, and the convolution before the
    /// pool can be fused with it in training too (`fuseConvPool`). A ReLU backward fused into the
    /// gradients (FusePoolReluBackward) is applied as the winners are recorded: a winner that is
    /// not > 0 is recorded as none. Gradients must agree on that mask, else nothing changes.
    static func recordPoolWinners(_ kernels: [Kernel], outputs: Set<String>, taken: Set<String>) -> [Kernel] {
        var ks = kernels
        var readers: [String: [Int]] = [:]
        for (i, k) in ks.enumerated() { for o in Set(k.node.operands) { readers[o, default: []].append(i) } }
        for i in ks.indices {
            guard case let .maxPool(g, nil) = ks[i].call, g.kernelH * g.kernelW < 256, let x = ks[i].node.operands.first, !outputs.contains(x) else { continue }
            let grads = readers[x, default: []].filter { $0 != i }
            var masks = Set<Bool>()
            for j in grads {
                guard j > i, case let .maxPoolBackward(gj, mask) = ks[j].call, gj == g,
                      ks[j].node.operands.firstIndex(of: x) == 0, ks[j].node.operands.lastIndex(of: x) == 0 else { masks = []; break }
                masks.insert(mask)
            }
            guard !grads.isEmpty, masks.count == 1, let mask = masks.first else { continue }
            var buffer = ks[i].node.name + ".winners"
            while taken.contains(buffer) { buffer += "_" }
            ks[i].call = .maxPool(g, PoolWinners(buffer: buffer, reluMask: mask))
            for j in grads {
                ks[j].call = .maxPoolBackwardFromWinners(g, reluMask: mask)
                ks[j].node.operands[0] = buffer
            }
        }
        return ks
    }

    /// A convolution whose output only the next kernel, a max pool, reads becomes one kernel that
    /// pools each image's output as soon as it is computed, and so does a convolution whose output
    /// only such a kernel reads (VGG-Face's conv3_1, conv3_2, conv3_3 and pool3 run as one, image by
    /// image): no batch's convolution output takes memory (VGG-Face's conv1_1 output alone is 12.8 MB
    /// per image). Only where running image by image costs the convolution nothing: im2col and 1x1
    /// convolutions run a GEMM per image anyway (ExpNet48's 48x48 conv1 then pools each image's
    /// output while it is in cache, instead of writing and re-reading 19 MB at batch 128); a Winograd
    /// convolution image by image only where an image's tiles still make large GEMMs (at least 2,500
    /// output pixels); a smaller one alone on the whole batch, before a 2x2 pool only, pooling each 4x4
    /// output tile as it is computed (ExpNet48's conv2-conv4: no full-resolution output, no pool kernel).
    static func fuseConvPool(_ kernels: [Kernel], outputs: Set<String>) -> [Kernel] {
        var uses: [String: Int] = [:]
        for k in kernels { for o in k.node.operands { uses[o, default: 0] += 1 } }
        var out: [Kernel] = []
        // From the last kernel back, so a chain grows one convolution at a time in front of its pool.
        for k in kernels.reversed() {
            guard case let .conv2d(g, act, alg) = k.call, alg != .batched, uses[k.node.name] == 1,
                  !outputs.contains(k.node.name), var next = out.last, next.node.operands.first == k.node.name else {
                out.append(k)
                continue
            }
            let shift = k.node.operands.count - 1
            let stage = ChainedConv(geometry: g, activation: act, algorithm: alg, weight: 1, bias: k.node.operands.count > 2 ? 2 : nil)
            let small = FastOps.pooledWinograd([stage])
            if case let .maxPool(p, winners) = next.call, next.node.operands.count == 1, !small || p.isDisjoint2x2 {
                next.call = .conv2dMaxPool([stage], p, winners)
            } else if case let .conv2dMaxPool(convs, p, winners) = next.call, !small, !FastOps.pooledWinograd(convs) {
                let moved = convs.map { c in
                    var c = c
                    c.weight += shift
                    c.bias = c.bias.map { $0 + shift }
                    return c
                }
                next.call = .conv2dMaxPool([stage] + moved, p, winners)
            } else {
                out.append(k)
                continue
            }
            next.node.operands = k.node.operands + next.node.operands.dropFirst()
            next.node.origins = (k.node.origins.isEmpty ? [k.node.name] : k.node.origins)
                + (next.node.origins.isEmpty ? [next.node.name] : next.node.origins)
            next.flops += k.flops
            next.workspaceBytes = next.call.workspace * MemoryLayout<Float>.size
            out[out.count - 1] = next
        }
        return out.reversed()
    }

    /// A max-pool gradient from recorded winners that only direct weight gradients and per-channel
    /// sums (bias gradients) read is computed inside them, row by row: the convolution's output
    /// gradient never exists whole (ExpNet's first, 411 MB at batch 32, was the stage-1 step's largest value).
    static func fusePoolBackwardIntoFilter(_ kernels: [Kernel], outputs: Set<String>) -> [Kernel] {
        foldIntoReaders(kernels, outputs: outputs) { k, r in
            guard case let .maxPoolBackwardFromWinners(p, _) = k.call else { return nil }
            let operands: [String] = r.node.operands.dropLast() + k.node.operands
            if case let .conv2dBackwardFilter(g, .direct) = r.call, r.node.operands.firstIndex(of: k.node.name) == 1 { return (.maxPoolBackwardInto(p, filter: g), operands) }
            if case .reduce(let shape, [0, 2, 3], false, nil) = r.call, shape.count == 4 { return (.maxPoolBackwardInto(p, filter: nil), operands) }
            return nil
        }
    }

    /// A training-mode batch norm and its gradient read the statistics the layer's `batch_moments`
    /// kernel computed (an extra operand) instead of computing them again: once per layer and step
    /// instead of three times (each is two passes over the activation).
    static func shareBatchMoments(_ kernels: [Kernel]) -> [Kernel] {
        var moments: [String: String] = [:]
        return kernels.map { k in
            var k = k
            if case .batchMoments = k.call { moments[k.node.operands[0]] = k.node.name }
            if [.batchNormTrain, .batchNormTrainBackward].contains(k.node.op), let m = moments[k.node.operands[0]] {
                k.node.operands.append(m)
            }
            return k
        }
    }

    /// `batch_norm_train_backward(x, scale(dy, gamma), moments)` whose scaled gradient nothing else
    /// reads becomes `batch_norm_train_backward(x, dy, moments, gamma)`: the kernel multiplies by gamma
    /// itself (the gradient is linear in dy), one pass over the activation fewer per layer and step.
    static func foldScaleIntoBatchNormBackward(_ kernels: [Kernel], outputs: Set<String>) -> [Kernel] {
        foldIntoReaders(kernels, outputs: outputs) { k, r in
            let ops = r.node.operands
            guard case .channelScale(_, true, .none, nil) = k.call, k.node.operands.count == 2, r.node.op == .batchNormTrainBackward, ops.count == 3,
                  ops.firstIndex(of: k.node.name) == 1, ops.lastIndex(of: k.node.name) == 1 else { return nil }
            return (r.call, [ops[0], k.node.operands[0], ops[2], k.node.operands[1]])
        }
    }

    /// A per-channel sum of an elementwise product of two same-shape values that nothing else reads
    /// (a scale's gamma gradient, `sum(dy · x̂)`) reads both factors instead: the product, as large as
    /// the activation, is never written and read back.
    static func foldProductIntoSum(_ kernels: [Kernel], outputs: Set<String>) -> [Kernel] {
        foldIntoReaders(kernels, outputs: outputs) { k, r in
            guard case let .binary(.mul, a, b) = k.call, a == b, case let .reduce(shape, axes, false, nil) = r.call, shape == a,
                  axes.count == shape.count - 1, !axes.contains(1), r.node.operands.count == 1 else { return nil }
            return (r.call, k.node.operands)
        }
    }

    /// A `batch_norm_train(x, moments)` (`shareBatchMoments`) whose normalized x̂ nothing but scales
    /// with a bias (the layer's forward, its ReLU fused or not) and per-channel sums of a product with
    /// it (gamma's gradient `Σ dy · x̂`, `foldProductIntoSum`) reads is computed inside them, from x and
    /// the moments: x̂, as large as the activation, is never written nor read back (VGG48's training
    /// step: one pass over each layer's activation fewer, and no x̂ buffer). Else nothing changes.
    static func foldBatchNormTrain(_ kernels: [Kernel], outputs: Set<String>) -> [Kernel] {
        foldIntoReaders(kernels, outputs: outputs) { k, r in
            let ops = r.node.operands, at = ops.firstIndex(of: k.node.name)
            guard case let .batchNormTrain(_, eps) = k.call, k.node.operands.count == 2, ops.lastIndex(of: k.node.name) == at else { return nil }
            let folded = ops.map { $0 == k.node.name ? k.node.operands[0] : $0 } + [k.node.operands[1]]
            if case let .channelScale(v, true, act, nil) = r.call, ops.count == 3, at == 0 { return (.channelScale(v, hasScale: true, act, normalized: eps), folded) }
            if case let .reduce(shape, axes, false, nil) = r.call, ops.count == 2, at == 1 { return (.reduce(shape: shape, axes: axes, mean: false, normalized: eps), folded) }
            return nil
        }
    }

    /// A PReLU whose output only max pools that record no winners read (inference: MTCNN's nets)
    /// is applied by them as they read its input: no pass of its own over a full-size activation.
    static func foldPReLUIntoPool(_ kernels: [Kernel], outputs: Set<String>) -> [Kernel] {
        foldIntoReaders(kernels, outputs: outputs) { k, r in
            guard case let .prelu(_, slopes) = k.call, case let .maxPool(g, nil) = r.call, r.node.operands == [k.node.name] else { return nil }
            return (.preluMaxPool(g, slopes: slopes), k.node.operands)
        }
    }

    /// Each kernel (no graph output) whose every reader `fold(kernel, reader)` gives a new call and
    /// operands for is computed inside its readers instead: they take those, its FLOPs go to the first.
    static func foldIntoReaders(_ kernels: [Kernel], outputs: Set<String>, _ fold: (Kernel, Kernel) -> (KernelCall, [String])?) -> [Kernel] {
        var ks = kernels, dropped = Set<Int>()
        for j in ks.indices where !outputs.contains(ks[j].node.name) {
            let k = ks[j], folds = ks.indices.filter { ks[$0].node.operands.contains(k.node.name) }.map { ($0, fold(k, ks[$0])) }
            guard !folds.isEmpty, folds.allSatisfy({ $0.1 != nil }) else { continue }
            for case let (i, (call, operands)?) in folds {
                (ks[i].call, ks[i].node.operands, ks[i].workspaceBytes) = (call, operands, call.workspace * MemoryLayout<Float>.size)
                ks[i].node.origins = (k.node.origins.isEmpty ? [k.node.name] : k.node.origins) + (ks[i].node.origins.isEmpty ? [ks[i].node.name] : ks[i].node.origins)
            }
            ks[folds[0].0].flops += k.flops
            dropped.insert(j)
        }
        return ks.indices.filter { !dropped.contains($0) }.map { ks[$0] }
    }

    /// The convolution algorithm for a geometry, among the allowed ones:
    /// - Winograd F(4x4,3x3) for 3x3 stride-1 layers with at least 16 input and output channels
    ///   whose 4x4 tiles need at most half the direct multiplies (36 per tile against 9 per output
    ///   pixel: any output of 8x8 or more, and 6x6, 4x4 and 3x3, the last stages of the 48x48 nets):
    ///   about 2x fewer operations in practice on VGG/ExpNet layers (4x fewer multiplies at large
    ///   sizes, minus the transforms); below 16 channels the transforms dominate (a 1-channel first
    ///   layer runs 2-4x slower than im2col);
    /// - the direct kernel for 1-16 input channels at stride 1 (first layers: im2col's K would be 9-27;
    ///   P-Net's conv2, 10 channels: 90)
    ///   where its blocks of 16 columns waste at most a fifth of a row (R-Net's 22 columns, 32
    ///   computed, ran 1.3x faster by im2col; O-Net's 46 the same either way);
    /// - one GEMM for the batch where an image's output is small (under 256 pixels, so a GEMM per
    ///   image would be thin) and the batch's im2col matrix fits in 64 MiB;
    /// - pointwise for 1x1 stride-1 unpadded kernels;
    /// - else im2col per image (always allowed: it computes any geometry).
    static func convAlgorithm(_ g: ConvGeometry, allowed: Set<ConvAlgorithm>) -> ConvAlgorithm {
        if allowed.contains(.winograd), g.winogradEligible, g.inChannels >= 16, g.outChannels >= 16,
           2 * 36 * ((g.outH + 3) / 4) * ((g.outW + 3) / 4) <= 9 * g.outH * g.outW {
            return .winograd
        }
        if allowed.contains(.direct), g.directEligible, (g.outW + 15) / 16 * 16 * 4 <= g.outW * 5 { return .direct }
        if allowed.contains(.batched), g.groups == 1, g.batch > 1, g.outH * g.outW < 256, g.batchedWorkspaceCount * 4 <= 64 << 20 {
            return .batched
        }
        if allowed.contains(.pointwise), g.isPointwise { return .pointwise }
        return .im2col
    }

    /// Values of the named sizes a graph's parameters declare, read off the shapes of tensors
    /// loaded for them (a run's weights fix its class count). Disagreeing tensors are an error
    /// naming both; sizes no tensor fixes are left out.
    public static func symbolValues(_ graph: Graph, from shapes: [String: [Int]]) throws -> [String: Int] {
        var values: [String: (Int, String)] = [:]
        for p in graph.params {
            guard let shape = shapes[p.name], shape.count == p.type.rank else { continue }
            for (d, v) in zip(p.type.dims, shape) {
                guard case .symbol(let name) = d else { continue }
                if let (w, other) = values[name], w != v {
                    throw SchedulerError("'\(p.name)' has \(name)=\(v) but '\(other)' has \(name)=\(w)")
                }
                values[name] = (v, p.name)
            }
        }
        return values.mapValues(\.0)
    }

    static let alignment = 64
    static func aligned(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    /// Assigns arena offsets. First the in-place decisions: a kernel whose call may overwrite its
    /// first operand takes over that operand's bytes when the operand dies there and has the same
    /// size (the two become one block living from the operand's definition to the output's last
    /// use). Then every block (outputs, recorded max-pool winners, and each kernel's workspace,
    /// live for that kernel only) is placed greedily by size, largest first, at the lowest offset
    /// where it overlaps no already placed block whose lifetime overlaps its own (the "greedy by
    /// size" offset assignment of TensorFlow Lite's arena planner). Placing large blocks first keeps
    /// the arena close to the peak of live bytes, where a free list walked in kernel order leaves
    /// gaps that the next large buffer does not fit. Returns the arena size and the size without reuse.
    static func plan(_ kernels: inout [Kernel], _ buffers: inout [String: BufferInfo], _ reuse: Bool) -> (Int, Int) {
        struct Block { var bytes: Int; var first: Int; var last: Int; var values: [String]; var workspaceOf: Int? }
        var blocks: [Block] = []
        var blockOf: [String: Int] = [:]
        for idx in kernels.indices {
            var produced = [kernels[idx].node.name]
            if let w = kernels[idx].call.winners { produced.append(w.buffer) }
            for (n, name) in produced.enumerated() {
                guard let out = buffers[name], isArena(out.storage) else { continue }
                if reuse, n == 0, kernels[idx].call.mayOverwriteFirstOperand, let f = kernels[idx].node.operands.first,
                   let src = buffers[f], isArena(src.storage), src.lastUse == idx, src.bytes == out.bytes, let b = blockOf[f] {
                    kernels[idx].inPlace = true
                    blocks[b].last = max(blocks[b].last, out.lastUse)
                    blocks[b].values.append(name)
                    blockOf[name] = b
                } else {
                    blockOf[name] = blocks.count
                    blocks.append(Block(bytes: aligned(out.bytes), first: idx, last: out.lastUse, values: [name], workspaceOf: nil))
                }
            }
            if kernels[idx].workspaceBytes > 0 {
                blocks.append(Block(bytes: aligned(kernels[idx].workspaceBytes), first: idx, last: idx, values: [], workspaceOf: idx))
            }
        }
        let unplanned = blocks.reduce(0) { $0 + $1.bytes } + kernels.filter(\.inPlace).reduce(0) { $0 + aligned(buffers[$1.node.name]!.bytes) }

        var offsets = [Int](repeating: 0, count: blocks.count)
        var top = 0
        if reuse {
            var placed: [Int] = []
            let order = blocks.indices.sorted { (blocks[$0].bytes, blocks[$1].first) > (blocks[$1].bytes, blocks[$0].first) }
            for b in order {
                // Blocks alive at the same time, by offset: take the first gap that fits.
                let clashing = placed.filter { blocks[$0].first <= blocks[b].last && blocks[b].first <= blocks[$0].last }
                    .sorted { offsets[$0] < offsets[$1] }
                var offset = 0
                for c in clashing {
                    if offsets[c] >= offset + blocks[b].bytes { break }
                    offset = max(offset, offsets[c] + blocks[c].bytes)
                }
                offsets[b] = offset
                top = max(top, offset + blocks[b].bytes)
                placed.append(b)
            }
        } else {
            for b in blocks.indices { offsets[b] = top; top += blocks[b].bytes }
        }
        for (b, block) in blocks.enumerated() {
            for v in block.values { buffers[v]!.storage = .arena(offset: offsets[b]) }
            if let k = block.workspaceOf { kernels[k].workspaceOffset = offsets[b] }
        }
        return (top, unplanned)
    }

    static func isArena(_ s: Storage) -> Bool {
        if case .arena = s { return true }
        return false
    }
}
