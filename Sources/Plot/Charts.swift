import Foundation
import Tensors

/// One line-chart series. Points with a non-finite coordinate (or y ≤ 0 on a log axis) are skipped
/// and break the line. Series with few points (≤ `markerLimit`) also get a marker at each point.
public struct Series: Sendable {
    public var name: String
    public var points: [(Double, Double)]
    /// nil: taken from `Color.palette` by series index.
    public var color: Color?
    public var dashed: Bool

    public init(name: String, points: [(Double, Double)], color: Color? = nil, dashed: Bool = false) {
        (self.name, self.points, self.color, self.dashed) = (name, points, color, dashed)
    }
}

/// One image-grid cell: an image `[C, H, W]` (C = 1 or 3, 0...255), an optional heat map
/// (`[H', W']` or `[1, H', W']`, any resolution) to overlay, and an optional caption under it.
public struct GridImage: Sendable {
    public var image: Tensor
    public var heat: Tensor?
    public var caption: String?
    public init(_ image: Tensor, heat: Tensor? = nil, caption: String? = nil) { (self.image, self.heat, self.caption) = (image, heat, caption) }
}

/// Chart renderers; each returns a `Canvas` to write with `writePNG`.
public enum Plots {
    static let titleScale = 2, top = 44, gridColor = Color.gray(228), frameColor = Color.gray(90)
    /// Series with at most this many drawable points get markers.
    public static let markerLimit = 40

    // MARK: Line chart

    /// A line chart with "nice" ticks, grid, legend (top right, for named series) and optional log y.
    public static func lineChart(title: String, xLabel: String, yLabel: String, series: [Series],
                                 width: Int = 800, height: Int = 500, logY: Bool = false) -> Canvas {
        var canvas = Canvas(width: width, height: height)
        let drawable = series.map { s in s.points.filter { $0.0.isFinite && $0.1.isFinite && (!logY || $0.1 > 0) } }
        let all = drawable.flatMap { $0 }
        let xTicks = linearTicks(range(all.map(\.0), log: false), target: max(2, (width - 140) / 90))
        let yTicks = logY ? logTicks(range(all.map(\.1), log: true)) : linearTicks(range(all.map(\.1), log: false), target: max(2, (height - 110) / 50))
        let yLabelWidth = yTicks.labels.map { Canvas.textWidth($0.1) }.max() ?? 0
        let plot = Rect(x: 28 + yLabelWidth, y: top, width: width - 28 - yLabelWidth - 20, height: height - top - 46)
        let axes = Axes(rect: plot, x: xTicks.range, y: yTicks.range, logY: logY)
        canvas.axes = axes
        drawFrame(&canvas, title: title, xLabel: xLabel, yLabel: yLabel, axes: axes, xTicks: xTicks, yTicks: yTicks)

        canvas.clip = Rect(x: plot.x, y: plot.y, width: plot.width + 1, height: plot.height + 1)
        var legend: [(String, Color, Bool, Bool)] = []
        for (i, s) in series.enumerated() {
            let color = s.color ?? Color.palette[i % Color.palette.count]
            var run: [(Double, Double)] = []
            func flush() { canvas.polyline(run, color, thickness: 2, dash: s.dashed ? (7, 5) : nil); run = [] }
            for p in s.points {
                if p.0.isFinite && p.1.isFinite && (!logY || p.1 > 0) { let q = axes.pixel(x: p.0, y: p.1); run.append((q.x, q.y)) }
                else { flush() }
            }
            flush()
            let markers = drawable[i].count <= markerLimit
            if markers {   // markers may overhang the frame, so points on the edge stay visible
                canvas.clip = Rect(x: plot.x - 5, y: plot.y - 5, width: plot.width + 11, height: plot.height + 11)
                defer { canvas.clip = Rect(x: plot.x, y: plot.y, width: plot.width + 1, height: plot.height + 1) }
                for p in drawable[i] {
                    let q = axes.pixel(x: p.0, y: p.1)
                    canvas.fillCircle(q.x, q.y, radius: 4, .white)
                    canvas.fillCircle(q.x, q.y, radius: 3, color)
                }
            }
            if !s.name.isEmpty { legend.append((s.name, color, markers, s.dashed)) }
        }
        canvas.clip = nil
        drawLegend(&canvas, legend, in: plot)
        return canvas
    }

    // MARK: Confusion matrix

