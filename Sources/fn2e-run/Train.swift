import ArgumentParser
import Distributed
import Driver
import Foundation
import Training

/// Set by SIGINT; the training loop checks it between steps.
nonisolated(unsafe) var interruptRequested = false

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a graph's loss from a settings file; progress on stderr, metrics.jsonl and checkpoints in the run folder.")
    @Argument(help: "Settings file (key = value lines; see `fn2e-run train --keys`).") var settingsFile: String?
    @Option(name: .customLong("set"), help: "Override a setting: key=value (repeatable).") var overrides: [String] = []
    @Flag(help: "Continue from the run folder's checkpoint.") var resume = false
    @Flag(help: "Continue from the run folder's checkpoint if it has one written with these same settings and the run is unfinished (no `complete` marker); otherwise start afresh (what the recipe runs).") var resumeIfUnchanged = false
    @Flag(help: "When another process is writing the run folder, wait for it to finish instead of stopping.") var waitLock = false
    @Flag(help: "List every setting with its default and meaning.") var keys = false

    func run() throws {
        if keys {
            for k in Settings.keys { print(k.name.padding(toLength: 20, withPad: " ", startingAt: 0) + (k.defaultValue.isEmpty ? "-" : k.defaultValue).padding(toLength: 12, withPad: " ", startingAt: 0) + k.help) }
            return
        }
        startBLAS(verbose: false)
        do {
            // A recipe's training ends with the recipe.
            try Recipe.dieWithParent()
            // Under mpirun: one rank of a data-parallel run; rank 0 alone prints and writes.
            let world = try Communicator.world()
            var settings = try settingsFile.map { try Settings(file: $0) } ?? Settings()
            try settings.override(overrides)
            // One writer per run folder: rank 0, the one that writes, holds its lock until exit.
            let lock = (world?.rank ?? 0) == 0 ? try RunLock(directory: settings.path("output"), wait: waitLock, log: standardError) : nil
            defer { withExtendedLifetime(lock) {} }
            // Decided under the lock: no other process changes the folder meanwhile.
            var resumeNow = resume
            if resumeIfUnchanged, !resume, (world?.rank ?? 0) == 0 {
                let (can, why) = Recipe.resumable(settings.path("output"), settings: settings.fileText)
                standardError(why)
                resumeNow = can
            }
            if let world, world.size > 1 { resumeNow = world.broadcast([resumeNow ? 1 : 0])[0] != 0 }
            let trainer = try makeTrainer(settings, world: world)
            signal(SIGINT) { _ in interruptRequested = true }
            let evals = try trainer.train(resume: resumeNow, shouldStop: { interruptRequested })
            guard trainer.rank == 0 else { return }
            for e in evals {
                print(e.summary)
                if trainer.logits != nil { print(e.confusionText(trainer.data.classes), terminator: "") }
            }
            print("run folder: \(settings.path("output"))")
        } catch let i as Trainer.Interrupted {
            if (Communicator.current?.rank ?? 0) == 0 { FileHandle.standardError.write(Data("\(i)\n".utf8)) }
            throw ExitCode(130)
        } catch {
            throw fail(error)
        }
    }
}

/// Builds a trainer and prints the settings table, the data and the compiled step (stderr; rank 0
/// alone under mpirun).
func makeTrainer(_ settings: Settings, world: Communicator? = nil) throws -> Trainer {
    let err = { (s: String) in if (world?.rank ?? 0) == 0 { FileHandle.standardError.write(Data((s + "\n").utf8)) } }
    err("settings:\n" + settings.table)
    let t = try Trainer(settings: settings, world: world)
    err(t.dataReport)
    err(t.weightsReport)
    err(t.compileReport)
    return t
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a trained run on its test (and validation) split, or on any labelled image set (--data).")
    @Argument(help: "Run folder written by `fn2e-run train`.") var runDir: String
    @Option(name: .customLong("set"), help: "Override a setting: key=value (e.g. fold=3, or test_views=10 to average ten views of each image).") var overrides: [String] = []
    @Option(help: "Another labelled image set (CSV index path,label,... or a folder of class folders): its classes are matched to the model's by name and alias (angry = anger, sad = sadness, ...).") var data: String?
    @Option(name: .customLong("where"), help: "With --data: only rows whose COLUMN has VALUE (e.g. usage=PublicTest).") var selection: String?
    @Flag(help: "With --data: the images are photos: find the largest face (MTCNN), cut it out with the run's template, classify it.") var detect = false
    @Option(help: "With --data: folder for eval.txt, eval.json and confusion.png.") var output: String?
    @OptionGroup var faces: DetectorOptions

    func run() throws {
        startBLAS(verbose: false)
        if let data { return try evaluateOther(data) }
        do {
            var settings = try Settings(file: runDir + "/settings.txt")
            try settings.override(overrides)
            let trainer = try Trainer(settings: settings, log: { _ in })
            try trainer.loadTrained(runDir + "/model.safetensors")
            for e in try trainer.evaluateSplits() {
                print(e.summary)
                if trainer.logits != nil { print(e.confusionText(trainer.data.classes), terminator: "") }
            }
        } catch {
            throw fail(error)
        }
    }
}

