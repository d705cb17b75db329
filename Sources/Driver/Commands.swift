import Foundation
import IR
import Runtime
import Scheduler

/// What a command produced: text for stdout, text for stderr, and the exit status.
public struct CommandOutput: Equatable {
    public var stdout = ""
    public var stderr = ""
    public var status: Int32 = 0

    public init(stdout: String = "", stderr: String = "", status: Int32 = 0) {
        self.stdout = stdout
        self.stderr = stderr
        self.status = status
    }

    /// Both streams as a golden file records them.
    public var combined: String { stdout + stderr }
}

/// The stages that `fn2e-compile` and the golden tests run, one function each. Later stages
/// (gradients, schedules) add themselves to `Stages.table`.
public enum Stages {
    public typealias Stage = (_ program: Program, _ options: StageOptions) throws -> String

    /// Options shared by the stages; golden files set them on their RUN line.
    public struct StageOptions {
        public var batch: Int?
        public var graph: String?
        /// The loss that `grad` differentiates (default: the graph's first loss output).
        public var loss: String?
        /// Values of named sizes (`K=7`) for `summary` and `schedule`.
        public var symbols: [String: Int] = [:]
        public init(batch: Int? = nil, graph: String? = nil, loss: String? = nil, symbols: [String: Int] = [:]) {
            self.batch = batch
            self.graph = graph
            self.loss = loss
            self.symbols = symbols
        }

        /// Reads `NAME=VALUE` (`--bind K=7`) into `symbols`.
        public mutating func bind(_ text: String) throws {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, Parser.isSymbol(parts[0]), parts[0] != "N", let v = Int(parts[1]), v > 0 else {
                throw StageError("--bind takes NAME=VALUE with a size name such as K and a positive value, found '\(text)'")
            }
            symbols[parts[0]] = v
        }
    }

    /// The flat graph with the options' named sizes bound; a size left unbound is an error that says how to bind it.
    static func boundFlat(_ program: Program, _ options: StageOptions) throws -> Graph {
        guard let g = program.graph(options.graph) else { throw StageError("no graph named '@\(options.graph ?? "")'") }
        let flat = try Inliner.inline(g, graphs: program.graphs).binding(symbols: options.symbols)
        if let name = flat.symbols.first {
            throw StageError("'@\(g.name)' has the named size \(name); give its value, e.g. --bind \(name)=7")
        }
        return flat
    }

    public static var table: [String: Stage] = [
        "check": { program, _ in
            program.order.filter { n in program.root.graphs.contains { $0.name == n } }
                .map { "@\($0): ok\n" }.joined()
        },
        "print": { program, _ in Printer.print(program.verifiedRoot) },
        "summary": { program, options in
            let flat = try boundFlat(program, options)
            return Summary(flat, batch: options.batch ?? 1).render(title: "@\(flat.name)")
        },
        "schedule": { program, options in
            let flat = try boundFlat(program, options)
            let s = try CompiledGraph(graph: flat, graphs: program.graphs).schedule(batch: options.batch ?? 1)
            return s.render(title: "@\(flat.name)")
        },
        "grad": gradStage,
    ]

    /// Loads `path` and runs `stage`; diagnostics are rendered with the source line and a caret.
    public static func run(_ stage: String, path: String, options: StageOptions = StageOptions()) -> CommandOutput {
        guard let fn = table[stage] else {
            return CommandOutput(stderr: "error: unknown stage '\(stage)' (known: \(table.keys.sorted().joined(separator: ", ")))\n", status: 64)
        }
        let sources = SourceManager()
        do {
            let program = try Loader.load(path: path, sources: sources)
            return CommandOutput(stdout: try fn(program, options))
        } catch let list as DiagnosticList {
            return CommandOutput(stderr: sources.render(list.diagnostics) + "\n", status: 1)
        } catch let d as Diagnostic {
            return CommandOutput(stderr: sources.render(d) + "\n", status: 1)
        } catch {
            return CommandOutput(stderr: "error: \(error)\n", status: 1)
        }
    }
}

/// An error a stage reports without a source location.
public struct StageError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}
