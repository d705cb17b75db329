import ArgumentParser
import Driver
import Foundation

struct ImportOnnx: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "onnx",
        abstract: "Convert an ONNX model (opset 11 or later) into DIR/NAME.fn2e and DIR/NAME.safetensors.")
    @Argument(help: "The model, MODEL.onnx (weights inside, not in external files).") var model: String
    @Option(name: .shortAndLong, help: "Output folder.") var output: String
    @Option(help: "Graph and file name (default: from the model's file name).") var name: String?
    @Option(help: "Import only the nodes these values (or nodes) need, comma-separated; they are the outputs.")
    var outputs: String?

    func run() throws {
        let cut = outputs.map { $0.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) } }
        try emit(OnnxImportDriver.run(model: model, directory: output, name: name, outputs: cut))
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export",
        abstract: "Export models to other formats.", subcommands: [ExportOnnx.self])
}

struct ExportOnnx: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "onnx",
        abstract: "Write an inference graph and its weights, or a trained run, as an ONNX model (opset 13, batch N dynamic).")
    @Argument(help: "The graph file (.fn2e), or a run folder of `fn2e-run train` (its graph cut to the class scores, its trained weights).")
    var graph: String
    @Option(help: "The weights (.safetensors) of every parameter.") var weights: String?
    @Option(name: .customLong("graph"), help: "The graph to export (default: the file's last graph).") var graphName: String?
    @Option(name: .customLong("bind"), help: "Bind a named size the weights do not fix, e.g. K=7 (repeatable).") var bindings: [String] = []
    @Option(help: ArgumentHelp("Seeded random weights for parameters without any (tests and fixtures).", visibility: .hidden))
    var randomWeights: UInt64?
    @Option(name: .shortAndLong, help: "The model to write, MODEL.onnx.") var output: String

    func validate() throws {
        guard OnnxImportDriver.isRunFolder(graph) || weights != nil || randomWeights != nil else { throw ValidationError("give --weights W.safetensors (or a run folder)") }
        _ = try parsedBindings()
    }

    func parsedBindings() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for b in bindings {
            let parts = b.split(separator: "=")
            guard parts.count == 2, let v = Int(parts[1]) else { throw ValidationError("--bind takes NAME=VALUE, found '\(b)'") }
            out[String(parts[0])] = v
        }
        return out
    }

    func run() throws {
        try emit(OnnxImportDriver.export(graphPath: graph, graph: graphName, weights: weights, seed: randomWeights,
                                         bindings: try parsedBindings(), output: output))
    }
}

struct OnnxBackendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "onnx-backend",
        abstract: "Run ONNX's backend node tests (written by Tools/onnx/backend_cases.py) whose ops fn2e imports; a per-op table.")
    @Argument(help: "The folder of cases (CASE/model.onnx, CASE/test_data_set_*/).") var directory: String
    @Option(help: "Only cases whose name contains this.") var filter: String?

    func run() throws {
        try emit(OnnxBackend.command(directory: directory, filter: filter))
    }
}
