import Foundation
import IR
import Tensors

/// A training checkpoint: trainable parameters, optimizer state, step and the step's RNG state, in
/// one checksummed safetensors file written to a temporary file and renamed; the one it replaces
/// stays as checkpoint.prev.safetensors. Restoring it makes a run end exactly where an
/// uninterrupted one would.
public enum Checkpoint {
    public static let format = "fn2e-checkpoint-1"

    /// Writes the solver's parameters and state with the step, the RNG state and the run's seed.
    public static func write(to path: String, solver: Solver, step: Int, rng: Xoshiro256, seed: String) throws {
        let meta = ["step": String(step), "solver_t": String(solver.t),
                    "rng": rng.stateWords.map(String.init).joined(separator: ","),
                    "seed": seed, "format": format]
        // The checkpoint being replaced becomes NAME.prev (a hard link moved into place, so `path`
        // is a whole file at every moment); a damaged latest one falls back to it.
        let prev = previous(path)
        if FileManager.default.fileExists(atPath: path) {
            let tmp = prev + ".tmp-\(getpid())"
            unlink(tmp)
            if link(path, tmp) != 0 || rename(tmp, prev) != 0 {
                let reason = String(cString: strerror(errno))
                unlink(tmp)
                throw TrainingError("\(path): cannot keep it as \(prev): \(reason)")
            }
        }
        try SafeTensors.write(solver.parameterTensors + solver.state, metadata: meta, to: path)
    }

    /// Removes the checkpoints of an earlier run in the folder (a run that starts afresh must never
    /// fall back to them).
    public static func discard(_ path: String) {
        unlink(path)
        unlink(previous(path))
    }

    /// The previous checkpoint kept beside `path`: checkpoint.safetensors -> checkpoint.prev.safetensors.
    public static func previous(_ path: String) -> String {
        path.hasSuffix(".safetensors") ? String(path.dropLast(".safetensors".count)) + ".prev.safetensors" : path + ".prev"
    }

    /// Restores the latest checkpoint at `path`, or, when it is missing or fails any check (a
    /// checksum, its format), the previous one, saying so through `log`. Returns the file used.
    public static func restoreLatest(from path: String, into solver: Solver, seed: String,
                                     log: (String) -> Void) throws -> (step: Int, rng: Xoshiro256, path: String) {
        let prev = previous(path)
        let fm = FileManager.default
        guard fm.fileExists(atPath: path) || fm.fileExists(atPath: prev) else { throw TrainingError("--resume: no checkpoint at \(path)") }
        var failure = "missing"
        if fm.fileExists(atPath: path) {
            do {
                let (s, rng) = try restore(from: path, into: solver, seed: seed)
                return (s, rng, path)
            } catch {
                failure = "\(error)"
            }
        }
        guard fm.fileExists(atPath: prev) else {
            throw TrainingError("\(failure)\n--resume: no previous checkpoint \(prev) to fall back to; train again without --resume")
        }
        log("warning: the latest checkpoint \(path) cannot be used (\(failure)); falling back to the previous one, \(prev)")
        do {
            let (s, rng) = try restore(from: prev, into: solver, seed: seed)
            // The damaged file moves aside, so the next checkpoint does not keep it as the previous one.
            if fm.fileExists(atPath: path), rename(path, path + ".damaged") == 0 { log("moved the damaged checkpoint to \(path).damaged") }
            return (s, rng, prev)
        } catch {
            throw TrainingError("\(path): \(failure)\nthe previous checkpoint cannot be used either: \(error)\ntrain again without --resume")
        }
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
