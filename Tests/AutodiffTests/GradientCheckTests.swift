import Autodiff
import Foundation
import IR
import Reference
import XCTest

/// Every gradient rule against central finite differences of the loss, in Double, through the
/// reference interpreter (Caffe `test_gradient_check_util.hpp`). Coordinates whose perturbation by
/// up to `guardZone` moves a value across a kink (a ReLU or PReLU input changing sign, a max-pool
/// argmax or a `maximum` comparison changing) are skipped: the loss is not differentiable there.
final class GradientCheckTests: XCTestCase {
    static let step = 1e-6
    static let guardZone = 1e-4
    /// |analytic - numeric| <= relTol * max(|analytic|, |numeric|) + absTol.
    static let relTol = 1e-6
    static let absTol = 1e-8
    /// Coordinates checked per tensor (drawn at random beyond this many).
    static let maxCoordinates = 120

    func testEveryRuleAgainstFiniteDifferences() throws {
        var failures: [String] = []
        var covered: Set<Op> = []
        var rng = TestRNG(7)
        for (k, c) in GradCases.all().enumerated() {
            let built = try GradCases.build(c, seed: UInt64(100 + k))
            covered.formUnion(built.forward.nodes.map(\.op))
            var values = built.values
            values.merge(GradCases.masks(built.grad, built.shapes, seed: UInt64(k))) { $1 }
            let out = try Interpreter.run(built.grad, values)
            var forward = built.grad
            forward.nodes = forward.nodes.filter { !$0.name.hasPrefix(Autodiff.prefix) }
            forward.outputs = ["loss"]
            let hasKinks = forward.nodes.contains(where: Self.hasKink)
            func run(_ v: [String: [Double]]) throws -> [String: [Double]] { try Interpreter.run(forward, v) }

            let base = hasKinks ? Self.kinks(forward, out, built.shapes) : []
            for p in built.grad.params where p.trainable {
                let analytic = out[Autodiff.prefix + p.name]!
                var coords = Array(analytic.indices)
                if coords.count > Self.maxCoordinates {
                    coords = (0..<Self.maxCoordinates).map { _ in rng.int(0...analytic.count - 1) }
                }
                var maxDiff = 0.0, skipped = 0
                for i in coords {
                    func at(_ delta: Double) throws -> [String: [Double]] {
                        var v = values
                        v[p.name]![i] += delta
                        return try run(v)
                    }
                    let (plus, minus) = (try at(Self.step), try at(-Self.step))
                    if hasKinks {
                        let guarded = [plus, minus, try at(Self.guardZone), try at(-Self.guardZone)]
                        if guarded.contains(where: { Self.kinks(forward, $0, built.shapes) != base }) {
                            skipped += 1
                            continue
                        }
                    }
                    let numeric = (plus["loss"]![0] - minus["loss"]![0]) / (2 * Self.step)
                    let diff = abs(analytic[i] - numeric)
                    maxDiff = max(maxDiff, diff)
                    if diff > Self.relTol * max(abs(analytic[i]), abs(numeric)) + Self.absTol {
                        failures.append("\(c.name): grad.\(p.name)[\(i)] = \(analytic[i]), finite differences \(numeric)")
                    }
                }
                print(String(format: "gradcheck %-28@ grad.%-6@ max |diff| %.2e  (%d checked, %d skipped at kinks)",
                             c.name, p.name, maxDiff, coords.count - skipped, skipped))
                XCTAssertLessThan(skipped, max(2, coords.count / 4), "\(c.name) grad.\(p.name): too many coordinates near kinks")
            }
        }
        for f in failures.prefix(40) { XCTFail(f) }
        // detection_output has no gradient (Autodiff refuses it; AutodiffTests checks the message);
        // batch_moments feeds running averages, batch_norm_train's own gradient covers its statistics.
        let differentiable = Set(Op.allCases).subtracting(Op.backward)
            .subtracting([.call, .dropout, .dropoutMask, .fill, .detectionOutput, .batchMoments])
        XCTAssertEqual(differentiable.subtracting(covered), [], "forward ops without a finite-difference case")
    }

    /// Dropout in training mode is `x * mask`, so with a given mask its gradient is mask * upstream.
    func testDropoutGradientIsMaskTimesUpstream() throws {
        for ratio in [0.5, 0.2] {
            let c = GradCase(name: "dropout", params: ["%x: f32[2,3,4]"], body: ["%y = dropout(%x) {ratio=\(ratio)}"])
            let built = try GradCases.build(c, seed: 3)
            XCTAssertEqual(built.grad.nodes.filter { $0.op == .dropoutMask }.map(\.name), ["y.mask"])
            let masks = GradCases.masks(built.grad, built.shapes, seed: 4)
            let out = try Interpreter.run(built.grad, built.values.merging(masks) { $1 })
            let mask = masks["y.mask"]!, r = built.values["loss.r"]!
            XCTAssertTrue(mask.contains(0) && mask.contains(1 / (1 - ratio)))
            let diff = zip(out["grad.x"]!, zip(mask, r).map { $0 * $1 }).map { abs($0 - $1) }.max()!
            print(String(format: "gradcheck dropout ratio %.1f: max |grad.x - mask * upstream| %.2e", ratio, diff))
            XCTAssertLessThanOrEqual(diff, 1e-15)
        }
    }

