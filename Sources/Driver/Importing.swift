// What every importer shares: the canonical text check, an in-memory executor of the imported graph,
// and the files it writes (NAME.fn2e and NAME.safetensors, each through a temporary file and a
// rename, nothing left behind on error).
import Foundation
import IR
import Runtime
import Scheduler
import Tensors

public enum Importing {
    /// The module's printed text, checked to parse and verify back to the same text.
    public static func canonicalText(_ module: Module) throws -> String {
        let text = Printer.print(module)
        let sources = SourceManager()
        let program: Program
        do {
            program = try Loader.load(text: text, file: module.file, sources: sources)
        } catch let list as DiagnosticList {
            throw StageError("internal: the imported graph does not read back:\n" + sources.render(list.diagnostics))
        }
        let again = Printer.print(program.verifiedRoot)
        guard again == text else { throw StageError("internal: the imported graph does not print canonically") }
        return text
    }

    /// Compiles an imported graph in memory for one batch size. Fusion and memory planning are off
    /// so that every layer's own output stays readable afterwards.
    public static func executor(_ graph: Graph, weights: [(String, Tensor)], batch: Int, keepAll: Bool = true) throws -> Executor {
        try CompiledGraph(graph: graph, weights: weights, fuse: !keepAll, planMemory: !keepAll).executor(batch: batch)
    }

    /// Writes `directory/name.safetensors` (metadata `source`), then `directory/name.fn2e`; returns
    /// the two paths, one a line. On error neither file is left.
    public static func write(text: String, weights: [(String, Tensor)], source: String, directory: String, name: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let base = (directory as NSString).appendingPathComponent(name)
        // Weights first: a failure there leaves no graph file that lacks its weights.
        try writeSafeTensors(weights, metadata: ["source": source], to: base + ".safetensors")
        do {
            try atomicWrite(Data(text.utf8), to: base + ".fn2e")
        } catch {
            unlink(base + ".safetensors")
            throw error
        }
        return "\(base).fn2e\n\(base).safetensors\n"
    }

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
    /// The bytes equal `SafeTensors.serialize`'s, checksums included.
    public static func writeSafeTensors(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to path: String) throws {
        let header = try SafeTensors.header(tensors, metadata: metadata, path: path)
        try streamAtomically(to: path) { file in
            _ = header.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            for (_, t) in tensors {
                // Little-endian hosts only (x86-64, arm64), as the rest of fn2e assumes.
                _ = t.data.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            }
        }
    }
}
