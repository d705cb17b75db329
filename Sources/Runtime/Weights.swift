import IR
import Tensors

/// Which parameters weight files filled, which kept their initializers, and which tensors of the
/// files no parameter takes.
public struct WeightsReport {
    public var loaded: [String] = []
    public var initialized: [String] = []
    public var unused: [String] = []
    /// One line per file: its path, fingerprint (FNV-1a of its bytes) and how many tensors it gave.
    public var files: [String] = []

    /// One line (`fn2e-run infer --weights`).
    public var text: String {
        var s = "weights: \(loaded.count) parameters loaded, \(initialized.count) initialised"
        if !initialized.isEmpty { s += " (" + initialized.joined(separator: ", ") + ")" }
        if !unused.isEmpty { s += "; unused in the file: " + unused.joined(separator: ", ") }
        return s
    }
}

/// The one weight loader: safetensors files into parameters, by name.
public enum WeightLoader {
    /// Loads each file's tensors, their names prefixed `PREFIX.` when a prefix is given, into every
    /// executor that holds the parameter of that name. Every shape mismatch is reported at once and
    /// nothing changes unless all match; parameters no file has keep their initializers (Caffe's
    /// rename-to-relearn idiom). Folded values are recomputed.
    public static func load(_ files: [(prefix: String, path: String)], into executors: [Executor], params: [Param]) throws -> WeightsReport {
        var values: [String: Tensor] = [:]
        var unused: [String] = []
        var problems: [String] = []
        var fileLines: [String] = []
        for (prefix, path) in files {
            let (tensors, _) = try SafeTensors.read(path: path)
            let before = values.count
            for (n, t) in tensors.sorted(by: { $0.key < $1.key }) {
                let target = prefix.isEmpty ? n : prefix + "." + n
                guard let p = params.first(where: { $0.name == target }) else { unused.append(target); continue }
                guard t.shape == p.type.shape ?? [] else {
                    problems.append("'\(target)': \(path) has shape \(t.shape), the graph wants \(p.type) (rename the parameter to learn it from scratch)")
                    continue
                }
                values[target] = t
            }
            fileLines.append("weights: \(path) (fnv1a64 \(try Digest.fnv1a64(file: path))): \(values.count - before) tensors loaded"
                             + (prefix.isEmpty ? "" : " as \(prefix).*"))
        }
        guard problems.isEmpty else {
            throw RuntimeError("\(problems.count) parameter\(problems.count == 1 ? "" : "s") do not match:\n  " + problems.joined(separator: "\n  "))
        }
        for (name, t) in values {
            for e in executors where e.schedule.buffers[name] != nil { try e.setValue(name, t) }
        }
        for e in executors { e.refold() }
        return WeightsReport(loaded: params.map(\.name).filter { values[$0] != nil },
                             initialized: params.map(\.name).filter { values[$0] == nil }, unused: unused, files: fileLines)
    }

    /// One file without a prefix into one executor's parameters.
    public static func load(_ path: String, into executor: Executor) throws -> WeightsReport {
        try load([("", path)], into: [executor], params: executor.schedule.graph.params)
    }
}
