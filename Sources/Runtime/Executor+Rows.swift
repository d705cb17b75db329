/// Per-sample access to batched values: row `k` of a value `[N, ...]` is its `[k, ...]` slice.
/// The training step's cache of frozen results reads and writes single samples through these, so no
/// caller outside the runtime does byte arithmetic on the buffers.
extension Executor {
    /// Floats in one row of a batched value (the value's size over the schedule's batch).
    public func rowCount(_ name: String) -> Int? {
        schedule.buffers[name].map { $0.bytes / 4 / max(schedule.batch, 1) }
    }

    /// A copy of row `k` of a float value.
    public func row(_ name: String, _ k: Int) -> [Float] {
        let per = rowCount(name)!
        return Array(UnsafeBufferPointer(start: pointer(name)! + k * per, count: per))
    }

    /// Overwrites row `k` of a float value; `values` holds one row.
    public func setRow(_ name: String, _ k: Int, _ values: [Float]) {
        let per = rowCount(name)!
        precondition(values.count == per, "'%\(name)': a row holds \(per) values, given \(values.count)")
        values.withUnsafeBufferPointer { pointer(name)!.advanced(by: k * per).update(from: $0.baseAddress!, count: per) }
    }

    /// Where row `k` of a float value starts: one sample is written there in place (preprocessing
    /// writes an image straight into an input).
    public func rowPointer(_ name: String, _ k: Int) -> UnsafeMutablePointer<Float> {
        pointer(name)! + k * rowCount(name)!
    }

    /// Overwrites a whole float value from `source`, which holds as many floats as the value.
    public func setValue(_ name: String, from source: UnsafePointer<Float>) throws {
        guard let b = schedule.buffers[name], b.type.dtype == .f32, let p = pointer(name) else {
            throw RuntimeError("no f32 value '%\(name)' in the schedule")
        }
        p.update(from: source, count: b.bytes / 4)
    }
}
