import Foundation

/// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
/// header length, a JSON header padded with spaces to a multiple of 8, then raw little-endian data.
/// Each header entry is `{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}` with
/// offsets relative to the start of the data; `__metadata__` is an optional string-to-string map.
public enum SafeTensors {
    /// Reads every tensor (F32, F64, F16, BF16, I32, I64, U8; all converted to Float) and the metadata.
    /// Throws `TensorError` naming the file (and tensor) for truncated files, bad JSON, unknown
    /// dtypes, and offsets out of range, overlapping or not matching shape × dtype size.
    public static func read(path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let entries = try readOrdered(path: path)
        var tensors: [String: Tensor] = [:]
        for (name, t) in entries.tensors { tensors[name] = t }
        return (tensors, entries.metadata)
    }

    /// Like `read(path:)` but keeps the tensors in file (data offset) order.
    public static func readOrdered(path: String) throws -> (tensors: [(String, Tensor)], metadata: [String: String]) {
        let bytes = try FileIO.read(path)
        return try parse(bytes, path: path)
    }

    /// Parses an in-memory safetensors image; `path` only labels errors.
    public static func parse(_ bytes: Data, path: String) throws -> (tensors: [(String, Tensor)], metadata: [String: String]) {
        let bytes = Data(bytes)  // rebase so indices start at 0
        guard bytes.count >= 8 else {
            throw TensorError.format(path: path, message: "truncated safetensors file: \(bytes.count) bytes, need at least 8 for the header length")
        }
        let headerLen64 = bytes.loadLE(UInt64.self, at: 0)
        guard headerLen64 <= UInt64(bytes.count - 8) else {
            throw TensorError.format(path: path, message: "header length \(headerLen64) runs past the end of the file (\(bytes.count) bytes)")
        }
        let headerLen = Int(headerLen64)
        let dataStart = 8 + headerLen
        let dataLen = bytes.count - dataStart
        // The header is two levels deep; a deeper one is refused before a recursive JSON parser sees it.
        var depth = 0, inString = false, escaped = false
        for b in bytes[8..<dataStart] {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                guard depth <= 8 else { throw TensorError.format(path: path, message: "header nests JSON more than 8 deep") }
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            default: break
            }
        }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<dataStart)) } catch {
            throw TensorError.format(path: path, message: "header is not valid JSON: \(error.localizedDescription)")
        }
        guard let header = json as? [String: Any] else {
            throw TensorError.format(path: path, message: "header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var spans: [(name: String, begin: Int, end: Int, dtype: DType, shape: [Int])] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw TensorError.format(path: path, message: "__metadata__ is not an object")
                }
                for (k, v) in map {
                    guard let s = v as? String else {
                        throw TensorError.format(path: path, message: "__metadata__ value for '\(k)' is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any] else {
                throw TensorError.tensor(path: path, name: name, message: "header entry is not an object")
            }
            guard let dtypeName = entry["dtype"] as? String else {
                throw TensorError.tensor(path: path, name: name, message: "missing dtype")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw TensorError.tensor(path: path, name: name, message: "unsupported dtype \(dtypeName) (supported: F32 F64 F16 BF16 I32 I64 U8)")
            }
            guard let shapeAny = entry["shape"] as? [Any], let shape = ints(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
                throw TensorError.tensor(path: path, name: name, message: "shape is not a list of non-negative integers")
            }
            guard let offAny = entry["data_offsets"] as? [Any], let offs = ints(offAny), offs.count == 2 else {
                throw TensorError.tensor(path: path, name: name, message: "data_offsets is not a pair of integers")
            }
            let (begin, end) = (offs[0], offs[1])
            guard begin >= 0, begin <= end, end <= dataLen else {
                throw TensorError.tensor(path: path, name: name, message: "data_offsets [\(begin), \(end)) out of range (data section has \(dataLen) bytes)")
            }
            guard let need = Tensor.byteCount(shape, elementSize: dtype.size) else {
                throw TensorError.tensor(path: path, name: name, message: "shape \(shape) is too large")
            }
            guard end - begin == need else {
                throw TensorError.tensor(path: path, name: name, message: "data_offsets [\(begin), \(end)) hold \(end - begin) bytes, shape \(shape) of \(dtypeName) needs \(need)")
            }
            spans.append((name, begin, end, dtype, shape))
        }
        spans.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        for i in spans.indices.dropFirst() where spans[i].begin < spans[i - 1].end {
            throw TensorError.tensor(path: path, name: spans[i].name, message: "data overlaps tensor '\(spans[i - 1].name)'")
        }
        let tensors = spans.map { s in
            (s.name, Tensor(shape: s.shape, data: s.dtype.decode(bytes, begin: dataStart + s.begin, count: s.shape.reduce(1, *))))
        }
        return (tensors, metadata)
    }

    /// Writes float32 tensors in the given order (atomically: temp file + rename). Names must be unique.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to path: String) throws {
        try FileIO.atomicWrite(try serialize(tensors, metadata: metadata, path: path), to: path)
    }

    /// The file image `write` produces. The header lists keys in the given order (metadata first,
    /// its keys sorted), so the same input always gives the same bytes.
    public static func serialize(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], path: String = "<memory>") throws -> Data {
        var seen = Set<String>()
        var parts: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        var offset = 0
        for (name, t) in tensors {
            guard name != "__metadata__", seen.insert(name).inserted else {
                throw TensorError.tensor(path: path, name: name, message: "duplicate or reserved tensor name")
            }
            let size = t.count * 4
            parts.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        var header = "{" + parts.joined(separator: ",") + "}"
        while header.utf8.count % 8 != 0 { header += " " }
        var out = Data()
        var len = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        for (_, t) in tensors { appendLittleEndian(t.data, to: &out) }
        return out
    }

    private static func ints(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            guard let n = v as? NSNumber else { return nil }
            let d = n.doubleValue
            guard d == d.rounded(), abs(d) < 9e15 else { return nil }
            out.append(n.intValue)
        }
        return out
    }

    /// A JSON string literal (escapes quotes, backslashes and control characters).
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
