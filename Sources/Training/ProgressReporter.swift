import Foundation

/// What a run says while it trains: after each step a progress line (epoch, step, loss, rate,
/// throughput, ETA) — a bar redrawn in place on a terminal, otherwise a line on the first step, every
/// `display` steps and the last — and after each evaluation one line per split. `metrics.jsonl`
/// gets only what the seed determines (throughput stays on the progress line), so two runs, or a run
/// and its resumed twin, write the same file.
public final class ProgressReporter {
    public let totalSteps: Int
    public let stepsPerEpoch: Int
    public let batch: Int
    public let display: Int
    /// Whether evaluations report class accuracy (the graph has class scores) or only the loss.
    public let classification: Bool
    let metrics: MetricsLog
    let log: (String) -> Void
    /// Writes to a terminal (the bar); nil when stderr is not one.
    let terminal: ((String) -> Void)?
    let startStep: Int
    let start: Date

    public init(totalSteps: Int, stepsPerEpoch: Int, batch: Int, display: Int, classification: Bool, startStep: Int,
                metrics: MetricsLog, log: @escaping (String) -> Void, terminal: ((String) -> Void)?) {
        (self.totalSteps, self.stepsPerEpoch, self.batch, self.display) = (totalSteps, stepsPerEpoch, batch, max(1, display))
        (self.classification, self.startStep, self.metrics, self.log, self.terminal) = (classification, startStep, metrics, log, terminal)
        start = Date()
    }

    /// Standard error when it is a terminal.
    public static var standardErrorTerminal: ((String) -> Void)? {
        isatty(2) == 1 ? { FileHandle.standardError.write(Data($0.utf8)) } : nil
    }

    /// Reports step `step` (counted from 1) done with its loss and learning rate.
    public func stepDone(_ step: Int, loss: Float, lr: Double) {
        let elapsed = Date().timeIntervalSince(start)
        let rate = Double((step - startStep) * batch) / max(elapsed, 1e-9)
        let eta = Double(totalSteps - step) * Double(batch) / max(rate, 1e-9)
        let epoch = Double(step) / Double(stepsPerEpoch)
        metrics.write(["type": "step", "step": step, "epoch": epoch, "loss": Double(loss), "lr": lr])
        let line = String(format: "epoch %.2f step %d/%d loss %.5f lr %.3g %.1f img/s ETA %@", epoch, step, totalSteps,
                          loss, lr, rate, Self.duration(eta))
        if let terminal {
            let width = 30, done = width * step / totalSteps
            terminal("\r[" + String(repeating: "=", count: done) + String(repeating: " ", count: width - done) + "] " + line + "\u{1B}[K")
            if step == totalSteps { terminal("\n") }
        } else if step % display == 0 || step == totalSteps || step == startStep + 1 {
            log(line)
        }
    }

    /// Runs `evaluate` after step `step` and reports each split (a regression graph reports its loss only).
    public func evaluation(at step: Int, _ evaluate: () throws -> [Evaluation]) rethrows -> [Evaluation] {
        terminal?("\n")
        let evals = try evaluate()
        for e in evals {
            var j = e.json
            j["step"] = step
            if !classification { j.removeValue(forKey: "accuracy"); j.removeValue(forKey: "mean_class_accuracy"); j.removeValue(forKey: "confusion") }
            metrics.write(j)
            log(classification ? e.summary : String(format: "%@: loss %.5f (%d samples)", e.split, e.loss / Double(max(e.count, 1)), e.count))
        }
        return evals
    }

    /// `1m05s`, `2h03m`, or `?`.
    public static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s)
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}
