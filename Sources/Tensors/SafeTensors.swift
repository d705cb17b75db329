import Foundation

/// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
/// header length, a JSON header padded with spaces to a multiple of 8, then raw little-endian data.
/// Each header entry is `{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}` with
/// offsets relative to the start of the data; `__metadata__` is an optional string-to-string map.
public enum SafeTensors {
    /// Reads every tensor (F32, F64, F16, BF16, I32, I64, U8; all converted to Float) and the metadata
    /// (without fn2e's checksum entries). Throws `TensorError` naming the file (and tensor) for
    /// truncated files, bad JSON, unknown dtypes, offsets out of range, overlapping or not matching
    /// shape × dtype size, and bytes that do not match fn2e's checksums (see `Checksums`).
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
        let file = try parseChecked(bytes, path: path)
        if !file.checksummed { Checksums.noteUnchecked(path) }
        return (file.tensors, file.metadata)
    }

    /// Reads a file as `read` does and says whether it carried fn2e's checksums (all verified).
    public static func verify(path: String) throws -> (tensors: Int, checksummed: Bool) {
        let file = try parseChecked(try FileIO.read(path), path: path)
        return (file.tensors.count, file.checksummed)
    }

    static func parseChecked(_ bytes: Data, path: String) throws -> (tensors: [(String, Tensor)], metadata: [String: String], checksummed: Bool) {
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
        let entries = spans.map { Checksums.Entry(name: $0.name, dtype: $0.dtype.rawValue, shape: $0.shape, begin: $0.begin, end: $0.end) }
        let checksummed = try Checksums.verify(bytes, dataStart: dataStart, metadata: metadata, entries: entries, path: path)
        metadata = metadata.filter { !$0.key.hasPrefix(Checksums.prefix) }
        let tensors = spans.map { s in
            (s.name, Tensor(shape: s.shape, data: s.dtype.decode(bytes, begin: dataStart + s.begin, count: s.shape.reduce(1, *))))
        }
        return (tensors, metadata, checksummed)
    }

    /// Writes float32 tensors in the given order (atomically: temp file + rename). Names must be unique.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to path: String) throws {
        try FileIO.atomicWrite(try serialize(tensors, metadata: metadata, path: path), to: path)
    }

    /// The file image `write` produces: `header` and the tensors' bytes.
    public static func serialize(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], path: String = "<memory>") throws -> Data {
        var out = try header(tensors, metadata: metadata, path: path)
        for (_, t) in tensors { appendLittleEndian(t.data, to: &out) }
        return out
    }

    /// The 8-byte length and the padded JSON header of float32 `tensors` stored in the given order,
    /// with `metadata` and fn2e's checksums (see `Checksums`). Keys are listed in a fixed order
    /// (metadata first, its keys sorted), so the same input always gives the same bytes.
    public static func header(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], path: String = "<memory>") throws -> Data {
        var seen = Set<String>()
        var entries: [Checksums.Entry] = []
        var offset = 0
        for (name, t) in tensors {
            guard name != "__metadata__", seen.insert(name).inserted else {
                throw TensorError.tensor(path: path, name: name, message: "duplicate or reserved tensor name")
            }
            entries.append(.init(name: name, dtype: "F32", shape: t.shape, begin: offset, end: offset + t.count * 4))
            offset += t.count * 4
        }
        var meta = metadata.filter { !$0.key.hasPrefix(Checksums.prefix) }
        for (name, t) in tensors {
            // Little-endian hosts only (x86-64, arm64), as the rest of fn2e assumes: the array's bytes are the file's.
            meta[Checksums.prefix + name] = XXH64.hex(t.data.withUnsafeBytes { XXH64.hash($0.baseAddress, count: $0.count) })
        }
        meta[Checksums.headerKey] = Checksums.headerDigest(metadata: meta, entries: entries)
        var parts = ["\"__metadata__\":{" + meta.keys.sorted().map { "\(jsonString($0)):\(jsonString(meta[$0]!))" }.joined(separator: ",") + "}"]
        for e in entries {
            parts.append("\(jsonString(e.name)):{\"dtype\":\"F32\",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(e.begin),\(e.end)]}")
        }
        var text = "{" + parts.joined(separator: ",") + "}"
        while text.utf8.count % 8 != 0 { text += " " }
        var out = Data()
        var len = UInt64(text.utf8.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(text.utf8))
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

/// fn2e's checksums, in the `__metadata__` of every safetensors file it writes (other readers see
/// plain metadata). `xxh64:NAME` is the XXH64 (seed 0, 16 hex digits) of tensor NAME's data bytes;
/// `xxh64:__metadata__` (a name no tensor may have) is the XXH64 of the rest of the header: every
/// other metadata entry and each tensor's name, dtype, shape and offsets, one line each (see
/// `headerDigest`). Every read verifies them; a file with none was written by another program: it
/// loads, and says so once.
public enum Checksums {
    public static let prefix = "xxh64:"
    public static let headerKey = "xxh64:__metadata__"
    /// What every checksum error says to do.
    public static let advice = "the file was changed after fn2e wrote it (disk, copy or another program); do not use it: re-create it (re-run the command that wrote it) or restore a copy; `fn2e-run verify DIR` checks a whole folder"

    struct Entry {
        var name: String, dtype: String, shape: [Int], begin: Int, end: Int
    }

    /// The header digest: metadata entries by sorted key (all but `headerKey`) as `"key":"value"`,
    /// then tensors by name as `"name" DTYPE [shape] begin end`, each line ending in a newline.
    static func headerDigest(metadata: [String: String], entries: [Entry]) -> String {
        var text = ""
        for k in metadata.keys.sorted() where k != headerKey { text += SafeTensors.jsonString(k) + ":" + SafeTensors.jsonString(metadata[k]!) + "\n" }
        for e in entries.sorted(by: { $0.name < $1.name }) {
            text += "\(SafeTensors.jsonString(e.name)) \(e.dtype) [\(e.shape.map(String.init).joined(separator: ","))] \(e.begin) \(e.end)\n"
        }
        return XXH64.hex(XXH64.hash(Array(text.utf8)))
    }

    /// Checks a parsed file's checksums; false when it has none (another writer).
    static func verify(_ bytes: Data, dataStart: Int, metadata: [String: String], entries: [Entry], path: String) throws -> Bool {
        guard metadata.keys.contains(where: { $0.hasPrefix(prefix) }) else { return false }
        guard metadata[headerKey] == headerDigest(metadata: metadata, entries: entries) else {
            throw TensorError.format(path: path, message: "checksum mismatch in the header (metadata, tensor names, shapes or offsets): \(advice)")
        }
        try bytes.withUnsafeBytes { raw in
            for e in entries {
                let now = XXH64.hex(XXH64.hash(raw.baseAddress! + dataStart + e.begin, count: e.end - e.begin))
                guard let stored = metadata[prefix + e.name], stored == now else {
                    throw TensorError.tensor(path: path, name: e.name, message: "checksum mismatch: its bytes are not those fn2e wrote (xxh64 \(metadata[prefix + e.name] ?? "missing") written, \(now) read): \(advice)")
                }
            }
        }
        return true
    }

    /// Where the one-time note on a file without checksums goes (standard error by default).
    nonisolated(unsafe) public static var note: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    nonisolated(unsafe) private static var noted = Set<String>()
    private static let lock = NSLock()

    static func noteUnchecked(_ path: String) {
        lock.lock()
        let first = noted.insert(path).inserted
        lock.unlock()
        if first { note("\(path): note: no fn2e checksums (written by another program): loaded without verifying its bytes") }
    }
}
