import IR

extension Schedule {
    /// Replays the schedule over the arena and returns every read of a value whose bytes were
    /// overwritten since it was written, every read before a write, and every overlap of live buffers.
    /// Empty means the memory plan is sound.
    public func memoryProblems() -> [String] {
        var problems: [String] = []
        // Arena ranges and the value that last wrote each.
        var owners: [(lo: Int, hi: Int, value: String)] = []
        var written: Set<String> = Set(buffers.values.filter { !Scheduler.isArena($0.storage) && $0.def < 0 }.map(\.name))
        for (idx, k) in kernels.enumerated() {
            for o in k.node.operands {
                guard let b = buffers[o] else { problems.append("kernel \(idx): unknown buffer %\(o)"); continue }
                if !written.contains(o) { problems.append("kernel \(idx) (\(k.node.name)) reads %\(o) before it is written") }
                if b.lastUse < idx { problems.append("kernel \(idx) (\(k.node.name)) reads %\(o) after its last planned use \(b.lastUse)") }
                if case .arena(let off) = b.storage {
                    let clobbered = owners.contains { $0.value != o && $0.lo < off + b.bytes && off < $0.hi }
                    let intact = owners.contains { $0.value == o && $0.lo == off }
                    if clobbered || !intact { problems.append("kernel \(idx) (\(k.node.name)) reads %\(o), whose bytes were overwritten") }
                }
            }
            let name = k.node.name
            if k.workspaceBytes > 0 {
                // The workspace may only hold bytes of values no longer needed.
                let (lo, hi) = (k.workspaceOffset, k.workspaceOffset + k.workspaceBytes)
                for b in buffers.values where Scheduler.isArena(b.storage) && b.def <= idx && b.lastUse >= idx {
                    if case .arena(let off) = b.storage, off < hi, lo < off + b.bytes {
                        problems.append("kernel \(idx) (\(name)): its workspace overlaps %\(b.name), live at that kernel")
                    }
                }
                owners.removeAll { $0.lo < hi && lo < $0.hi }
            }
            for value in [name] + (k.call.winners.map { [$0.buffer] } ?? []) {
                guard let out = buffers[value] else { continue }
                written.insert(value)
                if case .arena(let off) = out.storage {
                    let lo = off, hi = off + out.bytes
                    owners.removeAll { $0.lo < hi && lo < $0.hi }
                    owners.append((lo, hi, value))
                }
            }
        }
        for o in graph.outputs where !written.contains(o) && buffers[o]?.def ?? -1 >= 0 {
            problems.append("output %\(o) is never written")
        }
        return problems
    }

    /// The largest number of arena bytes live at once, from the buffers' lifetimes and each
    /// kernel's workspace. An in-place kernel's output and the input it overwrites count once.
    public var peakLiveBytes: Int {
        var peak = 0
        for (idx, k) in kernels.enumerated() {
            let live = buffers.values.filter { Scheduler.isArena($0.storage) && $0.def <= idx && $0.lastUse >= idx }
            var bytes = live.reduce(0) { $0 + $1.bytes } + k.workspaceBytes
            if k.inPlace, let first = k.node.operands.first, let b = buffers[first], live.contains(b) { bytes -= b.bytes }
            peak = max(peak, bytes)
        }
        return peak
    }
}

extension Schedule {
    /// Text form: the passes, then each kernel with the IR nodes it fused, its buffers, offsets and FLOPs.
    public func render(title: String) -> String {
        let num = thousands
        func where_(_ v: String) -> String {
            guard let b = buffers[v] else { return "%\(v)" }
            return "%\(v)(\(b.storage))"
        }
        var out = "schedule \(title) (batch \(batch))\n"
        out += "passes: " + passLog.map { "\($0.pass)\($0.changed ? "" : " (no change)")" }.joined(separator: ", ") + "\n"
        func line(_ k: Kernel, _ tag: String) -> String {
            let fused = k.node.origins.isEmpty ? "" : " [" + k.node.origins.joined(separator: ", ") + "]"
            let b = buffers[k.node.name]!
            let ws = k.workspaceBytes > 0 ? ", workspace \(num(k.workspaceBytes)) bytes arena@\(k.workspaceOffset)" : ""
            let winners = k.call.winners.flatMap { w in buffers[w.buffer].map { ", winners %\(w.buffer) \($0.type) \($0.storage)" } } ?? ""
            return "  \(tag) \(k.label)\(fused): \(k.node.operands.map(where_).joined(separator: ", ")) -> %\(k.node.name) \(b.type) \(b.storage)"
                + (k.inPlace ? " in-place" : "") + winners + ws + ", \(num(k.flops)) flops\n"
        }
        for (i, k) in prologue.enumerated() { out += line(k, "fold#\(i)") }
        for (i, k) in kernels.enumerated() { out += line(k, "#\(i)") }
        out += "kernels: \(kernels.count) (+\(prologue.count) folded), flops: \(num(totalFlops))\n"
        out += "arena: \(num(arenaBytes)) bytes planned, \(num(unplannedBytes)) without reuse, peak live \(num(peakLiveBytes))\n"
        return out
    }
}
