import ArgumentParser
import Distributed
import Driver
import Foundation
import Training

struct FaceNet2ExpNet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "facenet2expnet",
        abstract: "Run the FaceNet2ExpNet recipe and its baselines over a subject-independent k-fold split or a fixed split.")
    @Option(help: "Folder holding the face net's weights (from `fn2e-compile import caffe`).") var faceNet: String
    @Option(help: "CSV index of the images (path,label,... with a group column).") var data: String
    @Option(help: "The recipe: stage graphs and settings (default: Graphs/onet.recipe).") var recipe = "Graphs/onet.recipe"
    @Option(help: "Column whose values never share a fold.") var group = "subject"
    @Option(help: "Number of folds.") var folds = 10
    @Option(help: "Run only the first N folds (a quick check).") var foldLimit: Int?
    @Option(help: "A fixed split instead of k-fold: COLUMN:TRAIN/TEST (e.g. usage:Training/PublicTest); validation rows come from TRAIN (val_fraction).") var split: String?
    @Option(help: "Train on this many of the training rows: stratified, nested, the same for every method and seed (split_seed).") var trainSubset = 0
    @Option(help: "Seeds, comma separated.") var seeds = "1"
    @Option(help: "A class subset, comma separated, or 'all' (repeatable: each subset is trained and reported).") var classes: [String] = ["all"]
    @Option(help: "Methods: facenet2expnet (stage 1 regresses the fine-tuned face net), facenet2expnet-raw (the face net as imported), scratch (ExpNet alone), finetune (the face net fine-tuned: stage 0).") var methods = "facenet2expnet,facenet2expnet-raw,scratch,finetune"
    @Option(help: "Trainings at once (each single-threaded when more than one).") var jobs = 2
    @Option(name: .customLong("set"), help: "A setting for every stage, key=value, or for one stage, stage1.key=value (stage0, stage1, stage2, scratch; repeatable).") var overrides: [String] = []
    @Option(help: "Output folder: one run folder per seed, fold and method, then the results.") var output = "runs/facenet2expnet"
    @Flag(help: "When another process is writing the output folder, wait for it to finish instead of stopping.") var waitLock = false

    func run() throws {
        startBLAS(verbose: false)
        // Under mpirun: the ranks share the trainings, rank 0 prints the table.
        let world: Communicator?
        do { world = try Communicator.world() } catch { throw fail(error) }
        do {
            // One writer per output folder: rank 0 holds its lock; the other ranks start once it has it.
            let lock = (world?.rank ?? 0) == 0 ? try RunLock(directory: output, wait: waitLock, log: standardError) : nil
            defer { withExtendedLifetime(lock) {} }
            if let world, world.size > 1 { _ = world.broadcast([1]) }
            var o = Recipe.Options(recipeFile: Resources.locate(recipe), faceNet: faceNet, data: data, output: output,
                                   executable: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path)
            o.group = group
            o.folds = folds
            o.foldLimit = foldLimit
            if let split, FixedSplit(split) == nil { throw ValidationError("--split expects COLUMN:TRAIN/TEST, found '\(split)'") }
            guard trainSubset >= 0 else { throw ValidationError("--train-subset may not be negative") }
            o.split = split
            o.trainSubset = trainSubset
            o.seeds = seeds.split(separator: ",").compactMap { Int($0) }
            o.classSets = classes.map { $0 == "all" ? [] : $0.split(separator: ",").map(String.init) }
            o.methods = methods.split(separator: ",").map(String.init)
            for m in o.methods where !Recipe.allMethods.contains(m) {
                throw ValidationError("unknown method '\(m)' (expected \(Recipe.allMethods.joined(separator: ", ")))")
            }
            o.jobs = jobs
            o.overrides = overrides
            let start = Date()
            let r = try Recipe(o, log: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
            let results = try r.run(world: world)
            guard (world?.rank ?? 0) == 0 else { return }
            for (set, names) in try r.classNames().enumerated() {
                let report = RecipeReport(results.filter { $0.classSet == set }, classes: names, methods: o.methods)
                print("\n\(names.count) classes (\(names.joined(separator: ", "))):\n" + report.text, terminator: "")
                let dir = "\(output)/\(names.count)classes"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for f in try report.write(to: dir, classes: names) { FileHandle.standardError.write(Data("wrote \(f)\n".utf8)) }
            }
            print(String(format: "wall time: %.1f min", Date().timeIntervalSince(start) / 60))
        } catch let e as ValidationError {
            throw e
        } catch let e as Recipe.Failures where (world?.size ?? 1) > 1 {
            // Every rank knows every failure once all are done: rank 0 reports them, none aborts.
            if world!.rank == 0 { FileHandle.standardError.write(Data("\(e)\n".utf8)) }
            throw ExitCode(1)
        } catch {
            throw fail(error)
        }
    }
}

struct SynthesizeFaces: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "synthesize-faces",
        abstract: "Write synthetic 48x48 expression images with an index.csv (a stand-in for CK+).", shouldDisplay: false)
    @Argument(help: "Output folder.") var output: String
    @Option(help: "Subjects.") var subjects = 40
    @Option(help: "Images per subject.") var perSubject = 7
    @Option(help: "Seed.") var seed: UInt64 = 1

    func run() throws {
        do { print(try SyntheticFaces.write(to: output, subjects: subjects, perSubject: perSubject, seed: seed)) } catch { throw fail(error) }
    }
}
