import Foundation
@testable import Plot
import Tensors
import XCTest

final class PlotTests: XCTestCase {
    /// Writes `canvas` to a temp PNG, reads it back as `[3, H, W]` and returns it; also copies it to
    /// `$PLOT_SAMPLES/<name>.png` when that variable is set (for looking at the output).
    func roundTrip(_ canvas: Canvas, _ name: String) throws -> Tensor {
        let path = NSTemporaryDirectory() + "plottest-\(name)-\(getpid()).png"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try canvas.writePNG(path)
        if let dir = ProcessInfo.processInfo.environment["PLOT_SAMPLES"] { try canvas.writePNG(dir + "/\(name).png") }
        let image = try Images.load(path: path, channels: 3)
        XCTAssertEqual(image.shape, [3, canvas.height, canvas.width])
        return image
    }

    func pixel(_ t: Tensor, _ x: Int, _ y: Int) -> Color {
        let (h, w) = (t.shape[1], t.shape[2])
        return Color(UInt8(t.data[y * w + x]), UInt8(t.data[h * w + y * w + x]), UInt8(t.data[2 * h * w + y * w + x]))
    }

    func distance(_ a: Color, _ b: Color) -> Int { abs(Int(a.r) - Int(b.r)) + abs(Int(a.g) - Int(b.g)) + abs(Int(a.b) - Int(b.b)) }

    /// Whether some pixel within `radius` of (x, y) is close to `color`.
    func near(_ t: Tensor, _ x: Double, _ y: Double, _ color: Color, radius: Int = 2) -> Bool {
        for dy in -radius...radius {
            for dx in -radius...radius where distance(pixel(t, Int(x) + dx, Int(y) + dy), color) < 40 { return true }
        }
        return false
    }

    /// Non-white pixels in a horizontal band.
    func inkCount(_ t: Tensor, rows: Range<Int>) -> Int {
        rows.reduce(0) { n, y in n + (0..<t.shape[2]).filter { pixel(t, $0, y) != .white }.count }
    }

    func testLineChartDrawsSeriesWhereTheDataIs() throws {
        let red = Color(214, 39, 40), blue = Color(31, 119, 180)
        let curve: [(Double, Double)] = (0...200).map { i -> (Double, Double) in
            let t = Double(i)
            return (t * 50, 2 * exp(-t / 60) + 0.05)
        }
        let loss = Series(name: "train loss", points: curve, color: red)
        let eval = Series(name: "val loss", points: stride(from: 0, through: 10000, by: 1000).map { (Double($0), 0.5) }, color: blue)
        let chart = Plots.lineChart(title: "Loss", xLabel: "iteration", yLabel: "loss", series: [loss, eval])
        let image = try roundTrip(chart, "line")
        XCTAssertEqual(chart.width, 800); XCTAssertEqual(chart.height, 500)
        XCTAssertGreaterThan(inkCount(image, rows: 10..<28), 50, "title is drawn")
        let axes = try XCTUnwrap(chart.axes)
        let expected: [(Double, Double)] = [(0, 2.05), (5000, 2 * exp(-100.0 / 60) + 0.05)]
        for (x, y) in expected {
            let p = axes.pixel(x: x, y: y)
            XCTAssertTrue(near(image, p.x, p.y, red), "red series passes through \(x), \(y) at pixel \(p)")
        }
        let p = axes.pixel(x: 3000, y: 0.5)
        XCTAssertTrue(near(image, p.x, p.y, blue), "blue marker at (3000, 0.5)")
        XCTAssertFalse(near(image, p.x, p.y - 30, blue, radius: 1), "nothing blue well above the flat series")
    }

