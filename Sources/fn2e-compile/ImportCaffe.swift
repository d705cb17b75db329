import ArgumentParser
import CaffeImport
import Driver
import Foundation

/// `fn2e-compile import caffe|dlib|onnx|make-test-model|caffe-outputs`: thin wrappers over `CaffeImportDriver`,
/// `DlibImportDriver` and `OnnxImportDriver`.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import",
        abstract: "Import models from other frameworks.",
        subcommands: [ImportCaffe.self, ImportDlib.self, ImportOnnx.self, MakeTestModel.self, CaffeOutputs.self])
}

struct ImportCaffe: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "caffe",
        abstract: "Convert a Caffe deploy prototxt and/or caffemodel into DIR/NAME.fn2e and DIR/NAME.safetensors.")
    @Argument(help: "DEPLOY.prototxt and/or WEIGHTS.caffemodel (either alone; a caffemodel alone carries its net).")
    var files: [String]
    @Option(name: .shortAndLong, help: "Output folder.") var output: String
    @Option(help: "Graph and file name (default: from the first file's name).") var name: String?
    @Option(help: "Import only the layers LAYER needs; its top is the graph's output (a backbone).") var until: String?
    @Option(help: "Import only the layers these layers (or blobs) need, comma-separated; their tops are the outputs.")
    var outputs: String?

    func validate() throws {
        guard (1...2).contains(files.count) else { throw ValidationError("give a prototxt, a caffemodel, or both") }
        guard until == nil || outputs == nil else { throw ValidationError("give --until or --outputs, not both") }
        guard files.filter({ $0.hasSuffix(".caffemodel") }).count <= 1, files.filter({ !$0.hasSuffix(".caffemodel") }).count <= 1 else {
            throw ValidationError("give at most one prototxt and one .caffemodel")
        }
    }

    func run() throws {
        let model = files.first { $0.hasSuffix(".caffemodel") }
        let proto = files.first { !$0.hasSuffix(".caffemodel") }
        let cut = until.map { [$0] } ?? outputs.map { $0.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) } }
        try emit(CaffeImportDriver.run(prototxt: proto, caffemodel: model, directory: output, name: name, outputs: cut))
    }
}

struct ImportDlib: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dlib",
        abstract: "Convert dlib's face-recognition ResNet (FILE.dat) into DIR/NAME.fn2e and DIR/NAME.safetensors.")
    @Argument(help: "The dlib network file, e.g. dlib_face_recognition_resnet_model_v1.dat.") var file: String
    @Option(name: .shortAndLong, help: "Output folder.") var output: String
    @Option(help: "Graph and file name (default: from the file's name).") var name: String?

    func run() throws {
        try emit(DlibImportDriver.run(file: file, directory: output, name: name))
    }
}

struct MakeTestModel: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "make-test-model",
        abstract: "Write a Caffe test model with seeded random weights.", shouldDisplay: false)
    @Argument(help: "mini-vgg, all-layers, ssd-mini, ssd-mini-batch1, a prototxt whose layers get random weights, or dlib-every-family (NAME.dat).")
    var net: String
    @Option(help: "current or v1.") var syntax: String = "current"
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(name: .shortAndLong, help: "Output folder.") var output: String
    @Option(help: "File name without extension.") var name: String

    func validate() throws {
        guard ["current", "v1"].contains(syntax) else { throw ValidationError("--syntax must be current or v1") }
    }

    func run() throws {
        if net == "dlib-every-family" { return try emit(DlibImportDriver.makeTestModel(directory: output, name: name)) }
        try emit(CaffeImportDriver.makeTestModel(net: net, syntax: syntax == "v1" ? .v1 : .current, seed: seed,
                                                 directory: output, name: name))
    }
}

struct CaffeOutputs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "caffe-outputs",
        abstract: "Import, run on an .npy input, write every node's output as DIR/NODE.npy.", shouldDisplay: false)
    @Argument var prototxt: String
    @Argument var caffemodel: String?
    @Option(help: "Input tensor (.npy, float32).") var input: String
    @Option(name: .shortAndLong, help: "Output folder.") var output: String

    func run() throws {
        try emit(CaffeImportDriver.writeOutputs(prototxt: prototxt, caffemodel: caffemodel, input: input, directory: output))
    }
}
