import Foundation

/// Seconds spent in each stage of the photo pipeline (decoding, P-Net's input and runs, R-Net's,
/// O-Net's, alignment, the classifier), summed over threads, when `FN2E_PROFILE=1` (the switch
/// that also makes executors time their kernels); otherwise `time` only runs its body. A stage that
/// runs a net also sums the net's arithmetic, so the report gives its GFLOP/s.
public enum StageClock {
    nonisolated(unsafe) public static var enabled = ProcessInfo.processInfo.environment["FN2E_PROFILE"] == "1"
    nonisolated(unsafe) static var seconds: [String: (total: Double, calls: Int, flops: Int)] = [:]
    static let lock = NSLock()

    /// Runs `body`, adding its time (and `flops`, the arithmetic it does, read only when profiling) to `stage`.
    @inline(__always)
    public static func time<R>(_ stage: String, flops: @autoclosure () -> Int = 0, _ body: () throws -> R) rethrows -> R {
        guard enabled else { return try body() }
        let flops = flops()
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer {
            let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            lock.withLock {
                let s = seconds[stage, default: (0, 0, 0)]
                seconds[stage] = (s.total + t, s.calls + 1, s.flops + flops)
            }
        }
        return try body()
    }

    /// One line per stage, slowest first: seconds and calls, and for a net its GFLOP and GFLOP/s;
    /// empty when not profiling.
    public static func report() -> String {
        lock.withLock {
            seconds.sorted { $0.value.total > $1.value.total }.map { stage, t in
                "  " + stage.padding(toLength: 18, withPad: " ", startingAt: 0) + String(format: "%8.3f s %7d calls", t.total, t.calls)
                    + (t.flops > 0 ? String(format: " %9.3f GFLOP %6.1f GFLOP/s", Double(t.flops) / 1e9, Double(t.flops) / 1e9 / t.total) : "") + "\n"
            }.joined()
        }
    }
}
