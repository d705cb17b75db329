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

/// The text a command prints for an error: rendered diagnostics as they are, anything else after `error: `.
public func errorText(_ error: Error) -> String {
    error is RenderedDiagnostics ? "\(error)" : "error: \(error)"
}

/// Whether `FN2E_NO_MEMORY_PLANNER=1` asks for every temporary in its own range (for bisecting).
public var memoryPlannerDisabled: Bool { ProcessInfo.processInfo.environment["FN2E_NO_MEMORY_PLANNER"] == "1" }

public func compile(path: String, graph name: String? = nil, batch: Int, seed: UInt64 = 0) throws -> Compiled {
    let program = try loadProgram(path)
    guard let g = program.graph(name) else { throw StageError("no graph '@\(name ?? "")' in \(path)") }
    let schedule = try Scheduler.schedule(g, graphs: program.graphs,
                                          options: ScheduleOptions(batch: batch, planMemory: !memoryPlannerDisabled))
    return Compiled(program: program, graph: g, schedule: schedule, executor: try Executor(schedule: schedule, seed: seed))
}

/// Which parameters a weights file filled and which kept their initializers.
public struct WeightsReport {
    public var loaded: [String] = []
    public var initialized: [String] = []
    /// Tensors in the file that no parameter of the graph takes.
    public var unused: [String] = []

    public var text: String {
        var s = "weights: \(loaded.count) parameters loaded, \(initialized.count) initialised"
        if !initialized.isEmpty { s += " (" + initialized.joined(separator: ", ") + ")" }
        if !unused.isEmpty { s += "; unused in the file: " + unused.joined(separator: ", ") }
        return s
    }
}

/// Loads a safetensors file into the executor's parameters by name. Every dtype or shape mismatch
/// is reported at once, and nothing is changed unless all match. Parameters the file lacks keep
/// their initializers (Caffe's rename-to-relearn idiom).
public func loadWeights(_ path: String, into executor: Executor) throws -> WeightsReport {
    let (tensors, _) = try SafeTensors.read(path: path)
    let params = executor.schedule.graph.params
    var report = WeightsReport()
    var problems: [String] = []
    for p in params {
        guard let t = tensors[p.name] else { report.initialized.append(p.name); continue }
        let want = p.type.shape ?? []
        if t.shape != want {
            problems.append("'\(p.name)': the file has shape \(t.shape), the graph wants \(p.type) (rename the parameter to learn it from scratch)")
        } else {
            report.loaded.append(p.name)
        }
    }
    let names = Set(params.map(\.name))
    report.unused = tensors.keys.filter { !names.contains($0) }.sorted()
    guard problems.isEmpty else {
        throw StageError("\(path): \(problems.count) parameter\(problems.count == 1 ? "" : "s") do not match:\n  " + problems.joined(separator: "\n  "))
    }
    for name in report.loaded { try executor.setValue(name, tensors[name]!) }
    executor.refold()
    return report
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
