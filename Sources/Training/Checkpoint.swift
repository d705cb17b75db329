import Foundation
import IR
import Tensors

/// A training checkpoint: trainable parameters, optimizer state, step and the step's RNG state, in
/// one safetensors file written to a temporary file and renamed. Restoring it makes a run end
/// exactly where an uninterrupted one would.
public enum Checkpoint {
    public static let format = "fn2e-checkpoint-1"

    /// Writes the solver's parameters and state with the step, the RNG state and the run's seed.
    public static func write(to path: String, solver: Solver, step: Int, rng: Xoshiro256, seed: String) throws {
        let meta = ["step": String(step), "solver_t": String(solver.t),
                    "rng": rng.stateWords.map(String.init).joined(separator: ","),
                    "seed": seed, "format": format]
        try SafeTensors.write(solver.parameterTensors + solver.state, metadata: meta, to: path)
    }

    /// Reads a checkpoint written with the same seed into the solver's parameters and state, and
    /// returns its step and RNG state.
    public static func restore(from path: String, into solver: Solver, seed: String) throws -> (step: Int, rng: Xoshiro256) {
        let (tensors, meta) = try SafeTensors.read(path: path)
        guard meta["format"] == format, let s = meta["step"].flatMap(Int.init), let t = meta["solver_t"].flatMap(Int.init),
              let words = meta["rng"]?.split(separator: ",").compactMap({ UInt64($0) }), words.count == 4 || words.count == 6 else {
            throw TrainingError("\(path): not an fn2e checkpoint")
        }
        guard meta["seed"] == seed else {
            throw TrainingError("\(path) was written with seed \(meta["seed"] ?? "?"), this run has seed \(seed)")
        }
        try solver.loadParameters(tensors, from: path)
        try solver.restore(tensors, t: t)
        return (s, Xoshiro256(stateWords: words))
    }
}

extension Checkpoint {
    /// Removes `NAME.tmp-PID` files that a killed write left in `dir` (the process `PID` is gone);
    /// the file they were meant to replace is intact, since writes rename only when complete.
    /// Returns the names removed.
    @discardableResult
    public static func removeAbandonedTemporaries(in dir: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        var removed: [String] = []
        for name in names.sorted() {
            guard let r = name.range(of: ".tmp-", options: .backwards), let pid = Int32(name[r.upperBound...]), pid > 0 else { continue }
            if kill(pid, 0) == 0 || errno == EPERM { continue }  // its writer may still be running
            if unlink(dir + "/" + name) == 0 { removed.append(name) }
        }
        return removed
    }
}

extension Solver {
    /// The parameters the solver changes (trainable ones in slot order, then running averages) with their storage.
    var updated: [(param: Param, weights: UnsafeMutablePointer<Float>, count: Int)] {
        slots.map { ($0.param, $0.weights, $0.count) } + averages.map { ($0.param, $0.weights, $0.count) }
    }

    /// The current values of the trainable parameters (in slot order) and running averages.
    public var parameterTensors: [(String, Tensor)] {
        updated.map { s in
            (s.param.name, Tensor(shape: s.param.type.shape ?? [s.count], data: Array(UnsafeBufferPointer(start: s.weights, count: s.count))))
        }
    }

    /// Overwrites every trainable parameter and running average from `tensors` (read from `path`, named in the error).
    public func loadParameters(_ tensors: [String: Tensor], from path: String) throws {
        for s in updated {
            guard let w = tensors[s.param.name], w.count == s.count else { throw TrainingError("\(path) lacks '\(s.param.name)'") }
            w.data.withUnsafeBufferPointer { s.weights.update(from: $0.baseAddress!, count: s.count) }
        }
    }
}

extension MetricsLog {
    /// Drops the lines of a metrics file written after `step`, so that a resumed run's log reads as one run.
    public static func truncate(_ path: String, after step: Int) throws {
        let kept = read(path).filter { ($0["step"] as? Int ?? 0) <= step }
        let text = kept.compactMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
            .map { String(decoding: $0, as: UTF8.self) + "\n" }.joined()
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
