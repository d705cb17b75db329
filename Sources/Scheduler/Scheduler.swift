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
            let k = Kernel(node: n, call: call, inPlace: false, flops: call.flops(outputCount: shape(n.name).reduce(1, *)),
                           workspaceBytes: call.workspace * MemoryLayout<Float>.size)
            if !n.operands.isEmpty || n.op == .fill, n.operands.allSatisfy(constant.contains), n.op.isDeterministic {
                constant.insert(n.name)
                prologue.append(k)
            } else {
                kernels.append(k)
            }
        }

        if options.fuse { kernels = fuseConvPool(kernels, uses: useCounts(g), outputs: Set(g.outputs)) }

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
        }
        for o in g.outputs { buffers[o]?.lastUse = kernels.count }

        var (arena, unplanned) = plan(&kernels, &buffers, options.planMemory)
        // The prologue runs before any step, while nothing in the arena is live: its workspaces start at 0.
        let prologueWorkspace = prologue.map { aligned($0.workspaceBytes) }.max() ?? 0
        arena = max(arena, prologueWorkspace)
        unplanned = max(unplanned, prologueWorkspace)
        return Schedule(graph: g, batch: options.batch, prologue: prologue, kernels: kernels, buffers: buffers,
                        arenaBytes: arena, unplannedBytes: unplanned, passLog: pm.log)
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

    /// A convolution whose output only the next kernel, a max pool, reads becomes one kernel that
    /// pools each image's output as soon as it is computed, so the batch's convolution output never
    /// takes memory (VGG-Face's conv1_2 output alone is 12.8 MB per image). Only where an image's
    /// convolution is still a large GEMM (at least 2,500 output pixels), so speed does not suffer.
    static func fuseConvPool(_ kernels: [Kernel], uses: [String: Int], outputs: Set<String>) -> [Kernel] {
        var out: [Kernel] = []
        var i = 0
        while i < kernels.count {
            if i + 1 < kernels.count, case let .conv2d(g, act, alg) = kernels[i].call, case let .maxPool(p) = kernels[i + 1].call,
               kernels[i + 1].node.operands == [kernels[i].node.name], uses[kernels[i].node.name] == 1,
               !outputs.contains(kernels[i].node.name), g.outH * g.outW >= 2500 {
                var conv = kernels[i]
                let pool = kernels[i + 1]
                conv.call = .conv2dMaxPool(g, act, alg, p)
                conv.node.origins = (conv.node.origins.isEmpty ? [conv.node.name] : conv.node.origins) + [pool.node.name]
                conv.node.name = pool.node.name
                conv.node.type = pool.node.type
                conv.flops += pool.flops
                conv.workspaceBytes = conv.call.workspace * MemoryLayout<Float>.size
                out.append(conv)
                i += 2
                continue
            }
            out.append(kernels[i])
            i += 1
        }
        return out
    }

    /// The convolution algorithm for a geometry, among the allowed ones:
    /// - Winograd F(4x4,3x3) for 3x3 stride-1 layers with at least 16 input and output channels and
    ///   outputs of at least 8x8: about 2x fewer operations in practice on VGG/ExpNet layers
    ///   (4x fewer multiplies, minus the transforms); below 16 channels the transforms dominate
    ///   (a 1-channel first layer runs 2-4x slower than im2col);
    /// - one GEMM for the batch where an image's output is small (under 256 pixels, so a GEMM per
    ///   image would be thin) and the batch's im2col matrix fits in 64 MiB;
    /// - pointwise for 1x1 stride-1 unpadded kernels;
    /// - else im2col per image (always allowed: it computes any geometry).
    static func convAlgorithm(_ g: ConvGeometry, allowed: Set<ConvAlgorithm>) -> ConvAlgorithm {
        if allowed.contains(.winograd), g.winogradEligible, g.inChannels >= 16, g.outChannels >= 16, g.outH >= 8, g.outW >= 8 {
            return .winograd
        }
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

    /// Assigns arena offsets by liveness, best fit from a free list: each kernel's output, then its
    /// workspace (live for that kernel only); marks in-place kernels. Returns the arena size and
    /// the size without any reuse.
    static func plan(_ kernels: inout [Kernel], _ buffers: inout [String: BufferInfo], _ reuse: Bool) -> (Int, Int) {
        var free: [(offset: Int, size: Int)] = []
        var top = 0
        var unplanned = 0
        var dying: [Int: [String]] = [:]
        for (name, b) in buffers where isArena(b.storage) { dying[b.lastUse, default: []].append(name) }

        func allocate(_ size: Int) -> Int {
            if reuse, let best = free.indices.filter({ free[$0].size >= size }).min(by: { free[$0].size < free[$1].size }) {
                let block = free.remove(at: best)
                if block.size > size { free.append((block.offset + size, block.size - size)) }
                return block.offset
            }
            defer { top += size }
            return top
        }
        func release(_ offset: Int, _ size: Int) {
            guard reuse else { return }
            free.append((offset, size))
            free.sort { $0.offset < $1.offset }
            var merged: [(offset: Int, size: Int)] = []
            for b in free {
                if let last = merged.last, last.offset + last.size == b.offset {
                    merged[merged.count - 1].size += b.size
                } else {
                    merged.append(b)
                }
            }
            free = merged
        }
        func releaseDying(_ idx: Int, except name: String) {
            for d in dying[idx] ?? [] where d != name {
                if case .arena(let o)? = buffers[d]?.storage { release(o, aligned(buffers[d]!.bytes)) }
            }
        }

        for idx in kernels.indices {
            let name = kernels[idx].node.name
            if var out = buffers[name], isArena(out.storage) {
                let size = aligned(out.bytes)
                unplanned += size
                // In place: the output may take over its first input's buffer when that input dies here.
                let first = kernels[idx].node.operands.first
                if reuse, kernels[idx].call.mayOverwriteFirstOperand, let f = first, let src = buffers[f],
                   case .arena(let o) = src.storage, src.lastUse == idx, src.bytes == out.bytes {
                    out.storage = .arena(offset: o)
                    kernels[idx].inPlace = true
                    dying[idx]?.removeAll { $0 == f }
                } else {
                    out.storage = .arena(offset: allocate(size))
                }
                buffers[name] = out
            }
            if kernels[idx].workspaceBytes > 0 {
                let size = aligned(kernels[idx].workspaceBytes)
                unplanned += size
                kernels[idx].workspaceOffset = allocate(size)
                release(kernels[idx].workspaceOffset, size)
            }
            releaseDying(idx, except: name)
        }
        return (reuse ? top : unplanned, unplanned)
    }

    static func isArena(_ s: Storage) -> Bool {
        if case .arena = s { return true }
        return false
    }
}
