import Foundation
import Plot
import Tensors
import XCTest

/// Draws realistic sample charts and checks what came out: every PNG decodes at the canvas's size
/// with ink on it. They are written to `$PLOT_SAMPLES` when set (for looking at), else to a
/// temporary folder.
final class SampleTests: XCTestCase {
    func testSamplesDrawAndDecode() throws {
        let dir = ProcessInfo.processInfo.environment["PLOT_SAMPLES"] ?? NSTemporaryDirectory() + "fn2e-plot-samples-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var charts: [(file: String, canvas: Canvas)] = []
        var rng = Xoshiro256(seed: 3)
        let train: [(Double, Double)] = (0..<2000).map { i -> (Double, Double) in
            let t = Double(i) * 5
            return (t, 2.2 * exp(-t / 2500) + 0.02 + Double.random(in: 0...0.15, using: &rng) * exp(-t / 4000))
        }
        let val: [(Double, Double)] = (0...20).map { i -> (Double, Double) in
            let t = Double(i) * 500
            return (t, 2.0 * exp(-t / 3000) + 0.25)
        }
        charts.append(("sample-line-log.png", Plots.lineChart(title: "FN2EN stage 2 loss (fold 3)", xLabel: "iteration", yLabel: "softmax loss",
                            series: [Series(name: "train", points: train), Series(name: "validation", points: val)], logY: true)))

        let classes = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
        let counts = [[38, 1, 4, 0, 0, 2, 0], [1, 14, 0, 0, 2, 1, 0], [3, 0, 55, 0, 0, 1, 0], [0, 0, 1, 20, 1, 1, 2],
                      [0, 1, 0, 0, 68, 0, 0], [3, 1, 0, 1, 0, 23, 0], [0, 0, 0, 2, 0, 0, 81]]
        charts.append(("sample-confusion.png", Plots.confusionMatrix(counts, classes: classes, title: "CK+ 10-fold")))

        charts.append(("sample-bars.png", Plots.barChart(title: "Accuracy by dataset", labels: ["CK+", "Oulu-CASIA", "TFD", "SFEW"], yLabel: "accuracy", groups: [
            (name: "FN2EN", values: [0.968, 0.875, 0.882, 0.554], errors: [0.012, 0.021, 0.015, 0.03], color: nil),
            (name: "fine-tune", values: [0.933, 0.829, 0.851, 0.502], errors: [0.02, 0.025, 0.012, 0.04], color: nil),
            (name: "from scratch", values: [0.891, 0.76, 0.81, 0.41], errors: [0.03, 0.03, 0.02, 0.05], color: nil),
        ])))

        func face(_ seed: Int) -> Tensor {
            var data = [Float](repeating: 0, count: 64 * 64)
            for y in 0..<64 {
                for x in 0..<64 {
                    let (dx, dy) = (Double(x - 32) / 22, Double(y - 34) / 28)
                    let inside = dx * dx + dy * dy < 1
                    let eye = [(22, 26), (42, 26)].contains { abs(x - $0.0) < 4 && abs(y - $0.1) < 2 }
                    let curve: Int = (seed % 3 - 1) * (x - 32) * (x - 32) / 60
                    let mouth = abs(y - 46 - curve) < 2 && abs(x - 32) < 10
                    data[y * 64 + x] = eye || mouth ? 40 : inside ? Float(170 + (seed * 13) % 50) : 60 + Float(y)
                }
            }
            return Tensor(shape: [1, 64, 64], data: data)
        }
        func heat(_ cx: Double, _ cy: Double) -> Tensor {
            let data = (0..<196).map { i -> Float in
                let dx = Double(i % 14) - cx, dy = Double(i / 14) - cy
                return Float(exp(-(dx * dx + dy * dy) / 6))
            }
            return Tensor(shape: [14, 14], data: data)
        }
        let rows: [[GridImage]] = (0..<3).map { unit in (0..<6).map { k -> GridImage in
            let cx: Double = unit == 0 ? 4.5 + Double(k % 2) * 5 : 7, cy: Double = unit == 1 ? 3.5 : 10
            let score = 9.5 - Double(unit) - Double(k) * 0.7
            return GridImage(face(unit * 6 + k), heat: heat(cx, cy), caption: String(format: "%.2f", score))
        } }
        var specimen = Canvas(width: 640, height: 170)
        let ascii = String((32...126).map { Character(UnicodeScalar(UInt8($0))) })
        for (i, line) in [String(ascii.prefix(32)), String(ascii.dropFirst(32).prefix(32)), String(ascii.dropFirst(64))].enumerated() {
            specimen.text(line, x: 8, y: 8 + 30 * i, scale: 3)
        }
        specimen.text("anger, disgust; happy (surprise)", x: 8, y: 100, scale: 2)
        specimen.text("softmax loss", x: 610, y: 160, scale: 2, vertical: true)
        specimen.text("centred", x: 300, y: 130, align: .center)
        specimen.text("right", x: 540, y: 130, align: .right)
        charts.append(("sample-font.png", specimen))
        charts.append(("sample-grid.png", Plots.imageGrid(rows: rows, rowLabels: ["conv5 #12", "conv5 #87", "conv5 #203"], title: "Top activating images")))

        XCTAssertEqual(charts.map(\.file), ["sample-line-log.png", "sample-confusion.png", "sample-bars.png", "sample-font.png", "sample-grid.png"])
        for (file, canvas) in charts {
            try canvas.writePNG(dir + "/" + file)
            let image = try Images.load(path: dir + "/" + file, channels: 3)
            XCTAssertEqual(image.shape, [3, canvas.height, canvas.width], file)
            // Ink: dark pixels (text, axes, lines) on the background.
            let pixels = canvas.width * canvas.height
            let dark = (0..<pixels).filter { i in (0..<3).allSatisfy { image.data[$0 * pixels + i] < 100 } }.count
            XCTAssertGreaterThan(dark, pixels / 500, "\(file): almost no dark pixels")
            let colours = Set((0..<pixels).map { i in (0..<3).map { Int(image.data[$0 * pixels + i]) } })
            XCTAssertGreaterThan(colours.count, 1, file)
        }
        if ProcessInfo.processInfo.environment["PLOT_SAMPLES"] == nil { try? FileManager.default.removeItem(atPath: dir) }
    }
}
