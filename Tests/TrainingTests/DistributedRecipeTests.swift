import CaffeImport
import Driver
import Foundation
import XCTest

/// `mpirun -np 2 fn2e-run facenet2expnet` on the stand-in (generated faces, an O-Net-shaped face
/// net with generated weights): the ranks share the trainings chain by chain, and rank 0's table
/// equals the one-process table; a training that fails on rank 1 is reported by rank 0 by name.
final class DistributedRecipeTests: XCTestCase {
    /// The stand-in data and face net, made once.
    static let standin: Result<(data: String, face: String), Error> = Result {
        let tmp = NSTemporaryDirectory() + "fn2e-dist-recipe-\(getpid())"
        let index = try SyntheticFaces.write(to: tmp + "/data", subjects: 20, perSubject: 7, seed: 3)
        let made = CaffeImportDriver.makeTestModel(net: RecipeSmokeTests.root + "/Tools/standin/onet_standin.prototxt", syntax: .current,
                                                   seed: 1, directory: tmp + "/face", name: "standin")
        guard made.status == 0 else { throw StageError(made.stderr) }
        let imported = CaffeImportDriver.run(prototxt: nil, caffemodel: tmp + "/face/standin.caffemodel", directory: tmp + "/face", name: "onet")
        guard imported.status == 0 else { throw StageError(imported.stderr) }
        return (index, tmp + "/face")
    }

    /// The recipe on fold 0 of 10, 3 steps per training, one training at a time per process.
    static func recipe(_ output: String, ranks: Int, _ extra: [String] = []) throws -> DataParallelTests.Outcome {
        let (data, face) = try standin.get()
        try? FileManager.default.removeItem(atPath: output)
        let args = ["facenet2expnet", "--recipe", RecipeSmokeTests.root + "/Graphs/onet.recipe", "--face-net", face, "--data", data,
                    "--folds", "10", "--fold-limit", "1", "--jobs", "1", "--set", "iterations=3", "--set", "stage1.lr=0.00001",
                    "--set", "batch=8", "--output", output] + extra
        let exe = try RecipeSmokeTests.executable()
        return ranks == 0 ? try DataParallelTests.run(exe, args)
            : try DataParallelTests.run(try DataParallelTests.mpirun(), ["--oversubscribe", "-np", String(ranks), exe] + args)
    }

    func testTwoRanksShareTheTrainingsAndRankZerosTableEqualsOneProcess() throws {
        _ = try DataParallelTests.mpirun()
        let (_, face) = try Self.standin.get()
        let (one, two) = (face + "/../one", face + "/../two")
        let a = try Self.recipe(one, ranks: 0)
        XCTAssertEqual(a.status, 0, a.stderr)
        let b = try Self.recipe(two, ranks: 2)
        XCTAssertEqual(b.status, 0, b.stderr)
        // The chains are dealt whole: stage 0 -> 1 -> 2 on one rank, the raw chain and scratch on the other.
        XCTAssertTrue(b.stderr.contains("rank 0: 3 trainings: seed 1 fold 0 7 classes finetune; seed 1 fold 0 7 classes stage1; seed 1 fold 0 7 classes facenet2expnet"), b.stderr)
        XCTAssertTrue(b.stderr.contains("rank 1: 3 trainings: seed 1 fold 0 7 classes stage1-raw; seed 1 fold 0 7 classes facenet2expnet-raw; seed 1 fold 0 7 classes scratch"), b.stderr)
        XCTAssertTrue(b.stderr.contains("rank 1: [3/3] seed 1 fold 0 7 classes scratch test accuracy"), b.stderr)
        // Rank 0 alone prints the table, and it is the one-process table; every run's metrics are the same bytes.
        XCTAssertEqual(b.stdout.components(separatedBy: "paired differences").count, 2, b.stdout)
        let table = try String(contentsOfFile: one + "/7classes/results.txt", encoding: .utf8)
        XCTAssertTrue(table.contains("facenet2expnet-raw"), table)
        XCTAssertEqual(table, try String(contentsOfFile: two + "/7classes/results.txt", encoding: .utf8))
        for run in ["finetune", "stage1", "facenet2expnet", "stage1-raw", "facenet2expnet-raw", "scratch"] {
            let path = "/7classes/seed1/fold0/\(run)/metrics.jsonl"
            XCTAssertEqual(Toy.text(one + path), Toy.text(two + path), run)
            XCTAssertFalse(Toy.text(two + path).isEmpty, run)
        }
    }

    func testAFailedTrainingOnRankOneIsReportedByName() throws {
        _ = try DataParallelTests.mpirun()
        let (_, face) = try Self.standin.get()
        // The raw chain goes to rank 0, scratch to rank 1, where a batch of 0 fails.
        let r = try Self.recipe(face + "/../failing", ranks: 2, ["--methods", "facenet2expnet-raw,scratch", "--set", "scratch.batch=0"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("1 training failed:\n  rank 1: seed 1 fold 0 7 classes scratch: exit 1"), r.stderr)
        XCTAssertTrue(r.stderr.contains("batch must be positive"), r.stderr)
        XCTAssertTrue(r.stderr.contains("rank 0: [2/2] seed 1 fold 0 7 classes facenet2expnet-raw test accuracy"), r.stderr)
        XCTAssertFalse(r.stdout.contains("paired differences"), r.stdout)
    }
}
