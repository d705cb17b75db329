import Foundation
import IR
import Runtime
import Scheduler
import Tensors

/// Scale-aware regression targets (FaceNet2ExpNet stage 1). A frozen face net's features can be
/// small (a pretrained detector) or large (the same net after fine-tuning), and a squared-L2 loss
/// on them needs a learning rate matched to that scale. With `target_scale = PARAM` the graph
/// multiplies its target by a frozen `f32[1]` parameter (`mul(%target, %PARAM)`), and before the
/// first step the trainer sets that parameter to 1 / RMS of the target over the training split
/// (centre crop, no mirror): the regressed features then have a mean square of 1 whatever the
/// teacher, and one learning rate serves every teacher.
extension Trainer {
    /// The value `param` multiplies, checked: a frozen f32[1] parameter used by exactly one `mul`.
    static func scaledTarget(of param: String, in g: Graph) throws -> String {
        guard let p = g.params.first(where: { $0.name == param }) else {
            throw TrainingError("target_scale: '@\(g.name)' has no parameter '%\(param)'")
        }
        guard !p.trainable, p.type.shape == [1] else {
            throw TrainingError("target_scale: '%\(param)' must be a frozen f32[1] parameter {trainable=false}; it is \(p.type)\(p.trainable ? ", trainable" : "")")
        }
        let users = g.nodes.filter { $0.operands.contains(param) }
        guard users.count == 1, users[0].op == .mul, users[0].operands.count == 2 else {
            throw TrainingError("target_scale: '%\(param)' must be used by exactly one mul(%target, %\(param)); it is used by \(users.map { "%\($0.name) (\($0.op.rawValue))" }.joined(separator: ", "))")
        }
        return users[0].operands.first { $0 != param }!
    }

    /// 1 / RMS of `target` over the training split, with the run's initial weights.
    func measureTargetScale(_ param: String) throws -> Tensor {
        let target = try Trainer.scaledTarget(of: param, in: graph)
        var sumSquares = 0.0, count = 0
        if let cut = compiled.cut, let frozen = compiled.frozenExec, cut.frozen.node(target) != nil {
            // Through the frozen part (and the store): the centre crops of the training split.
            let samples = splits.train.map { idx in
                var rng = Xoshiro256(seed: 0)
                return frozenSample(idx, pre.augmentation(height: images[idx].shape[1], width: images[idx].shape[2], train: false, rng: &rng))
            }
            let rows = try FrozenStore.compute(cut.frozen, outputs: [target], params: frozen, imageInput: imageInput, inputKey: inputKey,
                                               samples: samples, batch: batch, store: frozenStore, seed: 0)
            if !rows.read.isEmpty { log("target_scale: from the stored " + rows.read.map { "%" + $0 }.joined(separator: ", ")) }
            for r in rows.rows { for v in r[0] { sumSquares += Double(v) * Double(v) }; count += r[0].count }
            return try targetScale(target, param, sumSquares: sumSquares, count: count)
        }
        let ex = try inference.executor(batch: batch, outputs: [target])
        defer { inference.discard(batch: batch, outputs: [target]) }
        var rng = Xoshiro256(seed: 0)
        for start in stride(from: 0, to: splits.train.count, by: batch) {
            let chunk = Array(splits.train[start..<min(start + batch, splits.train.count)])
            // Rows past the chunk keep the previous chunk's images; their outputs are not read.
            for (k, i) in chunk.enumerated() { pre.apply(images[i], into: ex.rowPointer(imageInput, k), train: false, rng: &rng) }
            ex.run()
            for k in chunk.indices {
                for v in ex.row(target, k) { sumSquares += Double(v) * Double(v) }
                count += ex.rowCount(target)!
            }
        }
        return try targetScale(target, param, sumSquares: sumSquares, count: count)
    }

    func targetScale(_ target: String, _ param: String, sumSquares: Double, count: Int) throws -> Tensor {
        let rms = (sumSquares / Double(max(count, 1))).squareRoot()
        guard rms.isFinite, rms > 0 else { throw TrainingError("target_scale: %\(target) has RMS \(rms) over the training split; cannot normalise it") }
        log(String(format: "target_scale: %%%@ has RMS %.6g over %d training images; %%%@ = %.6g", target, rms, splits.train.count, param, 1 / rms))
        return Tensor(shape: [1], data: [Float(1 / rms)])
    }
}
