import ArgumentParser
import Driver

struct Grad: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the training graph: the loss and the gradient %grad.<param> of every trainable parameter.")
    @OptionGroup var options: GraphOptions
    @Option(help: "The scalar loss to differentiate (default: the graph's first loss output, else its only scalar output).") var loss: String?

    func run() throws {
        try options.run("grad", loss: loss)
    }
}
