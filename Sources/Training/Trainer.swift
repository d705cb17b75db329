import Autodiff
import Distributed
import Foundation
import IR
import Runtime
import Scheduler
import Tensors

/// Trains a graph's loss with a solver over compiled schedules: data from an index through the
/// preprocessing pipeline (written straight into the step's input), grouped splits, evaluation, metrics,
/// checkpoints that resume bitwise, and a stop on the first non-finite value. Under `mpirun` the
/// ranks share each batch (data parallelism, see `world`). The parts are types
/// of their own: `TrainingStep` (the compiled step, solver and frozen cache), `ProgressReporter`
/// (progress lines and metrics.jsonl) and `Checkpoint` (save and restore).
public final class Trainer {
    public let settings: Settings
    public private(set) var data: Dataset
    let images: [Tensor]
    /// Each decoded image's digest: the frozen part's cache and store key samples by content.
    let imageKeys: [String]
    public let splits: Splits
    let pre: Preprocess
    public let graph: Graph
    public let loss: String
    public let logits: String?
    let imageInput: String
    let labelInput: String?
    /// The compiled step: gradient graph, solver, frozen cut and its cache.
    public let compiled: TrainingStep
    /// The flat graph for evaluation and measurements (no dropout), with the settings' weights and
    /// the calibrated values: one executor per batch size and set of values returned.
    var inference: CompiledGraph!
    /// What evaluation returns: the loss and the class scores.
    let evalOutputs: [String]
    public var solver: Solver { compiled.solver }
    let policy: LRPolicy
    /// The global batch: samples per step over all ranks.
    public let batch: Int
    /// The processes of a data-parallel run (nil: this one alone). Each takes `localBatch` samples
    /// of every batch, by their position in it, and their gradients are averaged before the update;
    /// rank 0 alone evaluates and writes metrics, checkpoints, the model and the log.
    public let world: Communicator?
    public var rank: Int { world?.rank ?? 0 }
    public let localBatch: Int
    public let totalSteps: Int
    public let stepsPerEpoch: Int
    public private(set) var step = 0
    public var log: (String) -> Void
    public let weightsReport: String
    /// Frozen parameters set from the training data before the first step (`target_scale`); they are
    /// written with the model, and every executor gets them after its weights.
    private(set) var calibrated: [(String, Tensor)] = []
    /// How often frozen boundary values were computed or reused from the cache.
    public var cacheStats: (computed: Int, reused: Int) { compiled.cacheStats }
    /// Seconds spent running steps (for throughput), and of those, preparing their batches.
    public private(set) var computeSeconds = 0.0
    public private(set) var prepareSeconds = 0.0

