// dlib's binary serialization (dlib/serialize.h, dlib/float_details.h, dlib/cuda/tensor.h), read
// with the byte offset of every value so that a bad file is reported where it goes wrong.
//
// Integers: a control byte whose low four bits count the little-endian bytes that follow (1-8) and
// whose bit 0x80 marks a negative value of a signed type. Floats: a signed 64-bit mantissa and a
// signed 16-bit exponent, value = mantissa * 2^exponent (exponents 32000, 32001, 32002 stand for
// inf, -inf and NaN). Strings: an unsigned length, then the bytes. Bools: the characters '0' and
// '1'. Tensors: version 2, four signed dimensions (samples, k, nr, nc), then little-endian IEEE
// float32 data. Alias tensors (shapes into a layer's parameter tensor): version 1, four dimensions.
import Foundation

/// An error reading a dlib file: `file: error: at byte N: message`.
public struct DlibError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    /// The byte where the offending value starts; nil for errors about the file as a whole.
    public var offset: Int?
    public var message: String

    public init(file: String, offset: Int? = nil, _ message: String) {
        self.file = file
        self.offset = offset
        self.message = message
    }

    public var description: String {
        if let offset { return "\(file): error: at byte \(offset): \(message)" }
        return "\(file): error: \(message)"
    }
}

/// A tensor as dlib stores it: shape `[samples, k, nr, nc]` and its float32 values.
public struct DlibTensor: Equatable, Sendable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        self.shape = shape
        self.data = data
    }
}

/// The product of `dims`, or nil when it overflows.
func elementCount(_ dims: [Int]) -> Int? {
    var n = 1
    for d in dims {
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        n = p
    }
    return n
}

/// Reads dlib-serialized values from a byte array, front to back.
struct DlibStream {
    let bytes: [UInt8]
    let file: String
    private(set) var offset = 0

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    var atEnd: Bool { offset == bytes.count }

    func fail(_ message: String, at position: Int? = nil) -> DlibError {
        DlibError(file: file, offset: position ?? offset, message)
    }

    private func truncated(_ what: String, at start: Int) -> DlibError {
        fail("the file ends inside \(what) (\(bytes.count) bytes in all); it is truncated", at: start)
    }

