// `fn2e-compile import onnx`: an ONNX model in, a verified canonical NAME.fn2e and NAME.safetensors
// out (through Importing.write: temporary files and renames, nothing left behind on error).
import Foundation
import IR
import OnnxImport
import Runtime
import Scheduler
import Tensors
import Training

public enum OnnxImportDriver {
    /// A failed command: ONNX errors as they are (`file: error: ...`), anything else after `error: `; exit status 1.
    static func report(_ error: Error, into out: inout CommandOutput) {
        out.stderr += (error is OnnxError ? "\(error)" : "error: \(error)") + "\n"
        out.status = 1
    }

    /// Imports `model` and writes `directory/name.fn2e` and `directory/name.safetensors`; the import
    /// log goes to stderr, the written paths to stdout. `outputs` (value or node names) imports
    /// only what they need.
    public static func run(model: String, directory: String, name: String?, outputs: [String]? = nil) -> CommandOutput {
        var out = CommandOutput()
        do {
            let graphName = name ?? Graph.name(fromFile: model)
            let imported = try OnnxToIR.importFile(path: model, name: graphName, outputs: outputs)
            out.stderr += imported.log.map { "note: \($0)\n" }.joined()
            let text = try Importing.canonicalText(imported.module)
            out.stdout += try Importing.write(text: text, weights: imported.weights, source: "onnx", directory: directory, name: graphName)
            out.stderr += "imported \(imported.graph.nodes.count) nodes, \(imported.graph.params.count) parameters\n"
        } catch {
            report(error, into: &out)
        }
        return out
    }
}

extension OnnxImportDriver {
    /// The graph of `path` (calls inlined, named sizes bound from the weights' shapes and
    /// `bindings`) with a tensor for every parameter: read from `weights`, or seeded random ones
    /// (`seed`, for tests and fixtures).
    public static func exportable(graphPath: String, graph name: String? = nil, weights: String?, seed: UInt64? = nil,
                                  bindings: [String: Int] = [:]) throws -> (Graph, [String: Tensor]) {
        let program = try loadProgram(graphPath)
        guard let root = program.graph(name) else { throw StageError("\(graphPath): no graph '\(name ?? "")'") }
        var graph = Inliner.inline(root, graphs: program.graphs)
        var tensors: [String: Tensor] = [:]
        if let weights { tensors = try SafeTensors.read(path: weights).tensors }
        var values = try Scheduler.symbolValues(graph, from: tensors.mapValues(\.shape))
        values.merge(bindings) { _, given in given }
        do {
            graph = try graph.binding(symbols: values)
        } catch let list as DiagnosticList {
            throw StageError(SourceManager().render(list.diagnostics))
        }
        if let seed {
            for (k, p) in graph.params.enumerated() where tensors[p.name] == nil {
                guard let shape = p.type.shape else { continue }
                tensors[p.name] = Tensor(shape: shape, seed: seed &+ UInt64(k), std: 0.1)
            }
        }
        return (graph, tensors)
    }

    /// A trained run folder (settings.txt and model.safetensors, as `fn2e-run train` writes them):
    /// its graph bound to the trained sizes, cut to the class scores (the run's `logits`, else the
    /// graph's outputs that are not losses), without the inputs only the loss read; the weights of
    /// the settings' `weights` files, then the trained ones.
    public static func exportable(runDirectory dir: String) throws -> (Graph, [String: Tensor]) {
        let run = try Predictor(runDirectory: dir)
        var graph = run.graph
        let outputs = run.logits.map { [$0] } ?? graph.outputs.filter { o in !Op.losses.contains(graph.node(o)?.op ?? .call) }
        guard !outputs.isEmpty else { throw StageError("\(dir): the run records no class scores (logits) and '@\(graph.name)' returns only losses") }
        graph.outputs = outputs
        graph = DeadCodeElimination.prune(graph)
        let read = Set(graph.nodes.flatMap(\.operands) + graph.outputs)
        graph.inputs = graph.inputs.filter { read.contains($0.name) }
        var tensors: [String: Tensor] = [:]
        for (prefix, file) in run.settings.weightFiles {
            for (n, t) in try SafeTensors.read(path: file).tensors { tensors[prefix.isEmpty ? n : prefix + "." + n] = t }
        }
        tensors.merge(try SafeTensors.read(path: dir + "/model.safetensors").tensors) { _, trained in trained }
        return (graph, tensors.filter { name, _ in graph.params.contains { $0.name == name } })
    }

    /// Whether `path` is a folder (a run's) rather than a graph file.
    public static func isRunFolder(_ path: String) -> Bool {
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
    }

    /// `fn2e-compile export onnx`: writes `output` (a temporary file, renamed), its path on stdout.
    /// `graphPath` is a graph file, or a trained run's folder (see `exportable(runDirectory:)`).
    public static func export(graphPath: String, graph name: String? = nil, weights: String?, seed: UInt64? = nil,
                              bindings: [String: Int] = [:], output: String) -> CommandOutput {
        var out = CommandOutput()
        do {
            let run = isRunFolder(graphPath)
            if run, weights != nil || name != nil || seed != nil || !bindings.isEmpty {
                throw StageError("\(graphPath) is a run folder: its settings give the graph and model.safetensors the weights (no --weights, --graph, --bind)")
            }
            let (graph, tensors) = run ? try exportable(runDirectory: graphPath)
                : try exportable(graphPath: graphPath, graph: name, weights: weights, seed: seed, bindings: bindings)
            let model = try IRToOnnx.export(graph, weights: tensors, file: graphPath)
            try Importing.atomicWrite(Data(model.serialized()), to: output)
            out.stdout += output + "\n"
            out.stderr += "exported \(graph.nodes.count) nodes as \(model.graph.nodes.count) ONNX nodes (opset \(IRToOnnx.opset)), \(graph.params.count) parameters\n"
        } catch {
            report(error, into: &out)
        }
        return out
    }
}
