import Foundation
import Tensors
import XCTest

/// fn2e's checksums in safetensors files: XXH64 against xxHash's own values, every byte of a file
/// covered (data by its tensor's checksum, the header by the header's), files of other writers.
final class ChecksumTests: XCTestCase {
    /// Values from the xxhash Python package 3.x (`xxhash.xxh64(s).hexdigest()`), which wraps xxHash's C code.
    func testXXH64MatchesReferenceValues() {
        let long = Array((0..<3).flatMap { _ in (0..<256).map(UInt8.init) }) + Array("xyz12".utf8)
        for (bytes, hex) in [([UInt8](), "ef46db3751d8e999"), (Array("a".utf8), "d24ec4f1a98c6e5b"), (Array("abc".utf8), "44bc2cf5ad770999"),
                             (Array("Nobody inspects the spammish repetition".utf8), "fbcea83c8a378bf1"), (long, "9b7d50c047818b1b")] {
            XCTAssertEqual(XXH64.hex(XXH64.hash(bytes)), hex, "\(bytes.count) bytes")
        }
    }

    static func file(_ name: String) -> String { NSTemporaryDirectory() + "fn2e-sum-\(getpid())-\(name)" }

    /// Writes a two-tensor file; returns its path and its data section's start.
    static func written(_ name: String, metadata: [String: String] = ["step": "3"]) throws -> (String, Int) {
        let path = file(name)
        try SafeTensors.write([("a.weight", Tensor(shape: [4, 8], seed: 1)), ("b", Tensor(shape: [2, 16], seed: 2))], metadata: metadata, to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        return (path, 8 + Int(bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }))
    }

    static func flip(_ path: String, at offset: Int, mask: UInt8 = 1) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[offset] ^= mask
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    func testEveryFlippedDataBitIsAnErrorNamingTheTensor() throws {
        let (path, start) = try Self.written("data.safetensors")
        defer { unlink(path) }
        let (n, checked) = try SafeTensors.verify(path: path)
        XCTAssertEqual(n, 2)
        XCTAssertTrue(checked)
        XCTAssertEqual(try SafeTensors.read(path: path).metadata, ["step": "3"], "checksums are not part of the metadata readers see")
        let clean = try Data(contentsOf: URL(fileURLWithPath: path))
        for (offset, tensor) in [(start, "a.weight"), (start + 127, "a.weight"), (start + 128, "b"), (clean.count - 1, "b")] {
            for bit in 0..<8 {
                try clean.write(to: URL(fileURLWithPath: path))
                try Self.flip(path, at: offset, mask: 1 << bit)
                XCTAssertThrowsError(try SafeTensors.read(path: path)) { error in
                    let text = "\(error)"
                    XCTAssert(text.hasPrefix("\(path): error: tensor '\(tensor)': checksum mismatch"), text)
                    XCTAssert(text.contains("re-run the command that wrote it"), text)
                }
            }
        }
    }

    /// A changed header that still parses (two digits of a shape swapped, a metadata value) is caught.
    func testChangedHeaderIsCaught() throws {
        let (path, _) = try Self.written("header.safetensors")
        defer { unlink(path) }
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
        for (from, to) in [("\"shape\":[4,8]", "\"shape\":[8,4]"), ("\"step\":\"3\"", "\"step\":\"9\"")] {
            XCTAssert(text.contains(from), text)
            try Data(text.replacingOccurrences(of: from, with: to).utf8).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try SafeTensors.read(path: path)) { XCTAssert("\($0)".contains("checksum mismatch in the header"), "\($0)") }
        }
    }

    /// A file from another writer (no checksums) loads and says so once per file.
    func testFileWithoutChecksumsLoadsWithOneNote() throws {
        let path = Self.file("plain.safetensors")
        defer { unlink(path) }
        // A header as the reference safetensors library writes it: no fn2e entries.
        let header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   "
        var bytes = Data()
        var len = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &len) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Array(header.utf8))
        for v: Float in [1.5, -2] { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        try bytes.write(to: URL(fileURLWithPath: path))
        var notes: [String] = []
        let saved = Checksums.note
        Checksums.note = { notes.append($0) }
        defer { Checksums.note = saved }
        XCTAssertEqual(try SafeTensors.read(path: path).tensors["x"]?.data, [1.5, -2])
        XCTAssertEqual(try SafeTensors.read(path: path).tensors["x"]?.data, [1.5, -2])
        XCTAssertEqual(notes, ["\(path): note: no fn2e checksums (written by another program): loaded without verifying its bytes"])
        XCTAssertFalse(try SafeTensors.verify(path: path).checksummed)
    }
}
