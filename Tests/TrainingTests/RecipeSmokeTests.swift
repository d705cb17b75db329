import CaffeImport
import Driver
import Foundation
import Tensors
import Training
import XCTest

/// The FaceNet2ExpNet recipe end to end, small: a generated stand-in data set and an O-Net-shaped
/// face net with generated Caffe weights, stages 0, 1 and 2, the raw-teacher ablation and the scratch
/// baseline on two folds for a few steps, through the real `fn2e-run` executable (one child process per training, two at a time).
final class RecipeSmokeTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// fn2e-run beside the test bundle (`swift build` builds it before `swift test`).
    static func executable() throws -> String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        for candidate in [dir + "/fn2e-run", dir + "/../fn2e-run"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw XCTSkip("fn2e-run is not built beside the tests in \(dir); run `swift build` first (the README's test command does)")
    }

    /// Every recipe in Graphs/ reads (each key known, each setting valid) and names stage graphs that
    /// are there; a misspelt setting is an error naming its file and line.
    func testEveryCommittedRecipeReads() throws {
        let graphs = Self.root + "/Graphs"
        let recipes = try FileManager.default.contentsOfDirectory(atPath: graphs).filter { $0.hasSuffix(".recipe") }.sorted()
        XCTAssertTrue(recipes.contains("fer2013_dlib.recipe"), "\(recipes)")
        for name in recipes {
            let path = graphs + "/" + name
            XCTAssertNoThrow(try Recipe(Recipe.Options(recipeFile: path, faceNet: "", data: "", output: "", executable: ""), log: { _ in }), name)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            for line in text.split(separator: "\n") where line.range(of: #"^stage[012](\.[0-9]+)? = "#, options: .regularExpression) != nil {
                let file = line.split(separator: "=")[1].trimmingCharacters(in: .whitespaces)
                XCTAssertTrue(FileManager.default.fileExists(atPath: graphs + "/" + file), "\(name): \(file)")
            }
        }
        let bad = NSTemporaryDirectory() + "fn2e-bad-\(getpid()).recipe"
        defer { try? FileManager.default.removeItem(atPath: bad) }
        try "stage2 = expnet48_stage2.fn2e\nstage2.lrr = 0.1\n".write(toFile: bad, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Recipe(Recipe.Options(recipeFile: bad, faceNet: "", data: "", output: "", executable: ""), log: { _ in })) {
            XCTAssertTrue("\($0)".contains(bad + ":2:"), "\($0)")
        }
    }

    func testRecipeRunsEveryStageOnTwoFolds() throws {
        let exe = try Self.executable()
        let tmp = NSTemporaryDirectory() + "fn2e-recipe-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let index = try SyntheticFaces.write(to: tmp + "/data", subjects: 20, perSubject: 7, seed: 3)
        let made = CaffeImportDriver.makeTestModel(net: Self.root + "/Tools/standin/onet_standin.prototxt", syntax: .current,
                                                   seed: 1, directory: tmp + "/face", name: "standin")
        XCTAssertEqual(made.status, 0, made.stderr)
        let imported = CaffeImportDriver.run(prototxt: nil, caffemodel: tmp + "/face/standin.caffemodel", directory: tmp + "/face", name: "onet")
        XCTAssertEqual(imported.status, 0, imported.stderr)

        var o = Recipe.Options(recipeFile: Self.root + "/Graphs/onet.recipe", faceNet: tmp + "/face", data: index,
                               output: tmp + "/runs", executable: exe)
        o.folds = 10
        o.foldLimit = 2
        o.jobs = 2
        o.classSets = [[], ["anger", "disgust", "fear", "happy", "sadness", "surprise"]]
        o.overrides = ["iterations=3", "stage1.lr=0.00001", "batch=8"]
        var lines: [String] = []
        let recipe = try Recipe(o, log: { lines.append($0) })
        let results = try recipe.run()
        // 2 folds × 2 class subsets × 4 methods, every one evaluated on its held-out fold.
        XCTAssertEqual(results.count, 16, lines.joined(separator: "\n"))
        for method in Recipe.allMethods {
            XCTAssertEqual(results.filter { $0.method == method }.count, 4)
        }
        for r in results { XCTAssertGreaterThan(r.evaluation.count, 0) }
        // Per seed, fold and class subset: stage 1 loads exactly the face net that stage 0 of the
        // same seed, fold and class subset wrote (file and fingerprint), stage 2 starts from stage 1;
        // the raw ablation's stage 1 loads the imported face net.
        for fold in 0..<2 {
            for k in [7, 6] {
                let run = "\(tmp)/runs/\(k)classes/seed1/fold\(fold)"
                let stage0Model = run + "/finetune/model.safetensors"
                let (stage0Tensors, _) = try SafeTensors.read(path: stage0Model)
                let faceTensors = stage0Tensors.keys.filter { $0.hasPrefix("face.") }.count
                let log = try String(contentsOfFile: run + "/stage1/train.log", encoding: .utf8)
                let line = "weights: \(stage0Model) (fnv1a64 \(try Digest.fnv1a64(file: stage0Model))): \(faceTensors) tensors loaded"
                XCTAssertTrue(log.contains(line), "stage 1 of \(run) should report: \(line)\n\(log)")
                XCTAssertTrue(log.contains("target_scale: %target has RMS"), log)
                let rawLog = try String(contentsOfFile: run + "/stage1-raw/train.log", encoding: .utf8)
                XCTAssertTrue(rawLog.contains("weights: \(tmp)/face/onet.safetensors"), rawLog)
                for (stage2, stage1) in [("facenet2expnet", "stage1"), ("facenet2expnet-raw", "stage1-raw")] {
                    let settings = try String(contentsOfFile: "\(run)/\(stage2)/settings.txt", encoding: .utf8)
                    XCTAssertTrue(settings.contains("\(run)/\(stage1)/model.safetensors"), settings)
                }
            }
        }
        let names = try recipe.classNames()
        XCTAssertEqual(names.map(\.count), [7, 6])
        let report = RecipeReport(results.filter { $0.classSet == 0 }, classes: names[0], methods: o.methods)
        for m in Recipe.allMethods { XCTAssertTrue(report.text.contains(m), report.text) }
        XCTAssertTrue(report.text.contains("facenet2expnet − finetune"), report.text)
        XCTAssertEqual((report.json["paired"] as? [[String: Any]])?.count, 6, report.text)
        let files = try report.write(to: tmp + "/runs", classes: names[0])
        for f in files { XCTAssertTrue(FileManager.default.fileExists(atPath: f), f) }

        // A second invocation reuses every finished run instead of training again.
        lines = []
        _ = try Recipe(o, log: { lines.append($0) }).run()
        XCTAssertEqual(lines.filter { $0.contains("reused") }.count, 24, lines.joined(separator: "\n"))
        XCTAssertFalse(lines.contains { $0.contains("FAILED") }, lines.joined(separator: "\n"))
    }

    /// A fixed split with a training subset, two seeds and the fer2013 recipe: one "fold", every
    /// training reads the split and subset from its settings, and both seeds and both methods train on
    /// the same rows (the recipe fixes split_seed) and test on the same.
    func testRecipeOnAFixedSplitWithATrainingSubset() throws {
        let exe = try Self.executable()
        let tmp = NSTemporaryDirectory() + "fn2e-recipe-split-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let index = try SyntheticFaces.write(to: tmp + "/data", subjects: 12, perSubject: 7, seed: 5)
        // A usage column: the first 8 subjects Training, the rest PublicTest.
        let rows = try String(contentsOfFile: index, encoding: .utf8).split(separator: "\n")
        let subjects = Array(Set(rows.dropFirst().map { $0.split(separator: ",")[2] })).sorted()
        try ([rows[0] + ",usage"] + rows.dropFirst().map { r in r + (subjects.firstIndex(of: r.split(separator: ",")[2])! < 8 ? ",Training" : ",PublicTest") })
            .joined(separator: "\n").write(toFile: tmp + "/data/usage.csv", atomically: true, encoding: .utf8)
        _ = CaffeImportDriver.makeTestModel(net: Self.root + "/Tools/standin/onet_standin.prototxt", syntax: .current,
                                            seed: 1, directory: tmp + "/face", name: "standin")
        XCTAssertEqual(CaffeImportDriver.run(prototxt: nil, caffemodel: tmp + "/face/standin.caffemodel", directory: tmp + "/face", name: "onet").status, 0)
        var o = Recipe.Options(recipeFile: Self.root + "/Graphs/fer2013.recipe", faceNet: tmp + "/face", data: tmp + "/data/usage.csv",
                               output: tmp + "/runs", executable: exe)
        o.split = "usage:Training/PublicTest"
        o.trainSubset = 20
        o.seeds = [1, 2]
        o.methods = ["scratch", "finetune"]
        o.jobs = 2
        o.overrides = ["iterations=2", "batch=8"]
        var lines: [String] = []
        let results = try Recipe(o, log: { lines.append($0) }).run()
        XCTAssertEqual(results.count, 4, lines.joined(separator: "\n"))
        XCTAssertTrue(lines[0].contains("the fixed split usage:Training/PublicTest, 20 training images"), lines[0])
        var reports = Set<String>()
        for seed in [1, 2] {
            for method in ["scratch", "finetune"] {
                let log = try String(contentsOfFile: "\(tmp)/runs/7classes/seed\(seed)/fold0/\(method)/train.log", encoding: .utf8)
                XCTAssertTrue(log.contains("  train: 20 images"), log)
                XCTAssertTrue(log.contains("equalize             hist"), log)
                reports.insert(log.split(separator: "\n").filter { $0.hasPrefix("  train:") || $0.hasPrefix("  validation:") || $0.hasPrefix("  test:") }.joined(separator: "\n"))
            }
        }
        XCTAssertEqual(reports.count, 1, "the same split for every seed and method: \(reports)")
        for r in results { XCTAssertEqual(r.evaluation.count, 4 * 7, "PublicTest: 4 subjects of 7 images") }
    }
}
