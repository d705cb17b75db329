// Reading prototxt and binary caffemodel files into CaffeNet.
import CCaffeProto
import CProtobufC
import Foundation

extension CaffeNet {
    /// Parses a prototxt (either syntax) and upgrades it to the current vocabulary.
    public init(prototxt text: String, file: String = "<prototxt>") throws(CaffeError) {
        let (message, locations) = try TextParser.parse(file: file, source: Array(text.utf8), descriptor: CaffeDescriptors.netParameter)
        defer { message.free() }
        var converter = CaffeConverter(file: file, locations: locations)
        let current = message.messages("layer"), v1 = message.messages("layers")
        if !current.isEmpty && !v1.isEmpty {
            throw CaffeError(file: file, location: locations.fields[UnsafeMutableRawPointer(message.raw)]?["layers"], CaffeConverter.mixedSyntaxMessage)
        }
        var layers: [CaffeLayer] = []
        if let input = try converter.legacyInputLayer(message) { layers.append(input) }
        for (i, m) in current.enumerated() { layers.append(try converter.layer(m, index: i)) }
        for (i, m) in v1.enumerated() { layers.append(try converter.layer(v1: m, index: i)) }
        self.init(name: message.string("name") ?? "", layers: layers, upgradeLog: converter.log)
        warnings = locations.warnings
    }

    /// Reads a prototxt file.
    public init(prototxtPath path: String) throws(CaffeError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw CaffeError(file: path, "cannot read file") }
        try self.init(prototxt: String(decoding: data, as: UTF8.self), file: path)
    }

    /// Reads a binary caffemodel through a memory map, one layer at a time (see `CaffeModelReader`).
    public init(caffemodelPath path: String) throws(CaffeError) {
        var layers: [CaffeLayer] = []
        let header = try CaffeModelReader.forEachLayer(path: path) { layers.append($0) }
        self.init(name: header.name, layers: layers, upgradeLog: header.upgradeLog)
    }

    /// Decodes a binary caffemodel held in memory.
    public init(caffemodel bytes: [UInt8], file: String = "<caffemodel>") throws(CaffeError) {
        var layers: [CaffeLayer] = []
        var outcome: Result<CaffeModelReader.Header, CaffeError> = .failure(CaffeError(file: file, "empty file: not a Caffe model"))
        bytes.withUnsafeBytes { buffer in
            do throws(CaffeError) {
                outcome = .success(try CaffeModelReader.forEachLayer(buffer, file: file) { layers.append($0) })
            } catch {
                outcome = .failure(error)
            }
        }
        let header = try outcome.get()
        self.init(name: header.name, layers: layers, upgradeLog: header.upgradeLog)
    }
}

/// The binary reader. It walks the top-level NetParameter wire format itself and unpacks one layer
/// message at a time with protobuf-c, so reading a 580 MB VGG-Face model holds the file's pages
/// (clean, mapped), one unpacked layer and the Swift weights read so far, never a second whole copy.
public enum CaffeModelReader {
    /// What precedes the layers: the net's name and the upgrade steps applied.
    public struct Header: Sendable {
        public var name: String
        public var upgradeLog: [String]
    }

    /// Calls `body` with each layer of the file in order (after a legacy Input layer, if any).
    @discardableResult
    public static func forEachLayer(path: String, _ body: (CaffeLayer) throws(CaffeError) -> Void) throws(CaffeError) -> Header {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw CaffeError(file: path, "cannot open file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw CaffeError(file: path, "cannot stat file") }
        let size = Int(info.st_size)
        guard size > 0 else { throw CaffeError(file: path, "empty file: not a Caffe model") }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw CaffeError(file: path, "cannot map file: \(String(cString: strerror(errno)))")
        }
        defer { munmap(map, size) }
        return try forEachLayer(UnsafeRawBufferPointer(start: map, count: size), file: path, dropPages: true, body)
    }

    private struct Record {
        var field: UInt64
        var start: Int
        var end: Int
    }

    /// The field numbers and wire types a top-level NetParameter may hold.
    private static let netFields: [UInt64: [UInt64]] = [1: [2], 2: [2], 3: [2], 4: [0, 2], 5: [0], 6: [2], 7: [0], 8: [2], 100: [2]]

