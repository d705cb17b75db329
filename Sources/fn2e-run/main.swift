import ArgumentParser
import Distributed
import Driver
import Foundation
import Kernels
import Runtime
import Tensors

/// Startup shared by every subcommand: choose OpenBLAS's kernels, check one GEMM, say which core.
func startBLAS(verbose: Bool) {
    BLAS.selectCoreAndReexecIfNeeded()
    BLAS.sanityCheckGEMM()
    if verbose { FileHandle.standardError.write(Data("BLAS core \(BLAS.corename), \(BLAS.threads) threads\n".utf8)) }
}

func standardError(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

func fail(_ error: Error) -> ExitCode {
    // One failing rank of an mpirun launch ends them all; the others would wait in a collective.
    if let world = Communicator.current, world.size > 1 {
        FileHandle.standardError.write(Data(("rank \(world.rank) of \(world.size): " + errorText(error) + "\n").utf8))
        world.abort(1)
    }
    FileHandle.standardError.write(Data((errorText(error) + "\n").utf8))
    return ExitCode(1)
}

struct Infer: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a graph forward on .npy tensors or images.")
    @Argument(help: "Graph file (.fn2e).") var graphFile: String
    @Option(help: "The graph to run (default: the file's last graph).") var graph: String?
    @Option(help: "Weights (.safetensors); parameters it lacks keep their initializers.") var weights: String?
    @Option(name: .customLong("input"), help: "NAME=FILE[,FILE...] or FILE for a single input (.npy, or images for [N,C,H,W]).")
    var inputs: [String] = []
    @Option(help: "Batch size when no input is given (random inputs).") var batch: Int?
    @Option(help: "Subtracted from image pixels (0-255) before scaling.") var mean: Float = 0
    @Option(help: "Multiplies image pixels after the mean is subtracted.") var scale: Float = 1
    @Option(help: "Seed for initializers and random inputs.") var seed: UInt64 = 0
    @Option(help: "Folder to write each output as NAME.npy.") var output: String?
    @Flag(help: "Say which BLAS core runs.") var verbose = false

    func run() throws {
        startBLAS(verbose: verbose)
        do {
            let program = try loadProgram(graphFile)
            guard let g = program.graph(graph) else { throw StageError("no graph '@\(graph ?? "")'") }
            var tensors: [String: Tensor] = [:]
            for spec in inputs {
                let (name, files): (String, String)
                if let eq = spec.firstIndex(of: "=") {
                    (name, files) = (String(spec[..<eq]), String(spec[spec.index(after: eq)...]))
                } else {
                    guard g.inputs.count == 1 else { throw StageError("the graph has \(g.inputs.count) inputs; name one with NAME=FILE") }
                    (name, files) = (g.inputs[0].name, spec)
                }
                guard let input = g.input(name) else { throw StageError("the graph has no input '%\(name)'") }
                tensors[name] = try readInput(files.split(separator: ",").map(String.init), for: input.type, mean: mean, scale: scale)
            }
            let n = tensors.values.first?.shape.first ?? batch ?? 1
            let c = try compile(path: graphFile, graph: graph, batch: n, seed: seed)
            if let w = weights { FileHandle.standardError.write(Data((try WeightLoader.load(w, into: c.executor).text + "\n").utf8)) }
            var rng = Xoshiro256(seed: seed)
            for i in c.schedule.graph.inputs where tensors[i.name] == nil {
                guard i.type.dtype == .f32 else { throw StageError("input '%\(i.name)' (\(i.type)) needs --input") }
                let count = i.type.count(batch: n)
                tensors[i.name] = Tensor(shape: i.type.shape ?? [], data: (0..<count).map { _ in rng.nextFloat() })
                FileHandle.standardError.write(Data("input %\(i.name): random \(i.type)\n".utf8))
            }
            let outs = try c.executor.run(inputs: tensors)
            if let dir = output {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for (name, t) in outs { try Npy.write(t, to: dir + "/" + name + ".npy") }
            }
            print(describeOutputs(outs, order: c.schedule.graph.outputs), terminator: "")
        } catch {
            throw fail(error)
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time forward passes: images/s, GFLOP/s against a GEMM peak measured in the same run, memory, BLAS core.")
    @Argument(help: "Graph file (.fn2e).") var graphFile: String
    @Option(help: "The graph to run (default: the file's last graph).") var graph: String?
    @Option(help: "Batch size.") var batch: Int = 1
    @Option(help: "Seconds of timed passes after the warm-up.") var seconds: Double = 5

    func run() throws {
        startBLAS(verbose: false)
        do {
            let c = try compile(path: graphFile, graph: graph, batch: batch)
            let r = try bench(c, seconds: seconds)
            print("@\(c.graph.name) \(r.line)")
            // FN2E_PROFILE=1: the per-kernel table of the passes (warm-up included).
            FileHandle.standardError.write(Data(c.executor.profileReport(peakGFLOPS: r.peakGEMM).utf8))
        } catch {
            throw fail(error)
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fn2e-run",
        abstract: "Run compiled fn2e graphs: inference, benchmarks, training.",
        subcommands: [Infer.self, Bench.self, Train.self, Eval.self, PlotCommand.self, Predict.self, Detect.self, Visualize.self,
                      FaceNet2ExpNet.self, SynthesizeFaces.self, BenchTrain.self, MeasureTemplate.self, Verify.self])
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every file of a run folder or a recipe's output folder: checksums, graphs, metrics; exit 1 on any problem.")
    @Argument(help: "Folders to check (recursively).") var folders: [String]

    func run() throws {
        var problems = 0
        for f in folders {
            let r = FolderVerifier.verify(f)
            print(r.text, terminator: "")
            problems += r.problems
        }
        if problems > 0 { throw ExitCode(1) }
    }
}

Run.main()