    func testLogScaleAndDegenerateInputsDoNotCrash() throws {
        let noisy = Series(name: "nan", points: [(0, 1), (1, .nan), (2, .infinity), (3, -1), (.nan, 2), (4, 0.01), (5, 0.02)])
        let log = Plots.lineChart(title: "Log", xLabel: "x", yLabel: "y", series: [noisy], logY: true)
        let axes = try XCTUnwrap(log.axes)
        XCTAssertLessThanOrEqual(axes.y.lowerBound, 0.01); XCTAssertGreaterThanOrEqual(axes.y.upperBound, 1)
        _ = try roundTrip(log, "log")
        for series in [[], [Series(name: "", points: [])], [Series(name: "one", points: [(3, 3)])],
                       [Series(name: "flat", points: [(0, 5), (1, 5), (2, 5)])], [Series(name: "nan", points: [(.nan, .nan)])]] {
            for logY in [false, true] {
                let c = Plots.lineChart(title: "t", xLabel: "x", yLabel: "y", series: series, width: 300, height: 200, logY: logY)
                let a = try XCTUnwrap(c.axes)
                XCTAssertLessThan(a.x.lowerBound, a.x.upperBound); XCTAssertLessThan(a.y.lowerBound, a.y.upperBound)
            }
        }
    }

