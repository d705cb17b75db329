/// SplitMix64: a tiny 64-bit generator, used to seed `Xoshiro256` from one `UInt64`.
/// Deterministic on every platform (only wrapping integer arithmetic).
public struct SplitMix64: Sendable, Equatable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** (Blackman & Vigna): the project's seeded generator. Its whole state is four
/// `UInt64`s (`state`), which checkpoints save and restore so a resumed run draws the same numbers.
public struct Xoshiro256: RandomNumberGenerator, Sendable, Equatable {
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)
    /// The second Box–Muller value, kept so Gaussians come in pairs; part of the state.
    public private(set) var spareGaussian: Float?

    /// Seeds the four words from SplitMix64, as the xoshiro authors recommend.
    public init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        state = (sm.next(), sm.next(), sm.next(), sm.next())
        spareGaussian = nil
    }

    /// Restores a state read earlier with `stateWords` (4 words, plus an optional 5th/6th for the spare Gaussian).
    public init(stateWords words: [UInt64]) {
        precondition(words.count == 4 || words.count == 6, "Xoshiro256 state needs 4 or 6 words, got \(words.count)")
        state = (words[0], words[1], words[2], words[3])
        spareGaussian = (words.count == 6 && words[4] != 0) ? Float(bitPattern: UInt32(truncatingIfNeeded: words[5])) : nil
    }

    /// The complete state as 6 words: the 4 generator words, a has-spare flag and the spare's bits.
    public var stateWords: [UInt64] {
        [state.0, state.1, state.2, state.3, spareGaussian == nil ? 0 : 1, UInt64(spareGaussian?.bitPattern ?? 0)]
    }

    public static func == (a: Xoshiro256, b: Xoshiro256) -> Bool { a.stateWords == b.stateWords }

    @inline(__always) private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = Xoshiro256.rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = Xoshiro256.rotl(state.3, 45)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits (exactly representable floats).
    public mutating func nextFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// Standard normal via Box–Muller (computed in Double, so identical everywhere IEEE libm agrees).
    public mutating func nextGaussian() -> Float {
        if let s = spareGaussian { spareGaussian = nil; return s }
        var u1 = nextDouble()
        while u1 <= 0 { u1 = nextDouble() }
        let u2 = nextDouble()
        let r = (-2.0 * _log(u1)).squareRoot()
        let theta = 2.0 * Double.pi * u2
        spareGaussian = Float(r * _sin(theta))
        return Float(r * _cos(theta))
    }

    /// Uniform in 0..<upperBound without modulo bias (Lemire's method). `upperBound > 0`.
    public mutating func nextInt(upperBound: Int) -> Int {
        precondition(upperBound > 0, "nextInt(upperBound:) needs a positive bound")
        let bound = UInt64(upperBound)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// An inverted-dropout mask as Caffe builds it: each value is 0 with probability `ratio`,
    /// else `1 / (1 - ratio)`. `ratio` in [0, 1).
    public mutating func dropoutMask(count: Int, ratio: Float) -> [Float] {
        precondition(ratio >= 0 && ratio < 1, "dropout ratio must be in [0, 1), got \(ratio)")
        let keep = 1 / (1 - ratio)
        var mask = [Float](repeating: 0, count: count)
        for i in 0..<count { mask[i] = nextFloat() < ratio ? 0 : keep }
        return mask
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) private func _sin(_ x: Double) -> Double { Glibc.sin(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#else
import Darwin
@inline(__always) private func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) private func _sin(_ x: Double) -> Double { Darwin.sin(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
