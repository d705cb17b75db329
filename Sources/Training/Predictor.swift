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

    public init(runDirectory dir: String) throws {
        settings = try Settings(file: dir + "/settings.txt")
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
    public func batch(_ paths: [String]) throws -> Tensor {
        var data = Dataset(samples: paths.map { Sample(path: $0, label: 0, group: $0) }, classes: ["?"])
        let images = try pre.decode(&data, skipBad: false)
        return batch(images)
    }

    public func batch(_ images: [Tensor]) -> Tensor {
        let per = pre.channels * pre.inputHeight * pre.inputWidth
        var buf = [Float](repeating: 0, count: images.count * per)
        var rng = Xoshiro256(seed: 0)
        buf.withUnsafeMutableBufferPointer { p in
            for (k, img) in images.enumerated() { pre.apply(img, into: p.baseAddress! + k * per, train: false, rng: &rng) }
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

    /// Class probabilities, one row per image.
    public func probabilities(_ paths: [String]) throws -> [[Double]] { try probabilities(batch: try batch(paths)) }

    /// Class probabilities of face crops (`[C, H, W]`, 0-255) made like the training images: they
    /// get the training images' channels, equalization and stored size, then the same preprocessing.
    public func probabilities(crops: [Tensor]) throws -> [[Double]] {
        try probabilities(batch: batch(crops.map { pre.stored(Self.converted($0, channels: pre.channels)) }))
    }

    /// Gray replicated to RGB, or RGB to gray as stb decodes it.
    static func converted(_ img: Tensor, channels: Int) -> Tensor {
        guard img.shape[0] != channels else { return img }
        let plane = img.count / img.shape[0], dims = Array(img.shape.dropFirst())
        if channels == 3 { return Tensor(shape: [3] + dims, data: img.data + img.data + img.data) }
        return Tensor(shape: [1] + dims, data: (0..<plane).map { (77 * img.data[$0] + 150 * img.data[plane + $0] + 29 * img.data[2 * plane + $0]) / 256 })
    }

    func probabilities(batch input: Tensor) throws -> [[Double]] {
        guard let l = logits else { throw TrainingError("this run has no class scores (it was trained on a regression loss)") }
        let scores = try run(input, outputs: [l])[l]!
        let k = scores.shape[1]
        return (0..<scores.shape[0]).map { r in
            let row = scores.data[r * k..<(r + 1) * k].map(Double.init)
            let m = row.max()!
            let e = row.map { exp($0 - m) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
    }
}