    /// A confusion matrix (`counts[true][predicted]`): cells coloured by the row-normalised value,
    /// each showing its count and row percentage; true classes down the left, predicted along the
    /// bottom (rotated when the names don't fit), per-row recall on the right, overall accuracy in the title.
    /// The canvas's `axes` span the cells: column c covers x in c...c+1, row r covers y in n-r-1...n-r.
    public static func confusionMatrix(_ counts: [[Int]], classes: [String], title: String, cell: Int = 64) -> Canvas {
        let n = classes.count
        precondition(counts.count == n && counts.allSatisfy { $0.count == n }, "confusion matrix must be \(n)x\(n)")
        let nameWidth = classes.map { Canvas.textWidth($0) }.max() ?? 0
        let rotated = nameWidth > cell - 6
        let colLabelHeight = rotated ? nameWidth + 8 : 14
        let left = 30 + nameWidth, recallWidth = 64
        let total = counts.joined().reduce(0, +), correct = (0..<n).reduce(0) { $0 + counts[$1][$1] }
        let accuracy = total > 0 ? String(format: " (accuracy %.1f%%)", 100 * Double(correct) / Double(total)) : ""
        // The canvas is widened, and the grid centred, so the whole title fits.
        let gridWidth = left + n * cell + recallWidth + 16
        let width = max(gridWidth, Canvas.textWidth(title + accuracy, scale: titleScale) + 20)
        var canvas = Canvas(width: width, height: top + 16 + n * cell + colLabelHeight + 24)
        let shift = (width - gridWidth) / 2
        let grid = Rect(x: left + shift, y: top + 16, width: n * cell, height: n * cell)
        canvas.axes = Axes(rect: grid, x: 0...Double(max(1, n)), y: 0...Double(max(1, n)), logY: false)
        canvas.text(title + accuracy, x: width / 2, y: 12, scale: titleScale, align: .center)

        for (r, row) in counts.enumerated() {
            let rowTotal = row.reduce(0, +)
            for (c, count) in row.enumerated() {
                let frac = rowTotal > 0 ? Double(count) / Double(rowTotal) : 0
                let box = Rect(x: grid.x + c * cell, y: grid.y + r * cell, width: cell, height: cell)
                let fillColor = ColorMap.blues.color(frac)
                canvas.fillRect(box, fillColor)
                let ink: Color = fillColor.luminance < 0.5 ? .white : .ink
                let big = cell >= 48 && String(count).count * 12 <= cell - 4 ? 2 : 1
                let pct = String(format: "%.0f%%", 100 * frac)
                let blockHeight = Canvas.textHeight(scale: big) + (cell >= 40 ? 12 : 0)
                let y0 = box.midY - blockHeight / 2
                canvas.text(String(count), x: box.midX, y: y0, color: ink, scale: big, align: .center)
                if cell >= 40 { canvas.text(pct, x: box.midX, y: y0 + Canvas.textHeight(scale: big) + 5, color: ink, align: .center) }
            }
            canvas.text(classes[r], x: grid.x - 6, y: grid.y + r * cell + cell / 2 - 3, align: .right)
            let recall = rowTotal > 0 ? String(format: "%.1f%%", 100 * Double(row[r]) / Double(rowTotal)) : "-"
            canvas.text(recall, x: grid.maxX + recallWidth / 2 + 4, y: grid.y + r * cell + cell / 2 - 3, align: .center)
        }
        for i in 1..<max(1, n) {   // thin separators
            canvas.fillRect(Rect(x: grid.x + i * cell, y: grid.y, width: 1, height: grid.height), .white)
            canvas.fillRect(Rect(x: grid.x, y: grid.y + i * cell, width: grid.width, height: 1), .white)
        }
        canvas.strokeRect(Rect(x: grid.x - 1, y: grid.y - 1, width: grid.width + 2, height: grid.height + 2), frameColor)
        canvas.text("recall", x: grid.maxX + recallWidth / 2 + 4, y: grid.y - 12, align: .center)
        for (c, name) in classes.enumerated() {
            let cx = grid.x + c * cell + cell / 2
            if rotated { canvas.text(name, x: cx - 3, y: grid.maxY + 6, align: .right, vertical: true) }
            else { canvas.text(name, x: cx, y: grid.maxY + 6, align: .center) }
        }
        canvas.text("predicted", x: grid.midX, y: grid.maxY + colLabelHeight + 8, align: .center)
        canvas.text("true", x: 8, y: grid.midY, align: .center, vertical: true)
        return canvas
    }

