import Foundation
import IR
import Kernels

/// Where a value lives while a schedule runs.
public enum Storage: Hashable, CustomStringConvertible {
    /// Fed by the caller.
    case input
    /// A parameter (weights live outside the arena).
    case param
    /// A graph output (loss, gradients, predictions), owned by the runtime outside the arena.
    case output
    /// Computed once from frozen parameters before the first step, outside the arena.
    case folded
    /// A temporary at a byte offset in the one arena.
    case arena(offset: Int)

    public var description: String {
        switch self {
        case .input: return "input"
        case .param: return "param"
        case .output: return "output"
        case .folded: return "folded"
        case .arena(let o): return "arena@\(o)"
        }
    }
}

/// One value of the schedule: its bound type, size, home, and the kernels that write and last read it.
public struct BufferInfo: Hashable {
    public var name: String
    public var type: TensorType
    public var bytes: Int
    public var storage: Storage
    /// Index of the kernel that writes it (-1: written before the schedule runs).
    public var def: Int
    /// Index of the last kernel that reads it (the last kernel for outputs).
    public var lastUse: Int
}

/// A value's place among a schedule's buffers (`Schedule.bufferNames`): kernels name their
/// operands by it, resolved once when the schedule is built (XLA's `BufferAllocation::Slice`).
public struct BufferID: Hashable, Sendable {
    public var index: Int
}

/// One kernel launch: a kernel call over its buffers. `node` is the IR node it came from (for a
/// fused kernel the last of them, see `node.origins`), kept for messages and the printout.
public struct Kernel {
    public var node: Node
    public var call: KernelCall
    /// The operand buffers in the call's order, the output, and the recorded max-pool winners.
    public var operands: [BufferID] = []
    public var output = BufferID(index: -1)
    public var winners: BufferID?
    /// Whether the output overwrites its first input's buffer (see `KernelCall.mayOverwriteFirstOperand`).
    public var inPlace: Bool
    public var flops: Int
    /// Bytes of scratch the call uses while it runs, and where the planner put them in the arena.
    public var workspaceBytes: Int
    public var workspaceOffset: Int = 0

    public var label: String { call.label }
}

/// A linear list of kernels over planned buffers, for one batch size.
public struct Schedule {
    /// The graph after the passes, with N bound.
    public var graph: Graph
    public var batch: Int
    /// Kernels that depend only on frozen parameters: run once, results kept.
    public var prologue: [Kernel]
    public var kernels: [Kernel]
    public var buffers: [String: BufferInfo]
    /// Every buffer's name, in `BufferID` order.
    public var bufferNames: [String]
    /// Size of the arena that holds every temporary.
    public var arenaBytes: Int
    /// What the arena would need without reuse.
    public var unplannedBytes: Int
    /// What each pass did.
    public var passLog: [(pass: String, changed: Bool)]

    public var totalFlops: Int { kernels.reduce(0) { $0 + $1.flops } }
}

/// Options of `Scheduler.schedule` (callers compile through `Runtime.CompiledGraph`, which sets
/// them from the environment).
public struct ScheduleOptions {
    public var batch: Int
    /// Values of the named sizes other than N (`K`: the class count).
    public var symbols: [String: Int] = [:]
    /// Fuse activations into the GEMM-based ops that feed them.
    public var fuse: Bool
    /// Reuse arena memory across buffers whose lifetimes do not overlap. Off: every temporary gets
    /// its own range (for bisecting; `FN2E_NO_MEMORY_PLANNER=1`).
    public var planMemory: Bool
    /// The convolution algorithms the scheduler may choose from (im2col is always possible).
    public var convAlgorithms: Set<ConvAlgorithm>

    public init(batch: Int, symbols: [String: Int] = [:], fuse: Bool = true, planMemory: Bool = true,
                convAlgorithms: Set<ConvAlgorithm> = Set(ConvAlgorithm.allCases)) {
        self.batch = batch
        self.symbols = symbols
        self.fuse = fuse
        self.planMemory = planMemory
        self.convAlgorithms = convAlgorithms
    }
}
