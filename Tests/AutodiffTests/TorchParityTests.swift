import Autodiff
import Foundation
import IR
import Scheduler
import Tensors
import XCTest

/// Gradients of a small ExpNet-shaped net against PyTorch (float64 autograd), from the fixture that
/// Tools/autodiff/torch_parity.py writes: both the fast path and the reference interpreter must
/// agree with it to 1e-4 relative per tensor (‖a − b‖ / ‖b‖).
final class TorchParityTests: XCTestCase {
    static let tolerance = 1e-4
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/Autodiff")

    func testStagesMatchPyTorch() throws {
        let (fixture, meta) = try SafeTensors.read(path: Self.dir.appendingPathComponent("torch_parity.safetensors").path)
        XCTAssertEqual(meta["generator"], "Tools/autodiff/torch_parity.py")
        let program = try Loader.load(path: Self.dir.appendingPathComponent("torch_parity.fn2e").path)
        for stage in ["stage2", "stage1"] {
            let batch = fixture["data"]!.shape[0]
            let flat = try Scheduler.bind(Inliner.inline(program.graph(stage)!, graphs: program.graphs), batch: batch)
            let grad = try Autodiff.gradient(of: flat, loss: "loss")
            var values: [String: [Double]] = [:]
            for name in grad.inputs.map(\.name) + grad.params.map(\.name) {
                values[name] = try XCTUnwrap(fixture[name], "fixture lacks '\(name)'").data.map(Double.init)
            }
            let (fast, planned, reference) = try runBothPaths(grad, batch: batch, values: values)
            var compared = 0
            for o in grad.outputs {
                let torchName = o == "loss" ? "\(stage).loss" : "\(stage).\(o)"
                let expected = try XCTUnwrap(fixture[torchName], "fixture lacks '\(torchName)'").data.map(Double.init)
                for (path, got) in [("fast", fast[o]!), ("planned", planned[o]!), ("reference", reference[o]!)] {
                    let (rel, maxAbs) = relativeDifference(got, expected)
                    print(String(format: "torch parity %@ %-9@ %-26@ rel %.2e  max |diff| %.2e", stage, path, o, rel, maxAbs))
                    XCTAssertLessThanOrEqual(rel, Self.tolerance, "\(stage) \(path): \(o)")
                }
                compared += 1
            }
            XCTAssertEqual(compared, stage == "stage2" ? 9 : 5, "loss and every gradient")
        }
    }
}
