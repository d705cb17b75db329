import Distributed
import Foundation
import Plot
import Tensors
import Training

/// FaceNet2ExpNet as one command: for every seed, fold of a grouped k-fold split and class set,
/// stage 0 (the face net fine-tuned on the training fold), stage 1 (ExpNet's convolutions regress
/// the frozen fine-tuned face net's features) then stage 2 (all of ExpNet with cross-entropy,
/// convolutions from stage 1), and on the same folds the paper's baselines, ExpNet from scratch
/// and the fine-tuned face net (stage 0 itself), plus the raw-teacher ablation. Each training is a
/// run folder written by `fn2e-run train`; finished runs are reused, so an interrupted recipe continues.
public struct Recipe {
    public struct Options {
        public var recipeFile: String
        public var faceNet: String
        public var data: String
        public var group = "subject"
        public var folds = 10
        /// A fixed split by a column instead of k-fold (`COLUMN:TRAIN/TEST`, the `split` setting): one
        /// "fold", trained on the TRAIN rows and tested on the TEST rows.
        public var split: String?
        /// Train on this many of the training rows (`train_subset`; 0: all): the same rows for every
        /// method and seed when the recipe fixes `split_seed`.
        public var trainSubset = 0
        /// Only the first `foldLimit` folds run (a smoke test); nil: all.
        public var foldLimit: Int?
        public var seeds: [Int] = [1]
        /// Class subsets to evaluate (an empty subset: every class). Each has its own fine-tuned face
        /// net, so stage 1 runs per class subset too, on that subset's training images.
        public var classSets: [[String]] = [[]]
        public var methods: [String] = Recipe.allMethods
        public var jobs = 1
        public var output: String
        /// `key=value` settings applied to every stage (after the recipe file).
        public var overrides: [String] = []
        /// The fn2e-run executable that trains each run.
        public var executable: String

        public init(recipeFile: String, faceNet: String, data: String, output: String, executable: String) {
            (self.recipeFile, self.faceNet, self.data, self.output, self.executable) = (recipeFile, faceNet, data, output, executable)
        }
    }

    /// facenet2expnet: stages 0, 1, 2 with the fine-tuned face net as stage 1's teacher (the paper);
    /// facenet2expnet-raw: the same with the face net as imported as the teacher (an ablation);
    /// scratch: ExpNet from initializers; finetune: the face net fine-tuned (stage 0).
    public static let allMethods = ["facenet2expnet", "facenet2expnet-raw", "scratch", "finetune"]

    /// One training of the recipe.
    struct Job {
        var name: String
        var method: String
        var classSet: Int
        var fold: Int
        var seed: Int
        var dir: String
        var settings: Settings
        var deps: [Int]
    }

    public struct RunResult {
        public var method: String
        public var classSet: Int
        public var fold: Int
        public var seed: Int
        public var evaluation: Evaluation
        public var seconds: Double

        public init(method: String, classSet: Int, fold: Int, seed: Int, evaluation: Evaluation, seconds: Double) {
            (self.method, self.classSet, self.fold, self.seed, self.evaluation, self.seconds) = (method, classSet, fold, seed, evaluation, seconds)
        }
    }

    let options: Options
    let recipe: [String: Entry]
    let log: (String) -> Void

    public init(_ options: Options, log: @escaping (String) -> Void) throws {
        self.options = options
        self.log = log
        recipe = try Recipe.parse(options.recipeFile)
    }

    /// One line of a recipe: its value, the file and line that set it, and its place in reading order.
    struct Entry {
        var value: String
        var file: String
        var line: Int
        var order: Int
        var origin: String { "\(file):\(line)" }
    }

