import Autodiff
import IR

extension Stages {
    /// `grad`: inlines the graph's calls (frozen callees bring untrainable parameters), builds the
    /// gradient graph of its loss and prints it as a module, the graph preceded by comments that list
    /// the forward values saved for backward.
    static func gradStage(_ program: Program, _ options: StageOptions) throws -> String {
        guard let g = program.graph(options.graph) else { throw StageError("no graph named '@\(options.graph ?? "")'") }
        let flat = Inliner.inline(g, graphs: program.graphs)
        guard let loss = options.loss ?? flat.defaultLoss else { throw StageError("'@\(flat.name)' returns no loss; name one with --loss") }
        var grad = try Autodiff.gradient(of: flat, loss: loss)
        grad.trivia = Trivia(comments: savedReport(grad, loss: loss))
        var module = Module(file: program.root.file, version: program.root.version)
        module.graphs = [grad]
        return Printer.print(module)
    }

    /// One comment line per saved activation (inputs and forward nodes) with its type, then the
    /// parameters backward reads, then the activation bytes per batch item.
    static func savedReport(_ g: Graph, loss: String) -> [String] {
        let saved = Autodiff.savedValues(g)
        let params = saved.filter { g.param($0) != nil }
        let acts = saved.filter { g.param($0) == nil }
        let grads = g.outputs.filter { $0.hasPrefix(Autodiff.prefix) }
        var lines = ["Gradient of %\(loss) for \(grads.count) parameter\(grads.count == 1 ? "" : "s"), returned as %grad.<param>.",
                     "Saved for backward (forward values read by the grad.* nodes):"]
        var perItem = 0, fixed = 0
        for v in acts {
            let t = g.type(of: v)!
            lines.append("  %\(v): \(t)\(g.input(v) != nil ? " (input)" : "")")
            if t.usesBatch { perItem += t.count(batch: 1) * t.dtype.size } else { fixed += t.count(batch: 1) * t.dtype.size }
        }
        if !params.isEmpty { lines.append("  parameters: " + params.map { "%" + $0 }.joined(separator: ", ")) }
        lines.append("Saved activations: \(acts.count) values, \(perItem) bytes per batch item" + (fixed > 0 ? " + \(fixed) bytes" : "") + ".")
        return lines
    }
}
