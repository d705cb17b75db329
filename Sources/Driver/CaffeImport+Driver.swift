// `fn2e-compile import caffe`: Caffe files in, a verified canonical NAME.fn2e and NAME.safetensors
// out, each written to a temporary file and renamed, nothing left behind on error. Plus the hidden
// helpers the Caffe tests and Tools/caffe scripts use (test models, per-layer outputs as .npy).
import CaffeImport
import Foundation
import IR
import Runtime
import Scheduler
import Tensors

public enum CaffeImportDriver {
    /// A failed command: Caffe diagnostics as they are (`file:line:col: error: ...`), anything else
    /// after `error: `; exit status 1.
    static func report(_ error: Error, into out: inout CommandOutput) {
        out.stderr += (error is CaffeError ? "\(error)" : "error: \(error)") + "\n"
        out.status = 1
    }

    /// Imports and writes `directory/name.fn2e` and `directory/name.safetensors`. The reader's
    /// warnings and the upgrade and import log go to stderr, the written paths to stdout. `outputs`
    /// (layer or blob names) imports only what they need.
    public static func run(prototxt: String?, caffemodel: String?, directory: String, name: String?, outputs: [String]? = nil) -> CommandOutput {
        var out = CommandOutput()
        do {
            let graphName = name ?? CaffeToIR.graphName(fromPath: prototxt ?? caffemodel ?? "net")
            let imported = try CaffeToIR.importFiles(prototxt: prototxt, caffemodel: caffemodel, name: graphName, outputs: outputs)
            out.stderr += imported.warnings.map { "\($0)\n" }.joined()
            out.stderr += imported.log.map { "note: \($0)\n" }.joined()
            let text = try canonicalText(imported)
            out.stdout += try Importing.write(text: text, weights: imported.weights, source: "caffe", directory: directory, name: graphName)
            out.stderr += "imported \(imported.graph.nodes.count) nodes, \(imported.graph.params.count) parameters (\(imported.weights.count) with weights)\n"
        } catch {
            report(error, into: &out)
        }
        return out
    }

    /// The module's printed text, checked to parse and verify back to the same text.
    public static func canonicalText(_ imported: CaffeImported) throws -> String {
        try Importing.canonicalText(imported.module)
    }

    /// Compiles an imported graph in memory for one batch size (see `Importing.executor`).
    public static func executor(_ imported: CaffeImported, batch: Int, keepAll: Bool = true) throws -> Executor {
        try Importing.executor(imported.graph, weights: imported.weights, batch: batch, keepAll: keepAll)
    }

    /// Runs the import of `prototxt` (+ `caffemodel`) on `input` and writes every node's output to
    /// `directory/NODE.npy` (hidden `import caffe-outputs`; used by Tools/caffe/opencv_check.py).
    public static func writeOutputs(prototxt: String, caffemodel: String?, input: String, directory: String) -> CommandOutput {
        var out = CommandOutput()
        do {
            let imported = try CaffeToIR.importFiles(prototxt: prototxt, caffemodel: caffemodel,
                                                     name: CaffeToIR.graphName(fromPath: prototxt))
            let x = try Npy.read(path: input)
            guard let inputName = imported.graph.inputs.first?.name, imported.graph.inputs.count == 1 else {
                throw StageError("caffe-outputs handles nets with one input")
            }
            let ex = try executor(imported, batch: x.shape.first ?? 1)
            _ = try ex.run(inputs: [inputName: x])
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for n in imported.graph.nodes {
                guard let t = ex.tensor(n.name) else { continue }
                try Npy.write(t, to: (directory as NSString).appendingPathComponent(n.name + ".npy"))
                out.stdout += "\(n.name) \(t.shape)\n"
            }
        } catch {
            report(error, into: &out)
        }
        return out
    }

    /// Writes a test model (hidden `import make-test-model`): `net` is `mini-vgg`, `all-layers`, `ssd-mini`, `ssd-mini-batch1` or a
    /// prototxt path whose layers get seeded random weights.
    public static func makeTestModel(net: String, syntax: CaffeSyntax, seed: UInt64, directory: String, name: String) -> CommandOutput {
        var out = CommandOutput()
        do {
            let caffeNet: CaffeNet
            switch net {
            case "mini-vgg": caffeNet = try CaffeNet(prototxt: CaffeTestModels.miniVGG, file: "mini-vgg")
            case "all-layers": caffeNet = try CaffeNet(prototxt: CaffeTestModels.allLayers, file: "all-layers")
            case "ssd-mini": caffeNet = try CaffeNet(prototxt: CaffeTestModels.ssdMini, file: "ssd-mini")
            case "ssd-mini-batch1": caffeNet = try CaffeNet(prototxt: CaffeTestModels.ssdMiniBatch1, file: "ssd-mini-batch1")
            default: caffeNet = try CaffeNet(prototxtPath: net)
            }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try CaffeTestModels.write(caffeNet, seed: seed, syntax: syntax, directory: directory, name: name)
            let base = (directory as NSString).appendingPathComponent(name)
            out.stdout += "\(base).prototxt\n\(base).caffemodel\n"
        } catch {
            report(error, into: &out)
        }
        return out
    }
}
