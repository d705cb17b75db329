import Foundation
import IR
import Kernels
import Runtime
import Scheduler
import Tensors

/// Reads an input tensor for a graph input of type `type` from .npy (float32 or uint8) or images.
/// Images are decoded to the input's channel count, resized to its height and width when needed,
/// then mapped by `(pixel - mean) * scale`; several images make a batch.
public func readInput(_ paths: [String], for type: TensorType, mean: Float = 0, scale: Float = 1) throws -> Tensor {
    if paths.count == 1, paths[0].hasSuffix(".npy") {
        var t = try Npy.read(path: paths[0])
        let want = type.dims.dropFirst().compactMap(\.value)
        if t.shape.count == type.rank - 1, t.shape == want { t.shape = [1] + t.shape }
        return t
    }
    let dims = type.dims.compactMap(\.value)
    guard type.rank == 4, dims.count >= 3 else {
        throw StageError("images can only feed an [N,C,H,W] input, not \(type)")
    }
    let (c, h, w) = (dims[dims.count - 3], dims[dims.count - 2], dims[dims.count - 1])
    var data: [Float] = []
    for p in paths {
        var img = try Images.load(path: p, channels: c)
        if img.shape[1] != h || img.shape[2] != w { img = Images.resizeBilinear(img, height: h, width: w) }
        data += img.data.map { ($0 - mean) * scale }
    }
    return Tensor(shape: [paths.count, c, h, w], data: data)
}

/// One line per output: shape, range and mean; for `[N, K]` outputs the top classes of each row.
public func describeOutputs(_ outputs: [String: Tensor], order: [String]) -> String {
    var s = ""
    for name in order {
        guard let t = outputs[name] else { continue }
        let lo = t.data.min() ?? 0, hi = t.data.max() ?? 0
        let mean = t.data.reduce(0, +) / Float(max(1, t.count))
        s += "%\(name): \(t.shape) min \(lo) max \(hi) mean \(mean)\n"
        if t.shape.count == 2, t.shape[1] > 1, t.shape[1] <= 10_000 {
            let k = t.shape[1]
            for row in 0..<t.shape[0] {
                let r = Array(t.data[row * k..<(row + 1) * k])
                let top = r.indices.sorted { r[$0] > r[$1] }.prefix(5)
                s += "  [\(row)] top: " + top.map { "\($0)=\(r[$0])" }.joined(separator: " ") + "\n"
            }
        }
    }
    return s
}

/// Timings of forward passes of a compiled graph.
public struct BenchResult {
    public var batch: Int
    public var runs: Int
    public var secondsPerRun: Double
    public var flopsPerRun: Int
    public var peakGEMM: Double
    public var peakRSS: Int
    public var core: String
    public var threads: Int

    public var imagesPerSecond: Double { Double(batch) / secondsPerRun }
    public var gflops: Double { Double(flopsPerRun) / secondsPerRun / 1e9 }

    public var line: String {
        String(format: "batch %d: %.2f images/s, %.1f GFLOP/s (%.0f%% of the %.1f GFLOP/s sgemm peak measured now), %.3f s/pass over %d passes, peak RSS %.0f MiB, BLAS core %@, %d threads",
               batch, imagesPerSecond, gflops, 100 * gflops / peakGEMM, peakGEMM, secondsPerRun, runs,
               Double(peakRSS) / 1048576, core, threads)
    }
}

/// Runs `warmup` passes, then passes until `seconds` have gone by (at least `minRuns`); the
/// median pass time counts. Inputs are seeded random numbers.
public func bench(_ c: Compiled, warmup: Int = 1, seconds: Double = 5, minRuns: Int = 3) throws -> BenchResult {
    var rng = Xoshiro256(seed: 7)
    for i in c.schedule.graph.inputs {
        let n = i.type.count(batch: c.schedule.batch)
        if i.type.dtype == .i32 {
            let classes = 2
            try c.executor.setLabels(i.name, (0..<n).map { _ in Int32(rng.nextInt(upperBound: classes)) })
        } else {
            try c.executor.setValue(i.name, Tensor(shape: i.type.shape ?? [], data: (0..<n).map { _ in rng.nextFloat() }))
        }
    }
    for _ in 0..<warmup { c.executor.run() }
    var times: [Double] = []
    let start = Date()
    while times.count < minRuns || Date().timeIntervalSince(start) < seconds {
        let t0 = DispatchTime.now().uptimeNanoseconds
        c.executor.run()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    times.sort()
    let peak = BLAS.measurePeakGFLOPS(seconds: 1)
    return BenchResult(batch: c.schedule.batch, runs: times.count, secondsPerRun: times[times.count / 2],
                       flopsPerRun: c.schedule.totalFlops, peakGEMM: peak, peakRSS: peakResidentBytes(),
                       core: BLAS.corename, threads: BLAS.threads)
}