extension Eval {
    func evaluateOther(_ data: String) throws {
        var select: (column: String, value: String)?
        if let w = selection {
            let parts = w.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw ValidationError("--where expects COLUMN=VALUE, found '\(w)'") }
            select = (parts[0], parts[1])
        }
        do {
            let detector = detect ? try faces.detector() : nil
            let bar = isatty(2) != 0
            let result = try DataEvaluation.run(runDirectory: runDir, index: data, select: select, overrides: overrides, detector: detector) { done, total in
                if bar { FileHandle.standardError.write(Data("\r\(done)/\(total) images\(done == total ? "\n" : "")".utf8)) }
            }
            print("run \(runDir) (\(result.match.modelClasses.count) classes) on \(data)" + (selection.map { " where \($0)" } ?? "")
                  + ": \(result.images) \(detect ? "photos" : "images")")
            print(result.text, terminator: "")
            if let output {
                // The run's and the data's last two path components: "fold0/scratch on ckplus48/index.csv".
                let short = { (p: String) in URL(fileURLWithPath: p).pathComponents.suffix(2).joined(separator: "/") }
                let title = "\(short(runDir)) on \(short(data))" + (selection.map { " (\($0))" } ?? "")
                for f in try result.write(to: output, title: title) { FileHandle.standardError.write(Data("wrote \(f)\n".utf8)) }
            }
        } catch let e as ValidationError {
            throw e
        } catch {
            throw fail(error)
        }
    }
}

struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plot",
        abstract: "Draw a run's loss and accuracy curves and its confusion matrix as PNG files in the run folder, or a line chart from a CSV file (--lines).")
    @Argument(help: "Run folder written by `fn2e-run train`.") var runDir: String?
    @Option(help: "CSV with the columns series,x,y and optionally low,high (drawn dashed): a line chart instead of a run's plots.") var lines: String?
    @Option(help: "With --lines: the PNG to write.") var output = "lines.png"
    @Option(help: "With --lines: the chart's title.") var title = ""
    @Option(help: "With --lines: the x axis label.") var xLabel = "x"
    @Option(help: "With --lines: the y axis label.") var yLabel = "y"

    func run() throws {
        do {
            if let lines {
                try plotLines(csv: lines, png: output, title: title, xLabel: xLabel, yLabel: yLabel)
                print(output)
                return
            }
            guard let runDir else { throw StageError("give a run folder, or --lines FILE.csv") }
            var classes: [String] = []
            if let meta = try? SafeTensorsMetadata.read(runDir + "/model.safetensors") { classes = meta["classes"]?.split(separator: ",").map(String.init) ?? [] }
            for f in try plotRun(runDir, classes: classes) { print(f) }
        } catch {
            throw fail(error)
        }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Class probabilities for face crops, with the preprocessing the model was trained with.")
    @Argument(help: "Run folder written by `fn2e-run train` (settings.txt + model.safetensors).") var modelDir: String
    @Argument(help: "Images (with --detect: photos, folders of photos, or CSV lists of them).") var images: [String]
    @Flag(help: "JSON instead of a table.") var json = false
    @Flag(help: "Find the faces in each photo (MTCNN), cut each out as the run's `align` setting says, and classify it; prints CSV.") var detect = false
    @Option(name: .customLong("set"), help: "Override a setting that applies after training: key=value (test_views=2 or 10 averages views of each face).") var overrides: [String] = []
    @OptionGroup var faces: DetectorOptions

    func run() throws {
        startBLAS(verbose: false)
        if detect { throw try faces.run(images, predictor: Predictor(runDirectory: modelDir, overrides: overrides), json: json) }
        do {
            let p = try Predictor(runDirectory: modelDir, overrides: overrides)
            let probs = try p.probabilities(images)
            if json {
                let rows: [[String: Any]] = zip(images, probs).map { path, row in
                    ["image": path, "class": p.classes[row.indices.max { row[$0] < row[$1] }!],
                     "probabilities": Dictionary(uniqueKeysWithValues: zip(p.classes, row))]
                }
                let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                let w = max(12, images.map { ($0 as NSString).lastPathComponent.count }.max() ?? 0)
                print("image".padding(toLength: w, withPad: " ", startingAt: 0) + "  predicted   " + p.classes.map { String($0.prefix(8)).padding(toLength: 9, withPad: " ", startingAt: 0) }.joined())
                for (path, row) in zip(images, probs) {
                    let best = p.classes[row.indices.max { row[$0] < row[$1] }!]
                    print((path as NSString).lastPathComponent.padding(toLength: w, withPad: " ", startingAt: 0) + "  "
                          + best.padding(toLength: 10, withPad: " ", startingAt: 0) + "  "
                          + row.map { String(format: "%-9.3f", $0) }.joined())
                }
            }
        } catch {
            throw fail(error)
        }
    }
}

struct Visualize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Top-activating images of a layer's units with their activation maps, as one PNG grid.")
    @Argument(help: "Run folder written by `fn2e-run train`.") var runDir: String
    @Option(help: "The layer (a value of the trained graph, e.g. expnet.relu4 or face.prelu4).") var layer: String
    @Option(help: "Units to show, comma separated (default: the most active ones).") var units: String?
    @Option(help: "How many units when none are named.") var topUnits = 8
    @Option(help: "Images per unit.") var images = 6
    @Option(name: .shortAndLong, help: "Output PNG.") var output = "units.png"

    func run() throws {
        startBLAS(verbose: false)
        do {
            let chosen = units?.split(separator: ",").compactMap { Int($0) } ?? []
            print(try visualizeUnits(runDirectory: runDir, layer: layer, units: chosen, topUnits: topUnits,
                                     imagesPerUnit: images, output: output))
        } catch {
            throw fail(error)
        }
    }
}
