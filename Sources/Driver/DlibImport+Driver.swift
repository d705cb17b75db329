// `fn2e-compile import dlib`: a dlib network file in, a verified canonical NAME.fn2e and
// NAME.safetensors out (see `Importing`), nothing left behind on error.
import DlibImport
import Foundation
import IR

public enum DlibImportDriver {
    /// Imports `file` (dlib's face-recognition ResNet type) and writes `directory/name.fn2e` and
    /// `directory/name.safetensors`. The import log goes to stderr, the written paths to stdout;
    /// a bad file is one `file: error: at byte N: ...` line and exit status 1.
    public static func run(file: String, directory: String, name: String?) -> CommandOutput {
        var out = CommandOutput()
        do {
            let graphName = name ?? Graph.name(fromFile: file)
            let imported = try DlibToIR.importFile(file, name: graphName)
            out.stderr += imported.log.map { "note: \($0)\n" }.joined()
            let text = try Importing.canonicalText(imported.module)
            out.stdout += try Importing.write(text: text, weights: imported.weights, source: "dlib", directory: directory, name: graphName)
            let values = imported.weights.reduce(0) { $0 + $1.1.count }
            out.stderr += "imported \(imported.graph.nodes.count) nodes, \(imported.graph.params.count) parameters (\(values) values)\n"
        } catch {
            out.stderr += (error is DlibError ? "\(error)" : "error: \(error)") + "\n"
            out.status = 1
        }
        return out
    }

    /// Writes `directory/name.dat`, the small net of every layer family (hidden
    /// `import make-test-model dlib-every-family`; a fuzz seed).
    public static func makeTestModel(directory: String, name: String) -> CommandOutput {
        var out = CommandOutput()
        let path = (directory as NSString).appendingPathComponent(name + ".dat")
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(DlibTestModels.everyFamily().serialized()).write(to: URL(fileURLWithPath: path), options: .atomic)
            out.stdout += path + "\n"
        } catch {
            out.stderr += "error: \(error)\n"
            out.status = 1
        }
        return out
    }
}