    @discardableResult
    public static func forEachLayer(_ bytes: UnsafeRawBufferPointer, file: String, _ body: (CaffeLayer) throws(CaffeError) -> Void) throws(CaffeError) -> Header {
        try forEachLayer(bytes, file: file, dropPages: false, body)
    }

    /// `dropPages`: `bytes` is a private file mapping whose pages of a layer may be given back once
    /// the layer is unpacked, so the mapped file never adds a whole copy to the resident set.
    static func forEachLayer(_ bytes: UnsafeRawBufferPointer, file: String, dropPages: Bool, _ body: (CaffeLayer) throws(CaffeError) -> Void) throws(CaffeError) -> Header {
        guard !bytes.isEmpty else { throw CaffeError(file: file, "empty file: not a Caffe model") }
        var header: [UInt8] = []
        var layerRecords: [Record] = []
        var offset = 0
        func varint(_ what: String) throws(CaffeError) -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            let start = offset
            while true {
                guard offset < bytes.count else { throw CaffeError(file: file, "truncated file: \(what) at byte offset \(start) runs past the end") }
                let b = bytes[offset]
                offset += 1
                guard shift < 64, shift < 63 || b <= 1 else { throw CaffeError(file: file, "corrupt file: \(what) at byte offset \(start) is too long") }
                value |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { return value }
                shift += 7
            }
        }
        while offset < bytes.count {
            let recordStart = offset
            let key = try varint("field key")
            let field = key >> 3, wireType = key & 7
            guard let allowed = netFields[field], allowed.contains(wireType) else {
                throw CaffeError(file: file, "not a Caffe model: unexpected field \(field) (wire type \(wireType)) at byte offset \(recordStart)")
            }
            var payloadStart = offset
            if wireType == 0 {
                _ = try varint("value of field \(field)")
            } else {
                let length = try varint("length of field \(field)")
                guard length <= UInt64(bytes.count - offset) else {
                    throw CaffeError(file: file, "truncated file: field \(field) at byte offset \(recordStart) needs \(length) bytes, \(bytes.count - offset) remain")
                }
                payloadStart = offset
                offset += Int(length)
            }
            if field == 100 || field == 2 {
                layerRecords.append(Record(field: field, start: payloadStart, end: offset))
            } else {
                header.append(contentsOf: bytes[recordStart..<offset])
            }
        }
        let current = layerRecords.filter { $0.field == 100 }.count
        if current > 0 && current < layerRecords.count { throw CaffeError(file: file, CaffeConverter.mixedSyntaxMessage) }
        guard !layerRecords.isEmpty else { throw CaffeError(file: file, "no layers found: not a Caffe model") }

        let net = try header.withUnsafeBufferPointer { (h) throws(CaffeError) -> ProtoRef in
            guard let raw = protobuf_c_message_unpack(CaffeDescriptors.netParameter, nil, h.count, h.baseAddress) else {
                throw CaffeError(file: file, "corrupt file: the net header (name and inputs) does not decode")
            }
            return ProtoRef(raw: raw)
        }
        defer { net.free() }
        var converter = CaffeConverter(file: file)
        if let input = try converter.legacyInputLayer(net) { try body(input) }
        for (i, record) in layerRecords.enumerated() {
            let descriptor = record.field == 100 ? CaffeDescriptors.layerParameter : CaffeDescriptors.v1LayerParameter
            let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + record.start
            guard let raw = protobuf_c_message_unpack(descriptor, nil, record.end - record.start, base) else {
                throw CaffeError(file: file, "corrupt file: layer \(i) at byte offset \(record.start) does not decode")
            }
            let m = ProtoRef(raw: raw)
            defer { m.free() }
            if dropPages {
                let page = Int(sysconf(Int32(_SC_PAGESIZE)))
                let first = (record.start / page) * page
                _ = madvise(UnsafeMutableRawPointer(mutating: bytes.baseAddress! + first), record.end - first, Int32(MADV_DONTNEED))
            }
            try body(record.field == 100 ? converter.layer(m, index: i) : converter.layer(v1: m, index: i))
        }
        return Header(name: net.string("name") ?? "", upgradeLog: converter.log)
    }
}
