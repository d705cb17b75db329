// Models exported by PyTorch (torch.onnx): torchvision's ResNet-18 and MobileNetV2 and
// facenet-pytorch's MTCNN nets, written with PyTorch's own outputs by Tools/onnx/pytorch_models.py
// into the folder FN2E_ONNX_PYTORCH names (a skip that says so when unset). Each model is imported
// by fn2e and run on PyTorch's input: every output within 1e-5 of PyTorch's. The MTCNN nets are
// also compared with fn2e's Caffe import of the original nets (Models/mtcnn).
import Driver
import Foundation
import IR
import OnnxImport
import Runtime
import Tensors
import XCTest

final class PyTorchModelTests: XCTestCase {
    func folder() throws -> String {
        guard let dir = ProcessInfo.processInfo.environment["FN2E_ONNX_PYTORCH"], !dir.isEmpty else {
            throw XCTSkip("FN2E_ONNX_PYTORCH is unset: write the models with Tools/onnx/pytorch_models.py DIR (Tools/onnx/torch_venv.sh's Python) and set FN2E_ONNX_PYTORCH=DIR")
        }
        return dir
    }

    /// The model `name` (`name.dynamo.onnx` with `dynamo`: torch.onnx's default exporter) imported
    /// and run on PyTorch's input: fn2e's outputs, by ONNX name, each checked against PyTorch's.
    @discardableResult
    func check(_ name: String, dynamo: Bool = false) throws -> (OnnxImported, [String: Tensor]) {
        let dir = try folder()
        let imported = try OnnxToIR.importFile(path: "\(dir)/\(name)\(dynamo ? ".dynamo" : "").onnx", name: name)
        let io = "\(dir)/\(name).io.safetensors"
        let tensors = try SafeTensors.read(path: io).tensors
        let x = try XCTUnwrap(tensors["input:input"], "\(io) has no input:input")
        let symbols = bindings(imported.graph.inputs[0].type, x.shape)
        let ex = try CompiledGraph(graph: imported.graph, weights: imported.weights).executor(batch: x.shape[0], symbols: symbols)
        let got = try ex.run(inputs: [try XCTUnwrap(imported.names["input"]): x])
        var out: [String: Tensor] = [:]
        for (key, want) in tensors where key.hasPrefix("output:") {
            let o = String(key.dropFirst("output:".count))
            let y = got[try XCTUnwrap(imported.names[o], "no output \(o)")]
            report(y, want, "\(name)\(dynamo ? " (dynamo)" : "") \(o): fn2e's ONNX import against PyTorch")
            out[o] = y
        }
        XCTAssertFalse(out.isEmpty, "\(io) has no outputs")
        return (imported, out)
    }

    /// The named sizes of `type` given by `shape`.
    func bindings(_ type: TensorType, _ shape: [Int]) -> [String: Int] {
        var out: [String: Int] = [:]
        for (d, n) in zip(type.dims, shape) { if case .symbol(let s) = d { out[s] = n } }
        return out
    }

    /// Asserts within 1e-5 (relative, absolute below 1) and prints the largest absolute and relative differences.
    func report(_ got: Tensor?, _ want: Tensor, _ what: String, tolerance: Float = 1e-5) {
        let worst = assertClose(got, want, tolerance: tolerance, what)
        guard let got, got.count == want.count else { return }
        let abs = zip(got.data, want.data).map { Swift.abs($0 - $1) }.max() ?? 0
        let rel = zip(got.data, want.data).map { Swift.abs($0 - $1) / Swift.max(Swift.abs($1), 1e-30) }.max() ?? 0
        print("\(what): max |difference| \(abs), max relative \(rel) (tested: \(worst) <= \(tolerance))")
    }

    func testResNet18() throws {
        let (imported, _) = try check("resnet18")
        XCTAssertEqual(imported.graph.inputs[0].type.description, "f32[N,3,224,224]")
    }

    func testMobileNetV2() throws { try check("mobilenet_v2") }

    func testMTCNNPNet() throws {
        let (imported, _) = try check("pnet")
        XCTAssertEqual(imported.graph.inputs[0].type.description, "f32[N,3,H,W]")
    }

    func testMTCNNRNet() throws { try check("rnet") }
    func testMTCNNONet() throws { try check("onet") }

    /// The same models written by torch.onnx's default exporter (dynamo=True, opset 18).
    func testDynamoExports() throws {
        for name in ["resnet18", "mobilenet_v2", "rnet", "onet"] { try check(name, dynamo: true) }
        let (pnet, _) = try check("pnet", dynamo: true)
        XCTAssertEqual(pnet.graph.inputs[0].type.description, "f32[N,3,H,W]")
    }

    /// [N, C, H, W] -> [N, C, W, H].
    func transposed(_ t: Tensor) -> Tensor {
        let (n, c, h, w) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        var out = [Float](repeating: 0, count: t.count)
        for p in 0..<(n * c) { for y in 0..<h { for x in 0..<w { out[p * h * w + x * h + y] = t.data[p * h * w + y * w + x] } } }
        return Tensor(shape: [n, c, w, h], data: out)
    }

    /// facenet-pytorch's nets against fn2e's Caffe import of MTCNN's det1-det3 (Models/mtcnn). The
    /// Caffe nets take images transposed (trained in MATLAB); facenet-pytorch's weights are the same
    /// numbers rearranged for untransposed images. So the Caffe net gets the transposed input, and
    /// the P-Net's maps come back transposed.
    func testMTCNNMatchesCaffeImport() throws {
        let dir = try folder()
        let models = repository + "/Models/mtcnn"
        let cases: [(String, String, Int, [(String, String)])] = [
            ("pnet", "det1", 12, [("reg", "conv4-2"), ("prob", "prob1")]),
            ("rnet", "det2", 24, [("reg", "conv5-2"), ("prob", "prob1")]),
            ("onet", "det3", 48, [("reg", "conv6-2"), ("landmarks", "conv6-3"), ("prob", "prob1")]),
        ]
        for (k, (onnx, caffe, size, outputs)) in cases.enumerated() {
            let x = Tensor(shape: [3, 3, size, size], seed: 70 + UInt64(k), std: 0.5)
            let imported = try OnnxToIR.importFile(path: "\(dir)/\(onnx).onnx", name: onnx)
            let fromOnnx = try CompiledGraph(graph: imported.graph, weights: imported.weights)
                .executor(batch: 3, symbols: bindings(imported.graph.inputs[0].type, x.shape))
                .run(inputs: [imported.names["input"]!: x])
            let program = try Loader.load(path: "\(models)/\(caffe).fn2e")
            let graph = try XCTUnwrap(program.graph(caffe))
            let weights = try SafeTensors.readOrdered(path: "\(models)/\(caffe).safetensors").tensors
            let fromCaffe = try CompiledGraph(graph: graph, weights: weights).executor(batch: 3).run(inputs: [graph.inputs[0].name: transposed(x)])
            for (o, c) in outputs {
                var want = try XCTUnwrap(fromCaffe[c])
                if want.rank == 4 { want = transposed(want) }
                report(fromOnnx[imported.names[o]!], want, "\(onnx) \(o) against fn2e's Caffe import (\(caffe) \(c))", tolerance: 1e-4)
            }
        }
    }
}
