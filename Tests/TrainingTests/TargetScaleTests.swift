import Foundation
import Tensors
import Training
import XCTest

/// `target_scale`: the stage-1 target is scaled by 1 / its RMS over the training split, so a
/// teacher whose features are 4x larger trains the student exactly as the original does.
final class TargetScaleTests: XCTestCase {
    /// A frozen conv "teacher" (weights drawn with standard deviation `std`) and a student conv that
    /// regresses its ReLU output.
    static func graph(std: String, scaleParam: String = "param %target.scale: f32[1] = constant(1) {trainable=false}",
                      use: String = "%target_n = mul(%target, %target.scale)") -> String {
        """
        fn2e 1
        graph @distill(%data: f32[N,1,16,16]) {
          param %teacher.weight: f32[4,1,3,3] = gaussian(\(std)) {trainable=false}
          param %teacher.bias: f32[4] = zeros {trainable=false}
          \(scaleParam)
          param %student.weight: f32[4,1,3,3] = msra
          param %student.bias: f32[4] = zeros
          %t = conv2d(%data, %teacher.weight, %teacher.bias) {pad=1}
          %target = relu(%t)
          \(use)
          %s = conv2d(%data, %student.weight, %student.bias) {pad=1}
          %feat = relu(%s)
          %loss = euclidean_loss(%feat, %target_n)
          return %loss
        }

        """
    }

    func run(_ name: String, graph: String, extra: [String: String]) throws -> (metrics: String, model: [String: Tensor]) {
        let file = Toy.dir + "/\(name).fn2e"
        try graph.write(toFile: file, atomically: true, encoding: .utf8)
        let s = try Toy.settings(name, ["graph": file, "iterations": "30", "lr": "0.001"].merging(extra, uniquingKeysWith: { $1 }))
        let t = try Toy.trainer(s)
        _ = try t.train()
        return (Toy.text(s.path("output") + "/metrics.jsonl"), try SafeTensors.read(path: s.path("output") + "/model.safetensors").0)
    }

    func testFourTimesLargerTeacherTrainsTheSameStudent() throws {
        // gaussian(0.5) draws the same numbers as gaussian(0.125) times 4 (exact in binary), so the
        // teacher's features are exactly 4x larger, and so is their RMS.
        let small = try run("scale_small", graph: Self.graph(std: "0.125"), extra: ["target_scale": "target.scale"])
        let large = try run("scale_large", graph: Self.graph(std: "0.5"), extra: ["target_scale": "target.scale"])
        let (s1, s4) = (small.model["target.scale"]!.data[0], large.model["target.scale"]!.data[0])
        XCTAssertEqual(s1, 4 * s4, "the scale is 1 / RMS, so it shrinks 4x for a 4x larger teacher")
        XCTAssertGreaterThan(s1, 0)
        XCTAssertEqual(small.metrics, large.metrics, "normalised targets are bitwise equal, so are the student's losses")
        XCTAssert(small.model["student.weight"]!.data.map(\.bitPattern) == large.model["student.weight"]!.data.map(\.bitPattern))

        // Without it, the larger teacher gives another loss from the first step on.
        let rawSmall = try run("raw_small", graph: Self.graph(std: "0.125"), extra: [:])
        let rawLarge = try run("raw_large", graph: Self.graph(std: "0.5"), extra: [:])
        XCTAssertNotEqual(rawSmall.metrics, rawLarge.metrics)
    }

    func testTheNormalisedTargetHasUnitRMS() throws {
        // With the student's output fixed at zero (lr 0, zero weights), the Euclidean loss is
        // sum(target_n^2) / 2N, so a unit mean square over the 4x16x16 values gives 512 per image.
        let g = Self.graph(std: "0.3").replacingOccurrences(of: "f32[4,1,3,3] = msra", with: "f32[4,1,3,3] = zeros")
        let file = Toy.dir + "/scale_unit.fn2e"
        try g.write(toFile: file, atomically: true, encoding: .utf8)
        let s = try Toy.settings("scale_unit", ["graph": file, "iterations": "1", "lr": "0", "fold": "-1", "target_scale": "target.scale"])
        let t = try Toy.trainer(s)
        let e = try t.evaluate(t.splits.train, split: "train")
        XCTAssertEqual(e.loss / Double(e.count), 512, accuracy: 512 * 1e-4, "mean loss \(e.loss / Double(e.count))")
    }

    func testMisuseIsReported() throws {
        let cases: [(String, String, String)] = [
            (Self.graph(std: "0.1"), "nothing", "has no parameter '%nothing'"),
            (Self.graph(std: "0.1", scaleParam: "param %target.scale: f32[1] = constant(1)"), "target.scale", "must be a frozen f32[1] parameter"),
            (Self.graph(std: "0.1", use: "%target_n = add(%target, %target.scale)"), "target.scale", "must be used by exactly one mul"),
        ]
        for (k, (graph, param, message)) in cases.enumerated() {
            let file = Toy.dir + "/scale_bad\(k).fn2e"
            try graph.write(toFile: file, atomically: true, encoding: .utf8)
            let s = try Toy.settings("scale_bad\(k)", ["graph": file, "target_scale": param])
            XCTAssertThrowsError(try Toy.trainer(s)) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
    }
}
