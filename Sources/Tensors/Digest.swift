import Foundation

/// FNV-1a, 64 bits: a short fingerprint of bytes (which file a run loaded; seeds from names).
/// Not cryptographic.
public enum Digest {
    public static func fnv1a64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// The fingerprint of a file's bytes as 16 hex digits.
    public static func fnv1a64(file path: String) throws -> String {
        let h = fnv1a64(try FileIO.read(path))
        return String(h, radix: 16).leftPadded(to: 16)
    }
}

private extension String {
    func leftPadded(to n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