    // MARK: Bar chart

    /// Grouped bars: one slot per label, one bar per group within it, with optional ± error bars
    /// (e.g. mean ± std over folds) and a legend of group names. Non-finite values draw no bar.
    public static func barChart(title: String, labels: [String], yLabel: String = "",
                                groups: [(name: String, values: [Double], errors: [Double]?, color: Color?)],
                                width: Int = 800, height: Int = 500) -> Canvas {
        var lows: [Double] = [0], highs: [Double] = [0]
        for g in groups {
            for (i, v) in g.values.enumerated() where v.isFinite {
                let e = g.errors.flatMap { i < $0.count && $0[i].isFinite ? abs($0[i]) : nil } ?? 0
                lows.append(v - e); highs.append(v + e)
            }
        }
        let yTicks = linearTicks((lows.min()!, highs.max()!), target: max(2, (height - 110) / 50))
        let yLabelWidth = yTicks.labels.map { Canvas.textWidth($0.1) }.max() ?? 0
        let plotX = (yLabel.isEmpty ? 12 : 28) + yLabelWidth, plotWidth = width - plotX - 20
        let slot = Double(plotWidth) / Double(max(1, labels.count))
        let labelWidth = labels.map { Canvas.textWidth($0) }.max() ?? 0
        let rotated = Double(labelWidth) > slot - 6
        let bottom = rotated ? labelWidth + 20 : 34
        let plot = Rect(x: plotX, y: top, width: plotWidth, height: height - top - bottom)
        let axes = Axes(rect: plot, x: 0...Double(max(1, labels.count)), y: yTicks.range, logY: false)
        var canvas = Canvas(width: width, height: height)
        canvas.axes = axes
        drawFrame(&canvas, title: title, xLabel: "", yLabel: yLabel, axes: axes, xTicks: nil, yTicks: yTicks)

        let barWidth = slot * 0.8 / Double(max(1, groups.count))
        let zero = axes.pixel(x: 0, y: 0).y
        for (gi, g) in groups.enumerated() {
            let color = g.color ?? Color.palette[gi % Color.palette.count]
            for (i, v) in g.values.enumerated() where i < labels.count && v.isFinite {
                let x0 = Double(plot.x) + slot * (Double(i) + 0.1) + barWidth * Double(gi)
                let yv = axes.pixel(x: 0, y: v).y
                canvas.fillRect(Rect(x: Int(x0.rounded()) + 1, y: Int(min(yv, zero).rounded()),
                                     width: max(1, Int(barWidth.rounded()) - 2), height: max(1, Int(abs(yv - zero).rounded()))), color)
                if let e = g.errors, i < e.count, e[i].isFinite, e[i] != 0 {
                    let cx = x0 + barWidth / 2, lo = axes.pixel(x: 0, y: v - abs(e[i])).y, hi = axes.pixel(x: 0, y: v + abs(e[i])).y
                    let cap = max(3, barWidth * 0.2)
                    canvas.line(cx, lo, cx, hi, .ink, thickness: 1.5)
                    canvas.line(cx - cap, lo, cx + cap, lo, .ink, thickness: 1.5)
                    canvas.line(cx - cap, hi, cx + cap, hi, .ink, thickness: 1.5)
                }
            }
        }
        canvas.fillRect(Rect(x: plot.x, y: Int(zero.rounded()), width: plot.width, height: 1), frameColor)
        for (i, label) in labels.enumerated() {
            let cx = plot.x + Int(slot * (Double(i) + 0.5))
            if rotated { canvas.text(label, x: cx - 3, y: plot.maxY + 6, align: .right, vertical: true) }
            else { canvas.text(label, x: cx, y: plot.maxY + 8, align: .center) }
        }
        drawLegend(&canvas, groups.enumerated().map { ($1.name, $1.color ?? Color.palette[$0 % Color.palette.count], false, false) }, in: plot, swatch: true)
        return canvas
    }

    // MARK: Image grid

