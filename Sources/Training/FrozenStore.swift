import Foundation
import IR
import Runtime
import Scheduler
import Tensors

/// Frozen results kept on disk and shared by runs (setting `frozen_store = DIR`; the recipe gives
/// all its runs one). A value is addressed by content: its key hashes its op, attributes and type
/// and the keys of its operands, down to the parameters' bytes and the image preprocessing; a
/// sample is addressed by its decoded pixels and augmentation. Every run of a recipe whose frozen
/// part computes the same value (the layers stage 0 keeps frozen, the lower layers a fine-tuned
/// teacher left unchanged) reads what an earlier run stored and computes only the rest.
public struct FrozenStore {
    public let directory: String
    /// Where warnings go (a discarded entry).
    public var warn: (String) -> Void

    public init(directory: String, warn: @escaping (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) {
        (self.directory, self.warn) = (directory, warn)
    }

    /// One sample to compute: its key, and how to write its preprocessed image.
    public struct Sample {
        public var key: String
        public var write: (UnsafeMutablePointer<Float>) -> Void
        public init(key: String, write: @escaping (UnsafeMutablePointer<Float>) -> Void) { (self.key, self.write) = (key, write) }
    }

    /// The content key of every value of a flat graph. `param` gives a parameter's values (nil:
    /// the parameter, and all computed from it, gets a key nothing else has).
    public static func keys(_ g: Graph, inputKey: String, param: (String) -> [Float]?) -> [String: String] {
        func hash(_ s: String) -> String { String(Digest.fnv1a64(Array(s.utf8)), radix: 16) }
        var keys: [String: String] = [:]
        for i in g.inputs { keys[i.name] = hash("input \(i.type) \(inputKey)") }
        for p in g.params {
            guard let v = param(p.name) else { keys[p.name] = UUID().uuidString; continue }
            keys[p.name] = hash("param \(p.type) " + String(v.withUnsafeBytes { Digest.fnv1a64($0) }, radix: 16))
        }
        for n in g.nodes {
            let attrs = n.fullAttrs.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            let operands = n.operands.map { keys[$0] ?? UUID().uuidString }.joined(separator: ",")
            keys[n.name] = hash("\(n.op.rawValue) \(n.type.map { "\($0)" } ?? "?") {\(attrs)} (\(operands))")
        }
        return keys
    }

    func path(_ key: String) -> String { directory + "/" + key + ".safetensors" }

    /// The stored rows of a value by sample key, those of `rowSize` floats (empty when none). An
    /// entry that fails to read (a checksum, a truncated file) is never used: it is removed with a
    /// warning, and its rows are computed again.
    func load(_ key: String, rowSize: Int) -> [String: [Float]] {
        let file = path(key)
        guard FileManager.default.fileExists(atPath: file) else { return [:] }
        do {
            return try SafeTensors.read(path: file).tensors.mapValues(\.data).filter { $0.value.count == rowSize }
        } catch {
            unlink(file)
            warn("warning: frozen store: \(error)\nwarning: frozen store: discarded \(file); its values are computed again")
            return [:]
        }
    }

    /// Floats per sample of a batched value (-1 when a size other than N is not a number).
    static func rowSize(_ g: Graph, _ v: String) -> Int {
        guard let dims = g.type(of: v)?.dims.dropFirst(), dims.allSatisfy({ $0.value != nil }) else { return -1 }
        return dims.reduce(1) { $0 * $1.value! }
    }

    /// Adds rows to a value's file (atomically; a concurrent writer's rows may be lost, never mixed).
    func save(_ key: String, value: String, rows: [String: [Float]]) {
        guard !rows.isEmpty else { return }
        var all = load(key, rowSize: rows.first!.value.count)
        let before = all.count
        all.merge(rows) { old, _ in old }
        guard all.count > before else { return }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let tensors = all.keys.sorted().map { ($0, Tensor(shape: [all[$0]!.count], data: all[$0]!)) }
        try? SafeTensors.write(tensors, metadata: ["value": value], to: path(key))
    }

    /// Rows of `outputs` (values of the flat, frozen `graph`) for every sample, in the samples'
    /// order. With a store: samples it holds for every output are read; for the others, the part of
    /// the graph between the outputs and the latest values the store holds for all of them runs
    /// (the image input, when still needed, from `Sample.write`); what was computed is stored.
    /// Parameters come from `params`; `batch` samples run at a time. `whole`, an executor of all of
    /// `graph` for `batch` samples that keeps `outputs`, runs when nothing is read from the store
    /// (instead of compiling the same graph again). Also returns how many samples were computed and
    /// which values were read from the store.
    public static func compute(_ graph: Graph, outputs: [String], params: Executor, imageInput: String, inputKey: String,
                               samples: [Sample], batch: Int, store: FrozenStore?, seed: UInt64,
                               whole: Executor? = nil) throws -> (rows: [[[Float]]], computed: Int, read: [String]) {
        var rows = [[[Float]]?](repeating: nil, count: samples.count)
        var g = graph
        g.outputs = outputs
        var keys: [String: String] = [:]
        var stored: [String: [String: [Float]]] = [:]  // value -> sample -> row
        if let store {
            keys = FrozenStore.keys(g, inputKey: inputKey, param: { params.tensor($0)?.data })
            for o in outputs { stored[o] = store.load(keys[o]!, rowSize: rowSize(g, o)) }
            for (i, s) in samples.enumerated() where outputs.allSatisfy({ stored[$0]![s.key] != nil }) {
                rows[i] = outputs.map { stored[$0]![s.key]! }
            }
        }
        let missing = samples.indices.filter { rows[$0] == nil }
        var read = samples.isEmpty || !missing.isEmpty ? [] : outputs
        if !missing.isEmpty {
            // Walk back from the outputs; a value the store holds for every missing sample becomes an input.
            var fromStore: [String: [String: [Float]]] = [:]
            var needed = Set(outputs)
            for n in g.nodes.reversed() where needed.contains(n.name) {
                if let store, !outputs.contains(n.name) {
                    let r = store.load(keys[n.name]!, rowSize: rowSize(g, n.name))
                    if !r.isEmpty, missing.allSatisfy({ r[samples[$0].key] != nil }) { fromStore[n.name] = r; continue }
                }
                needed.formUnion(n.operands)
            }
            var part = g
            part.nodes = g.nodes.filter { needed.contains($0.name) && fromStore[$0.name] == nil }
            part.params = g.params.filter { needed.contains($0.name) }
            part.inputs = g.inputs.filter { needed.contains($0.name) }
                + g.nodes.filter { fromStore[$0.name] != nil }.map { Input(name: $0.name, type: $0.type!, loc: $0.loc) }
            read = g.nodes.filter { fromStore[$0.name] != nil }.map(\.name)
            let ex: Executor
            if let whole, fromStore.isEmpty {
                ex = whole
            } else {
                ex = try CompiledGraph(graph: part, seed: seed) { ex in
                    for p in part.params { if let t = params.tensor(p.name) { try ex.setValue(p.name, t) } }
                }.executor(batch: batch)
            }
            let image = part.inputs.first { $0.name == imageInput }
            let per = image.map { $0.type.dims.dropFirst().reduce(1) { $0 * ($1.value ?? 1) } } ?? 0
            for start in stride(from: 0, to: missing.count, by: batch) {
                let chunk = missing[start..<min(start + batch, missing.count)]
                if let image {
                    var buf = [Float](repeating: 0, count: batch * per)
                    buf.withUnsafeMutableBufferPointer { p in
                        for (k, i) in chunk.enumerated() { samples[i].write(p.baseAddress! + k * per) }
                    }
                    try ex.setValue(image.name, Tensor(shape: [batch] + image.type.dims.dropFirst().map { $0.value ?? 1 }, data: buf))
                }
                for (v, r) in fromStore { for (k, i) in chunk.enumerated() { ex.setRow(v, k, r[samples[i].key]!) } }
                ex.run()
                for (k, i) in chunk.enumerated() { rows[i] = outputs.map { ex.row($0, k) } }
            }
            if let store {
                for (j, o) in outputs.enumerated() {
                    store.save(keys[o]!, value: o, rows: Dictionary(missing.map { (samples[$0].key, rows[$0]![j]) }) { a, _ in a })
                }
            }
        }
        return (rows.map { $0! }, missing.count, read)
    }
}
