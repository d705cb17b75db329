import Foundation

/// File helpers shared by the tensor formats.
enum FileIO {
    /// Reads a whole file, mapping failures to `TensorError.io` naming the path.
    static func read(_ path: String) throws -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TensorError.io(path: path, message: "cannot read file: \(error.localizedDescription)")
        }
    }

    /// Writes `data` to a temporary file beside `path`, then renames it over `path`, so a reader
    /// never sees a half-written file (the fix safetensors and llm.c both use).
    static func atomicWrite(_ data: Data, to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        do { try data.write(to: URL(fileURLWithPath: tmp)) } catch {
            unlink(tmp)  // a full disk leaves a partial temporary file; the old `path` is untouched
            throw TensorError.io(path: path, message: "cannot write temporary file \(tmp): \(error.localizedDescription)")
        }
        if rename(tmp, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw TensorError.io(path: path, message: "cannot rename \(tmp) into place: \(reason)")
        }
    }
}

/// Conversions from the narrow float formats files carry.
enum FloatBits {
    /// IEEE binary16 bits to Float (handles subnormals, infinities and NaN).
    static func half(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F)
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            let magnitude = Float(mant) * (1.0 / 16_777_216.0)  // mant * 2^-24
            return sign != 0 ? -magnitude : magnitude
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
    }

    /// bfloat16 bits to Float: the top half of a float32.
    static func bfloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }
}

extension Data {
    /// Little-endian scalar at byte `offset` (no alignment needed).
    @inline(__always) func loadLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        withUnsafeBytes { raw in T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}

/// Element types the readers understand, with their byte size and conversion to Float.
enum DType: String {
    case f32 = "F32", f64 = "F64", f16 = "F16", bf16 = "BF16", i32 = "I32", i64 = "I64", u8 = "U8"

    var size: Int {
        switch self {
        case .f32, .i32: return 4
        case .f64, .i64: return 8
        case .f16, .bf16: return 2
        case .u8: return 1
        }
    }

    /// Converts `count` little-endian elements starting at byte `begin` of `bytes` to Float.
    func decode(_ bytes: Data, begin: Int, count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!.advanced(by: begin)
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<count {
                    let p = base.advanced(by: i * size)
                    switch self {
                    case .f32: dst[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
                    case .f64: dst[i] = Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))))
                    case .f16: dst[i] = FloatBits.half(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
                    case .bf16: dst[i] = FloatBits.bfloat(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
                    case .i32: dst[i] = Float(Int32(littleEndian: p.loadUnaligned(as: Int32.self)))
                    case .i64: dst[i] = Float(Int64(littleEndian: p.loadUnaligned(as: Int64.self)))
                    case .u8: dst[i] = Float(p.load(as: UInt8.self))
                    }
                }
            }
        }
        return out
    }
}

/// Appends float32 values as little-endian bytes.
func appendLittleEndian(_ values: [Float], to data: inout Data) {
    var le = values.map { $0.bitPattern.littleEndian }
    le.withUnsafeMutableBytes { data.append(contentsOf: $0) }
}
