// Five-point alignment: the similarity fit, the crop it makes, and the CK+48 template measured again
// from $FN2E_DATA/ckplus48 with the detector.
import Driver
@testable import Faces
import Foundation
import Tensors
import XCTest

final class AlignTests: XCTestCase {
    /// Points moved by a known similarity are fitted back exactly; the inverse undoes it.
    func testSimilarityFit() {
        let s = Similarity(a: 1.5 * cos(0.3), b: 1.5 * sin(0.3), tx: 12, ty: -7)
        let from = [Point(x: 0, y: 0), Point(x: 10, y: 1), Point(x: 4, y: 8), Point(x: 2, y: 12), Point(x: 9, y: 11)]
        let fit = Similarity.fit(from: from, to: from.map(s.apply))
        for (x, y) in [(fit.a, s.a), (fit.b, s.b), (fit.tx, s.tx), (fit.ty, s.ty)] { XCTAssertEqual(x, y, accuracy: 1e-9) }
        let back = s.inverse.apply(s.apply(Point(x: 3, y: 4)))
        XCTAssertEqual(back.x, 3, accuracy: 1e-9)
        XCTAssertEqual(back.y, 4, accuracy: 1e-9)
    }

    /// A photo made by scaling, rotating and shifting a crop gives that crop back when its landmarks
    /// are the template's points moved the same way.
    func testCropUndoesASimilarity() {
        let t = FaceTemplate(name: "t", size: 16, points: [Point(x: 4, y: 5), Point(x: 11, y: 5), Point(x: 7.5, y: 8),
                                                          Point(x: 5, y: 12), Point(x: 10, y: 12)], gray: false)
        // A smooth pattern, so bilinear sampling is nearly exact.
        func value(_ x: Double, _ y: Double) -> Float { Float(128 + 60 * sin(x / 5) + 50 * cos(y / 4)) }
        let s = Similarity(a: 3 * cos(0.2), b: 3 * sin(0.2), tx: 40, ty: 20)
        let inv = s.inverse
        let (h, w) = (90, 100)
        var data = [Float](repeating: 0, count: 3 * h * w)
        for y in 0..<h {
            for x in 0..<w {
                let p = inv.apply(Point(x: Double(x), y: Double(y)))
                for c in 0..<3 { data[(c * h + y) * w + x] = value(p.x, p.y) + Float(c) }
            }
        }
        let crop = Align.crop(Tensor(shape: [3, h, w], data: data), landmarks: t.points.map(s.apply), template: t)
        XCTAssertEqual(crop.shape, [3, 16, 16])
        var worst: Float = 0
        for v in 2..<14 {
            for u in 2..<14 { worst = max(worst, abs(crop.data[v * 16 + u] - value(Double(u), Double(v)))) }
        }
        XCTAssertLessThan(worst, 1.5, "the crop is the pattern the photo was made from")
        var gray = t
        gray.gray = true
        XCTAssertEqual(Align.crop(Tensor(shape: [3, h, w], data: data), landmarks: t.points.map(s.apply), template: gray).shape, [1, 16, 16])
    }

    /// The committed CK+48 template is what the detector measures on every 10th CK+48 crop.
    func testCKPlus48TemplateIsMeasured() throws {
        let root = try dataPath("ckplus48")
        let dir = try dataPath("caffe/mtcnn")
        let rows = try String(contentsOfFile: root + "/index.csv", encoding: .utf8).split(whereSeparator: \.isNewline).dropFirst()
        let crops = try rows.enumerated().filter { $0.offset % 10 == 0 }.map { try Images.load(path: root + "/" + $0.element.split(separator: ",")[0], channels: 1) }
        let (measured, used) = try FaceTemplate.measure(crops, detector: MTCNN(directory: dir), name: "ckplus48")
        print("CK+48 template from \(used) of \(crops.count) crops: " + measured.points.map { String(format: "(%.2f, %.2f)", $0.x, $0.y) }.joined(separator: " "))
        XCTAssertGreaterThan(used, crops.count * 9 / 10, "one face found in nearly every crop")
        for (m, c) in zip(measured.points, FaceTemplate.ckplus48.points) {
            XCTAssertEqual(m.x, c.x, accuracy: 0.05)
            XCTAssertEqual(m.y, c.y, accuracy: 0.05)
        }
        XCTAssertEqual(measured.size, 48)
        XCTAssertTrue(measured.gray)
    }

    /// The committed FER2013 template against the detector on every 300th Training row (96 crops, a
    /// tenth of those it averages): within half a pixel; the framing differs from CK+48's.
    func testFER2013TemplateIsMeasured() throws {
        let index = try dataPath("fer2013") + "/index.csv"
        let m = try FaceCommands.measureTemplate(index: index, select: ("usage", "Training"), every: 300, name: "fer2013",
                                                 detector: MTCNN(directory: try dataPath("caffe/mtcnn")))
        print("FER2013 template from \(m.used) of \(m.crops) crops: " + m.template.points.map { String(format: "(%.2f, %.2f)", $0.x, $0.y) }.joined(separator: " "))
        XCTAssertEqual(m.crops, 96)
        XCTAssertGreaterThan(m.used, m.crops * 8 / 10, "one face found in most crops")
        for (a, b) in zip(m.template.points, FaceTemplate.fer2013.points) {
            XCTAssertEqual(a.x, b.x, accuracy: 0.5)
            XCTAssertEqual(a.y, b.y, accuracy: 0.5)
        }
        XCTAssertEqual(try FaceTemplate.named("fer2013"), .fer2013)
        let shift = zip(FaceTemplate.fer2013.points, FaceTemplate.ckplus48.points).map { abs($0.y - $1.y) }.reduce(0, +) / 5
        XCTAssertGreaterThan(shift, 0.3, "FER2013 frames faces otherwise than CK+48")
    }
}
