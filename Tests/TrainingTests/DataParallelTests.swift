import Foundation
import Tensors
import Training
import XCTest

/// Data-parallel training under `mpirun -np 2` (one machine, oversubscribed) against one process
/// at the same global batch, through the real `fn2e-run`: the same samples, augmentations and
/// dropout masks, the same updates to float tolerance, the same evaluations, rank 0 alone writing;
/// and an exact resume under MPI.
final class DataParallelTests: XCTestCase {
    /// Largest difference allowed between a weight after 2-rank and after 1-process training,
    /// relative to max(1, |weight|). The ranks' gradients are each a sum over 8 samples, added by the
    /// all-reduce, where one process's GEMMs sum all 16 in one pass: the float rounding differs, by
    /// a few ulps of the weights (up to 1.6, ulp 1.2e-7 to 2.4e-7) after 40 steps (measured max
    /// 4.7e-7), so 4x that, far below what one sample more or less changes.
    static let weightTolerance: Float = 2e-6

    /// mpirun from the PATH. Without it the tests skip, except in CI (CI=true), where they fail:
    /// CI installs Open MPI (Tools/system_packages.sh).
    static func mpirun() throws -> String {
        let env = ProcessInfo.processInfo.environment
        for dir in (env["PATH"] ?? "").split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/mpirun") {
            return "\(dir)/mpirun"
        }
        let install = "install Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev, as Tools/system_packages.sh does)"
        if env["CI"] == "true" { throw TrainingError("CI=true but mpirun is not on the PATH: \(install)") }
        throw XCTSkip("mpirun is not on the PATH, so the 2-rank tests did not run: \(install)")
    }

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a command with one BLAS thread and one fn2e thread per process, as root if need be.
    static func run(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:]) throws -> Outcome {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging([
            "FN2E_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            // Containers often forbid the cross-memory attach Open MPI's shared-memory transport tries first.
            "OMPI_MCA_btl_vader_single_copy_mechanism": "none",
        ].merging(extra) { $1 }) { $1 }
        let dir = NSTemporaryDirectory() + "fn2e-dp-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for f in ["out", "err"] { _ = FileManager.default.createFile(atPath: "\(dir)/\(f)", contents: nil) }
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/out"))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/err"))
        try p.run()
        p.waitUntilExit()
        return Outcome(status: p.terminationStatus, stdout: Toy.text(dir + "/out"), stderr: Toy.text(dir + "/err"))
    }

    /// Trains the toy settings with `fn2e-run train`, on `ranks` ranks under mpirun or (0) alone.
    static func train(_ s: Settings, ranks: Int, resume: Bool = false) throws -> Outcome {
        let exe = try RecipeSmokeTests.executable()
        let file = s.path("output") + ".train"
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try s.fileText.write(toFile: file, atomically: true, encoding: .utf8)
        let args = ["train", file] + (resume ? ["--resume"] : [])
        return ranks == 0 ? try run(exe, args) : try run(try mpirun(), ["--oversubscribe", "-np", String(ranks), exe] + args)
    }

    /// Dropout, mirror augmentation, weight decay, momentum and a multistep schedule; global batch 16.
    static func settings(_ name: String, iterations: Int = 40, _ extra: [String: String] = [:]) throws -> Settings {
        try Toy.settings(name, ["graph": Toy.dir + "/toy_dropout.fn2e", "mirror": "true", "lr_policy": "multistep",
                                "stepvalues": "30", "iterations": String(iterations), "eval_interval": "10",
                                "display": "10"].merging(extra) { $1 })
    }

    /// The 1-process and 2-rank runs of 40 steps that the tests compare.
    static let runs: Result<(one: String, two: String, outcome: Outcome), Error> = Result {
        let (one, two) = (try settings("dp-one"), try settings("dp-two"))
        let a = try train(one, ranks: 0)
        guard a.status == 0 else { throw TrainingError("1-process run failed: \(a.stderr)") }
        let b = try train(two, ranks: 2)
        guard b.status == 0 else { throw TrainingError("2-rank run failed (exit \(b.status)): \(b.stderr)") }
        return (one.path("output"), two.path("output"), b)
    }

    func testTwoRanksMatchOneProcessAtTheSameGlobalBatch() throws {
        _ = try Self.mpirun()
        let (one, two, outcome) = try Self.runs.get()
        // Weights: equal to the all-reduce's rounding.
        let (a, b) = (try SafeTensors.read(path: one + "/model.safetensors").tensors, try SafeTensors.read(path: two + "/model.safetensors").tensors)
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var worst: (Float, String) = (0, "")
        for (name, x) in a {
            let y = try XCTUnwrap(b[name])
            XCTAssertEqual(x.shape, y.shape, name)
            for i in x.data.indices {
                let d = abs(x.data[i] - y.data[i]) / max(1, abs(x.data[i]))
                if d > worst.0 { worst = (d, name) }
            }
        }
        print("2 ranks vs 1 process, 40 steps: max weight difference \(worst.0) (in \(worst.1)), tolerance \(Self.weightTolerance)")
        XCTAssertLessThanOrEqual(worst.0, Self.weightTolerance, "weights differ most in \(worst.1)")
        // The weights moved far more than that: the comparison is not between two initialisations.
        let initial = try Toy.trainer(try Self.settings("dp-initial"))
        let w0 = try XCTUnwrap(initial.solver.parameterTensors.first { $0.0 == "fc.weight" }?.1)
        XCTAssertGreaterThan(zip(w0.data, a["fc.weight"]!.data).map { abs($0 - $1) }.max()!, 1000 * Self.weightTolerance)

        // Metrics: the same lines; losses to float rounding, evaluations' confusion matrices equal.
        let (ma, mb) = (MetricsLog.read(one + "/metrics.jsonl"), MetricsLog.read(two + "/metrics.jsonl"))
        XCTAssertEqual(ma.count, 40 + 4)
        let last = try XCTUnwrap(ma.last { $0["type"] as? String == "eval" })
        XCTAssertGreaterThan(last["accuracy"] as? Double ?? 0, 0.6, "the toy net should learn something in 40 steps: \(last)")
        XCTAssertEqual(ma.count, mb.count)
        for (x, y) in zip(ma, mb) {
            XCTAssertEqual(x["type"] as? String, y["type"] as? String)
            XCTAssertEqual(x["step"] as? Int, y["step"] as? Int)
            let (lx, ly) = (try XCTUnwrap(x["loss"] as? Double), try XCTUnwrap(y["loss"] as? Double))
            XCTAssertEqual(lx, ly, accuracy: 1e-5 * max(1, abs(lx)), "loss at step \(x["step"] ?? "?")")
            if x["type"] as? String == "eval" {
                XCTAssertEqual(x["confusion"] as? [[Int]], y["confusion"] as? [[Int]])
                XCTAssertEqual(x["count"] as? Int, y["count"] as? Int)
            }
        }
        // Rank 0 alone talks: one settings table, one result, one timing line with the all-reduce share.
        XCTAssertEqual(outcome.stderr.components(separatedBy: "settings:\n").count, 2, outcome.stderr)
        XCTAssertEqual(outcome.stdout.components(separatedBy: "run folder:").count, 2, outcome.stdout)
        XCTAssertTrue(outcome.stderr.contains("data-parallel: 2 ranks of 8 samples each"), outcome.stderr)
        XCTAssertTrue(outcome.stderr.contains("on 2 ranks, all-reduce"), outcome.stderr)
    }

    func testResumeUnderMPIEndsWhereTheUninterruptedRunEnds() throws {
        _ = try Self.mpirun()
        let (_, two, _) = try Self.runs.get()
        var s = try Self.settings("dp-resumed", iterations: 20)
        let first = try Self.train(s, ranks: 2)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(try SafeTensors.read(path: s.path("output") + "/checkpoint.safetensors").metadata["step"], "20")
        try s.set("iterations", "40", origin: "test")
        let rest = try Self.train(s, ranks: 2, resume: true)
        XCTAssertEqual(rest.status, 0, rest.stderr)
        XCTAssertTrue(rest.stderr.contains("resumed from"), rest.stderr)
        // The same ranks reduce the same values in the same order: bitwise.
        try Toy.assertSameTensors(two + "/model.safetensors", s.path("output") + "/model.safetensors")
        try Toy.assertSameTensors(two + "/checkpoint.safetensors", s.path("output") + "/checkpoint.safetensors")
        XCTAssertEqual(Toy.text(two + "/metrics.jsonl"), Toy.text(s.path("output") + "/metrics.jsonl"))
    }

    func testABatchThatTheRanksCannotShareIsAnError() throws {
        _ = try Self.mpirun()
        let s = try Self.settings("dp-odd", iterations: 2, ["batch": "15"])
        let r = try Self.train(s, ranks: 2)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("batch 15 cannot be split evenly over the 2 ranks"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.path("output") + "/model.safetensors"))
    }

    /// Started as if by mpirun but without Open MPI's library: a clear error, nothing written (runs
    /// without MPI installed).
    func testLaunchedByMPIRunWithoutOpenMPIIsAClearError() throws {
        let s = try Self.settings("dp-nompi", iterations: 2)
        let file = s.path("output") + ".train"
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try s.fileText.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try Self.run(try RecipeSmokeTests.executable(), ["train", file],
                             environment: ["OMPI_COMM_WORLD_SIZE": "2", "FN2E_MPI_LIBRARY": "/nonexistent/libmpi.so.40"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("started by mpirun") && r.stderr.contains("Open MPI's library could not be loaded"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.path("output")))
    }
}
