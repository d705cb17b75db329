import ArgumentParser
import Driver
import Foundation

/// Writes results to stdout and diagnostics to stderr, then exits with the command's status.
func emit(_ out: CommandOutput) throws {
    FileHandle.standardOutput.write(Data(out.stdout.utf8))
    FileHandle.standardError.write(Data(out.stderr.utf8))
    if out.status != 0 { throw ExitCode(out.status) }
}

struct GraphOptions: ParsableArguments {
    @Argument(help: "Graph files (.fn2e).") var files: [String]
    @Option(help: "Bind the symbolic batch dimension N.") var batch: Int?
    @Option(help: "The graph to use (default: the file's last graph).") var graph: String?
    @Option(name: .customLong("bind"), help: "Bind a named size, e.g. K=7 (repeatable).") var bindings: [String] = []

    func stageOptions() throws -> Stages.StageOptions {
        var options = Stages.StageOptions(batch: batch, graph: graph)
        for b in bindings { try options.bind(b) }
        return options
    }

    func validate() throws {
        if let b = batch, b < 1 { throw ValidationError("--batch must be positive") }
        do { _ = try stageOptions() } catch { throw ValidationError("\(error)") }
    }

    func run(_ stage: String, loss: String? = nil) throws {
        var options = try stageOptions()
        options.loss = loss
        var status: Int32 = 0
        for f in files {
            let out = Stages.run(stage, path: f, options: options)
            FileHandle.standardOutput.write(Data(out.stdout.utf8))
            FileHandle.standardError.write(Data(out.stderr.utf8))
            if out.status != 0 { status = out.status }
        }
        if status != 0 { throw ExitCode(status) }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Parse and verify graph files.")
    @OptionGroup var options: GraphOptions
    func run() throws { try options.run("check") }
}

struct Print: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print graph files in canonical form, every value with its type.")
    @OptionGroup var options: GraphOptions
    func run() throws { try options.run("print") }
}

struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "summary",
        abstract: "Per node: output shape, parameters, multiply-adds; totals and activation memory.")
    @OptionGroup var options: GraphOptions
    func run() throws { try options.run("summary") }
}

struct ScheduleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "schedule",
        abstract: "Lower to fused kernels over a planned arena and print the schedule.")
    @OptionGroup var options: GraphOptions
    func run() throws { try options.run("schedule") }
}

struct Test: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the golden cases of a folder (FN2E_UPDATE_GOLDENS=1 rewrites them and still fails).")
    @Argument(help: "Folder of NAME.fn2e cases with NAME.fn2e.expected beside them.") var directory: String

    func run() throws {
        let update = ProcessInfo.processInfo.environment["FN2E_UPDATE_GOLDENS"] == "1"
        let outcomes = Goldens.run(directory: directory, update: update)
        var failed = 0
        for o in outcomes {
            if o.passed {
                print("PASS \(o.file)")
            } else {
                failed += 1
                print("FAIL \(o.file)\n\(o.diff)")
            }
        }
        print("\(outcomes.count - failed) passed, \(failed) failed")
        if failed > 0 || outcomes.isEmpty { throw ExitCode(1) }
    }
}

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fn2e-compile",
        abstract: "The fn2e graph compiler: check, print, summarise and test graph files.",
        subcommands: [Check.self, Print.self, SummaryCommand.self, ScheduleCommand.self, Test.self, Grad.self, ImportCommand.self, ExportCommand.self, OnnxBackendCommand.self])
}

Compile.main()
