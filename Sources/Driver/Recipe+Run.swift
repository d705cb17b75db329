// Running a recipe: the jobs dealt to the ranks of an mpirun launch, a board of the jobs
// that wait, run, are done or failed, each training in a child process.
import CChild
import Distributed
import Foundation
import Plot
import Tensors
import Training

extension Recipe {
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
    /// a short result or error text. A run a killed recipe left half-trained (a checkpoint written
    /// with the same settings, no completion marker) continues from its checkpoint (`train
    /// --resume-if-unchanged`). The child ends with this process: killed, even by SIGKILL, the
    /// recipe takes its trainings with it (each gets SIGINT, writes its checkpoint and stops; see
    /// `dieWithParent`).
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
            p.arguments = ["train", settingsPath, "--wait-lock", "--resume-if-unchanged"]
            // The training runs on its own, not as a rank of this process's mpirun launch, and ends
            // with this process (`dieWithParent`); this thread waits for it, as that needs.
            var env = Communicator.standalone(ProcessInfo.processInfo.environment)
            if options.jobs > 1 { env["FN2E_THREADS"] = "1"; env["OPENBLAS_NUM_THREADS"] = "1" }
            env[Recipe.parentVariable] = String(getpid())
            p.environment = env
            let log = job.dir + "/train.log"
            _ = fm.createFile(atPath: log, contents: nil)
            let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            p.standardOutput = logHandle
            p.standardError = logHandle
            let start = Date()
            try p.run()
            p.waitUntilExit()
            try? logHandle.close()
            let secs = Date().timeIntervalSince(start)
            let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
            guard p.terminationStatus == 0 else {
                return (false, secs, "exit \(p.terminationStatus): \(lines.suffix(3).joined(separator: " | ")) (log: \(log))")
            }
            let e = try Recipe.finalTest(job.dir, classes: 0, allowLoss: true)
            let resumed = lines.first { $0.hasPrefix("resumed from ") }.map { " (resumed at step \($0.split(separator: " ").last!))" } ?? ""
            return (true, secs, e.shortText + resumed)
        } catch {
            return (false, 0, "\(error)")
        }
    }

    /// The environment variable that names a training's parent recipe (its pid).
    public static let parentVariable = "FN2E_RECIPE_PID"

    /// In a training the recipe started (`parentVariable` set): ties this process to the recipe, so
    /// that it gets SIGINT (and writes its checkpoint and stops, or dies if it has not yet set its
    /// handler) when the recipe ends in any way, SIGKILL included, or at once if the recipe has
    /// already gone. Linux only (prctl(PR_SET_PDEATHSIG)); elsewhere nothing is tied.
    public static func dieWithParent() throws {
        guard let value = ProcessInfo.processInfo.environment[parentVariable] else { return }
        guard let pid = Int32(value), pid > 0 else { throw StageError("\(parentVariable)=\(value) is not a process id") }
        let r = fn2e_die_with_parent(SIGINT, pid)
        guard r == 0 else { throw StageError("cannot tie this training to its recipe (pid \(pid)): \(String(cString: strerror(-r)))") }
    }

    /// Whether a training into `dir` with the settings `text` can continue the one there: a
    /// checkpoint (the latest or the previous), no completion marker, and the settings that training
    /// wrote (`settings.txt`) equal to `text`. Returns the answer and a line saying why.
    public static func resumable(_ dir: String, settings text: String) -> (Bool, String) {
        let fm = FileManager.default
        let checkpoint = dir + "/checkpoint.safetensors"
        guard fm.fileExists(atPath: checkpoint) || fm.fileExists(atPath: Checkpoint.previous(checkpoint)) else {
            return (false, "\(dir): no checkpoint; training from the start")
        }
        guard !fm.fileExists(atPath: dir + "/" + RunCompletion.fileName) else {
            return (false, "\(dir): finished before; training again from the start")
        }
        let old = (try? String(contentsOfFile: dir + "/settings.txt", encoding: .utf8)) ?? ""
        guard old == text else {
            let changed = zip(old.split(separator: "\n"), text.split(separator: "\n")).first { $0 != $1 }
            let why = old.isEmpty ? "no settings.txt" : changed.map { "'\($0.0)', now '\($0.1)'" } ?? "settings.txt differs"
            return (false, "\(dir): its checkpoint was written with other settings (\(why)); training from the start")
        }
        return (true, "\(dir): an unfinished training with these settings; resuming from its checkpoint")
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
