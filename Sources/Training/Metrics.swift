import Foundation

/// Classification results on a set of samples: loss, accuracy, mean per-class accuracy (the mean
/// of per-class recalls over classes present), and the confusion matrix `[true][predicted]`.
public struct Evaluation {
    public var split: String
    public var count: Int
    public var loss: Double
    public var confusion: [[Int]]

    public var correct: Int { confusion.indices.reduce(0) { $0 + confusion[$1][$1] } }
    public var accuracy: Double { count == 0 ? 0 : Double(correct) / Double(count) }
    public var meanClassAccuracy: Double {
        let recalls = confusion.indices.compactMap { c -> Double? in
            let n = confusion[c].reduce(0, +)
            return n == 0 ? nil : Double(confusion[c][c]) / Double(n)
        }
        return recalls.isEmpty ? 0 : recalls.reduce(0, +) / Double(recalls.count)
    }

    public init(split: String, classes: Int) {
        self.split = split
        count = 0
        loss = 0
        confusion = Array(repeating: Array(repeating: 0, count: classes), count: classes)
    }

    /// Adds rows of class scores (`[n, classes]`) with their labels; the loss is softmax cross-entropy.
    public mutating func add(scores: UnsafePointer<Float>, labels: [Int], classes: Int) {
        for (r, label) in labels.enumerated() {
            let row = scores + r * classes
            var best = 0
            var m = row[0]
            for c in 1..<classes where row[c] > m { m = row[c]; best = c }
            var s = 0.0
            for c in 0..<classes { s += exp(Double(row[c] - m)) }
            loss += (log(s) + Double(m)) - Double(row[label])
            confusion[label][best] += 1
            count += 1
        }
    }

    /// Adds rows of class probabilities (several views' averaged, say) with their labels; the loss
    /// is the label's negative log probability.
    public mutating func add(probabilities: [[Double]], labels: [Int]) {
        for (row, label) in zip(probabilities, labels) {
            let best = row.indices.reduce(0) { row[$1] > row[$0] ? $1 : $0 }
            loss -= log(max(row[label], Double.leastNormalMagnitude))
            confusion[label][best] += 1
            count += 1
        }
    }

    /// The softmax of each row of class scores (`[rows, classes]`).
    public static func probabilities(scores: UnsafePointer<Float>, rows: Int, classes: Int) -> [[Double]] {
        (0..<rows).map { r in
            let row = (0..<classes).map { Double(scores[r * classes + $0]) }
            let m = row.max()!
            let e = row.map { exp($0 - m) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
    }

    /// The mean of several views' probabilities, row by row.
    public static func mean(_ views: [[[Double]]]) -> [[Double]] {
        views.dropFirst().reduce(views[0]) { sum, v in zip(sum, v).map { zip($0, $1).map(+) } }
            .map { $0.map { $0 / Double(views.count) } }
    }

    /// One line; a graph without class scores (a stage-1 regression) has only its loss to report.
    public var summary: String {
        if count == 0 { return String(format: "%@: loss %.4f (no class scores)", split, loss) }
        return String(format: "%@: accuracy %.2f%% (%d/%d), mean per-class %.2f%%, loss %.4f",
                      split, 100 * accuracy, correct, count, 100 * meanClassAccuracy, loss / Double(count))
    }

    /// Rows of the confusion matrix with class names.
    public func confusionText(_ classes: [String]) -> String {
        let w = max(8, classes.map(\.count).max() ?? 0)
        var s = "true \\ predicted".padding(toLength: w, withPad: " ", startingAt: 0) + " "
            + classes.map { String($0.prefix(6)).padding(toLength: 7, withPad: " ", startingAt: 0) }.joined() + "\n"
        for (i, row) in confusion.enumerated() {
            s += classes[i].padding(toLength: w, withPad: " ", startingAt: 0) + " "
                + row.map { String($0).padding(toLength: 7, withPad: " ", startingAt: 0) }.joined() + "\n"
        }
        return s
    }

    public var json: [String: Any] {
        ["type": "eval", "split": split, "count": count, "loss": count == 0 ? loss : loss / Double(count),
         "accuracy": accuracy, "mean_class_accuracy": meanClassAccuracy, "confusion": confusion]
    }
}

/// Appends one JSON object per line to `metrics.jsonl`.
public final class MetricsLog {
    private let handle: FileHandle?

    public init(path: String, append: Bool) throws {
        if !append || !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw TrainingError("cannot create \(path)")
            }
        }
        handle = FileHandle(forWritingAtPath: path)
        handle?.seekToEndOfFile()
    }

    /// A log that writes nothing (the ranks other than 0 of a data-parallel run).
    public init() { handle = nil }

    public func write(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        handle?.write(data + Data("\n".utf8))
    }

    deinit { try? handle?.close() }

    /// Every line of a metrics file as a dictionary (unreadable lines are skipped).
    public static func read(_ path: String) -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return parse(data)
    }

    /// The lines of a metrics file's bytes as dictionaries (unreadable lines are skipped).
    public static func parse(_ data: Data) -> [[String: Any]] {
        String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }
}
