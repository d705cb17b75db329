import Foundation
import Tensors
import XCTest

final class TensorsTests: XCTestCase {
    // MARK: - Tensor and RNG

    func testTensorBasics() throws {
        let t = Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.count, 6)
        XCTAssertEqual(Tensor(zeros: [2, 2]).data, [0, 0, 0, 0])
        XCTAssertEqual(try t.reshaped([3, 2]).shape, [3, 2])
        XCTAssertThrowsError(try t.reshaped([4]))
        XCTAssertEqual(Tensor(shape: [4, 5], seed: 7, std: 0.1), Tensor(shape: [4, 5], seed: 7, std: 0.1))
        XCTAssertNotEqual(Tensor(shape: [4, 5], seed: 7), Tensor(shape: [4, 5], seed: 8))
    }

    func testRNGIsDeterministicAndRestorable() {
        // SplitMix64 reference values for seed 1234567 (from the published C implementation).
        var sm = SplitMix64(seed: 1_234_567)
        XCTAssertEqual(sm.next(), 6_457_827_717_110_365_317)
        XCTAssertEqual(sm.next(), 3_203_168_211_198_807_973)

        var a = Xoshiro256(seed: 42)
        _ = a.nextGaussian()  // leaves a spare Gaussian in the state
        let saved = a.stateWords
        let expected = (0..<10).map { _ in a.nextGaussian() }
        var b = Xoshiro256(stateWords: saved)
        XCTAssertEqual((0..<10).map { _ in b.nextGaussian() }, expected)
        XCTAssertEqual(a, b)

        var r = Xoshiro256(seed: 3)
        var counts = [Int](repeating: 0, count: 7)
        var sum = 0.0, sumSq = 0.0
        for _ in 0..<20000 {
            let k = r.nextInt(upperBound: 7); counts[k] += 1
            let f = r.nextFloat(); XCTAssertTrue(f >= 0 && f < 1)
            let g = Double(r.nextGaussian()); sum += g; sumSq += g * g
        }
        XCTAssertTrue(counts.allSatisfy { $0 > 2500 && $0 < 3200 }, "\(counts)")
        XCTAssertEqual(sum / 20000, 0, accuracy: 0.05)
        XCTAssertEqual(sumSq / 20000, 1, accuracy: 0.05)
    }

    // MARK: - safetensors

    func testSafeTensorsRoundTrip() throws {
        let path = temporaryPath("round.safetensors")
        let tensors: [(String, Tensor)] = [
            ("b.weight", Tensor(shape: [2, 3], seed: 1)), ("a.bias", Tensor(shape: [3], seed: 2)),
            ("scalar", Tensor(shape: [], data: [2.5])), ("empty", Tensor(zeros: [0, 4])),
        ]
        try SafeTensors.write(tensors, metadata: ["step": "12", "note": "quote \" and \\"], to: path)
        let back = try SafeTensors.read(path: path)
        XCTAssertEqual(back.metadata, ["step": "12", "note": "quote \" and \\"])
        for (name, t) in tensors { XCTAssertEqual(back.tensors[name], t, name) }
        XCTAssertEqual(try SafeTensors.readOrdered(path: path).tensors.map(\.0).filter { $0 != "empty" }, ["b.weight", "a.bias", "scalar"])
        // Deterministic bytes, header padded to 8, no temp file left behind.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(bytes, try SafeTensors.serialize(tensors, metadata: ["note": "quote \" and \\", "step": "12"]))
        XCTAssertEqual(bytes.loadLE64(0) % 8, 0)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent)
        XCTAssertFalse(leftovers.contains { $0.contains(".tmp-") })
    }

    /// A write that runs out of space (a file size limit stands in for a full disk) is an error
    /// naming the file, the previous file stays as it was, and no temporary file is left.
    func testFullDiskKeepsThePreviousFile() throws {
        let dir = NSTemporaryDirectory() + "fn2e-full-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/model.safetensors"
        let old = [("w", Tensor(shape: [4], data: [1, 2, 3, 4]))]
        try SafeTensors.write(old, to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        var saved = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var small = saved
        small.rlim_cur = 4096
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &small), 0)
        let big = [("w", Tensor(shape: [100_000], seed: 1))]
        var message = ""
        do { try SafeTensors.write(big, to: path) } catch { message = "\(error)" }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        signal(SIGXFSZ, previousHandler)
        XCTAssertTrue(message.contains(path) && message.contains("cannot write"), message)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.safetensors"])
    }

    /// Only PNG, JPEG and BMP decode (fuzzing found Debian's stb reading past a buffer on a 16-bit
    /// PNM file); other formats are a clear error.
    func testOnlyPNGJPEGAndBMPDecode() {
        let pnm16 = Data("P62\u{0B}6122\u{0B}612\u{0B}61\u{0B}61\u{0B}\u{0B}".utf8)
        XCTAssertThrowsError(try Images.decode(pnm16, label: "x.pnm")) { e in XCTAssertTrue("\(e)".contains("x.pnm"), "\(e)") }
        XCTAssertThrowsError(try Images.decode(Data("P6 2 2 255 ".utf8) + Data(count: 12), label: "y.ppm"))
    }

    /// Lengths and shapes the bytes do not back are errors before anything is allocated.
    func testHugeDeclaredShapesAreErrors() throws {
        let header = #"{"w":{"dtype":"F32","shape":[3037000500,3037000500,4],"data_offsets":[0,16]}}"#
        var st = Data()
        var n = UInt64(header.utf8.count).littleEndian
        st.append(Data(bytes: &n, count: 8))
        st.append(Data(header.utf8))
        st.append(Data(count: 16))
        XCTAssertThrowsError(try SafeTensors.parse(st, path: "huge.safetensors")) { e in XCTAssertTrue("\(e)".contains("too large"), "\(e)") }
        // A header nested a million deep is refused before the JSON parser recurses into it.
        let deep = String(repeating: "[", count: 1_000_000)
        var d = Data()
        var dn = UInt64(deep.utf8.count).littleEndian
        d.append(Data(bytes: &dn, count: 8))
        d.append(Data(deep.utf8))
        XCTAssertThrowsError(try SafeTensors.parse(d, path: "deep.safetensors")) { e in XCTAssertTrue("\(e)".contains("more than 8 deep"), "\(e)") }
        let npyHeader = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }"
        var npy = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        var len = UInt16(npyHeader.utf8.count).littleEndian
        npy.append(Data(bytes: &len, count: 2))
        npy.append(Data(npyHeader.utf8))
        XCTAssertThrowsError(try Npy.parse(npy, path: "huge.npy")) { e in XCTAssertTrue("\(e)".contains("too large"), "\(e)") }
        // A PNG header claiming 10000 x 10000 pixels is refused before stb allocates 300 MB (and 1.2 GB of floats).
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52])
        for v in [UInt32(10000), UInt32(10000)] { var be = v.bigEndian; png.append(Data(bytes: &be, count: 4)) }
        png.append(Data([8, 2, 0, 0, 0, 0, 0, 0, 0]))
        XCTAssertThrowsError(try Images.decode(png, label: "huge.png")) { e in XCTAssertTrue("\(e)".contains("larger than"), "\(e)") }
    }

    func testSafeTensorsCorruptFilesGiveErrors() throws {
        let good = try SafeTensors.serialize([("w", Tensor(shape: [2, 2], seed: 3)), ("b", Tensor(shape: [2], seed: 4))])
        func expectError(_ data: Data, _ fragment: String, line: UInt = #line) {
            XCTAssertThrowsError(try SafeTensors.parse(data, path: "bad.safetensors"), line: line) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("bad.safetensors") && text.contains(fragment), "message: \(text)", line: line)
            }
        }
        expectError(Data([1, 2, 3]), "truncated")
        expectError(good.prefix(good.count - 4), "out of range")
        var huge = good; huge.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian, Array.init))
        expectError(huge, "past the end")
        func withHeader(_ json: String, data: Int) -> Data {
            var h = json; while h.utf8.count % 8 != 0 { h += " " }
            var d = Data(withUnsafeBytes(of: UInt64(h.utf8.count).littleEndian, Array.init))
            d.append(contentsOf: Array(h.utf8)); d.append(Data(count: data)); return d
        }
        expectError(withHeader("{not json", data: 0), "JSON")
        expectError(withHeader(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}"#, data: 12), "'w'")
        expectError(withHeader(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: 12), "overlaps")
        expectError(withHeader(#"{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, data: 8), "unsupported dtype")
        expectError(withHeader(#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: 4), "shape")
        expectError(withHeader(#"[1,2]"#, data: 0), "not a JSON object")
        XCTAssertThrowsError(try SafeTensors.read(path: "/nonexistent/x.safetensors")) { XCTAssertTrue("\($0)".contains("/nonexistent/x.safetensors")) }
    }

    /// small.safetensors was written by the Python `safetensors` package (Tools/fixtures/make_safetensors_fixture.py).
    func testSafeTensorsFixtureFromPython() throws {
        let file = try SafeTensors.read(path: fixturesDir + "/small.safetensors")
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixturesDir + "/small.expected.json"))) as! [String: Any]
        XCTAssertEqual(file.metadata, expected["metadata"] as? [String: String])
        let tensors = expected["tensors"] as! [String: [String: Any]]
        XCTAssertEqual(Set(file.tensors.keys), Set(tensors.keys))
        for (name, e) in tensors {
            let t = try XCTUnwrap(file.tensors[name], name)
            XCTAssertEqual(t.shape, (e["shape"] as! [NSNumber]).map(\.intValue), name)
            let values = (e["values"] as! [NSNumber]).map { Float($0.doubleValue) }
            XCTAssertEqual(t.data, values, name)
        }
    }

    // MARK: - .npy

    func testNpyRoundTripAndFixtures() throws {
        let path = temporaryPath("t.npy")
        for t in [Tensor(shape: [2, 3, 4], seed: 5), Tensor(shape: [7], seed: 6), Tensor(shape: [], data: [1.5])] {
            try Npy.write(t, to: path)
            XCTAssertEqual(try Npy.read(path: path), t)
            XCTAssertEqual(Npy.serialize(t).count % 16, (t.count * 4) % 16)  // header block is 64-aligned
        }
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixturesDir + "/npy.expected.json"))) as! [String: [String: Any]]
        for name in ["small_f32", "small_u8"] {
            let t = try Npy.read(path: fixturesDir + "/\(name).npy")
            XCTAssertEqual(t.shape, (expected[name]!["shape"] as! [NSNumber]).map(\.intValue), name)
            XCTAssertEqual(t.data, (expected[name]!["values"] as! [NSNumber]).map { Float($0.doubleValue) }, name)
        }
        var fortran = Npy.serialize(Tensor(shape: [2, 2], seed: 1))
        let header = String(decoding: fortran, as: UTF8.self)
        XCTAssertTrue(header.contains("'fortran_order': False"))
        let falseRange = try XCTUnwrap(fortran.range(of: Data("False".utf8)))
        fortran.replaceSubrange(falseRange, with: Data("True ".utf8))
        XCTAssertThrowsError(try Npy.parse(fortran, path: "f.npy")) { XCTAssertTrue("\($0)".contains("fortran_order")) }
        XCTAssertThrowsError(try Npy.parse(Data([0x93, 0x4E]), path: "short.npy")) { XCTAssertTrue("\($0)".contains("short.npy")) }
        let truncated = Npy.serialize(Tensor(shape: [8], seed: 1)).dropLast(4)
        XCTAssertThrowsError(try Npy.parse(Data(truncated), path: "trunc.npy")) { XCTAssertTrue("\($0)".contains("truncated")) }
    }

    // MARK: - Images

    func testPNGWriteAndDecode() throws {
        let path = temporaryPath("img.png")
        var rng = Xoshiro256(seed: 11)
        let rgb = Tensor(shape: [3, 5, 7], data: (0..<105).map { _ in Float(rng.nextInt(upperBound: 256)) })
        try Images.writePNG(rgb, to: path)
        XCTAssertEqual(try Images.load(path: path, channels: 3), rgb)
        let gray = try Images.load(path: path, channels: 1)
        XCTAssertEqual(gray.shape, [1, 5, 7])
        let memory = try Images.decode(Data(contentsOf: URL(fileURLWithPath: path)), channels: 3)
        XCTAssertEqual(memory, rgb)

        let g1 = Tensor(shape: [1, 4, 3], data: (0..<12).map { Float($0 * 20) })
        try Images.writePNG(g1, to: path)
        XCTAssertEqual(try Images.load(path: path, channels: 1), g1)

        XCTAssertThrowsError(try Images.decode(Data("not an image".utf8), label: "junk.png")) { XCTAssertTrue("\($0)".contains("junk.png")) }
        XCTAssertThrowsError(try Images.load(path: "/nonexistent/a.jpg")) { XCTAssertTrue("\($0)".contains("/nonexistent/a.jpg")) }
    }

    func testBilinearResize() {
        let img = Tensor(shape: [1, 2, 2], data: [0, 10, 20, 30])
        XCTAssertEqual(Images.resizeBilinear(img, height: 2, width: 2), img)
        let up = Images.resizeBilinear(img, height: 4, width: 4)
        XCTAssertEqual(up.shape, [1, 4, 4])
        XCTAssertEqual(up.data[0], 0)
        XCTAssertEqual(up.data[15], 30)
        XCTAssertEqual(up.data[1], 2.5, accuracy: 1e-6)  // x = 0.25 between 0 and 10
        let down = Images.resizeBilinear(Tensor(shape: [3, 6, 6], seed: 1), height: 3, width: 2)
        XCTAssertEqual(down.shape, [3, 3, 2])
    }
}

private extension Data {
    func loadLE64(_ offset: Int) -> UInt64 { withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) } }
}
