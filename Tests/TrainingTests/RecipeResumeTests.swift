import CaffeImport
import Driver
import Foundation
import Tensors
@testable import Training
import XCTest

/// A recipe killed mid-training, through the real `fn2e-run facenet2expnet`: its training does not
/// outlive it (the child gets SIGINT when the recipe dies, writes its checkpoint and stops), and the
/// next invocation continues that training from its checkpoint and ends bitwise where an undisturbed
/// recipe ends. A checkpoint written with other settings, or a finished run, is not resumed.
final class RecipeResumeTests: XCTestCase {
    func testKilledRecipeTakesItsTrainingAlongAndTheNextResumesIt() throws {
        let exe = try RecipeSmokeTests.executable()
        let tmp = NSTemporaryDirectory() + "fn2e-recipe-resume-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let index = try SyntheticFaces.write(to: tmp + "/data", subjects: 10, perSubject: 7, seed: 4)
        _ = CaffeImportDriver.makeTestModel(net: RecipeSmokeTests.root + "/Tools/standin/onet_standin.prototxt", syntax: .current,
                                            seed: 1, directory: tmp + "/face", name: "standin")
        XCTAssertEqual(CaffeImportDriver.run(prototxt: nil, caffemodel: tmp + "/face/standin.caffemodel", directory: tmp + "/face", name: "onet").status, 0)
        // ExpNet48 from scratch, one fold, long enough to be killed in the middle, a checkpoint every 5 steps.
        let sets = ["iterations=300", "batch=8", "checkpoint_interval=5", "display=1000"]
        var o = Recipe.Options(recipeFile: RecipeSmokeTests.root + "/Graphs/onet.recipe", faceNet: tmp + "/face", data: index,
                               output: tmp + "/reference", executable: exe)
        o.folds = 5
        o.foldLimit = 1
        o.methods = ["scratch"]
        o.jobs = 2  // single-threaded trainings: the same arithmetic in every run
        o.overrides = sets
        var lines: [String] = []
        _ = try Recipe(o, log: { lines.append($0) }).run()
        XCTAssertFalse(lines.contains { $0.contains("FAILED") }, lines.joined(separator: "\n"))

        // The same recipe from the command line, SIGKILLed once its training has written a checkpoint.
        let out = tmp + "/killed", run = out + "/7classes/seed1/fold0/scratch"
        let recipe = try RunLockTests.start(["facenet2expnet", "--face-net", tmp + "/face", "--data", index, "--recipe", o.recipeFile,
                                             "--folds", "5", "--fold-limit", "1", "--methods", "scratch", "--jobs", "2", "--output", out]
                                            + sets.flatMap { ["--set", $0] }, log: tmp + "/killed.log")
        try RunLockTests.waitFor("the first checkpoint") { FileManager.default.fileExists(atPath: run + "/checkpoint.safetensors") || !recipe.isRunning }
        XCTAssertTrue(recipe.isRunning, "the recipe ended before it could be killed: " + Toy.text(tmp + "/killed.log"))
        kill(recipe.processIdentifier, SIGKILL)
        recipe.waitUntilExit()
        // Its training stops too, interrupted (it says so last, after it let go of the run folder's
        // lock), unfinished; an orphan left running would finish the run instead.
        let complete = run + "/" + RunCompletion.fileName
        try RunLockTests.waitFor("the training to stop or finish") {
            Toy.text(run + "/train.log").contains("interrupted at step") || FileManager.default.fileExists(atPath: complete)
        }
        try RunLockTests.waitFor("the run folder's lock") { !RunLock.isHeld(run) }
        let log = Toy.text(run + "/train.log")
        XCTAssertTrue(log.contains("interrupted at step"), "the training should have been stopped by its recipe's death:\n" + log)
        XCTAssertFalse(FileManager.default.fileExists(atPath: complete), log)

        // Settings changed since the checkpoint: not resumed; the same settings: resumed.
        let settings = Toy.text(run + "/settings.txt")
        XCTAssertFalse(Recipe.resumable(run, settings: settings.replacingOccurrences(of: "lr = 0.03", with: "lr = 0.01")).0)
        XCTAssertTrue(Recipe.resumable(run, settings: settings).0, Recipe.resumable(run, settings: settings).1)

        o.output = out
        lines = []
        _ = try Recipe(o, log: { lines.append($0) }).run()
        XCTAssertTrue(lines.contains { $0.contains("scratch") && $0.contains("(resumed at step ") }, lines.joined(separator: "\n"))
        try RunLockTests.assertSameRun(tmp + "/reference/7classes/seed1/fold0/scratch", run)
        try Toy.assertSameTensors(tmp + "/reference/7classes/seed1/fold0/scratch/checkpoint.safetensors", run + "/checkpoint.safetensors")
        XCTAssertFalse(Recipe.resumable(run, settings: settings).0, "a finished run is not resumed")
    }
}
