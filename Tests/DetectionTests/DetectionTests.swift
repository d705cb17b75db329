// Default boxes and the detection table against values worked out by hand from the SSD fork's
// definitions (prior_box_layer.cpp, detection_output_layer.cpp, bbox_util.cpp).
import Detection
import XCTest

final class DetectionTests: XCTestCase {
    /// One cell of a 10x10 image: the min-size box, the sqrt(min*max) box, then aspect ratio 2 and
    /// its flip 1/2, each (xmin, ymin, xmax, ymax) / image size; then one variance per coordinate.
    func testPriorBoxesOfOneCell() {
        let spec = PriorBoxSpec(minSizes: [4], maxSizes: [9], aspectRatios: [2], flip: true, variances: [0.1])
        XCTAssertEqual(spec.boxesPerCell, 4)
        let out = PriorBoxes.compute(spec, featureHeight: 1, featureWidth: 1, imageHeight: 10, imageWidth: 10, stepHeight: 10, stepWidth: 10)
        let r = Float(2).squareRoot()
        let want: [Float] = [
            0.3, 0.3, 0.7, 0.7,
            0.2, 0.2, 0.8, 0.8,
            (5 - 2 * r) / 10, (5 - r) / 10, (5 + 2 * r) / 10, (5 + r) / 10,
            (5 - r) / 10, (5 - 2 * r) / 10, (5 + r) / 10, (5 + 2 * r) / 10,
        ] + Array(repeating: 0.1, count: 16)
        XCTAssertEqual(out.count, want.count)
        for i in want.indices { XCTAssertEqual(out[i], want[i], accuracy: 1e-6, "\(i)") }
    }

    /// Cell centres at (x + offset) * step; clip keeps boxes inside [0, 1]; four variances repeat.
    func testPriorBoxCentresStepOffsetAndClip() {
        let spec = PriorBoxSpec(minSizes: [6], clip: true, variances: [0.1, 0.1, 0.2, 0.2], offset: 0.25)
        let out = PriorBoxes.compute(spec, featureHeight: 1, featureWidth: 2, imageHeight: 8, imageWidth: 16, stepHeight: 8, stepWidth: 8)
        // Centres (2, 2) and (10, 2); half size 3.
        let want: [Float] = [0, 0, 5.0 / 16, 5.0 / 8, 7.0 / 16, 0, 13.0 / 16, 5.0 / 8, 0.1, 0.1, 0.2, 0.2, 0.1, 0.1, 0.2, 0.2]
        for i in want.indices { XCTAssertEqual(out[i], want[i], accuracy: 1e-6, "\(i)") }
    }

    private let priors: [Float] = [
        0, 0, 0.4, 0.4,
        0.05, 0.05, 0.45, 0.45, // IoU 0.62 with the first
        0.6, 0.6, 1, 1,
    ] + Array(repeating: 0.1, count: 12)

    /// Runs one image of three priors; `loc` zero (each box is its prior) and per-prior scores for
    /// classes (background, 1, 2).
    private func detect(_ spec: DetectionSpec, scores: [[Float]], loc: [Float] = Array(repeating: 0, count: 12)) -> [[Float]] {
        let rows = spec.rowsPerImage(priors: 3)
        var out = [Float](repeating: .nan, count: rows * 7)
        DetectionOutput.run(spec, loc: loc, conf: scores.flatMap { $0 }, priors: priors, batch: 1, priorCount: 3, out: &out)
        return stride(from: 0, to: out.count, by: 7).map { Array(out[$0..<$0 + 7]) }
    }

    func testNonMaximumSuppressionTopKAndKeepTopK() {
        let scores: [[Float]] = [[0.05, 0.9, 0.05], [0.1, 0.8, 0.1], [0.2, 0.7, 0.6]]
        var spec = DetectionSpec(numClasses: 3, nmsThreshold: 0.5, keepTopK: 4, varianceEncodedInTarget: true)
        // Class 1: the second prior overlaps the first (IoU 0.62 > 0.5) and is suppressed.
        XCTAssertEqual(detect(spec, scores: scores), [
            [0, 1, 0.9, 0, 0, 0.4, 0.4],
            [0, 1, 0.7, 0.6, 0.6, 1, 1],
            [0, 2, 0.6, 0.6, 0.6, 1, 1],
            [0, 2, 0.1, 0.05, 0.05, 0.45, 0.45],
        ])
        // A looser threshold keeps the overlapping box; keep_top_k then drops the weakest of all.
        spec.nmsThreshold = 0.7
        XCTAssertEqual(detect(spec, scores: scores).map { $0[1...2] }, [[1, 0.9], [1, 0.8], [1, 0.7], [2, 0.6]])
        // top_k: only the two best boxes per class enter NMS (class 2's third, 0.05, never does);
        // class 1 loses its second to NMS, so one of the min(keep_top_k, 2 * top_k) rows is padding.
        spec.nmsThreshold = 0.5
        spec.topK = 2
        XCTAssertEqual(spec.rowsPerImage(priors: 3), 4)
        XCTAssertEqual(detect(spec, scores: scores), [
            [0, 1, 0.9, 0, 0, 0.4, 0.4],
            [0, 2, 0.6, 0.6, 0.6, 1, 1],
            [0, 2, 0.1, 0.05, 0.05, 0.45, 0.45],
            [0, -1, -1, -1, -1, -1, -1],
        ])
        spec.topK = 1
        XCTAssertEqual(spec.rowsPerImage(priors: 3), 2)
        // The confidence threshold drops scores at or below it before anything else.
        spec = DetectionSpec(numClasses: 3, nmsThreshold: 0.5, keepTopK: 2, varianceEncodedInTarget: true, confidenceThreshold: 0.65)
        XCTAssertEqual(detect(spec, scores: scores).map { $0[1...2] }, [[1, 0.9], [1, 0.7]])
    }

    /// CENTER_SIZE decoding with prior variances: centre moves by var * loc * prior size, size
    /// scales by exp(var * loc).
    func testCenterSizeDecoding() {
        let spec = DetectionSpec(numClasses: 2, coding: .centerSize, keepTopK: 1)
        var loc = [Float](repeating: 0, count: 12)
        loc[0...3] = [1, -2, 0, Float(log(2.0)) / 0.1]  // prior 0: centre (0.2, 0.2), size 0.4; variances 0.1
        let rows = detect(spec, scores: [[0.1, 0.9], [0.9, 0.1], [0.9, 0.1]], loc: loc)
        // Centre (0.2 + 0.1*1*0.4, 0.2 - 0.1*2*0.4) = (0.24, 0.12); width 0.4, height 0.8.
        XCTAssertEqual(rows.count, 1)
        let want: [Float] = [0, 1, 0.9, 0.04, -0.28, 0.44, 0.52]
        for i in want.indices { XCTAssertEqual(rows[0][i], want[i], accuracy: 1e-5, "\(i)") }
    }
}
