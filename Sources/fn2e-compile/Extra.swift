import ArgumentParser
import Driver
import Foundation

/// Subcommands that later pipeline stages add (gradients, schedules).
let extraCompileCommands: [ParsableCommand.Type] = [Grad.self, ImportCommand.self]

struct Grad: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the training graph: the loss and the gradient %grad.<param> of every trainable parameter.")
    @OptionGroup var options: GraphOptions
    @Option(help: "The scalar loss to differentiate (default: the graph's first loss output).") var loss: String?

    func run() throws {
        var stage = options.stageOptions
        stage.loss = loss
        var status: Int32 = 0
        for f in options.files {
            let out = Stages.run("grad", path: f, options: stage)
            FileHandle.standardOutput.write(Data(out.stdout.utf8))
            FileHandle.standardError.write(Data(out.stderr.utf8))
            if out.status != 0 { status = out.status }
        }
        if status != 0 { throw ExitCode(status) }
    }
}
