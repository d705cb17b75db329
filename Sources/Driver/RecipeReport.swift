// The results of a recipe: the table per method, fold and seed, the paired differences of
// methods over the same runs with their Student-t intervals, and the summed confusion matrices.
import Distributed
import Foundation
import Plot
import Tensors
import Training

extension Evaluation {
    var shortText: String {
        confusion.isEmpty ? String(format: "test loss %.4f", count == 0 ? 0 : loss / Double(count))
            : String(format: "test accuracy %.2f%%, mean per-class %.2f%%", 100 * accuracy, 100 * meanClassAccuracy)
    }
}

/// The results table: per method, accuracy and mean per-class accuracy per fold (averaged over
/// seeds), mean ± std over folds for each seed and over the seeds' means, and the summed confusion.
public struct RecipeReport {
    public var text: String
    public var json: [String: Any]
    public var confusions: [String: [[Int]]]

    public init(_ results: [Recipe.RunResult], classes: [String], methods: [String]) {
        func meanStd(_ xs: [Double]) -> (Double, Double) {
            guard !xs.isEmpty else { return (0, 0) }
            let m = xs.reduce(0, +) / Double(xs.count)
            let v = xs.count > 1 ? xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1) : 0
            return (m, v.squareRoot())
        }
        let folds = Set(results.map(\.fold)).sorted(), seeds = Set(results.map(\.seed)).sorted()
        var text = "method           " + folds.map { String(format: "fold%-3d", $0) }.joined(separator: " ") + "   accuracy (mean ± std over folds)   mean per-class\n"
        var json: [String: Any] = ["classes": classes, "folds": folds, "seeds": seeds]
        var confusions: [String: [[Int]]] = [:]
        for method in methods where results.contains(where: { $0.method == method }) {
            let rs = results.filter { $0.method == method }
            let perFold = folds.map { f in meanStd(rs.filter { $0.fold == f }.map { 100 * $0.evaluation.accuracy }).0 }
            let seedAcc = seeds.map { s in meanStd(rs.filter { $0.seed == s }.map { 100 * $0.evaluation.accuracy }) }
            let seedMCA = seeds.map { s in meanStd(rs.filter { $0.seed == s }.map { 100 * $0.evaluation.meanClassAccuracy }) }
            let overall = meanStd(rs.map { 100 * $0.evaluation.accuracy })
            let overallMCA = meanStd(rs.map { 100 * $0.evaluation.meanClassAccuracy })
            let acrossSeeds = meanStd(seedAcc.map(\.0))
            text += method.padding(toLength: 16, withPad: " ", startingAt: 0) + " "
                + perFold.map { String(format: "%6.2f ", $0) }.joined(separator: " ")
                + String(format: "  %6.2f ± %5.2f                  %6.2f ± %5.2f\n", overall.0, overall.1, overallMCA.0, overallMCA.1)
            for (k, s) in seeds.enumerated() where seeds.count > 1 {
                text += String(format: "  seed %-9d %@ %6.2f ± %5.2f (mean per-class %6.2f ± %5.2f)\n", s,
                               String(repeating: " ", count: max(0, folds.count * 8 - 14)), seedAcc[k].0, seedAcc[k].1, seedMCA[k].0, seedMCA[k].1)
            }
            if seeds.count > 1 { text += String(format: "  across seeds: %6.2f ± %5.2f\n", acrossSeeds.0, acrossSeeds.1) }
            var conf = Array(repeating: Array(repeating: 0, count: classes.count), count: classes.count)
            for r in rs where r.evaluation.confusion.count == classes.count {
                for i in 0..<classes.count { for j in 0..<classes.count { conf[i][j] += r.evaluation.confusion[i][j] } }
            }
            confusions[method] = conf
            json[method] = ["per_fold_accuracy": perFold, "accuracy_mean": overall.0, "accuracy_std": overall.1,
                            "mean_class_accuracy_mean": overallMCA.0, "mean_class_accuracy_std": overallMCA.1,
                            "accuracy_by_seed": seedAcc.map(\.0), "confusion": conf,
                            "train_seconds": rs.reduce(0) { $0 + $1.seconds }]
        }
        let paired = RecipeReport.pairedDifferences(results, methods: methods)
        if !paired.isEmpty {
            text += "\npaired differences in accuracy over the same (seed, fold) runs, percentage points (first − second):\n"
                + "pair".padding(toLength: 40, withPad: " ", startingAt: 0) + "    n     mean      se   95% interval        wins/ties/losses\n"
            for d in paired {
                text += "\(d.a) − \(d.b)".padding(toLength: 40, withPad: " ", startingAt: 0)
                    + String(format: " %4d  %+7.2f  %6.2f   [%+6.2f, %+6.2f]    %d/%d/%d\n", d.n, d.mean, d.se, d.low, d.high, d.wins, d.ties, d.losses)
            }
            json["paired"] = paired.map { d in
                ["first": d.a, "second": d.b, "n": d.n, "mean": d.mean, "se": d.se, "ci95": [d.low, d.high],
                 "wins": d.wins, "ties": d.ties, "losses": d.losses] as [String: Any]
            }
        }
        for (method, conf) in confusions.sorted(by: { $0.key < $1.key }) {
            var e = Evaluation(split: method, classes: classes.count)
            e.confusion = conf
            e.count = conf.flatMap { $0 }.reduce(0, +)
            text += "\nsummed confusion, \(method) (accuracy \(String(format: "%.2f", 100 * e.accuracy))%):\n" + e.confusionText(classes)
        }
        (self.text, self.json, self.confusions) = (text, json, confusions)
    }

    /// One pair of methods compared run by run: accuracy of `a` minus that of `b` on the same
    /// (seed, fold), in percentage points.
    public struct PairedDifference {
        public var a: String, b: String
        public var n: Int
        public var mean: Double, se: Double, low: Double, high: Double
        public var wins: Int, ties: Int, losses: Int
    }

    /// Every pair of methods (in the order given) over the (seed, fold) runs both have: mean paired
    /// difference, its standard error, a 95% Student-t interval, and wins/ties/losses. The runs share
    /// training data across folds, so the interval is a guide, not an exact test.
    public static func pairedDifferences(_ results: [Recipe.RunResult], methods: [String]) -> [PairedDifference] {
        var accuracy: [String: [String: Double]] = [:]
        for r in results { accuracy[r.method, default: [:]]["\(r.seed)/\(r.fold)"] = 100 * r.evaluation.accuracy }
        let present = methods.filter { accuracy[$0] != nil }
        var out: [PairedDifference] = []
        for (i, a) in present.enumerated() {
            for b in present[(i + 1)...] {
                let keys = accuracy[a]!.keys.filter { accuracy[b]![$0] != nil }.sorted()
                let ds = keys.map { accuracy[a]![$0]! - accuracy[b]![$0]! }
                guard !ds.isEmpty else { continue }
                let n = Double(ds.count), mean = ds.reduce(0, +) / n
                let sd = ds.count > 1 ? (ds.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)).squareRoot() : 0
                let se = sd / n.squareRoot(), t = ds.count > 1 ? studentT975(degrees: ds.count - 1) : 0
                out.append(PairedDifference(a: a, b: b, n: ds.count, mean: mean, se: se, low: mean - t * se, high: mean + t * se,
                                            wins: ds.filter { $0 > 1e-9 }.count, ties: ds.filter { abs($0) <= 1e-9 }.count,
                                            losses: ds.filter { $0 < -1e-9 }.count))
            }
        }
        return out
    }

    /// The 97.5% quantile of Student's t (two-sided 95%): exact table values up to 30 degrees of
    /// freedom, then the Cornish-Fisher expansion around the normal quantile (error < 1e-3).
    public static func studentT975(degrees df: Int) -> Double {
        let table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
                     2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
        if df >= 1 && df <= table.count { return table[df - 1] }
        let z = 1.959964, v = Double(df), z3 = z * z * z, z5 = z3 * z * z
        return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v)
    }

    /// Writes results.txt, results.json and confusion_METHOD.png into `dir`.
    public func write(to dir: String, classes: [String]) throws -> [String] {
        var files = [dir + "/results.txt", dir + "/results.json"]
        try text.write(toFile: files[0], atomically: true, encoding: .utf8)
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: files[1]), options: .atomic)
        for (method, conf) in confusions {
            let path = dir + "/confusion_\(method).png"
            try Plots.confusionMatrix(conf, classes: classes, title: "\(method): summed over folds and seeds").writePNG(path)
            files.append(path)
        }
        return files
    }
}
