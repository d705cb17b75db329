import Dispatch
import Foundation

/// Splits loops over a few workers with `DispatchQueue.concurrentPerform`. GEMM threads itself
/// through OpenBLAS; this is for our own loops, and only when the work pays for the threads.
public enum Parallel {
    /// Workers for our own loops: two (the target machine has two cores), never more than the CPUs;
    /// `FN2E_THREADS` lowers it (the recipe runs one single-threaded training per core).
    public static let workers = max(1, min(Int(ProcessInfo.processInfo.environment["FN2E_THREADS"] ?? "") ?? 2,
                                           ProcessInfo.processInfo.activeProcessorCount))
    /// Below this many scalar operations a loop runs on the calling thread.
    public static let minimumWork = 1 << 16
    /// Set while the caller runs one worker of its own per core (the photo pipeline): our loops then
    /// run on the calling thread, their iterations in turn, as OpenBLAS on one thread meanwhile.
    nonisolated(unsafe) public static var serial = false

    /// `DispatchQueue.concurrentPerform`, or the iterations in turn while `serial`.
    public static func perform(iterations: Int, _ body: (Int) -> Void) {
        if serial { (0..<iterations).forEach(body) } else { DispatchQueue.concurrentPerform(iterations: iterations, execute: body) }
    }

    /// Calls `body` on disjoint chunks covering `0..<count`, in parallel when `count · costPerItem`
    /// reaches `minimumWork`. `body` must only write to locations owned by its chunk.
    @inline(__always)
    public static func forChunks(_ count: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        let n = workers
        if n <= 1 || serial || count < 2 || count &* max(1, costPerItem) < minimumWork {
            if count > 0 { body(0..<count) }
            return
        }
        let chunks = min(n, count)
        DispatchQueue.concurrentPerform(iterations: chunks) { t in
            let lo = count * t / chunks, hi = count * (t + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }
}
