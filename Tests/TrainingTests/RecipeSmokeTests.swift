import CaffeImport
import Driver
import Foundation
import Training
import XCTest

/// The FaceNet2ExpNet recipe end to end, small: a generated stand-in data set and an O-Net-shaped
/// face net with generated Caffe weights, all three stages and both baselines on two folds for a few
/// steps, through the real `fn2e-run` executable (one child process per training, two at a time).
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
        // 2 folds × 2 class subsets × 3 methods, every one evaluated on its held-out fold.
        XCTAssertEqual(results.count, 12, lines.joined(separator: "\n"))
        for method in Recipe.allMethods {
            XCTAssertEqual(results.filter { $0.method == method }.count, 4)
        }
        for r in results { XCTAssertGreaterThan(r.evaluation.count, 0) }
        // One stage-1 run per fold serves both class subsets, and stage 2 started from it.
        for fold in 0..<2 {
            let stage1 = "\(tmp)/runs/seed1/fold\(fold)/stage1"
            XCTAssertTrue(FileManager.default.fileExists(atPath: stage1 + "/model.safetensors"))
            let settings = try String(contentsOfFile: "\(tmp)/runs/7classes/seed1/fold\(fold)/facenet2expnet/settings.txt", encoding: .utf8)
            XCTAssertTrue(settings.contains(stage1 + "/model.safetensors"), settings)
        }
        let names = try recipe.classNames()
        XCTAssertEqual(names.map(\.count), [7, 6])
        let report = RecipeReport(results.filter { $0.classSet == 0 }, classes: names[0], methods: o.methods)
        for m in Recipe.allMethods { XCTAssertTrue(report.text.contains(m), report.text) }
        let files = try report.write(to: tmp + "/runs", classes: names[0])
        for f in files { XCTAssertTrue(FileManager.default.fileExists(atPath: f), f) }

        // A second invocation reuses every finished run instead of training again.
        lines = []
        _ = try Recipe(o, log: { lines.append($0) }).run()
        XCTAssertEqual(lines.filter { $0.contains("reused") }.count, 14, lines.joined(separator: "\n"))
    }
}
