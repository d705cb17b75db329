import Foundation
import IR
import Runtime
import Scheduler
import Tensors

/// A trained run, compiled for inference: the run's settings give the graph, the preprocessing and
/// the weights of frozen parts; model.safetensors gives the trained parameters and class names.
/// Any value of the graph can be read out (class scores, or a layer's activations).
public final class Predictor {
    public let settings: Settings
    public let classes: [String]
    public let graph: Graph
    public let pre: Preprocess
    let imageInput: String
    let modelPath: String
    /// The graph with the settings' weights, then the trained ones: an executor per batch size and
    /// set of values read out.
    private var compiled: CompiledGraph!

    /// `overrides` (key=value) change settings that apply after training, such as `test_views`.
    public init(runDirectory dir: String, overrides: [String] = []) throws {
        var settings = try Settings(file: dir + "/settings.txt")
        try settings.override(overrides)
        self.settings = settings
        modelPath = dir + "/model.safetensors"
        let (trained, meta) = try SafeTensors.read(path: modelPath)
        classes = meta["classes"]?.split(separator: ",").map(String.init) ?? []
        // Named sizes (the class count K) are those the trained weights have.
        let flat = try Trainer.flatGraph(settings)
        graph = try Trainer.bound(flat, try Scheduler.symbolValues(flat, from: trained.mapValues(\.shape)))
        guard let img = graph.inputs.first(where: { $0.type.dtype == .f32 && $0.type.rank == 4 }) else {
            throw TrainingError("'@\(graph.name)' has no image input")
        }
        imageInput = img.name
        let dims = img.type.dims.compactMap(\.value)
        pre = try Preprocess(settings: settings, channels: dims[dims.count - 3], inputHeight: dims[dims.count - 2], inputWidth: dims[dims.count - 1])
        self.logits = meta["logits"].flatMap { $0.isEmpty ? nil : $0 }
        compiled = CompiledGraph(graph: graph) { [settings, modelPath] ex in
            _ = try WeightLoader.load(settings.weightFiles.map { ($0.prefix, $0.file) }, into: [ex], params: ex.schedule.graph.params)
            for (name, t) in try SafeTensors.read(path: modelPath).tensors where ex.schedule.buffers[name] != nil { try ex.setValue(name, t) }
        }
    }

    /// The class-score value recorded with the model, if it has one.
    public let logits: String?

    /// Decodes and preprocesses images (centre crop, no mirror) into a batch `[n, C, H, W]`.
    public func batch(_ paths: [String]) throws -> Tensor { batch(try decoded(paths)) }

    func decoded(_ paths: [String]) throws -> [Tensor] {
        var data = Dataset(samples: paths.map { Sample(path: $0, label: 0, group: $0) }, classes: ["?"])
        return try pre.decode(&data, skipBad: false)
    }

    /// Stored images as a batch of their views number `view` (`Preprocess.views`; 0: the centre crop).
    public func batch(_ images: [Tensor], view: Int = 0) -> Tensor {
        let per = pre.channels * pre.inputHeight * pre.inputWidth
        var buf = [Float](repeating: 0, count: images.count * per)
        buf.withUnsafeMutableBufferPointer { p in
            for (k, img) in images.enumerated() {
                pre.apply(img, into: p.baseAddress! + k * per, pre.views(height: img.shape[1], width: img.shape[2])[view])
            }
        }
        return Tensor(shape: [images.count, pre.channels, pre.inputHeight, pre.inputWidth], data: buf)
    }

    /// The values `outputs` of the graph for a batch.
    public func run(_ input: Tensor, outputs: [String]) throws -> [String: Tensor] {
        for o in outputs where graph.node(o) == nil {
            throw TrainingError("'@\(graph.name)' has no value '%\(o)' (values: \(graph.nodes.map { "%" + $0.name }.joined(separator: ", ")))")
        }
        return try compiled.executor(batch: input.shape[0], outputs: outputs).run(inputs: [imageInput: input])
    }

    /// Class probabilities, one row per image (the mean over `test_views` views).
    public func probabilities(_ paths: [String]) throws -> [[Double]] { try probabilities(stored: try decoded(paths)) }

    /// Class probabilities of face crops (`[C, H, W]`, 0-255) made like the training images: they
    /// get the training images' channels, equalization and stored size, then the same preprocessing.
    public func probabilities(crops: [Tensor]) throws -> [[Double]] {
        try probabilities(stored: crops.map { pre.stored(Self.converted($0, channels: pre.channels)) })
    }

    /// Gray replicated to RGB, or RGB to gray as stb decodes it.
    static func converted(_ img: Tensor, channels: Int) -> Tensor {
        guard img.shape[0] != channels else { return img }
        let plane = img.count / img.shape[0], dims = Array(img.shape.dropFirst())
        if channels == 3 { return Tensor(shape: [3] + dims, data: img.data + img.data + img.data) }
        return Tensor(shape: [1] + dims, data: (0..<plane).map { (77 * img.data[$0] + 150 * img.data[plane + $0] + 29 * img.data[2 * plane + $0]) / 256 })
    }

    func probabilities(stored images: [Tensor]) throws -> [[Double]] {
        guard let l = logits else { throw TrainingError("this run has no class scores (it was trained on a regression loss)") }
        guard !images.isEmpty else { return [] }
        let views = try (0..<pre.testViews).map { v in
            let scores = try run(batch(images, view: v), outputs: [l])[l]!
            return scores.data.withUnsafeBufferPointer { Evaluation.probabilities(scores: $0.baseAddress!, rows: images.count, classes: scores.shape[1]) }
        }
        return Evaluation.mean(views)
    }
}
