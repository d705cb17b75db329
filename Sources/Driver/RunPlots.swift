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

/// Draws a line chart from a CSV file with the columns `series,x,y` and, optionally, `low,high`
/// (a spread drawn as dashed lines in the series' colour, e.g. the least and greatest value over
/// seeds). Series are drawn in the order they first appear. The PNG is written whole or not at all.
public func plotLines(csv: String, png: String, title: String, xLabel: String, yLabel: String) throws {
    guard let text = try? String(contentsOfFile: csv, encoding: .utf8) else { throw StageError("\(csv): error: cannot read") }
    let lines = text.split(whereSeparator: \.isNewline)
    guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }),
          let si = header.firstIndex(of: "series"), let xi = header.firstIndex(of: "x"), let yi = header.firstIndex(of: "y") else {
        throw StageError("\(csv):1:1: error: the header must name the columns series,x,y (and optionally low,high)")
    }
    let li = header.firstIndex(of: "low"), hi = header.firstIndex(of: "high")
    var order: [String] = [], points: [String: [(x: Double, y: Double, low: Double?, high: Double?)]] = [:]
    for (n, line) in lines.enumerated().dropFirst() {
        let f = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard f.count == header.count else { throw StageError("\(csv):\(n + 1):1: error: expected \(header.count) columns, found \(f.count)") }
        func number(_ i: Int?) throws -> Double? {
            guard let i, !f[i].isEmpty else { return nil }
            guard let v = Double(f[i]) else { throw StageError("\(csv):\(n + 1):\(f[..<i].map { $0.count + 1 }.reduce(1, +)): error: '\(f[i])' is not a number") }
            return v
        }
        guard let x = try number(xi), let y = try number(yi) else { throw StageError("\(csv):\(n + 1):1: error: x and y are needed") }
        if points[f[si]] == nil { order.append(f[si]) }
        points[f[si], default: []].append((x, y, try number(li), try number(hi)))
    }
    guard !order.isEmpty else { throw StageError("\(csv): error: no rows") }
    var series: [Series] = []
    for (k, name) in order.enumerated() {
        let p = points[name]!, color = Color.palette[k % Color.palette.count]
        series.append(Series(name: name, points: p.map { ($0.x, $0.y) }, color: color))
        for band in [p.compactMap { q in q.low.map { (q.x, $0) } }, p.compactMap { q in q.high.map { (q.x, $0) } }] where !band.isEmpty {
            series.append(Series(name: "", points: band, color: color, dashed: true))
        }
    }
    let tmp = png + ".tmp.png"
    try Plots.lineChart(title: title, xLabel: xLabel, yLabel: yLabel, series: series).writePNG(tmp)
    guard rename(tmp, png) == 0 else { throw StageError("\(png): error: cannot write (\(String(cString: strerror(errno))))") }
}

/// Reads only the metadata of a safetensors file.
public enum SafeTensorsMetadata {
    public static func read(_ path: String) throws -> [String: String] {
        try Tensors.SafeTensors.read(path: path).metadata
    }
}