    func testNiceTicks() {
        let t = Plots.linearTicks((0.03, 0.93), target: 5)
        XCTAssertEqual(t.range.lowerBound, 0, accuracy: 1e-12); XCTAssertEqual(t.range.upperBound, 1, accuracy: 1e-12)
        XCTAssertEqual(t.labels.map(\.1), ["0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        XCTAssertEqual(Plots.linearTicks((0, 10000), target: 8).labels.map(\.1).prefix(3), ["0", "2000", "4000"])
        XCTAssertEqual(Plots.logTicks((0.003, 2)).labels.map(\.1), ["0.001", "0.01", "0.1", "1", "10"])
        XCTAssertEqual(Plots.logTicks((0.03, 0.8)).labels.map(\.1), ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"])
        XCTAssertEqual(Plots.logTicks((1e-6, 1)).labels.map(\.1), ["1e-6", "1e-5", "1e-4", "0.001", "0.01", "0.1", "1"])
        XCTAssertEqual(Plots.format(2.5e-5, step: 5e-6), "2.5e-5")
        XCTAssertEqual(Plots.format(3e-5, step: 1e-5), "3e-5")
    }

    func testConfusionMatrixDiagonalIsDarker() throws {
        let classes = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
        let counts = (0..<7).map { r in (0..<7).map { c in r == c ? 40 + 5 * r : (r + c) % 3 } }
        let chart = Plots.confusionMatrix(counts, classes: classes, title: "Confusion")
        let image = try roundTrip(chart, "confusion")
        XCTAssertGreaterThan(inkCount(image, rows: 10..<28), 50, "title is drawn")
        let axes = try XCTUnwrap(chart.axes)
        func cellColor(_ r: Int, _ c: Int) -> Color {   // a corner of the cell, away from its text
            let p = axes.pixel(x: Double(c) + 0.1, y: Double(7 - r) - 0.1)
            return pixel(image, Int(p.x), Int(p.y))
        }
        for r in 0..<7 {
            XCTAssertLessThan(cellColor(r, r).luminance, 0.4, "diagonal (\(r), \(r)) is dark")
            XCTAssertLessThan(cellColor(r, r).luminance + 0.3, cellColor(r, (r + 1) % 7).luminance, "off-diagonal is lighter")
        }
    }

    func testBarChartBarsAndErrorBars() throws {
        let chart = Plots.barChart(title: "Accuracy by method", labels: ["CK+", "Oulu", "TFD"], yLabel: "accuracy", groups: [
            (name: "FN2EN", values: [0.96, 0.87, 0.88], errors: [0.01, 0.02, 0.015], color: Color(hex: 0x1f77b4)),
            (name: "baseline", values: [0.90, .nan, 0.80], errors: nil, color: nil),
        ])
        let image = try roundTrip(chart, "bars")
        let axes = try XCTUnwrap(chart.axes)
        let slot = 1.0, bar = slot * 0.8 / 2
        let p = axes.pixel(x: 0.1 + bar / 2, y: 0.5)
        XCTAssertEqual(pixel(image, Int(p.x), Int(p.y)), Color(hex: 0x1f77b4), "first group's bar in the first slot")
        let q = axes.pixel(x: 0.1 + 1.5 * bar, y: 0.45)
        XCTAssertEqual(pixel(image, Int(q.x), Int(q.y)), Color.palette[1], "second group defaults to the palette")
        let empty = axes.pixel(x: 1.1 + 1.5 * bar, y: 0.3)
        XCTAssertNotEqual(pixel(image, Int(empty.x), Int(empty.y)), Color.palette[1], "NaN draws no bar")
        let top = axes.pixel(x: 0.1 + bar / 2, y: 0.97)
        XCTAssertLessThan(pixel(image, Int(top.x), Int(top.y)).luminance, 0.5, "error bar above the first bar")
    }

    func testImageGridOverlaysHeat() throws {
        let gray = Tensor(shape: [1, 32, 32], data: [Float](repeating: 128, count: 32 * 32))
        var heat = Tensor(zeros: [4, 4]); heat.data[0] = 1   // hot top-left corner
        let rgb = Tensor(shape: [3, 8, 8], seed: 1, std: 60)
        let chart = Plots.imageGrid(rows: [[GridImage(gray, heat: heat, caption: "0.91"), GridImage(rgb)], [GridImage(gray)]],
                                    rowLabels: ["unit 12", "unit 7"], title: "Top activations", cell: 64, colorMap: .jet)
        let image = try roundTrip(chart, "grid")
        let left = Canvas.textWidth("unit 12") + 12
        let hot = pixel(image, left + 3, Plots.top + 3), cold = pixel(image, left + 60, Plots.top + 60)
        XCTAssertEqual(cold, Color.gray(128), "zero activation leaves the image as is")
        XCTAssertGreaterThan(Int(hot.r) - Int(hot.b), 60, "hot region is tinted red")
    }

    func testGlyphsAreDistinctAndTextRotates() {
        var canvas = Canvas(width: 80, height: 11)
        canvas.text("0123456789", x: 1, y: 1)
        func glyph(_ c: Canvas, _ i: Int) -> [Bool] {
            (0..<8).flatMap { r in (0..<5).map { col in c[1 + i * 6 + col, 1 + r] != .white } }
        }
        let digits = (0..<10).map { glyph(canvas, $0) }
        XCTAssertEqual(Set(digits).count, 10, "ten distinct digit bitmaps")
        XCTAssertTrue(digits.allSatisfy { $0.contains(true) })
        let printable = (33...126).map { Character(UnicodeScalar($0)) }
        let bitmaps = printable.map { ch in (0..<40).map { Font.isSet(ch, col: $0 % 5, row: $0 / 5) } }
        XCTAssertEqual(Set(bitmaps).count, printable.count, "every printable ASCII glyph is distinct")
        XCTAssertEqual(Canvas.textWidth("ab", scale: 2), 22)

        var v = Canvas(width: 10, height: 20)
        v.text("g", x: 1, y: 19, vertical: true)   // starts at the bottom, reads upwards
        for col in 0..<5 {
            for row in 0..<8 { XCTAssertEqual(v[1 + row, 18 - col] != .white, Font.isSet("g", col: col, row: row)) }
        }
    }

    func testCanvasPrimitives() {
        var c = Canvas(width: 20, height: 20, background: .black)
        c.line(2, 10, 18, 10, .white, thickness: 3, antialiased: false)
        XCTAssertEqual(c[10, 10], .white); XCTAssertEqual(c[10, 9], .white); XCTAssertEqual(c[10, 13], .black)
        c.clip = Rect(x: 0, y: 0, width: 5, height: 5)
        c.fillRect(Rect(x: 0, y: 0, width: 20, height: 20), .white)
        XCTAssertEqual(c[4, 4], .white); XCTAssertEqual(c[6, 6], .black)
        let t = c.toTensor()
        XCTAssertEqual(t.shape, [3, 20, 20]); XCTAssertEqual(t.data[10 * 20 + 10], 255)
    }
}
