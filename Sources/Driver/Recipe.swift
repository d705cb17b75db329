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
    let recipe: [String: (value: String, line: Int)]
    let log: (String) -> Void

    public init(_ options: Options, log: @escaping (String) -> Void) throws {
        self.options = options
        self.log = log
        recipe = try Recipe.parse(options.recipeFile)
    }

    /// `key = value` lines; keys are recipe keys (`face_weights`, `stage0`, `stage1`, `stage2`, or
    /// `stage0.K` / `stage2.K` for a graph of one class count K)
    /// or settings prefixed by the stage they apply to (`all.`, `stage0.`, `stage1.`, `stage2.`, `scratch.`).
    static func parse(_ path: String) throws -> [String: (value: String, line: Int)] {
        guard let data = FileManager.default.contents(atPath: path) else { throw StageError("cannot read the recipe '\(path)': " + Resources.missingHint) }
        return try parse(text: String(decoding: data, as: UTF8.self), file: path)
    }

    static func parse(text: String, file path: String) throws -> [String: (value: String, line: Int)] {
        var out: [String: (String, Int)] = [:]
        for (i, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            if line.allSatisfy(\.isWhitespace) { continue }
            guard let eq = line.firstIndex(of: "=") else { throw RenderedDiagnostics(description: "\(path):\(i + 1):1: error: expected 'key = value'") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces), value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            let known = ["face_weights", "stage0", "stage1", "stage2"].contains(key) || (parts.count == 2 && ["stage0", "stage2"].contains(parts[0]) && Int(parts[1]) != nil)
            if !known {
                guard parts.count == 2, ["all", "stage0", "stage1", "stage2", "scratch"].contains(parts[0]) else {
                    throw RenderedDiagnostics(description: "\(path):\(i + 1):1: error: unknown recipe key '\(key)' (expected face_weights, stage0, stage1, stage2, stage0.K, stage2.K, or a setting prefixed all., stage0., stage1., stage2., scratch.)")
                }
                var probe = Settings()
                do { try probe.set(parts[1], value, origin: path, at: "\(path):\(i + 1):1") } catch {
                    throw RenderedDiagnostics(description: "\(error)")
                }
            }
            out[key] = (value, i + 1)
        }
        return out
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
    /// (a graph whose class count is the named size K).
    func graph(_ stage: String, classes k: Int) throws -> String {
        if let v = recipe["\(stage).\(k)"]?.value { return v }
        guard let v = recipe[stage]?.value else { throw StageError("\(options.recipeFile): no '\(stage)' or '\(stage).\(k)'") }
        return v
    }

    /// A stage's settings: recipe `all.` keys, then the stage's own, then the command line's.
    func settings(stage: String, graph: String, fold: Int, seed: Int, dir: String, weights: [String], classes: [String]) throws -> Settings {
        var s = Settings()
        let recipeDir = (options.recipeFile as NSString).deletingLastPathComponent
        func abs(_ p: String) -> String {
            if p.hasPrefix("/") { return p }
            let base = recipeDir.isEmpty ? FileManager.default.currentDirectoryPath : (recipeDir.hasPrefix("/") ? recipeDir : FileManager.default.currentDirectoryPath + "/" + recipeDir)
            return base + "/" + p
        }
        func cwdAbs(_ p: String) -> String { p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p }
        for prefix in ["all", stage] {
            // `stage0.K` and `stage2.K` name graphs per class count; the rest are settings.
            for (k, v) in recipe.sorted(by: { $0.value.line < $1.value.line }) where k.hasPrefix(prefix + ".") && Int(k.dropFirst(prefix.count + 1)) == nil {
                try s.set(String(k.dropFirst(prefix.count + 1)), v.value, origin: "\(options.recipeFile):\(v.line)")
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
        try s.set("graph", abs(graph), origin: "recipe")
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
                        let s1 = try add("stage1", stage: "stage1", graph: try value("stage1"), weights: [model(stage0)], deps: [stage0])
                        _ = try add("facenet2expnet", stage: "stage2", graph: try graph("stage2", classes: k), weights: [model(s1)], deps: [s1])
                    }
                    if wants.contains("facenet2expnet-raw") {
                        let s1 = try add("stage1-raw", stage: "stage1", graph: try value("stage1"), weights: [faceWeights], deps: [])
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

    /// Runs every job (at most `jobs` at once, each single-threaded when several run) and collects
    /// the final test evaluations. Under `mpirun` (`world` of several ranks) each rank runs the
    /// chains `deal` gives it, and rank 0 alone returns the results, once every rank is done (the
    /// others return none); a failure on any rank is reported with the rank and the job's name.
    public func run(world: Communicator? = nil) throws -> [RunResult] {
        let counts = try classNames().map(\.count)
        let all = try jobs(classCounts: counts)
        let (rank, ranks) = (world?.rank ?? 0, world?.size ?? 1)
        if rank == 0 {
            log("FaceNet2ExpNet: \(all.count) trainings (\(options.methods.joined(separator: ", "))), \(counts.map(String.init).joined(separator: " and ")) classes, seeds \(options.seeds.map(String.init).joined(separator: ",")), \(splitText), \(options.jobs) at a time" + (ranks > 1 ? " on each of \(ranks) ranks" : ""))
        }
        let owner = Recipe.deal(all.map(\.deps), ranks: ranks)
        let mine = all.indices.filter { owner[$0] == rank }
        let prefix = ranks > 1 ? "rank \(rank): " : ""
        if ranks > 1 { log(prefix + "\(mine.count) trainings: " + mine.map { all[$0].name }.joined(separator: "; ")) }
        // This rank's jobs, their dependencies renumbered among them (a chain is never split).
        let local = Dictionary(uniqueKeysWithValues: mine.enumerated().map { ($1, $0) })
        let board = JobBoard(count: mine.count)
        // Workers report one at a time, so `log` need not be thread-safe.
        let logLock = NSLock()
        DispatchQueue.concurrentPerform(iterations: max(1, options.jobs)) { _ in
            while let k = board.next(mine.map { all[$0].deps.map { local[$0]! } }, names: mine.map { all[$0].name }) {
                let job = all[mine[k]]
                let (ok, secs, message) = execute(job)
                let done = board.finish(k, ok: ok, seconds: secs, failure: ok ? nil : "\(job.name): \(message)")
                logLock.withLock { log(String(format: "%@[%d/%d] %@ %@ (%.0f s)", prefix, done, mine.count, job.name, ok ? message : "FAILED", secs)) }
            }
        }
        var seconds = [Double](repeating: 0, count: all.count)
        for (k, i) in mine.enumerated() { seconds[i] = board.seconds[k] }
        var failures = board.failures.map { prefix + $0 }
        if let world, ranks > 1 {
            // Collectives: they return once every rank has finished its chains.
            seconds = world.sum(seconds)
            failures = world.allGather(failures.joined(separator: "\n")).flatMap { $0.split(separator: "\n").map(String.init) }
        }
        if !failures.isEmpty { throw Failures(lines: failures) }
        guard rank == 0 else { return [] }
        return try all.indices.filter { options.methods.contains(all[$0].method) }.map { i in
            RunResult(method: all[i].method, classSet: all[i].classSet, fold: all[i].fold, seed: all[i].seed,
                      evaluation: try Recipe.finalTest(all[i].dir, classes: counts[all[i].classSet]), seconds: seconds[i])
        }
    }

    /// Trainings that failed (on every rank), one line each: the rank, the job's name and why.
    public struct Failures: Error, CustomStringConvertible {
        public var lines: [String]
        public var description: String { "\(lines.count) training\(lines.count == 1 ? "" : "s") failed:\n  " + lines.joined(separator: "\n  ") }
    }

    /// The rank that runs each job: chains (a job with its dependencies, which are earlier jobs) stay
    /// whole, and are dealt largest first to the rank with the fewest jobs so far. A recipe job
    /// depends on one earlier job at most, so following the first dependency finds its chain.
    static func deal(_ deps: [[Int]], ranks: Int) -> [Int] {
        precondition(deps.allSatisfy { $0.count <= 1 }, "a recipe job depends on at most one other")
        var root = [Int](deps.indices)
        for i in deps.indices { root[i] = deps[i].first.map { root[$0] } ?? i }
        var size: [Int: Int] = [:]
        for r in root { size[r, default: 0] += 1 }
        var load = [Int](repeating: 0, count: max(ranks, 1)), rankOfRoot: [Int: Int] = [:]
        for r in size.keys.sorted(by: { (size[$0]!, -$0) > (size[$1]!, -$1) }) {
            let k = load.indices.min { load[$0] < load[$1] }!
            rankOfRoot[r] = k
            load[k] += size[r]!
        }
        return root.map { rankOfRoot[$0]! }
    }

    /// Trains one run in a child process unless it already finished; returns success, seconds, and
    /// a short result or error text.
    func execute(_ job: Job) -> (Bool, Double, String) {
        let fm = FileManager.default
        // Reused only when finished (its completion marker is written last) and no process is writing it.
        if RunCompletion.isFinished(job.dir), let e = try? Recipe.finalTest(job.dir, classes: 0, allowLoss: true) {
            return (true, 0, "reused: " + e.shortText)
        }
        do {
            try fm.createDirectory(atPath: job.dir, withIntermediateDirectories: true)
            let settingsPath = job.dir + "/recipe-settings.txt"
            try job.settings.fileText.write(toFile: settingsPath, atomically: true, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: options.executable)
            // A training of an earlier, killed recipe may still be writing the folder: wait for it.
            p.arguments = ["train", settingsPath, "--wait-lock"]
            // The training runs on its own, not as a rank of this process's mpirun launch.
            var env = Communicator.standalone(ProcessInfo.processInfo.environment)
            if options.jobs > 1 { env["FN2E_THREADS"] = "1"; env["OPENBLAS_NUM_THREADS"] = "1" }
            p.environment = env
            _ = fm.createFile(atPath: job.dir + "/train.log", contents: nil)
            let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: job.dir + "/train.log"))
            p.standardOutput = logHandle
            p.standardError = logHandle
            let start = Date()
            try p.run()
            p.waitUntilExit()
            try? logHandle.close()
            let secs = Date().timeIntervalSince(start)
            guard p.terminationStatus == 0 else {
                let tail = (try? String(contentsOfFile: job.dir + "/train.log", encoding: .utf8))?.split(separator: "\n").suffix(3).joined(separator: " | ") ?? ""
                return (false, secs, "exit \(p.terminationStatus): \(tail) (log: \(job.dir)/train.log)")
            }
            let e = try Recipe.finalTest(job.dir, classes: 0, allowLoss: true)
            return (true, secs, e.shortText)
        } catch {
            return (false, 0, "\(error)")
        }
    }

    /// The last test evaluation of a run's metrics.jsonl.
    static func finalTest(_ dir: String, classes: Int, allowLoss: Bool = false) throws -> Evaluation {
        guard let row = MetricsLog.read(dir + "/metrics.jsonl").last(where: { $0["type"] as? String == "eval" && $0["split"] as? String == "test" }) else {
            throw StageError("\(dir): no test evaluation in metrics.jsonl")
        }
        var e = Evaluation(split: "test", classes: 0)
        e.count = (row["count"] as? NSNumber)?.intValue ?? 0
        e.loss = ((row["loss"] as? NSNumber)?.doubleValue ?? 0) * Double(e.count)
        if let m = row["confusion"] as? [[Any]] {
            e.confusion = m.map { $0.map { ($0 as? NSNumber)?.intValue ?? 0 } }
        } else if !allowLoss {
            throw StageError("\(dir): the test evaluation has no confusion matrix")
        }
        return e
    }
}

extension Evaluation {
    var shortText: String {
        confusion.isEmpty ? String(format: "test loss %.4f", count == 0 ? 0 : loss / Double(count))
            : String(format: "test accuracy %.2f%%, mean per-class %.2f%%", 100 * accuracy, 100 * meanClassAccuracy)
    }
}

/// The results table: per method, accuracy and mean per-class accuracy per fold (averaged over
/// seeds), mean ± std over folds for each seed and over the seeds' means, and the summed confusion.
public struct RecipeReport {
    public var text: String
    public var json: [String: Any]
    public var confusions: [String: [[Int]]]

    public init(_ results: [Recipe.RunResult], classes: [String], methods: [String]) {
        func meanStd(_ xs: [Double]) -> (Double, Double) {
            guard !xs.isEmpty else { return (0, 0) }
            let m = xs.reduce(0, +) / Double(xs.count)
            let v = xs.count > 1 ? xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1) : 0
            return (m, v.squareRoot())
        }
        let folds = Set(results.map(\.fold)).sorted(), seeds = Set(results.map(\.seed)).sorted()
        var text = "method           " + folds.map { String(format: "fold%-3d", $0) }.joined(separator: " ") + "   accuracy (mean ± std over folds)   mean per-class\n"
        var json: [String: Any] = ["classes": classes, "folds": folds, "seeds": seeds]
        var confusions: [String: [[Int]]] = [:]
        for method in methods where results.contains(where: { $0.method == method }) {
            let rs = results.filter { $0.method == method }
            let perFold = folds.map { f in meanStd(rs.filter { $0.fold == f }.map { 100 * $0.evaluation.accuracy }).0 }
            let seedAcc = seeds.map { s in meanStd(rs.filter { $0.seed == s }.map { 100 * $0.evaluation.accuracy }) }
            let seedMCA = seeds.map { s in meanStd(rs.filter { $0.seed == s }.map { 100 * $0.evaluation.meanClassAccuracy }) }
            let overall = meanStd(rs.map { 100 * $0.evaluation.accuracy })
            let overallMCA = meanStd(rs.map { 100 * $0.evaluation.meanClassAccuracy })
            let acrossSeeds = meanStd(seedAcc.map(\.0))
            text += method.padding(toLength: 16, withPad: " ", startingAt: 0) + " "
                + perFold.map { String(format: "%6.2f ", $0) }.joined(separator: " ")
                + String(format: "  %6.2f ± %5.2f                  %6.2f ± %5.2f\n", overall.0, overall.1, overallMCA.0, overallMCA.1)
            for (k, s) in seeds.enumerated() where seeds.count > 1 {
                text += String(format: "  seed %-9d %@ %6.2f ± %5.2f (mean per-class %6.2f ± %5.2f)\n", s,
                               String(repeating: " ", count: max(0, folds.count * 8 - 14)), seedAcc[k].0, seedAcc[k].1, seedMCA[k].0, seedMCA[k].1)
            }
            if seeds.count > 1 { text += String(format: "  across seeds: %6.2f ± %5.2f\n", acrossSeeds.0, acrossSeeds.1) }
            var conf = Array(repeating: Array(repeating: 0, count: classes.count), count: classes.count)
            for r in rs where r.evaluation.confusion.count == classes.count {
                for i in 0..<classes.count { for j in 0..<classes.count { conf[i][j] += r.evaluation.confusion[i][j] } }
            }
            confusions[method] = conf
            json[method] = ["per_fold_accuracy": perFold, "accuracy_mean": overall.0, "accuracy_std": overall.1,
                            "mean_class_accuracy_mean": overallMCA.0, "mean_class_accuracy_std": overallMCA.1,
                            "accuracy_by_seed": seedAcc.map(\.0), "confusion": conf,
                            "train_seconds": rs.reduce(0) { $0 + $1.seconds }]
        }
        let paired = RecipeReport.pairedDifferences(results, methods: methods)
        if !paired.isEmpty {
            text += "\npaired differences in accuracy over the same (seed, fold) runs, percentage points (first − second):\n"
                + "pair".padding(toLength: 40, withPad: " ", startingAt: 0) + "    n     mean      se   95% interval        wins/ties/losses\n"
            for d in paired {
                text += "\(d.a) − \(d.b)".padding(toLength: 40, withPad: " ", startingAt: 0)
                    + String(format: " %4d  %+7.2f  %6.2f   [%+6.2f, %+6.2f]    %d/%d/%d\n", d.n, d.mean, d.se, d.low, d.high, d.wins, d.ties, d.losses)
            }
            json["paired"] = paired.map { d in
                ["first": d.a, "second": d.b, "n": d.n, "mean": d.mean, "se": d.se, "ci95": [d.low, d.high],
                 "wins": d.wins, "ties": d.ties, "losses": d.losses] as [String: Any]
            }
        }
        for (method, conf) in confusions.sorted(by: { $0.key < $1.key }) {
            var e = Evaluation(split: method, classes: classes.count)
            e.confusion = conf
            e.count = conf.flatMap { $0 }.reduce(0, +)
            text += "\nsummed confusion, \(method) (accuracy \(String(format: "%.2f", 100 * e.accuracy))%):\n" + e.confusionText(classes)
        }
        (self.text, self.json, self.confusions) = (text, json, confusions)
    }

    /// One pair of methods compared run by run: accuracy of `a` minus that of `b` on the same
    /// (seed, fold), in percentage points.
    public struct PairedDifference {
        public var a: String, b: String
        public var n: Int
        public var mean: Double, se: Double, low: Double, high: Double
        public var wins: Int, ties: Int, losses: Int
    }

    /// Every pair of methods (in the order given) over the (seed, fold) runs both have: mean paired
    /// difference, its standard error, a 95% Student-t interval, and wins/ties/losses. The runs share
    /// training data across folds, so the interval is a guide, not an exact test.
    public static func pairedDifferences(_ results: [Recipe.RunResult], methods: [String]) -> [PairedDifference] {
        var accuracy: [String: [String: Double]] = [:]
        for r in results { accuracy[r.method, default: [:]]["\(r.seed)/\(r.fold)"] = 100 * r.evaluation.accuracy }
        let present = methods.filter { accuracy[$0] != nil }
        var out: [PairedDifference] = []
        for (i, a) in present.enumerated() {
            for b in present[(i + 1)...] {
                let keys = accuracy[a]!.keys.filter { accuracy[b]![$0] != nil }.sorted()
                let ds = keys.map { accuracy[a]![$0]! - accuracy[b]![$0]! }
                guard !ds.isEmpty else { continue }
                let n = Double(ds.count), mean = ds.reduce(0, +) / n
                let sd = ds.count > 1 ? (ds.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)).squareRoot() : 0
                let se = sd / n.squareRoot(), t = ds.count > 1 ? studentT975(degrees: ds.count - 1) : 0
                out.append(PairedDifference(a: a, b: b, n: ds.count, mean: mean, se: se, low: mean - t * se, high: mean + t * se,
                                            wins: ds.filter { $0 > 1e-9 }.count, ties: ds.filter { abs($0) <= 1e-9 }.count,
                                            losses: ds.filter { $0 < -1e-9 }.count))
            }
        }
        return out
    }

    /// The 97.5% quantile of Student's t (two-sided 95%): exact table values up to 30 degrees of
    /// freedom, then the Cornish-Fisher expansion around the normal quantile (error < 1e-3).
    public static func studentT975(degrees df: Int) -> Double {
        let table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
                     2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
        if df >= 1 && df <= table.count { return table[df - 1] }
        let z = 1.959964, v = Double(df), z3 = z * z * z, z5 = z3 * z * z
        return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v)
    }

    /// Writes results.txt, results.json and confusion_METHOD.png into `dir`.
    public func write(to dir: String, classes: [String]) throws -> [String] {
        var files = [dir + "/results.txt", dir + "/results.json"]
        try text.write(toFile: files[0], atomically: true, encoding: .utf8)
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: files[1]), options: .atomic)
        for (method, conf) in confusions {
            let path = dir + "/confusion_\(method).png"
            try Plots.confusionMatrix(conf, classes: classes, title: "\(method): summed over folds and seeds").writePNG(path)
            files.append(path)
        }
        return files
    }
}

