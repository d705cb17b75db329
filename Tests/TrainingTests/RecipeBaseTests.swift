@testable import Driver
import Foundation
import Training
import XCTest

/// A recipe built on another (`base = FILE`): the base's lines first, the recipe's own override them
/// wherever they stand; stage graphs from the folder of the file that names them; a cycle, a second
/// base or a missing one is an error at the `base` line.
final class RecipeBaseTests: XCTestCase {
    var tmp = ""
    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "fn2e-recipe-base-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp + "/sub", withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func write(_ name: String, _ text: String) throws { try text.write(toFile: "\(tmp)/\(name)", atomically: true, encoding: .utf8) }
    func recipe(_ name: String) throws -> Recipe {
        try Recipe(Recipe.Options(recipeFile: "\(tmp)/\(name)", faceNet: tmp, data: "", output: tmp + "/runs", executable: ""), log: { _ in })
    }
    func settings(_ r: Recipe, _ stage: String) throws -> Settings {
        try r.settings(stage: stage, graph: r.graph(stage == "scratch" ? "stage2" : stage, classes: 7), fold: 0, seed: 1, dir: tmp + "/run",
                       weights: [], classes: [])
    }

    func testOwnLinesOverrideTheBase() throws {
        try write("sub/base.recipe", "face_weights = f.safetensors\nstage0 = s0.fn2e\nstage2 = s2.fn2e\nall.batch = 32\nall.lr = 0.1\nstage2.lr = 0.01\nscratch.epochs = 7\nstage1 = s1.fn2e\n")
        try write("top.recipe", "all.batch = 64\nbase = sub/base.recipe\nstage2 = own.fn2e\nstage2.lr = 0.02\n")
        let r = try recipe("top.recipe")
        XCTAssertEqual(try r.graph("stage2", classes: 7), "\(tmp)/own.fn2e")
        XCTAssertEqual(try r.graph("stage0", classes: 7), "\(tmp)/sub/s0.fn2e", "a graph resolves from the file that names it")
        let s2 = try settings(r, "stage2"), scratch = try settings(r, "scratch")
        XCTAssertEqual(s2.string("batch"), "64", "the recipe's own line wins though it stands above the base")
        XCTAssertEqual(s2.string("lr"), "0.02")
        XCTAssertEqual(s2.origins["lr"], "\(tmp)/top.recipe:4")
        XCTAssertEqual(scratch.string("lr"), "0.1")
        XCTAssertEqual(scratch.string("epochs"), "7")
        XCTAssertEqual(scratch.origins["epochs"], "\(tmp)/sub/base.recipe:7")
        XCTAssertEqual(s2.string("graph"), "\(tmp)/own.fn2e")
        // Every training of the recipe gets its stage's graph, each from the file that names it.
        let graphs = Dictionary(try r.jobs(classCounts: [7]).map { ($0.method, $0.settings.string("graph")) }) { a, _ in a }
        XCTAssertEqual(graphs["finetune"], "\(tmp)/sub/s0.fn2e")
        XCTAssertEqual(graphs["stage1"], "\(tmp)/sub/s1.fn2e")
        XCTAssertEqual(graphs["stage1-raw"], "\(tmp)/sub/s1.fn2e")
        XCTAssertEqual(graphs["facenet2expnet"], "\(tmp)/own.fn2e")
        XCTAssertEqual(graphs["scratch"], "\(tmp)/own.fn2e")
    }

