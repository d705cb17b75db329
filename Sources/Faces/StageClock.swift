import Foundation

/// Seconds spent in each stage of the photo pipeline (decoding, P-Net's input and runs, R-Net's,
/// O-Net's, alignment, the classifier), summed over threads, when `FN2E_PROFILE=1` (the switch
/// that also makes executors time their kernels); otherwise `time` only runs its body.
public enum StageClock {
    public static let enabled = ProcessInfo.processInfo.environment["FN2E_PROFILE"] == "1"
    nonisolated(unsafe) static var seconds: [String: (total: Double, calls: Int)] = [:]
    static let lock = NSLock()

    /// Runs `body`, adding its time to `stage`.
    @inline(__always)
    public static func time<R>(_ stage: String, _ body: () throws -> R) rethrows -> R {
        guard enabled else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer {
            let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            lock.withLock { seconds[stage, default: (0, 0)] = (seconds[stage, default: (0, 0)].total + t, seconds[stage, default: (0, 0)].calls + 1) }
        }
        return try body()
    }

    /// One line per stage, slowest first: seconds and calls; empty when not profiling.
    public static func report() -> String {
        lock.withLock {
            seconds.sorted { $0.value.total > $1.value.total }.map { stage, t in
                "  " + stage.padding(toLength: 18, withPad: " ", startingAt: 0) + String(format: "%8.3f s %7d calls\n", t.total, t.calls)
            }.joined()
        }
    }
}
