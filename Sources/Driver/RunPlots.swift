import Foundation
import Plot
import Tensors
import Training

/// Draws a run's curves from its metrics.jsonl: `loss.png` (training loss per step and evaluation
/// loss), `accuracy.png` (evaluation accuracy and mean per-class accuracy) and `confusion.png`
/// (the last test evaluation). Returns the files written.
public func plotRun(_ dir: String, classes: [String]) throws -> [String] {
    let rows = MetricsLog.read(dir + "/metrics.jsonl")
    guard !rows.isEmpty else { throw StageError("\(dir)/metrics.jsonl has no metrics") }
    func num(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }
    let steps = rows.filter { $0["type"] as? String == "step" }
    let evals = rows.filter { $0["type"] as? String == "eval" }
    var written: [String] = []

    var loss = [Series(name: "train loss", points: steps.compactMap { r in num(r["step"]).flatMap { s in num(r["loss"]).map { (s, $0) } } })]
    for split in ["validation", "test"] {
        let pts = evals.filter { $0["split"] as? String == split }.compactMap { r in num(r["step"]).flatMap { s in num(r["loss"]).map { (s, $0) } } }
        if !pts.isEmpty { loss.append(Series(name: "\(split) loss", points: pts)) }
    }
    let lossPath = dir + "/loss.png"
    try Plots.lineChart(title: "Loss", xLabel: "step", yLabel: "loss", series: loss, logY: true).writePNG(lossPath)
    written.append(lossPath)

    var acc: [Series] = []
    for split in ["validation", "test"] {
        let e = evals.filter { $0["split"] as? String == split }
        let a = e.compactMap { r in num(r["step"]).flatMap { s in num(r["accuracy"]).map { (s, 100 * $0) } } }
        let m = e.compactMap { r in num(r["step"]).flatMap { s in num(r["mean_class_accuracy"]).map { (s, 100 * $0) } } }
        if !a.isEmpty { acc.append(Series(name: "\(split) accuracy", points: a)) }
        if !m.isEmpty { acc.append(Series(name: "\(split) mean per-class", points: m, dashed: true)) }
    }
    if !acc.isEmpty {
        let path = dir + "/accuracy.png"
        try Plots.lineChart(title: "Accuracy (%)", xLabel: "step", yLabel: "%", series: acc).writePNG(path)
        written.append(path)
    }
    if let last = evals.last(where: { $0["split"] as? String == "test" && $0["confusion"] != nil }) ?? evals.last(where: { $0["confusion"] != nil }),
       let m = last["confusion"] as? [[Any]] {
        let counts = m.map { $0.map { (($0 as? NSNumber)?.intValue) ?? 0 } }
        let names = classes.count == counts.count ? classes : counts.indices.map { "class \($0)" }
        let path = dir + "/confusion.png"
        try Plots.confusionMatrix(counts, classes: names, title: "Confusion (\(last["split"] as? String ?? ""), step \(num(last["step"]).map { Int($0) } ?? 0))").writePNG(path)
        written.append(path)
    }
    return written
}

/// Reads only the metadata of a safetensors file.
public enum SafeTensorsMetadata {
    public static func read(_ path: String) throws -> [String: String] {
        try Tensors.SafeTensors.read(path: path).metadata
    }
}
