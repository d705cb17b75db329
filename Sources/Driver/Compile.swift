import Foundation
import IR
import Runtime
import Scheduler
import Tensors

/// A graph loaded, verified and lowered for one batch size, with an executor bound to it.
public struct Compiled {
    public var program: Program
    public var graph: Graph
    public var schedule: Schedule
    public var executor: Executor
}

/// Loads and verifies a file, rendering diagnostics into the error's text.
public func loadProgram(_ path: String) throws -> Program {
    let sources = SourceManager()
    do {
        return try Loader.load(path: path, sources: sources)
    } catch let list as DiagnosticList {
        throw RenderedDiagnostics(description: sources.render(list.diagnostics))
    }
}

/// Diagnostics already rendered as `file:line:col: error: ...` with their source lines.
public struct RenderedDiagnostics: Error, CustomStringConvertible {
    public var description: String
}

/// The text a command prints for an error: one `error:` prefix. Rendered diagnostics, and messages
/// that already say `file:line:col: error:` (settings and recipe files), print as they are;
/// anything else after `error: `.
public func errorText(_ error: Error) -> String {
    let text = "\(error)"
    if error is RenderedDiagnostics || text.hasPrefix("error: ") { return text }
    let firstLine = text.prefix { $0 != "\n" }
    return firstLine.contains(": error: ") ? text : "error: " + text
}

public func compile(path: String, graph name: String? = nil, batch: Int, seed: UInt64 = 0) throws -> Compiled {
    let program = try loadProgram(path)
    guard let g = program.graph(name) else { throw StageError("no graph '@\(name ?? "")' in \(path)") }
    let executor = try CompiledGraph(graph: g, graphs: program.graphs, seed: seed).executor(batch: batch)
    return Compiled(program: program, graph: g, schedule: executor.schedule, executor: executor)
}

/// Current parameters as ordered safetensors entries.
public func parameterTensors(_ executor: Executor) -> [(String, Tensor)] {
    executor.schedule.graph.params.compactMap { p in executor.tensor(p.name).map { (p.name, $0) } }
}

/// Peak resident memory of this process in bytes (`getrusage`, Linux reports KiB).
public func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
}