    func testCyclesSecondBasesAndMissingBasesAreErrors() throws {
        try write("a.recipe", "base = sub/b.recipe\n")
        try write("sub/b.recipe", "stage2 = x.fn2e\nbase = ../a.recipe\n")
        XCTAssertThrowsError(try recipe("a.recipe")) { e in
            XCTAssertTrue("\(e)".contains("\(tmp)/sub/b.recipe:2:1: error: the recipe '\(tmp)/sub/../a.recipe' is its own base"), "\(e)")
            XCTAssertTrue("\(e)".contains("\(tmp)/a.recipe:1:1 -> "), "\(e)")
        }
        try write("self.recipe", "\n  base = self.recipe\n")
        XCTAssertThrowsError(try recipe("self.recipe")) { XCTAssertTrue("\($0)".contains("self.recipe:2:3: error: the recipe"), "\($0)") }
        try write("two.recipe", "base = sub/b2.recipe\nbase = sub/b2.recipe\n")
        try write("sub/b2.recipe", "stage2 = x.fn2e\n")
        XCTAssertThrowsError(try recipe("two.recipe")) { XCTAssertTrue("\($0)".contains("two.recipe:2:1: error: a second base"), "\($0)") }
        try write("missing.recipe", "stage2 = x.fn2e\nbase = nowhere.recipe\n")
        XCTAssertThrowsError(try recipe("missing.recipe")) {
            XCTAssertTrue("\($0)".contains("missing.recipe:2:1: error: cannot read the recipe '\(tmp)/nowhere.recipe'"), "\($0)")
        }
        try write("badbase.recipe", "base = sub/bad.recipe\n")
        try write("sub/bad.recipe", "stage2 = x.fn2e\nstage2.lrr = 1\n")
        XCTAssertThrowsError(try recipe("badbase.recipe")) { XCTAssertTrue("\($0)".contains("sub/bad.recipe:2:"), "\($0)") }
    }

    /// The committed variants of fer2013.recipe take its data, preprocessing and augmentation and
    /// change only what they name (checked key by key against the full copies they replaced when
    /// they became variants).
    func testCommittedVariantsBuildOnFer2013() throws {
        let graphs = RecipeSmokeTests.root + "/Graphs"
        func load(_ name: String) throws -> Recipe {
            try Recipe(Recipe.Options(recipeFile: graphs + "/" + name, faceNet: tmp, data: "", output: tmp, executable: ""), log: { _ in })
        }
        let (base, vgg, dlib) = (try load("fer2013.recipe"), try load("fer2013_vgg48.recipe"), try load("fer2013_dlib.recipe"))
        for stage in ["stage0", "stage1", "stage2", "scratch"] {
            let (b, v, d) = (try settings(base, stage), try settings(vgg, stage), try settings(dlib, stage))
            for key in ["equalize", "align", "channels", "mean", "scale", "val_fraction", "split_seed", "mirror", "lr_policy"] {
                XCTAssertEqual(v.string(key), b.string(key), "\(stage) \(key)")
                XCTAssertEqual(d.string(key), b.string(key), "\(stage) \(key)")
            }
            XCTAssertEqual(v.string("batch"), "64")
            XCTAssertEqual(d.string("batch"), "32")
            XCTAssertEqual(v.string("crop_mode"), b.string("crop_mode"), stage)
            XCTAssertEqual(d.string("crop_mode"), stage == "stage2" || stage == "scratch" ? "random" : "center", stage)
        }
        XCTAssertEqual(try vgg.graph("stage2", classes: 7), graphs + "/vgg48_stage2.fn2e")
        XCTAssertEqual(try vgg.graph("stage0", classes: 7), graphs + "/onet_stage0.fn2e")
        XCTAssertEqual(try dlib.graph("stage2", classes: 7), graphs + "/expnet48_stage2.fn2e")
        XCTAssertEqual(try dlib.graph("stage0", classes: 7), graphs + "/dlib_stage0.fn2e")
        XCTAssertEqual(try settings(dlib, "stage2").string("lr"), try settings(base, "stage2").string("lr"))
        XCTAssertEqual(try settings(dlib, "stage1").string("lr"), "0.0003")
        XCTAssertEqual(try settings(vgg, "stage1").string("epochs"), "10")
        XCTAssertEqual(try settings(vgg, "scratch").string("lr"), "0.003")
        for key in ["lr", "epochs"] { XCTAssertEqual(try settings(vgg, "stage0").string(key), try settings(base, "stage0").string(key), "stage0 \(key)") }
    }
}