    /// `key = value` lines; keys are recipe keys (`face_weights`, `stage0`, `stage1`, `stage2`, or
    /// `stage0.K` / `stage2.K` for a graph of one class count K)
    /// or settings prefixed by the stage they apply to (`all.`, `stage0.`, `stage1.`, `stage2.`, `scratch.`).
    /// `base = FILE` (relative to the recipe's folder) reads another recipe first: its lines apply,
    /// then this file's, which override the keys both set; stage graphs resolve from the folder of
    /// the file that names them.
    /// One `base` line at most. `including`: the `base` lines that led here, each with its file (a
    /// cycle is an error); `bases` false reads none (the fuzz target: no files).
    static func parse(_ path: String, including: [(file: String, place: String)] = []) throws -> [String: Entry] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StageError((including.last.map { "\($0.place): error: " } ?? "") + "cannot read the recipe '\(path)': " + Resources.missingHint)
        }
        return try parse(text: String(decoding: data, as: UTF8.self), file: path, including: including)
    }

    static func parse(text: String, file path: String, including: [(file: String, place: String)] = [], bases: Bool = true) throws -> [String: Entry] {
        var out: [String: Entry] = [:], order = 0, base: String?
        for l in try KeyValueLine.parse(text, file: path) {
            let (key, value) = (l.key, l.value)
            if key == "base" {
                if let first = base { throw RenderedDiagnostics(description: "\(l.place): error: a second base (the first: \(first)); a recipe has one") }
                base = l.place
                guard bases else { continue }
                let dir = (path as NSString).deletingLastPathComponent
                let file = value.hasPrefix("/") || dir.isEmpty ? value : dir + "/" + value
                let chain = including + [(path, l.place)]
                guard !chain.contains(where: { Self.standardized($0.file) == Self.standardized(file) }) else {
                    throw RenderedDiagnostics(description: "\(l.place): error: the recipe '\(file)' is its own base (\(chain.map(\.place).joined(separator: " -> ")))")
                }
                // The base's lines come first: this file's keys override them wherever they stand.
                for (k, e) in try parse(file, including: chain) where out[k]?.file != path {
                    out[k] = Entry(value: e.value, file: e.file, line: e.line, order: e.order - 1_000_000)
                }
                continue
            }
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            let known = ["face_weights", "stage0", "stage1", "stage2"].contains(key) || (parts.count == 2 && ["stage0", "stage2"].contains(parts[0]) && Int(parts[1]) != nil)
            if !known {
                guard parts.count == 2, ["all", "stage0", "stage1", "stage2", "scratch"].contains(parts[0]) else {
                    throw RenderedDiagnostics(description: "\(l.place): error: unknown recipe key '\(key)' (expected base, face_weights, stage0, stage1, stage2, stage0.K, stage2.K, or a setting prefixed all., stage0., stage1., stage2., scratch.)")
                }
                var probe = Settings()
                do { try probe.set(parts[1], value, origin: path, at: l.place) } catch {
                    throw RenderedDiagnostics(description: "\(error)")
                }
            }
            order += 1
            out[key] = Entry(value: value, file: path, line: l.line, order: order)
        }
        return out
    }

    static func standardized(_ path: String) -> String {
        ((path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path) as NSString).standardizingPath
    }

    /// The class names of each class subset.
    public func classNames() throws -> [[String]] {
        let select = options.split.flatMap(FixedSplit.init).map { ($0.column, Set([$0.train, $0.test])) }
        return try options.classSets.map { try Dataset.load(index: options.data, group: options.group, classes: $0, select: select).classes }
    }

    /// Folds that run: one with a fixed split, else the first `foldLimit` of `folds`.
    var foldCount: Int { options.split != nil ? 1 : min(options.folds, options.foldLimit ?? options.folds) }

    /// How the data is split, for the log.
    var splitText: String {
        (options.split.map { "the fixed split \($0)" } ?? "\(foldCount) of \(options.folds) folds")
            + (options.trainSubset > 0 ? ", \(options.trainSubset) training images" : "")
    }

    func value(_ key: String) throws -> String {
        guard let v = recipe[key]?.value else { throw StageError("\(options.recipeFile): no '\(key)'") }
        return v
    }

    /// The graph of `stage` for `k` classes: `stage.k` when the recipe names one, else `stage`
    /// (a graph whose class count is the named size K), from the folder of the recipe that names it.
    func graph(_ stage: String, classes k: Int) throws -> String {
        guard let e = recipe["\(stage).\(k)"] ?? recipe[stage] else { throw StageError("\(options.recipeFile): no '\(stage)' or '\(stage).\(k)'") }
        let dir = (e.file as NSString).deletingLastPathComponent
        return e.value.hasPrefix("/") || dir.isEmpty ? e.value : dir + "/" + e.value
    }

    /// A stage's settings: recipe `all.` keys, then the stage's own, then the command line's.
    func settings(stage: String, graph: String, fold: Int, seed: Int, dir: String, weights: [String], classes: [String]) throws -> Settings {
        var s = Settings()
        func cwdAbs(_ p: String) -> String { p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p }
        for prefix in ["all", stage] {
            // `stage0.K` and `stage2.K` name graphs per class count; the rest are settings.
            for (k, v) in recipe.sorted(by: { $0.value.order < $1.value.order }) where k.hasPrefix(prefix + ".") && Int(k.dropFirst(prefix.count + 1)) == nil {
                try s.set(String(k.dropFirst(prefix.count + 1)), v.value, origin: v.origin)
            }
        }
        // Command-line settings apply to every stage, or to one when prefixed like the recipe's keys.
        for o in options.overrides {
            let key = o.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            if parts.count == 2, ["all", "stage0", "stage1", "stage2", "scratch"].contains(parts[0]) {
                if parts[0] == "all" || parts[0] == stage { try s.override([String(o.dropFirst(parts[0].count + 1))]) }
            } else {
                try s.override([o])
            }
        }
        try s.set("graph", cwdAbs(graph), origin: "recipe")
        try s.set("include", cwdAbs(options.faceNet), origin: "recipe")
        try s.set("data", cwdAbs(options.data), origin: "recipe")
        try s.set("group", options.group, origin: "recipe")
        try s.set("folds", String(options.folds), origin: "recipe")
        try s.set("fold", String(fold), origin: "recipe")
        if let split = options.split { try s.set("split", split, origin: "recipe") }
        if options.trainSubset > 0 { try s.set("train_subset", String(options.trainSubset), origin: "recipe") }
        try s.set("seed", String(seed), origin: "recipe")
        try s.set("output", cwdAbs(dir), origin: "recipe")
        // One store of frozen results for all runs (stage 0's frozen layers, the teachers), unless set.
        if s.origins["frozen_store"] == "default" { try s.set("frozen_store", cwdAbs(options.output) + "/frozen-store", origin: "recipe") }
        try s.set("weights", weights.joined(separator: ","), origin: "recipe")
        if !classes.isEmpty { try s.set("classes", classes.joined(separator: ","), origin: "recipe") }
        return s
    }

    /// The trainings in dependency order. For each seed, fold and class set: stage 0 fine-tunes the
    /// face net on the training fold (it is also the "finetune" baseline); stage 1 regresses the
    /// frozen fine-tuned face net (or, for "facenet2expnet-raw", the face net as imported) with
    /// ExpNet's convolutions on the same training images; stage 2 trains all of ExpNet from them.
    func jobs(classCounts: [Int]) throws -> [Job] {
        let faceWeights = "face=" + (options.faceNet.hasPrefix("/") ? options.faceNet : FileManager.default.currentDirectoryPath + "/" + options.faceNet)
            + "/" + (try value("face_weights"))
        let wants = Set(options.methods)
        var out: [Job] = []
        let folds = foldCount
        for seed in options.seeds {
            for fold in 0..<folds {
                for (set, k) in classCounts.enumerated() {
                    func add(_ method: String, stage: String, graph: String, weights: [String], deps: [Int]) throws -> Int {
                        let dir = "\(options.output)/\(k)classes/seed\(seed)/fold\(fold)/\(method)"
                        let s = try settings(stage: stage, graph: graph, fold: fold, seed: seed, dir: dir, weights: weights,
                                             classes: options.classSets[set])
                        out.append(Job(name: "seed \(seed) fold \(fold) \(k) classes \(method)",
                                       method: method, classSet: set, fold: fold, seed: seed, dir: dir, settings: s, deps: deps))
                        return out.count - 1
                    }
                    func model(_ job: Int) -> String { out[job].dir + "/model.safetensors" }
                    let stage0 = wants.contains("finetune") || wants.contains("facenet2expnet")
                        ? try add("finetune", stage: "stage0", graph: try graph("stage0", classes: k), weights: [faceWeights], deps: []) : nil
                    if let stage0, wants.contains("facenet2expnet") {
                        let s1 = try add("stage1", stage: "stage1", graph: try graph("stage1", classes: k), weights: [model(stage0)], deps: [stage0])
                        _ = try add("facenet2expnet", stage: "stage2", graph: try graph("stage2", classes: k), weights: [model(s1)], deps: [s1])
                    }
                    if wants.contains("facenet2expnet-raw") {
                        let s1 = try add("stage1-raw", stage: "stage1", graph: try graph("stage1", classes: k), weights: [faceWeights], deps: [])
                        _ = try add("facenet2expnet-raw", stage: "stage2", graph: try graph("stage2", classes: k), weights: [model(s1)], deps: [s1])
                    }
                    if wants.contains("scratch") {
                        _ = try add("scratch", stage: "scratch", graph: try graph("stage2", classes: k), weights: [], deps: [])
                    }
                }
            }
        }
        return out
    }
}
