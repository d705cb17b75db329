import Foundation

/// NumPy's .npy format: magic `\x93NUMPY`, version byte pair, header length (2 bytes for 1.0,
/// 4 bytes for 2.0/3.0), a Python dict literal `{'descr': '<f4', 'fortran_order': False,
/// 'shape': (2, 3), }` padded to 64 bytes, then C-order data.
public enum Npy {
    /// Reads float32 (`<f4`), float64 (`<f8`), int32 (`<i4`) or uint8 (`|u1`) arrays as Float.
    /// Fortran-order arrays and other dtypes are errors naming the file.
    public static func read(path: String) throws -> Tensor {
        try parse(try FileIO.read(path), path: path)
    }

    /// Parses an in-memory .npy image; `path` only labels errors.
    public static func parse(_ input: Data, path: String) throws -> Tensor {
        let bytes = Data(input)
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 10, Array(bytes.prefix(6)) == magic else {
            throw TensorError.format(path: path, message: "not a .npy file (bad magic or truncated)")
        }
        let major = bytes[6]
        let headerStart: Int
        let headerLen: Int
        switch major {
        case 1:
            headerLen = Int(bytes.loadLE(UInt16.self, at: 8)); headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw TensorError.format(path: path, message: "truncated .npy header") }
            headerLen = Int(bytes.loadLE(UInt32.self, at: 8)); headerStart = 12
        default:
            throw TensorError.format(path: path, message: "unsupported .npy version \(major).\(bytes[7])")
        }
        guard headerStart + headerLen <= bytes.count else {
            throw TensorError.format(path: path, message: "header length \(headerLen) runs past the end of the file")
        }
        guard let header = String(data: bytes.subdata(in: headerStart..<headerStart + headerLen), encoding: .utf8) else {
            throw TensorError.format(path: path, message: "header is not text")
        }
        guard let descr = field(header, "descr").flatMap(unquote) else {
            throw TensorError.format(path: path, message: "header has no 'descr': \(header)")
        }
        guard let fortran = field(header, "fortran_order") else {
            throw TensorError.format(path: path, message: "header has no 'fortran_order'")
        }
        if fortran.hasPrefix("True") {
            throw TensorError.format(path: path, message: "fortran_order arrays are not supported; save with np.ascontiguousarray")
        }
        guard let shapeText = field(header, "shape"), let shape = parseShape(shapeText) else {
            throw TensorError.format(path: path, message: "cannot parse 'shape' in header: \(header)")
        }
        let dtype: DType
        switch descr {
        case "<f4": dtype = .f32
        case "<f8": dtype = .f64
        case "<i4": dtype = .i32
        case "|u1", "<u1", "u1": dtype = .u8
        default: throw TensorError.format(path: path, message: "unsupported dtype '\(descr)' (supported: <f4 <f8 <i4 |u1)")
        }
        let dataStart = headerStart + headerLen
        guard let need = Tensor.byteCount(shape, elementSize: dtype.size) else {
            throw TensorError.format(path: path, message: "shape \(shape) is too large")
        }
        guard bytes.count - dataStart >= need else {
            throw TensorError.format(path: path, message: "truncated data: shape \(shape) of \(descr) needs \(need) bytes, file has \(bytes.count - dataStart)")
        }
        let count = need / dtype.size
        return Tensor(shape: shape, data: dtype.decode(bytes, begin: dataStart, count: count))
    }

    /// Writes a float32 (`<f4`, version 1.0, C order) array atomically (temp file + rename).
    public static func write(_ tensor: Tensor, to path: String) throws {
        try FileIO.atomicWrite(serialize(tensor), to: path)
    }

    /// The bytes `write` produces.
    public static func serialize(_ tensor: Tensor) -> Data {
        let shapeText: String
        switch tensor.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(tensor.shape[0]),)"
        default: shapeText = "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad with spaces so magic + version + length + header + "\n" is a multiple of 64.
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        var len = UInt16(header.utf8.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        appendLittleEndian(tensor.data, to: &out)
        return out
    }

    /// The raw text after `'key':` up to the next top-level comma or closing brace.
    private static func field(_ header: String, _ key: String) -> String? {
        guard let r = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[r.upperBound...].drop { $0 == " " }
        guard rest.first == ":" else { return nil }
        rest = rest.dropFirst().drop { $0 == " " }
        var depth = 0
        var out = ""
        for ch in rest {
            if ch == "(" { depth += 1 }
            if ch == ")" { depth -= 1 }
            if depth == 0 && (ch == "," || ch == "}") { break }
            out.append(ch)
            if depth == 0 && ch == ")" { break }
        }
        return out.trimmingCharacters(in: .whitespaces)
    }

    private static func unquote(_ s: String) -> String? {
        guard s.count >= 2, let f = s.first, f == "'" || f == "\"", s.last == f else { return nil }
        return String(s.dropFirst().dropLast())
    }

    private static func parseShape(_ s: String) -> [Int]? {
        guard s.hasPrefix("("), s.hasSuffix(")") else { return nil }
        let inner = s.dropFirst().dropLast()
        var dims: [Int] = []
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if t.isEmpty { continue }
            guard let d = Int(t), d >= 0 else { return nil }
            dims.append(d)
        }
        return dims
    }
}