    public init(settings: Settings, log: @escaping (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) },
                world: Communicator? = nil) throws {
        self.settings = settings
        self.world = world
        self.log = (world?.rank ?? 0) == 0 ? log : { _ in }
        let seed = UInt64(settings.int("seed"))
        batch = settings.int("batch")
        guard batch >= 1 else { throw TrainingError("batch must be positive") }
        let ranks = world?.size ?? 1
        guard batch % ranks == 0 else {
            throw TrainingError("batch \(batch) cannot be split evenly over the \(ranks) ranks of this mpirun launch: each rank takes an equal share of the global batch; make batch a multiple of \(ranks)")
        }
        localBatch = batch / ranks

        // The graph: inline calls, pick the loss and the class scores.
        let graphPath = settings.path("graph")
        guard !graphPath.isEmpty else { throw TrainingError("no graph: set 'graph'") }
        var flat = try Trainer.flatGraph(settings)
        guard let lossName = settings.string("loss").isEmpty ? flat.defaultLoss : settings.string("loss") else {
            throw TrainingError("'@\(flat.name)' returns no loss; set 'loss'")
        }
        guard flat.type(of: lossName) == TensorType(.f32, []) else { throw TrainingError("'%\(lossName)' is not a scalar loss of '@\(flat.name)'") }
        loss = lossName
        if !settings.string("logits").isEmpty {
            guard flat.node(settings.string("logits")) != nil else { throw TrainingError("no value '%\(settings.string("logits"))' for logits") }
            logits = settings.string("logits")
        } else {
            logits = flat.node(lossName).flatMap { $0.op == .softmaxCrossEntropy ? $0.operands[0] : nil }
        }
        guard let img = flat.inputs.first(where: { $0.type.dtype == .f32 && $0.type.rank == 4 }) else {
            throw TrainingError("'@\(flat.name)' has no image input f32[N,C,H,W]")
        }
        imageInput = img.name
        labelInput = flat.inputs.first { $0.type.dtype == .i32 }?.name
        for i in flat.inputs where i.name != imageInput && i.name != labelInput {
            throw TrainingError("input '%\(i.name)' (\(i.type)) is not fed by the data pipeline")
        }
        let dims = img.type.dims.compactMap(\.value)
        let (c, h, w) = (dims[dims.count - 3], dims[dims.count - 2], dims[dims.count - 1])
        guard c == settings.int("channels") else {
            throw TrainingError("the graph's input %\(img.name) has \(c) channels but channels = \(settings.int("channels"))")
        }
        pre = try Preprocess(settings: settings, channels: c, inputHeight: h, inputWidth: w)

        // Data and splits.
        let split = FixedSplit(settings.string("split"))
        var data = try Dataset.load(index: settings.path("data"), root: settings.string("root").isEmpty ? nil : settings.path("root"),
                                    group: settings.string("group"), classes: settings.list("classes"),
                                    select: split.map { ($0.column, [$0.train, $0.test]) })
        var splits = try Splits(data, settings: settings)
        images = try splits.decode(&data, with: pre, skipBad: settings.bool("skip_bad"))
        imageKeys = images.map { t in String(t.data.withUnsafeBytes { Digest.fnv1a64($0) }, radix: 16) }
        self.data = data
        self.splits = splits
        // A graph written for any class count names it K; the data decides it.
        if flat.symbols.contains("K") { flat = try Trainer.bound(flat, ["K": data.classes.count]) }
        graph = flat
        if let l = logits, let t = flat.type(of: l), t.rank == 2, t.dims[1] != .fixed(data.classes.count) {
            throw TrainingError("'%\(l)' scores \(t.dims[1]) classes but the data has \(data.classes.count) (\(data.classes.joined(separator: ", ")))")
        }

        // Compile: the training step (and the frozen part once per input), evaluation.
        compiled = try TrainingStep(graph: flat, loss: lossName, batch: localBatch, seed: seed, settings: settings, world: world)
        evalOutputs = [lossName] + (logits.map { [$0] } ?? [])
        stepsPerEpoch = max(1, (splits.train.count + batch - 1) / batch)
        totalSteps = settings.int("iterations") > 0 ? settings.int("iterations") : settings.int("epochs") * stepsPerEpoch
        guard totalSteps > 0 else { throw TrainingError("nothing to train: set epochs or iterations") }
        policy = LRPolicy(base: settings.double("lr"), policy: settings.string("lr_policy"), gamma: settings.double("gamma"),
                          stepsize: settings.int("stepsize"),
                          stepvalues: settings.list("stepvalues").compactMap { Int($0) }, power: settings.double("power"),
                          maxIter: totalSteps, warmup: settings.int("warmup"))

        weightsReport = try Trainer.loadWeights(settings, into: compiled.executors, params: flat.params)
        inference = CompiledGraph(graph: flat, seed: seed) { [unowned self] ex in
            _ = try Trainer.loadWeights(self.settings, into: [ex], params: ex.schedule.graph.params)
            try self.applyCalibrated(to: [ex])
        }
        if !settings.string("target_scale").isEmpty {
            let name = settings.string("target_scale")
            calibrated = [(name, try measureTargetScale(name))]
            try applyCalibrated(to: compiled.executors)
        }
    }

    func applyCalibrated(to executors: [Executor]) throws {
        for e in executors {
            for (name, t) in calibrated where e.schedule.buffers[name] != nil { try e.setValue(name, t) }
            e.refold()
        }
    }

    /// The settings' graph, loaded through the include path, verified and inlined; diagnostics come
    /// back rendered with their source lines.
    /// `graph` with its named sizes bound (see `Graph.binding`), errors as a TrainingError.
    static func bound(_ graph: Graph, _ values: [String: Int]) throws -> Graph {
        do { return try graph.binding(symbols: values) } catch {
            throw TrainingError("binding \(values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) in '@\(graph.name)': \(error)")
        }
    }

    static func flatGraph(_ settings: Settings) throws -> Graph {
        let path = settings.path("graph")
        let sources = SourceManager()
        let program: Program
        do { program = try Loader.load(path: path, sources: sources, searchPaths: settings.includes) } catch let d as DiagnosticList {
            throw TrainingError(sources.render(d.diagnostics))
        }
        let name = settings.string("graph_name")
        guard let g = program.graph(name.isEmpty ? nil : name) else { throw TrainingError("no graph '@\(name)' in \(path)") }
        return Inliner.inline(g, graphs: program.graphs)
    }

    /// Loads the settings' `[PREFIX=]FILE` weights into the executors (see `WeightLoader`); returns the report text.
    static func loadWeights(_ settings: Settings, into executors: [Executor], params: [Param]) throws -> String {
        let report: WeightsReport
        do { report = try WeightLoader.load(settings.weightFiles.map { ($0.prefix, $0.file) }, into: executors, params: params) } catch let e as RuntimeError {
            throw TrainingError(e.description)
        }
        return report.files.map { $0 + "\n" }.joined() + "parameters: \(report.loaded.count) loaded, \(report.initialized.count) initialised from their initializers"
            + (report.initialized.isEmpty ? "" : ": " + report.initialized.joined(separator: ", "))
    }

    // MARK: Reports

    /// Classes, split sizes and class balance of each split.
    public var dataReport: String {
        var s = "data: \(data.samples.count) images, \(data.classes.count) classes (\(data.classes.joined(separator: ", ")))"
        if data.skipped > 0 { s += ", \(data.skipped) unreadable images skipped" }
        for (name, idx) in [("train", splits.train), ("validation", splits.validation), ("test", splits.test)] where !idx.isEmpty {
            let groups = Set(idx.map { data.samples[$0].group }).count
            s += "\n  \(name): \(idx.count) images, \(groups) groups, per class " + data.classCounts(idx).map(String.init).joined(separator: "/")
        }
        return s
    }

    /// What was compiled: kernels, arena, the frozen cut.
    public var compileReport: String {
        var s = compiled.summary + ", \(totalSteps) steps of \(batch) (\(stepsPerEpoch) per epoch)"
        if let w = world, w.size > 1 { s += "\ndata-parallel: \(w.size) ranks of \(localBatch) samples each" }
        if let cut = compiled.cut { s += "\nfrozen part computed once per image and augmentation: " + cut.boundary.map { "%" + $0 }.joined(separator: ", ") }
        if compiled.cut == nil, settings.bool("cache_frozen"), pre.continuous, FrozenCut.find(graph, loss: loss) != nil {
            s += "\nfrozen part run in every step: rotate, zoom, brightness or contrast make every augmentation new, so its results are not kept"
        }
        return s
    }

    // MARK: Data

    /// Sample index at a position of the endless sequence of per-epoch permutations of the training set.
    func sample(at position: Int) -> Int {
        let n = splits.train.count
        let epoch = position / n
        if permutationEpoch != epoch {
            var rng = Xoshiro256(seed: UInt64(settings.int("seed")) &* 0x9E37_79B9 &+ UInt64(epoch))
            permutation = splits.train.shuffled(using: &rng)
            permutationEpoch = epoch
        }
        return permutation[position % n]
    }
    private var permutation: [Int] = []
    private var permutationEpoch = -1

    /// This rank's share of one batch: labels, the cache keys of their augmentations, and the seeds
    /// of their dropout masks; the images are in the step's image input (`TrainingStep.input`).
    struct Batch {
        var labels: [Int32]
        var keys: [String]
        var indices: [Int]
        var seeds: [UInt64]
    }

    /// Prepares the batch of step `s`: each image is preprocessed straight into its row of the
    /// step's image input, so nothing is allocated or copied for it.
    func prepare(step s: Int) -> Batch {
        let per = pre.channels * pre.inputHeight * pre.inputWidth
        let input = compiled.input(imageInput)!
        var b = Batch(labels: [], keys: [], indices: [], seeds: [])
        let seed = UInt64(settings.int("seed"))
        for k in 0..<localBatch {
            let pos = s * batch + rank * localBatch + k
            let idx = sample(at: pos)
            // Augmentation and dropout draws depend only on the seed and the sample's position in
            // the run: resumable, and the same whichever rank takes the sample.
            let sampleSeed = seed ^ (UInt64(pos) &* 0xD6E8_FEB8_6659_FD93)
            var rng = Xoshiro256(seed: sampleSeed)
            let img = images[idx]
            let aug = pre.augmentation(height: img.shape[1], width: img.shape[2], train: true, rng: &rng)
            pre.apply(img, into: input + k * per, aug)
            b.labels.append(Int32(data.samples[idx].label))
            b.indices.append(idx)
            b.keys.append("\(imageKeys[idx]):\(aug)")
            b.seeds.append(sampleSeed ^ 0xD20F_0000_5EED)
        }
        return b
    }

    /// The images of step `s`'s batch, as `prepare` writes them (a copy of the step's image input).
    func preparedImages(step s: Int) -> [Float] {
        _ = prepare(step: s)
        return Array(UnsafeBufferPointer(start: compiled.input(imageInput)!, count: localBatch * pre.channels * pre.inputHeight * pre.inputWidth))
    }

    /// Fills the frozen part's cache before the first step when training can draw only a few
    /// augmentations (centre crops, mirrored or not): every (image, augmentation) once, in full
    /// batches, instead of a batch run for each batch that holds a sample not seen yet; with
    /// `frozen_store`, what other runs stored is read.
    func precomputeFrozenPart() throws {
        guard compiled.cut != nil else { return }
        var todo: [FrozenStore.Sample] = []
        for idx in splits.train {
            guard let augs = pre.everyAugmentation(height: images[idx].shape[1], width: images[idx].shape[2]) else { return }
            todo += augs.map { frozenSample(idx, $0) }
        }
        let started = Date()
        let (read, values) = try compiled.precompute(todo, imageInput: imageInput, inputKey: inputKey, store: frozenStore)
        log(String(format: "frozen part precomputed for %d (image, augmentation) pairs in %.1f s", todo.count, Date().timeIntervalSince(started))
            + (frozenStore.map { " (\(read) read from \($0.directory)" + (values.isEmpty ? "" : "; from the stored " + values.map { "%" + $0 }.joined(separator: ", ")) + ")" } ?? ""))
    }

    /// An (image, augmentation) for the frozen part: its key (the decoded pixels' digest and the
    /// augmentation) and how to write its input.
    func frozenSample(_ idx: Int, _ aug: Preprocess.Augmentation) -> FrozenStore.Sample {
        FrozenStore.Sample(key: "\(imageKeys[idx]):\(aug)") { [pre, images] in pre.apply(images[idx], into: $0, aug) }
    }

    /// What the image input's values depend on besides the pixels and the augmentation.
    var inputKey: String {
        "channels=\(pre.channels) input=\(pre.inputHeight)x\(pre.inputWidth) mean=\(pre.mean) scale=\(pre.scale) transpose=\(pre.transpose)"
    }

    var frozenStore: FrozenStore? {
        settings.string("frozen_store").isEmpty ? nil : FrozenStore(directory: settings.path("frozen_store"), warn: log)
    }

    /// Completes a prepared batch in the step's inputs: labels, dropout seeds, frozen results from
    /// the step's cache.
    func feed(_ b: Batch) throws {
        compiled.exec.rowSeeds = b.seeds
        try compiled.feed(imageInput: imageInput, labels: b.labels, labelInput: labelInput, keys: b.keys)
    }

    // MARK: Training

    public struct Interrupted: Error, CustomStringConvertible {
        public var step: Int
        public var description: String { "interrupted at step \(step); checkpoint written" }
    }

    var outputDir: String { settings.path("output") }
    var checkpointPath: String { outputDir + "/checkpoint.safetensors" }

    /// Runs the remaining steps. `shouldStop` is polled between steps (SIGINT; on any rank of a
    /// data-parallel run): a checkpoint is written and `Interrupted` thrown.
    public func train(resume: Bool = false, shouldStop: () -> Bool = { false }) throws -> [Evaluation] {
        let writes = rank == 0
        if writes {
            try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
            RunCompletion.clear(outputDir)
            Checkpoint.removeAbandonedTemporaries(in: outputDir)
            if resume { try restore() } else { Checkpoint.discard(checkpointPath) }
            try settingsText.write(toFile: outputDir + "/settings.txt", atomically: true, encoding: .utf8)
        }
        if let world, world.size > 1 { shareState(world) }
        if step < totalSteps { try precomputeFrozenPart() }
        let metrics = writes ? try MetricsLog(path: outputDir + "/metrics.jsonl", append: resume) : MetricsLog()
        let evalEvery = settings.int("eval_interval") > 0 ? settings.int("eval_interval") : stepsPerEpoch
        let saveEvery = settings.int("checkpoint_interval") > 0 ? settings.int("checkpoint_interval") : stepsPerEpoch
        let reporter = ProgressReporter(totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch, batch: batch,
                                        display: settings.int("display"), classification: logits != nil, startStep: step,
                                        metrics: metrics, log: log, terminal: writes ? ProgressReporter.standardErrorTerminal : nil)
        var lastEvals: [Evaluation] = []
        let parallel = (world?.size ?? 1) > 1, firstStep = step
        while step < totalSteps {
            if parallel ? world!.sum([shouldStop() ? 1 : 0])[0] > 0 : shouldStop() {
                try saveCheckpoint()
                throw Interrupted(step: step)
            }
            let t0 = Date()
            try feed(prepare(step: step))
            prepareSeconds += Date().timeIntervalSince(t0)
            let lr = policy.rate(at: step)
            let lossValue = try compiled.forwardBackward(step: step)
            try compiled.update(lr: lr, step: step)
            computeSeconds += Date().timeIntervalSince(t0)
            step += 1
            reporter.stepDone(step, loss: lossValue, lr: lr)
            if writes, step % evalEvery == 0 || step == totalSteps { lastEvals = try reporter.evaluation(at: step, evaluateSplits) }
            if step % saveEvery == 0 || step == totalSteps { try saveCheckpoint() }
        }
        try saveModel()
        if writes { try RunCompletion.mark(outputDir, step: step) }
        if compiled.cut != nil { log("frozen part: \(cacheStats.computed) results computed, \(cacheStats.reused) reused from the cache") }
        let steps = Double(max(step - firstStep, 1))
        var line = String(format: "step time: %.4f s per step of %d samples", computeSeconds / steps, batch)
        if parallel {
            line += String(format: " on %d ranks, all-reduce %.4f s of it (%.1f%%, rank 0)", world!.size,
                           compiled.reduceSeconds / steps, 100 * compiled.reduceSeconds / max(computeSeconds, 1e-12))
            if let w = compiled.waitSeconds { line += String(format: ", %.4f s of that waiting for the slowest rank", w / steps) }
        }
        log(line + String(format: "; preparing the batch %.4f s of it", prepareSeconds / steps))
        return lastEvals
    }

    /// Rank 0's step, parameters and solver state on every rank, so all start identical (a resumed
    /// run from the checkpoint that rank 0 alone reads).
    func shareState(_ world: Communicator) {
        step = world.broadcast([step])[0]
        solver.t = world.broadcast([solver.t])[0]
        for k in solver.slots.indices {
            world.broadcast(UnsafeMutableRawPointer(solver.slots[k].weights), bytes: solver.slots[k].count * MemoryLayout<Float>.size)
            solver.slots[k].m = world.broadcast(solver.slots[k].m)
            solver.slots[k].v = world.broadcast(solver.slots[k].v)
        }
        for a in solver.averages { world.broadcast(UnsafeMutableRawPointer(a.weights), bytes: a.count * MemoryLayout<Float>.size) }
    }

    // MARK: Evaluation

    /// Evaluates the validation and test splits (those that are not empty).
    public func evaluateSplits() throws -> [Evaluation] {
        var out: [Evaluation] = []
        if !splits.validation.isEmpty { out.append(try evaluate(splits.validation, split: "validation")) }
        if !splits.test.isEmpty { out.append(try evaluate(splits.test, split: "test")) }
        return out
    }

    /// Runs the evaluation graph (no dropout, centre crop, no mirror) over samples in batches; with
    /// class scores and `test_views` above 1, the views' probabilities are averaged.
    public func evaluate(_ indices: [Int], split: String) throws -> Evaluation {
        let k = data.classes.count
        var e = Evaluation(split: split, classes: k)
        var lossSum = 0.0
        var start = 0
        while start < indices.count {
            let chunk = Array(indices[start..<min(start + batch, indices.count)])
            let ex = try evalExecutor(chunk.count)
            let labels = chunk.map { data.samples[$0].label }
            if let l = labelInput { try ex.setLabels(l, labels.map(Int32.init)) }
            let views = chunk.map { pre.views(height: images[$0].shape[1], width: images[$0].shape[2]) }
            var probabilities: [[[Double]]] = []
            for v in 0..<(logits == nil ? 1 : pre.testViews) {
                for (r, i) in chunk.enumerated() { pre.apply(images[i], into: ex.rowPointer(imageInput, r), views[r][v]) }
                ex.run()
                if let lg = logits, pre.testViews > 1 { probabilities.append(Evaluation.probabilities(scores: ex.pointer(lg)!, rows: chunk.count, classes: k)) }
            }
            if !probabilities.isEmpty {
                e.add(probabilities: Evaluation.mean(probabilities), labels: labels)
            } else if let lg = logits {
                e.add(scores: ex.pointer(lg)!, labels: labels, classes: k)
            } else {
                lossSum += Double(ex.pointer(loss)![0]) * Double(chunk.count)
                e.count += chunk.count
            }
            start += batch
        }
        if logits == nil { e.loss = lossSum }
        return e
    }

    /// The evaluation executor for a batch size, with the current parameters.
    func evalExecutor(_ n: Int) throws -> Executor {
        let ex = try inference.executor(batch: n, outputs: evalOutputs)
        for (name, t) in solver.parameterTensors where ex.schedule.buffers[name] != nil { try ex.setValue(name, t) }
        ex.refold()
        return ex
    }

    // MARK: Checkpoints

    var settingsText: String { settings.fileText }

    /// Trainable parameters, optimizer state, step and RNG state (see `Checkpoint`).
    public func saveCheckpoint() throws {
        guard rank == 0 else { return }
        try Checkpoint.write(to: checkpointPath, solver: solver, step: step, rng: compiled.exec.rng, seed: settings.string("seed"))
    }

    func restore() throws {
        let (s, rng, used) = try Checkpoint.restoreLatest(from: checkpointPath, into: solver, seed: settings.string("seed"), log: log)
        compiled.exec.rng = rng
        step = s
        // Drop metrics lines written after the checkpoint, so the log reads as one run.
        try MetricsLog.truncate(outputDir + "/metrics.jsonl", after: s)
        log("resumed from \(used) at step \(s)")
    }

    /// Loads trained parameters (a run's model.safetensors or checkpoint) into the step's weights.
    public func loadTrained(_ path: String) throws {
        try solver.loadParameters(try SafeTensors.read(path: path).tensors, from: path)
    }

    /// The trained parameters with what prediction needs: classes, preprocessing, graph and scores.
    public func saveModel() throws {
        guard rank == 0 else { return }
        let meta = ["classes": data.classes.joined(separator: ","), "logits": logits ?? "", "loss": loss, "step": String(step)]
        try SafeTensors.write(solver.parameterTensors + calibrated + frozenParameters, metadata: meta, to: outputDir + "/model.safetensors")
    }

    /// The frozen parameters the compiled graph uses, as loaded (or initialised): with them the model
    /// file holds the whole network (a stage 0 that fine-tunes only the top of a face net is a
    /// complete teacher for stage 1).
    var frozenParameters: [(String, Tensor)] {
        let saved = Set(solver.parameterTensors.map(\.0) + calibrated.map(\.0))
        return graph.params.filter { !$0.trainable && !saved.contains($0.name) }.compactMap { p in
            compiled.executors.lazy.compactMap { $0.tensor(p.name) }.first.map { (p.name, $0) }
        }
    }
}
