import ArgumentParser
import Autodiff
import Driver
import Foundation
import IR
import Kernels
import Runtime
import Scheduler
import Tensors
import Training

/// `fn2e-run bench-train`: times training steps (forward, backward, SGD-momentum update) or forward
/// passes of a graph and prints one JSON line for Tools/bench/bench_vs_torch.sh.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-train",
        abstract: "Time training steps (forward + backward + SGD momentum) and print a JSON line.",
        shouldDisplay: false)
    @Argument(help: "Graph file (.fn2e) whose graph returns %loss.") var graphFile: String
    @Option(help: "The graph (default: the file's last graph).") var graph: String?
    @Option(help: "Batch size.") var batch: Int = 32
    @Option(help: "Timed steps after the warm-up; the median counts.") var steps: Int = 3
    @Option(help: "Untimed steps first.") var warmup: Int = 1
    @Option(help: "Learning rate.") var lr: Float = 0.001
    @Option(help: "Momentum.") var momentum: Float = 0.9
    @Flag(help: "Time forward passes of the graph instead of training steps.") var forward = false
    @Flag(help: "Also measure the sgemm peak (1 s) after the timed steps.") var peak = false
    @Option(name: .customLong("bind"), help: "Bind a named size, e.g. K=7 (repeatable).") var bindings: [String] = []

    func run() throws {
        startBLAS(verbose: false)
        do {
            let program = try loadProgram(graphFile)
            guard let g = program.graph(graph) else { throw StageError("no graph '@\(graph ?? "")'") }
            var options = Stages.StageOptions(batch: batch, graph: graph)
            for b in bindings { try options.bind(b) }
            let flat = try Inliner.inline(g, graphs: program.graphs).binding(symbols: options.symbols)
            let step = forward ? flat : try Autodiff.gradient(of: flat, loss: "loss")
            let ex = try CompiledGraph(graph: step, graphs: program.graphs, seed: 1).executor(batch: batch)
            let schedule = ex.schedule
            var rng = Xoshiro256(seed: 7)
            for i in schedule.graph.inputs {
                let n = i.type.count(batch: batch)
                if i.type.dtype == .i32 {
                    let classes = classCount(schedule.graph, labels: i.name)
                    try ex.setLabels(i.name, (0..<n).map { _ in Int32(rng.nextInt(upperBound: classes)) })
                } else {
                    try ex.setValue(i.name, Tensor(shape: i.type.shape ?? [], data: (0..<n).map { _ in rng.nextFloat() }))
                }
            }
            // Training's solver, Caffe's SGD with momentum (no weight decay): v = m·v + lr·g; w -= v.
            let sgd = forward ? nil : Solver(kind: "sgd", executor: ex, momentum: Double(momentum))
            var times: [Double] = []
            var losses: [Float] = []
            for k in 0..<(warmup + steps) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                ex.run()
                sgd?.step(lr: Double(lr))
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if k >= warmup { times.append(dt) }
                if let l = ex.pointer("loss") { losses.append(l[0]) }
                FileHandle.standardError.write(Data(String(format: "step %d: %.3f s%@\n", k, dt, losses.last.map { String(format: ", loss %.4g", $0) } ?? "").utf8))
            }
            let profiling = ProcessInfo.processInfo.environment["FN2E_PROFILE"] == "1"
            times.sort()
            let median = times[times.count / 2]
            let peakGFLOPS = peak || profiling ? BLAS.measurePeakGFLOPS(seconds: 1) : 0
            if profiling { FileHandle.standardError.write(Data(ex.profileReport(peakGFLOPS: peakGFLOPS).utf8)) }
            let fields: [String] = [
                "\"graph\": \"\(g.name)\"", "\"mode\": \"\(forward ? "forward" : "train")\"", "\"batch\": \(batch)",
                "\"seconds\": \(median)", "\"times\": [\(times.map { String($0) }.joined(separator: ", "))]",
                "\"images_per_s\": \(Double(batch) / median)", "\"flops\": \(schedule.totalFlops)",
                "\"gflops\": \(Double(schedule.totalFlops) / median / 1e9)", "\"peak_gflops\": \(peakGFLOPS)",
                "\"arena_bytes\": \(schedule.arenaBytes)", "\"peak_rss\": \(peakResidentBytes())",
                "\"parameters\": \(schedule.graph.params.reduce(0) { $0 + $1.type.count(batch: batch) })",
                "\"core\": \"\(BLAS.corename)\"", "\"threads\": \(BLAS.threads)",
                "\"losses\": [\(losses.map { String($0) }.joined(separator: ", "))]",
            ]
            print("{" + fields.joined(separator: ", ") + "}")
        } catch {
            throw fail(error)
        }
    }

    /// The class count of the cross-entropy that reads `labels` (its logits' second dimension), else 7.
    func classCount(_ graph: Graph, labels: String) -> Int {
        guard let loss = graph.nodes.first(where: { $0.op == .softmaxCrossEntropy && $0.operands.last == labels }),
              let dims = graph.type(of: loss.operands[0])?.dims, dims.count == 2, case .fixed(let classes) = dims[1] else { return 7 }
        return classes
    }
}