    /// Rows of images (e.g. the top-activating inputs of one unit per row), each scaled into a square
    /// `cell` with its heat map overlaid (`colorMap`, opacity `alpha` × normalised activation), row
    /// labels on the left and optional captions under the images.
    public static func imageGrid(rows: [[GridImage]], rowLabels: [String], title: String, cell: Int = 96,
                                 colorMap: ColorMap = .jet, alpha: Double = 0.6) -> Canvas {
        let pad = 6, captions = rows.joined().contains { $0.caption != nil }, captionHeight = captions ? 12 : 0
        let labelWidth = rowLabels.map { Canvas.textWidth($0) }.max() ?? 0
        let left = labelWidth + 2 * pad, columns = rows.map(\.count).max() ?? 0
        let width = max(left + columns * (cell + pad) + pad, Canvas.textWidth(title, scale: titleScale) + 20)
        let rowHeight = cell + pad + captionHeight
        var canvas = Canvas(width: width, height: top + max(1, rows.count) * rowHeight + pad)
        canvas.text(title, x: width / 2, y: 12, scale: titleScale, align: .center)
        for (r, row) in rows.enumerated() {
            let y = top + r * rowHeight
            if r < rowLabels.count { canvas.text(rowLabels[r], x: left - pad, y: y + cell / 2 - 3, align: .right) }
            for (c, item) in row.enumerated() {
                let box = Rect(x: left + c * (cell + pad), y: y, width: cell, height: cell)
                canvas.drawImage(item.image, in: box, heat: item.heat, colorMap: colorMap, alpha: alpha)
                if let caption = item.caption {
                    canvas.text(caption, x: box.midX, y: box.maxY + 3, align: .center)
                }
            }
        }
        return canvas
    }

    // MARK: Shared pieces

    /// Axis ticks: the (loose) axis range and labelled tick positions; `minor` are extra grid lines.
    struct Ticks { var range: ClosedRange<Double>; var labels: [(Double, String)]; var minor: [Double] = [] }

    /// The finite min...max of `values` (positive only when `log`), widened when empty or constant.
    static func range(_ values: [Double], log: Bool) -> (Double, Double) {
        let v = values.filter { $0.isFinite && (!log || $0 > 0) }
        guard var lo = v.min(), var hi = v.max() else { return log ? (1, 10) : (0, 1) }
        if lo == hi {
            if log { lo /= 2; hi *= 2 } else { let d = lo == 0 ? 1 : abs(lo) * 0.1; lo -= d; hi += d }
        }
        return (lo, hi)
    }

    /// The 1-2-5 × 10^k step giving about `target` intervals over `span`.
    static func niceStep(_ span: Double, target: Int) -> Double {
        let raw = span / Double(max(1, target)), mag = pow(10, floor(log10(raw)))
        let f = raw / mag
        return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag
    }

    /// Linear ticks at multiples of a nice step, the range extended to whole steps.
    static func linearTicks(_ r: (Double, Double), target: Int) -> Ticks {
        let step = niceStep(r.1 - r.0, target: target)
        let lo = floor(r.0 / step + 1e-9) * step, hi = ceil(r.1 / step - 1e-9) * step
        let count = Int(((hi - lo) / step).rounded())
        let labels = (0...count).map { i -> (Double, String) in let v = lo + Double(i) * step; return (v, format(v, step: step)) }
        return Ticks(range: lo...max(hi, lo + step), labels: labels)
    }

    /// Log ticks at powers of ten (every few decades when there are many), with 2× and 5× labels when the
    /// range spans at most two decades, and minor grid lines at 2...9 × 10^k.
    static func logTicks(_ r: (Double, Double)) -> Ticks {
        let k0 = Int(floor(log10(r.0) + 1e-9)), k1 = max(Int(ceil(log10(r.1) - 1e-9)), k0 + 1)
        let stride = max(1, (k1 - k0 + 7) / 8)
        var labels: [(Double, String)] = [], minor: [Double] = []
        for k in k0...k1 {
            let p = pow(10, Double(k))
            if (k - k0) % stride == 0 { labels.append((p, formatPower(k, mantissa: 1))) }
            guard k < k1 else { break }
            for m in 2...9 {
                minor.append(Double(m) * p)
                if k1 - k0 <= 2 && (m == 2 || m == 5) { labels.append((Double(m) * p, formatPower(k, mantissa: m))) }
            }
        }
        return Ticks(range: pow(10, Double(k0))...pow(10, Double(k1)), labels: labels, minor: minor)
    }

