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

    /// Imports and writes `directory/name.fn2e` and `directory/name.safetensors`. The upgrade and
    /// import log goes to stderr, the written paths to stdout.
    public static func run(prototxt: String?, caffemodel: String?, directory: String, name: String?) -> CommandOutput {
        var out = CommandOutput()
        do {
            let graphName = name ?? CaffeToIR.graphName(fromPath: prototxt ?? caffemodel ?? "net")
            let imported = try CaffeToIR.importFiles(prototxt: prototxt, caffemodel: caffemodel, name: graphName)
            out.stderr += imported.log.map { "note: \($0)\n" }.joined()
            let text = try canonicalText(imported)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let base = (directory as NSString).appendingPathComponent(graphName)
            // Weights first: a failure there leaves no graph file that lacks its weights.
            try writeSafeTensors(imported.weights, metadata: ["source": "caffe"], to: base + ".safetensors")
            do {
                try atomicWrite(Data(text.utf8), to: base + ".fn2e")
            } catch {
                unlink(base + ".safetensors")
                throw error
            }
            out.stdout += "\(base).fn2e\n\(base).safetensors\n"
            out.stderr += "imported \(imported.graph.nodes.count) nodes, \(imported.graph.params.count) parameters (\(imported.weights.count) with weights)\n"
        } catch {
            report(error, into: &out)
        }
        return out
    }

    /// The module's printed text, checked to parse and verify back to the same text.
    public static func canonicalText(_ imported: CaffeImported) throws -> String {
        let text = imported.text
        let sources = SourceManager()
        let program: Program
        do {
            program = try Loader.load(text: text, file: imported.module.file, sources: sources)
        } catch let list as DiagnosticList {
            throw StageError("internal: the imported graph does not read back:\n" + sources.render(list.diagnostics))
        }
        let again = Printer.print(program.verifiedRoot)
        guard again == text else { throw StageError("internal: the imported graph does not print canonically") }
        return text
    }

    /// Compiles an imported graph in memory for one batch size. Fusion and memory planning are off
    /// so that every layer's own output stays readable afterwards.
    public static func executor(_ imported: CaffeImported, batch: Int, keepAll: Bool = true) throws -> Executor {
        let schedule = try Scheduler.schedule(imported.graph, graphs: [imported.graph.name: imported.graph],
                                              options: ScheduleOptions(batch: batch, fuse: !keepAll, planMemory: !keepAll))
        let ex = try Executor(schedule: schedule)
        for (name, t) in imported.weights { try ex.setValue(name, t) }
        ex.refold()
        return ex
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

    /// Writes a test model (hidden `import make-test-model`): `net` is `mini-vgg`, `all-layers` or a
    /// prototxt path whose layers get seeded random weights.
    public static func makeTestModel(net: String, syntax: CaffeSyntax, seed: UInt64, directory: String, name: String) -> CommandOutput {
        var out = CommandOutput()
        do {
            let caffeNet: CaffeNet
            switch net {
            case "mini-vgg": caffeNet = try CaffeNet(prototxt: CaffeTestModels.miniVGG, file: "mini-vgg")
            case "all-layers": caffeNet = try CaffeNet(prototxt: CaffeTestModels.allLayers, file: "all-layers")
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

    // MARK: Files

    /// Writes `data` to a temporary file beside `path`, then renames it over `path`.
    static func atomicWrite(_ data: Data, to path: String) throws {
        try streamAtomically(to: path) { file in
            _ = data.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        }
    }

    static func streamAtomically(to path: String, _ body: (UnsafeMutablePointer<FILE>) throws -> Void) throws {
        let temporary = path + ".tmp-\(getpid())"
        guard let file = fopen(temporary, "wb") else { throw StageError("\(path): cannot create \(temporary): \(String(cString: strerror(errno)))") }
        do {
            try body(file)
        } catch {
            fclose(file)
            unlink(temporary)
            throw error
        }
        let failed = ferror(file) != 0
        guard fclose(file) == 0, !failed, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw StageError("\(path): write failed: \(reason)")
        }
    }

    /// safetensors written tensor by tensor straight from the tensors' storage (no whole-file
    /// image in memory, unlike `SafeTensors.write`), so a 580 MB import holds its weights once.
    /// The bytes equal `SafeTensors.serialize`'s.
    public static func writeSafeTensors(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to path: String) throws {
        var parts: [String] = []
        if !metadata.isEmpty {
            parts.append("\"__metadata__\":{" + metadata.keys.sorted().map { "\(json($0)):\(json(metadata[$0]!))" }.joined(separator: ",") + "}")
        }
        var offset = 0
        var seen = Set<String>()
        for (name, t) in tensors {
            guard name != "__metadata__", seen.insert(name).inserted else { throw StageError("\(path): duplicate tensor name '\(name)'") }
            let size = t.count * 4
            parts.append("\(json(name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        var header = "{" + parts.joined(separator: ",") + "}"
        while header.utf8.count % 8 != 0 { header += " " }
        try streamAtomically(to: path) { file in
            var len = UInt64(header.utf8.count).littleEndian
            fwrite(&len, 8, 1, file)
            _ = Array(header.utf8).withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            for (_, t) in tensors {
                // Little-endian hosts only (x86-64, arm64), as the rest of fn2e assumes.
                _ = t.data.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            }
        }
    }

    private static func json(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
