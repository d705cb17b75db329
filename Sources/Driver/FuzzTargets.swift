// Every reader of files that come from elsewhere, as one entry point each: what the libFuzzer
// build in Tools/fuzz calls per input, and what the test suite replays over the minimised corpora
// in Tests/FuzzCorpus. A reader may reject an input with an error; it must never crash, hang or
// allocate from a length the input did not back with bytes.
import CaffeImport
import DlibImport
import Foundation
import IR
import OnnxImport
import Tensors
import Training

public enum FuzzTargets {
    /// Target name -> the reader run on one input.
    public static let all: [String: @Sendable (Data) -> Void] = [
        "ir": { data in
            // Parse, resolve, verify and print back what verifies.
            if let program = try? Loader.load(bytes: [UInt8](data), file: "fuzz.fn2e") { _ = Printer.print(program.root) }
        },
        "prototxt": { data in
            guard let net = try? CaffeNet(prototxt: String(decoding: data, as: UTF8.self), file: "fuzz.prototxt") else { return }
            _ = try? CaffeToIR.convert(net, name: "fuzz")
        },
        "caffemodel": { data in
            guard let net = try? CaffeNet(caffemodel: [UInt8](data), file: "fuzz.caffemodel") else { return }
            _ = try? CaffeToIR.convert(net, name: "fuzz")
        },
        "dlib": { data in
            for type in [DlibNetType.faceRecognitionResNet, .everyFamily] {
                guard let net = try? DlibNet(bytes: [UInt8](data), file: "fuzz.dat", type: type) else { continue }
                _ = try? DlibToIR.convert(net, name: "fuzz", file: "fuzz.dat")
            }
        },
        "onnx": { data in
            // A model through the importer (and the exporter where it imports), and a test-data tensor.
            let bytes = [UInt8](data)
            if let model = try? OnnxModel(bytes: bytes, file: "fuzz.onnx"), let imported = try? OnnxToIR.convert(model, name: "fuzz") {
                _ = try? IRToOnnx.export(imported.graph, weights: Dictionary(imported.weights, uniquingKeysWith: { a, _ in a })).serialized()
            }
            _ = try? OnnxTensor(bytes: bytes, file: "fuzz.pb")
        },
        "safetensors": { data in _ = try? SafeTensors.parse(data, path: "fuzz.safetensors") },
        "npy": { data in _ = try? Npy.parse(data, path: "fuzz.npy") },
        "image": { data in
            // A few kilobytes of PNG can declare the 8192x8192 pixels decode allows; a smaller
            // limit here keeps each input fast without changing which code runs.
            let limit = Images.maxPixels
            Images.maxPixels = 1 << 20
            defer { Images.maxPixels = limit }
            _ = try? Images.decode(data, channels: 1, label: "fuzz.png")
            _ = try? Images.decode(data, channels: 3, label: "fuzz.png")
        },
        "settings": { data in _ = try? Settings(text: String(decoding: data, as: UTF8.self), file: "fuzz.settings") },
        "recipe": { data in _ = try? Recipe.parse(text: String(decoding: data, as: UTF8.self), file: "fuzz.recipe", bases: false) },
        "metrics": { data in _ = MetricsLog.parse(data) },
    ]

    /// Runs every file under `directory/TARGET/` through its target; returns how many ran.
    public static func replay(corpus directory: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for (name, run) in all {
            let dir = directory + "/" + name
            guard let files = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for file in files.sorted() where !file.hasPrefix(".") {
                run(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file)))
                counts[name, default: 0] += 1
            }
        }
        return counts
    }
}
