import IR

/// Lowers a verified graph to a `Schedule`: passes, batch binding, folding of frozen work,
/// one kernel per remaining node, and memory planning over the linear kernel order.
public enum Scheduler {
    /// The passes run before lowering, in order.
    public static func passes(fuse: Bool) -> [GraphPass] {
        var ps: [GraphPass] = [InlineCalls(), DeadCodeElimination()]
        if fuse { ps.append(FuseActivations()) }
        return ps
    }

    public static func schedule(_ graph: Graph, graphs: [String: Graph], options: ScheduleOptions) throws -> Schedule {
        var g = graph
        var pm = PassManager(passes(fuse: options.fuse))
        try pm.run(&g, PassContext(graphs: graphs))
        g = try bind(g, batch: options.batch, symbols: options.symbols)

        // Folding: nodes computed only from frozen parameters (and other folded nodes) run once.
        var constant = Set(g.params.filter { !$0.trainable }.map(\.name))
        var prologue: [Kernel] = []
        var kernels: [Kernel] = []
        let types = g.typeTable
        for n in g.nodes {
            let k = Kernel(node: n, inPlace: false, flops: flops(n, types, batch: options.batch))
            if !n.operands.isEmpty || n.op == .fill, n.operands.allSatisfy(constant.contains), Op.deterministic(n.op) {
                constant.insert(n.name)
                prologue.append(k)
            } else {
                kernels.append(k)
            }
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
        }
        for o in g.outputs { buffers[o]?.lastUse = kernels.count }

        let (arena, unplanned) = plan(&kernels, &buffers, options.planMemory)
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

    /// Floating-point operations of one kernel: 2 per multiply-add for GEMM-based ops, else one per
    /// output element.
    static func flops(_ n: Node, _ types: [String: TensorType], batch: Int) -> Int {
        var macs = Summary.macs(n, types, batch: batch)
        let shape = { (v: String) in types[v]?.bound(batch: batch).shape ?? [] }
        switch n.op {
        case .conv2dBackwardData:  // dy [N, O, OH, OW] · (C/groups · KH · KW)
            let w = shape(n.operands[1])
            macs = shape(n.operands[0]).reduce(1, *) * w.dropFirst().reduce(1, *)
        case .conv2dBackwardFilter:  // dy [N, O, OH, OW] · (C/groups · KH · KW), dw [O, C/groups, KH, KW]
            let w = n.type?.shape ?? []
            macs = shape(n.operands[1]).reduce(1, *) * w.dropFirst().reduce(1, *)
        case .matmul:
            let a = shape(n.operands[0]), out = n.type?.bound(batch: batch).shape ?? []
            if a.count == 2, out.count == 2 { macs = out[0] * out[1] * (n.fullAttrs.bool("transpose_a") ? a[0] : a[1]) }
        default:
            break
        }
        if macs > 0 { return 2 * macs }
        return n.type?.count(batch: batch) ?? 0
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

    /// Assigns arena offsets by liveness, best fit from a free list; marks in-place kernels.
    /// Returns the arena size and the size without any reuse.
    static func plan(_ kernels: inout [Kernel], _ buffers: inout [String: BufferInfo], _ reuse: Bool) -> (Int, Int) {
        func aligned(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
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

        for idx in kernels.indices {
            let name = kernels[idx].node.name
            guard var out = buffers[name], isArena(out.storage) else {
                for d in dying[idx] ?? [] { if case .arena(let o)? = buffers[d]?.storage { release(o, aligned(buffers[d]!.bytes)) } }
                continue
            }
            let size = aligned(out.bytes)
            unplanned += size
            // In place: an elementwise op may write over its first input when that input dies here.
            let first = kernels[idx].node.operands.first
            if reuse, Op.inPlaceable.contains(kernels[idx].node.op), let f = first, let src = buffers[f],
               case .arena(let o) = src.storage, src.lastUse == idx, src.bytes == out.bytes {
                out.storage = .arena(offset: o)
                buffers[name] = out
                kernels[idx].inPlace = true
                dying[idx]?.removeAll { $0 == f }
            } else {
                out.storage = .arena(offset: allocate(size))
                buffers[name] = out
            }
            for d in dying[idx] ?? [] where d != name {
                if case .arena(let o)? = buffers[d]?.storage { release(o, aligned(buffers[d]!.bytes)) }
            }
        }
        return (reuse ? top : unplanned, unplanned)
    }

    static func isArena(_ s: Storage) -> Bool {
        if case .arena = s { return true }
        return false
    }
}

extension Op {
    /// Elementwise ops whose output may overwrite their first input.
    /// Flatten and reshape are views: in place they copy nothing.
    /// relu_backward(y, dy) overwrites the saved activation y, which its backward reads last: that
    /// saves one activation-sized buffer per conv block in a training step.
    public static let inPlaceable: Set<Op> = [.relu, .sigmoid, .tanh, .affine, .dropout, .prelu, .scale, .bias,
                                               .batchNorm, .add, .sub, .mul, .maximum, .flatten, .reshape, .reluBackward]

    /// Whether the op gives the same result every time (dropout draws a mask).
    public static func deterministic(_ op: Op) -> Bool { op != .dropout && op != .dropoutMask }
}