/// Which recipe jobs wait, run, are done or failed; workers take ready jobs in order.
final class JobBoard: @unchecked Sendable {
    private let lock = NSCondition()
    private var state: [Int]  // 0 waiting, 1 running, 2 done, 3 failed
    private(set) var seconds: [Double]
    private(set) var failures: [String] = []

    init(count: Int) {
        state = [Int](repeating: 0, count: count)
        seconds = [Double](repeating: 0, count: count)
    }

    /// The next job whose dependencies are done, waiting while some run; nil when none is left.
    func next(_ deps: [[Int]], names: [String]) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        while true {
            for i in state.indices where state[i] == 0 {
                if deps[i].contains(where: { state[$0] == 3 }) {
                    state[i] = 3
                    failures.append("\(names[i]): skipped (a stage it needs failed)")
                } else if deps[i].allSatisfy({ state[$0] == 2 }) {
                    state[i] = 1
                    return i
                }
            }
            if !state.contains(0) { return nil }
            lock.wait()
        }
    }

    /// Records a finished job; returns how many are finished.
    func finish(_ i: Int, ok: Bool, seconds s: Double, failure: String?) -> Int {
        lock.lock()
        defer { lock.unlock() }
        state[i] = ok ? 2 : 3
        seconds[i] = s
        if let f = failure { failures.append(f) }
        lock.broadcast()
        return state.filter { $0 >= 2 }.count
    }
}
