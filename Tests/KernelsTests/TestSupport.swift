import Foundation
import Reference
import Tensors
import XCTest

// Shared helpers. Tolerances used across the suite:
//   fast (Float) vs RefOps (Double):  max |fast − ref| ≤ 1e-4 · (1 + max |ref|)
//   RefOps backward vs central finite differences (step 1e-6, in Double):
//       |analytic − numeric| ≤ 1e-6 · max(1, |analytic|), skipping points within 1e-3 of a kink.

/// Seeded random values that are never zero: uniform magnitudes in [0.1, 1) with random sign, times `scale`.
func randomValues(_ count: Int, seed: UInt64, scale: Double = 1) -> [Double] {
    var rng = Xoshiro256(seed: seed)
    return (0..<count).map { _ in
        let mag = 0.1 + 0.9 * rng.nextDouble()
        return (rng.nextDouble() < 0.5 ? -mag : mag) * scale
    }
}

func floats(_ d: [Double]) -> [Float] { d.map { Float($0) } }
/// Doubles of the float-rounded values, so fast and reference see identical inputs.
func rounded(_ d: [Double]) -> [Double] { d.map { Double(Float($0)) } }

func withOptional<R>(_ a: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let a else { return body(nil) }
    return a.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// Fails (printing the max difference) unless max |fast − ref| ≤ tol · (1 + max |ref|).
func assertClose(_ fast: [Float], _ ref: [Double], _ what: String, tol: Double = 1e-4,
                 file: StaticString = #filePath, line: UInt = #line) {
    guard fast.count == ref.count else {
        XCTFail("\(what): fast has \(fast.count) values, reference \(ref.count)", file: file, line: line); return
    }
    let maxRef = ref.reduce(0) { max($0, abs($1)) }
    var maxDiff = 0.0, at = 0
    for i in 0..<ref.count {
        let d = abs(Double(fast[i]) - ref[i])
        if d > maxDiff || d.isNaN { maxDiff = d; at = i }
    }
    let bound = tol * (1 + maxRef)
    if !(maxDiff <= bound) {
        XCTFail("\(what): max |fast − ref| = \(maxDiff) at \(at) (fast \(fast[at]), ref \(ref[at])) > \(bound)", file: file, line: line)
    }
}

/// Checks `analytic` (the gradient of `loss` at x) against central differences with step 1e-6.
/// Points for which `skip` is true (near kinks) are left out.
func checkGradient(_ what: String, x: [Double], analytic: [Double], skip: (Int) -> Bool = { _ in false },
                   file: StaticString = #filePath, line: UInt = #line, loss: ([Double]) -> Double) {
    XCTAssertEqual(x.count, analytic.count, "\(what): gradient size", file: file, line: line)
    let h = 1e-6
    var worst = 0.0, worstAt = -1, checked = 0
    for i in 0..<x.count where !skip(i) {
        var xp = x, xm = x
        xp[i] += h; xm[i] -= h
        let numeric = (loss(xp) - loss(xm)) / (2 * h)
        let err = abs(numeric - analytic[i]) / max(1, abs(analytic[i]))
        if err > worst { worst = err; worstAt = i }
        checked += 1
    }
    XCTAssertGreaterThan(checked, 0, "\(what): every point skipped", file: file, line: line)
    if worst > 1e-6 {
        XCTFail("\(what): finite-difference relative error \(worst) at \(worstAt) > 1e-6", file: file, line: line)
    }
}

/// `Σ r · y`: turns a tensor-valued op into a scalar loss whose gradient with respect to y is r.
func project(_ y: [Double], _ r: [Double]) -> Double { zip(y, r).reduce(0) { $0 + $1.0 * $1.1 } }

/// The fixture folder Tests/Fixtures/Kernels (found from this file's path).
let fixturesDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/Kernels").path

func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fn2e-kernels-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}