    /// A tick label with as many decimals as `step` needs; scientific for very large or small magnitudes.
    static func format(_ v: Double, step: Double) -> String {
        if abs(v) < step * 1e-6 { return "0" }
        if abs(v) >= 1e6 || step < 1e-4 {
            let k = Int(floor(log10(abs(v)))), m = v / pow(10, Double(k))
            return String(format: "%.*fe%d", max(0, Int(ceil(-log10(step))) + k), m, k)
        }
        return String(format: "%.*f", max(0, Int(ceil(-log10(step) - 1e-9))), v)
    }

    /// `m × 10^k` as plain decimal for -3 ≤ k ≤ 5, otherwise `me±k`.
    static func formatPower(_ k: Int, mantissa m: Int) -> String {
        if (-3...5).contains(k) { return String(format: "%.*f", max(0, -k), Double(m) * pow(10, Double(k))) }
        return "\(m)e\(k)"
    }

    /// Title, grid, frame, tick labels and axis labels around `axes.rect`. `xTicks` nil: no x ticks.
    static func drawFrame(_ canvas: inout Canvas, title: String, xLabel: String, yLabel: String,
                          axes: Axes, xTicks: Ticks?, yTicks: Ticks) {
        let plot = axes.rect
        canvas.text(title, x: canvas.width / 2, y: 12, scale: titleScale, align: .center)
        for m in yTicks.minor {
            let y = Int(axes.pixel(x: axes.x.lowerBound, y: m).y.rounded(.down))
            canvas.fillRect(Rect(x: plot.x, y: y, width: plot.width, height: 1), Color.gray(242))
        }
        var lastLabelTop = Int.max
        for (v, label) in yTicks.labels {   // bottom-up, skipping labels that would overlap
            let y = Int(axes.pixel(x: axes.x.lowerBound, y: v).y.rounded(.down))
            canvas.fillRect(Rect(x: plot.x, y: y, width: plot.width, height: 1), gridColor)
            canvas.fillRect(Rect(x: plot.x - 4, y: y, width: 4, height: 1), frameColor)
            if y + 6 <= lastLabelTop { canvas.text(label, x: plot.x - 7, y: y - 3, align: .right); lastLabelTop = y - 3 }
        }
        if let xTicks {
            var lastRight = Int.min
            for (v, label) in xTicks.labels {
                let x = Int(axes.pixel(x: v, y: axes.y.lowerBound).x.rounded(.down))
                canvas.fillRect(Rect(x: x, y: plot.y, width: 1, height: plot.height), gridColor)
                canvas.fillRect(Rect(x: x, y: plot.maxY, width: 1, height: 4), frameColor)
                let w = Canvas.textWidth(label)
                if x - w / 2 > lastRight + 8 { canvas.text(label, x: x, y: plot.maxY + 7, align: .center); lastRight = x + w / 2 }
            }
        }
        canvas.strokeRect(Rect(x: plot.x, y: plot.y, width: plot.width + 1, height: plot.height + 1), frameColor)
        if !xLabel.isEmpty { canvas.text(xLabel, x: plot.midX, y: canvas.height - 16, align: .center) }
        if !yLabel.isEmpty { canvas.text(yLabel, x: 8, y: plot.midY, align: .center, vertical: true) }
    }

    /// A legend box in the top-right corner of `plot`: (name, colour, marker?, dashed?) per entry;
    /// `swatch` draws filled squares (bars) instead of line samples.
    static func drawLegend(_ canvas: inout Canvas, _ entries: [(String, Color, Bool, Bool)], in plot: Rect, swatch: Bool = false) {
        guard !entries.isEmpty else { return }
        let textWidth = entries.map { Canvas.textWidth($0.0) }.max() ?? 0
        let box = Rect(x: plot.maxX - textWidth - 44, y: plot.y + 8, width: textWidth + 36, height: entries.count * 14 + 8)
        canvas.fillRect(box, .white, alpha: 0.85)
        canvas.strokeRect(box, Color.gray(180))
        for (i, (name, color, marker, dashed)) in entries.enumerated() {
            let cy = Double(box.y + 11 + i * 14)
            if swatch {
                canvas.fillRect(Rect(x: box.x + 8, y: Int(cy) - 4, width: 16, height: 9), color)
            } else {
                canvas.line(Double(box.x + 6), cy, Double(box.x + 26), cy, color, thickness: 2, dash: dashed ? (5, 3) : nil)
                if marker { canvas.fillCircle(Double(box.x + 16), cy, radius: 3, color) }
            }
            canvas.text(name, x: box.x + 30, y: Int(cy) - 3)
        }
    }
}