    static func hasKink(_ n: Node) -> Bool {
        switch n.op {
        case .relu, .prelu, .maxPool, .maximum: return true
        case .conv2d, .linear: return n.fullAttrs.string("activation") == "relu"
        case .avgPool, .sigmoid, .tanh, .dropout, .flatten, .reshape, .transpose, .concat, .slice,
             .channelReplicate, .resize, .add, .sub, .mul, .div, .affine, .scale, .bias, .batchNorm, .lrn, .l2Normalize,
             .softmax, .logSoftmax, .softmaxCrossEntropy, .euclideanLoss, .mean, .sum, .call, .priorBox,
             .detectionOutput, .conv2dBackwardData, .conv2dBackwardFilter, .maxPoolBackward, .avgPoolBackward,
             .reluBackward, .preluBackwardInput, .preluBackwardSlope, .sigmoidBackward, .tanhBackward,
             .softmaxBackward, .logSoftmaxBackward, .softmaxCrossEntropyBackward, .euclideanLossBackward,
             .maximumBackward, .lrnBackward, .batchNormBackward, .l2NormalizeBackward, .sliceBackward,
             .batchNormTrain, .batchMoments, .batchNormTrainBackward,
             .resizeBackward, .reduceBackward, .sumTo, .matmul, .dropoutMask, .fill:
            return false
        }
    }

    /// Which side of every kink the forward values lie on: ReLU/PReLU input signs, max-pool argmaxes
    /// and `maximum` comparisons.
    static func kinks(_ g: Graph, _ env: [String: [Double]], _ shapes: [String: [Int]]) -> [Double] {
        var sig: [Double] = []
        for n in g.nodes where hasKink(n) {
            let a = n.fullAttrs
            switch n.op {
            case .relu, .prelu: sig += env[n.operands[0]]!.map { $0 > 0 ? 1 : 0 }
            // A fused ReLU keeps the sign of its input (slope >= 0 only: y > 0 exactly where the input is).
            case .conv2d, .linear: sig += env[n.name]!.map { $0 > 0 ? 1 : 0 }
            case .maximum:
                let (x, y) = (n.operands[0], n.operands[1])
                sig += RefOps.binary(.sub, a: env[x]!, aShape: shapes[x]!, b: env[y]!, bShape: shapes[y]!).out.map { $0 >= 0 ? 1 : 0 }
            case .maxPool:
                let s = shapes[n.operands[0]]!
                let global = a.bool("global")
                sig += RefOps.maxPool(x: env[n.operands[0]]!, xShape: s, kernel: global ? (s[2], s[3]) : a.pair("kernel"),
                                      stride: global ? (1, 1) : a.pair("stride"), pad: global ? (0, 0) : a.pair("pad"),
                                      ceil: !global && a.string("round") == "ceil").argmax.map(Double.init)
            case .avgPool, .sigmoid, .tanh, .dropout, .flatten, .reshape, .transpose, .concat, .slice,
                 .channelReplicate, .resize, .add, .sub, .mul, .div, .affine, .scale, .bias, .batchNorm, .lrn,
                 .l2Normalize, .softmax, .logSoftmax, .softmaxCrossEntropy, .euclideanLoss, .mean, .sum, .call,
                 .priorBox, .detectionOutput, .conv2dBackwardData, .conv2dBackwardFilter, .maxPoolBackward,
                 .avgPoolBackward, .reluBackward, .preluBackwardInput, .preluBackwardSlope, .sigmoidBackward,
                 .tanhBackward, .softmaxBackward, .logSoftmaxBackward, .softmaxCrossEntropyBackward,
                 .euclideanLossBackward, .maximumBackward, .lrnBackward, .batchNormBackward, .l2NormalizeBackward,
                 .batchNormTrain, .batchMoments, .batchNormTrainBackward,
                 .sliceBackward, .resizeBackward, .reduceBackward, .sumTo, .matmul, .dropoutMask, .fill:
                break
            }
        }
        return sig
    }
}

/// Forms the rules refuse, with a message naming the node, instead of a wrong or unrunnable gradient.
final class GradientRuleLimitTests: XCTestCase {
    func refusal(_ body: String, params: [String] = ["%x: f32[2,3,4,4]", "%w: f32[3,3,1,1]"]) -> String {
        let c = GradCase(name: "refused", params: params, body: [body])
        do {
            _ = try GradCases.build(c, seed: 1)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testWithinChannelLRNIsRefused() {
        let message = refusal("%y = lrn(%x) {size=3, region=within_channel}")
        XCTAssertTrue(message.contains("cannot differentiate '%y' (lrn)") && message.contains("across_channels"), message)
    }

    func testDetectionOutputIsRefused() {
        let message = refusal("%y = detection_output(%l, %c, %p) {num_classes=2}",
                              params: ["%l: f32[2,16]", "%c: f32[2,8]", "%p: f32[1,2,16]"])
        XCTAssertTrue(message.contains("cannot differentiate '%y' (detection_output)") && message.contains("non-maximum suppression"), message)
    }

    func testFusedActivationWithNegativeSlopeIsRefused() {
        let message = refusal("%y = conv2d(%x, %w) {activation=relu, negative_slope=-0.5}")
        XCTAssertTrue(message.contains("cannot differentiate '%y' (conv2d)") && message.contains("negative slope"), message)
    }
}