    private mutating func byte(_ what: String, start: Int) throws(DlibError) -> UInt8 {
        guard offset < bytes.count else { throw truncated(what, at: start) }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// An integer of a type `maxBytes` wide; `signed` types use bit 0x80 of the control byte as
    /// the sign, unsigned ones must leave it clear.
    mutating func int(_ what: String, maxBytes: Int = 8, signed: Bool = true) throws(DlibError) -> Int {
        let start = offset
        let control = try byte(what, start: start)
        let size = Int(control & (signed ? 0x0F : 0x8F))
        guard size >= 1, size <= maxBytes else {
            throw fail("expected \(what) (a dlib integer of at most \(maxBytes) bytes), found the control byte 0x\(String(control, radix: 16))", at: start)
        }
        var magnitude: UInt64 = 0
        for k in 0..<size { magnitude |= UInt64(try byte(what, start: start)) << (8 * UInt64(k)) }
        guard magnitude <= UInt64(Int.max) else { throw fail("\(what) does not fit in 64 bits", at: start) }
        let value = Int(magnitude)
        return signed && control & 0x80 != 0 ? -value : value
    }

    /// A dlib `int` (4 bytes, signed).
    mutating func int32(_ what: String) throws(DlibError) -> Int { try int(what, maxBytes: 4) }

    /// A version number that must be in `allowed`.
    @discardableResult
    mutating func version(_ what: String, _ allowed: ClosedRange<Int>) throws(DlibError) -> Int {
        let start = offset
        let v = try int32("the version of \(what)")
        guard allowed.contains(v) else {
            let want = allowed.count == 1 ? "\(allowed.lowerBound)" : "\(allowed.lowerBound) to \(allowed.upperBound)"
            throw fail("expected the version of \(what) (\(want)), found \(v)", at: start)
        }
        return v
    }

    mutating func float(_ what: String) throws(DlibError) -> Float {
        let start = offset
        guard offset < bytes.count else { throw truncated(what, at: start) }
        // dlib's old text format for floats has ASCII digits here; the binary one a control byte.
        guard bytes[offset] & 0x70 == 0 else {
            throw fail("expected \(what) (a binary dlib float), found the byte 0x\(String(bytes[offset], radix: 16)) (dlib's old text encoding of floats is not supported)")
        }
        let mantissa = try int("the mantissa of \(what)")
        let exponent = try int("the exponent of \(what)", maxBytes: 2)
        switch exponent {
        case 32000: return .infinity
        case 32001: return -.infinity
        case 32002...: return .nan
        default:
            guard abs(mantissa) < 1 << 53 else { throw fail("\(what) has a mantissa wider than 53 bits", at: start) }
            return Float(Double(sign: .plus, exponent: exponent, significand: Double(mantissa)))
        }
    }

    mutating func bool(_ what: String) throws(DlibError) -> Bool {
        let start = offset
        switch try byte(what, start: start) {
        case UInt8(ascii: "0"): return false
        case UInt8(ascii: "1"): return true
        case let b: throw fail("expected \(what) (the character '0' or '1'), found the byte 0x\(String(b, radix: 16))", at: start)
        }
    }

    mutating func string(_ what: String, maxLength: Int = 4096) throws(DlibError) -> String {
        let start = offset
        let length = try int("the length of \(what)", signed: false)
        guard length <= maxLength else { throw fail("expected \(what), found a string length of \(length)", at: start) }
        guard bytes.count - offset >= length else { throw truncated(what, at: start) }
        defer { offset += length }
        guard let s = String(bytes: bytes[offset..<offset + length], encoding: .utf8) else {
            throw fail("expected \(what), found \(length) bytes that are not text", at: start)
        }
        return s
    }

    private mutating func dims(_ what: String) throws(DlibError) -> [Int] {
        var shape: [Int] = []
        for name in ["samples", "k", "nr", "nc"] {
            let start = offset
            let d = try int("the \(name) dimension of \(what)")
            guard d >= 0, d <= Int(Int32.max) else { throw fail("the \(name) dimension of \(what) is \(d)", at: start) }
            shape.append(d)
        }
        return shape
    }

    /// A tensor with its data; the element count is checked against the bytes left.
    mutating func tensor(_ what: String) throws(DlibError) -> DlibTensor {
        let start = offset
        try version("\(what) (a tensor)", 2...2)
        let shape = try dims(what)
        guard let count = elementCount(shape), count <= (bytes.count - offset) / 4 else {
            let floats = elementCount(shape).map { "\($0)" } ?? "too many"
            throw fail("\(what) has shape \(shape) (\(floats) floats) but only \(bytes.count - offset) bytes are left; the file is truncated or corrupt", at: start)
        }
        var data = [Float](repeating: 0, count: count)
        data.withUnsafeMutableBytes { out in
            bytes.withUnsafeBytes { src in out.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<offset + count * 4])) }
        }
        offset += count * 4
        return DlibTensor(shape: shape, data: data)
    }

    /// The shape of an alias tensor: a view into a layer's parameter tensor.
    mutating func aliasShape(_ what: String) throws(DlibError) -> [Int] {
        try version("\(what) (an alias tensor)", 1...1)
        return try dims(what)
    }
}

/// Writes values in the encoding `DlibStream` reads: the other half of the format, for test models.
public struct DlibSink: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func int(_ value: Int) {
        var magnitude = value.magnitude
        var body: [UInt8] = []
        repeat {
            body.append(UInt8(magnitude & 0xFF))
            magnitude >>= 8
        } while magnitude != 0
        bytes.append(UInt8(body.count) | (value < 0 ? 0x80 : 0))
        bytes += body
    }

    /// dlib's float_details: the mantissa with its low zero bytes shifted off.
    public mutating func float(_ value: Float) {
        if value.isNaN { int(0); int(32002); return }
        if value.isInfinite { int(0); int(value > 0 ? 32000 : 32001); return }
        var mantissa = 0, exponent = 0
        if value != 0 {
            // frexp-style: value = m * 2^e with 2^23 <= |m| < 2^24.
            exponent = Int(value.exponent) - 23
            mantissa = Int(Double(value) / Double(sign: .plus, exponent: exponent, significand: 1))
            while mantissa & 0xFF == 0 {
                mantissa >>= 8
                exponent += 8
            }
        }
        int(mantissa)
        int(exponent)
    }

    public mutating func bool(_ value: Bool) { bytes.append(UInt8(ascii: value ? "1" : "0")) }

    public mutating func string(_ value: String) {
        int(value.utf8.count)
        bytes += Array(value.utf8)
    }

    public mutating func tensor(_ t: DlibTensor) {
        int(2)
        for d in t.shape { int(d) }
        t.data.withUnsafeBytes { bytes += $0 }
    }

    public mutating func aliasShape(_ shape: [Int]) {
        int(1)
        for d in shape { int(d) }
    }
}
