import Driver
import Foundation
import Tensors
import Training
import XCTest

/// A learnable synthetic data set made once per test process: 16x16 gray images of three patterns
/// (a 3x3-ish blob, a horizontal bar, a vertical bar, each 2 px thick and 8 long) at random
/// positions on seeded uniform noise, 30 subjects x 3 classes x 2 images, each subject with its
/// own background level; a CSV index `path,label,subject`; and the small graphs the tests train.
enum Toy {
    static let classes = ["blob", "hbar", "vbar"]
    static let subjects = 30
    static let perClass = 2

    static let dir: String = {
        let d = NSTemporaryDirectory() + "fn2e-toy-\(getpid())"
        try? FileManager.default.removeItem(atPath: d)
        try! FileManager.default.createDirectory(atPath: d + "/img", withIntermediateDirectories: true)
        var csv = "path,label,subject\n"
        for s in 0..<subjects {
            var subjectRNG = Xoshiro256(seed: 1000 + UInt64(s))
            let background = 10 + 40 * subjectRNG.nextFloat()
            for (c, name) in classes.enumerated() {
                for k in 0..<perClass {
                    var rng = Xoshiro256(seed: UInt64(s * 100 + c * 10 + k))
                    let file = "img/S\(s)_\(name)_\(k).png"
                    try! Images.writePNG(image(c, background: background, rng: &rng), to: d + "/" + file)
                    csv += "\(file),\(name),S\(s)\n"
                }
            }
        }
        try! csv.write(toFile: d + "/index.csv", atomically: true, encoding: .utf8)
        try! graph(dropout: false).write(toFile: d + "/toy.fn2e", atomically: true, encoding: .utf8)
        try! graph(dropout: true).write(toFile: d + "/toy_dropout.fn2e", atomically: true, encoding: .utf8)
        try! linearGraph.write(toFile: d + "/toy_linear.fn2e", atomically: true, encoding: .utf8)
        return d
    }()

    /// One `[1, 16, 16]` image of class `c` (0 blob, 1 horizontal bar, 2 vertical bar).
    static func image(_ c: Int, background: Float, rng: inout Xoshiro256) -> Tensor {
        var px = (0..<256).map { _ in background + 60 * rng.nextFloat() }
        switch c {
        case 0:
            let (cy, cx) = (2 + rng.nextInt(upperBound: 12), 2 + rng.nextInt(upperBound: 12))
            for y in cy - 2...cy + 2 { for x in cx - 2...cx + 2 where (y - cy) * (y - cy) + (x - cx) * (x - cx) <= 4 { px[y * 16 + x] += 140 } }
        default:
            let (a, b) = (rng.nextInt(upperBound: 15), rng.nextInt(upperBound: 9))
            for i in 0..<2 { for j in 0..<8 { px[c == 1 ? (a + i) * 16 + b + j : (b + j) * 16 + a + i] += 140 } }
        }
        return Tensor(shape: [1, 16, 16], data: px)
    }

    static func graph(dropout: Bool) -> String {
        """
        fn2e 1

        graph @toy(%data: f32[N,1,16,16], %label: i32[N]) {
          param %conv.weight: f32[8,1,3,3] = msra
          param %conv.bias: f32[8] = zeros
          param %fc.weight: f32[3,32] = xavier
          param %fc.bias: f32[3] = zeros
          %conv = f32[N,8,16,16] conv2d(%data, %conv.weight, %conv.bias) {pad=1}
          %relu = f32[N,8,16,16] relu(%conv)
          %pool = f32[N,8,2,2] max_pool(%relu) {kernel=8, stride=8}
          %flat = f32[N,32] flatten(%pool)
        \(dropout ? "  %drop = f32[N,32] dropout(%flat) {ratio=0.3}\n" : "")\
          %fc = f32[N,3] linear(\(dropout ? "%drop" : "%flat"), %fc.weight, %fc.bias)
          %loss = f32[] softmax_cross_entropy(%fc, %label)
          return %loss
        }

        """
    }

    /// A linear classifier whose parameters carry Caffe's lr_mult and decay_mult.
    static let linearGraph = """
        fn2e 1

        graph @toy_linear(%data: f32[N,1,16,16], %label: i32[N]) {
          param %fc.weight: f32[3,256] = gaussian(0.01) {lr_mult=0.5, decay_mult=2}
          param %fc.bias: f32[3] = constant(0.1) {lr_mult=2, decay_mult=0}
          %flat = f32[N,256] flatten(%data)
          %fc = f32[N,3] linear(%flat, %fc.weight, %fc.bias)
          %loss = f32[] softmax_cross_entropy(%fc, %label)
          return %loss
        }

        """

    /// Settings for a toy run into a fresh output folder (`extra` overrides the defaults).
    static func settings(_ name: String, _ extra: [String: String] = [:]) throws -> Settings {
        let base: [String: String] = [
            "graph": dir + "/toy.fn2e", "data": dir + "/index.csv", "folds": "5", "fold": "0", "batch": "16",
            "solver": "sgd", "lr": "0.1", "momentum": "0.9", "weight_decay": "0.0005", "mean": "60", "scale": "0.01",
            "iterations": "100", "eval_interval": "20", "display": "1000", "seed": "7", "output": output(name),
        ]
        var s = Settings()
        for (k, v) in base.merging(extra, uniquingKeysWith: { $1 }).sorted(by: { $0.key < $1.key }) {
            try s.set(k, v, origin: "test")
        }
        return s
    }

    /// A fresh, empty folder name under the toy folder.
    static func output(_ name: String) -> String {
        let p = dir + "/runs/" + name
        try? FileManager.default.removeItem(atPath: p)
        return p
    }

    static func trainer(_ s: Settings) throws -> Trainer { try Trainer(settings: s, log: { _ in }) }

    static func text(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }

    /// Asserts two safetensors files hold the same tensor names with bitwise-equal values.
    static func assertSameTensors(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (ta, _) = try SafeTensors.read(path: a)
        let (tb, _) = try SafeTensors.read(path: b)
        XCTAssertEqual(Set(ta.keys), Set(tb.keys), file: file, line: line)
        XCTAssertFalse(ta.isEmpty, file: file, line: line)
        for (name, x) in ta {
            guard let y = tb[name] else { continue }
            XCTAssertEqual(x.shape, y.shape, name, file: file, line: line)
            XCTAssert(x.data.map(\.bitPattern) == y.data.map(\.bitPattern), "'\(name)' differs", file: file, line: line)
        }
    }

    /// `$FN2E_DATA/<relative>` through the shared-data resolver (`Driver.SharedData`), or a skip
    /// that says why.
    static func dataPath(_ relative: String) throws -> String {
        let found = SharedData.find(relative)
        guard let path = found.path else { throw XCTSkip(found.reason) }
        return path
    }
}
