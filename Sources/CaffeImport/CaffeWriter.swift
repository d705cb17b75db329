// Writes a CaffeNet as a binary caffemodel or a prototxt, in the current `layer` syntax or the V1
// `layers` syntax of old releases. Used to make test models with seeded weights.
import CCaffeProto
import CProtobufC
import Foundation

public enum CaffeSyntax: Sendable {
    /// `layer { type: "Convolution" }`, Input layers, N-D blob shapes.
    case current
    /// `layers { type: CONVOLUTION }`, legacy `input:`/`input_dim:` fields, 4-D num/channels/height/width blob shapes.
    case v1
}

public struct CaffeWriter: Sendable {
    public var syntax: CaffeSyntax
    public init(syntax: CaffeSyntax = .current) { self.syntax = syntax }

    // MARK: Binary

    /// Writes a caffemodel layer by layer: each layer message borrows the Swift weights (no copy)
    /// and is packed straight into the file, so memory holds the net once. Written to a temporary
    /// file and renamed.
    public func writeCaffemodel(_ net: CaffeNet, to path: String) throws {
        let temporary = path + ".tmp"
        guard let file = fopen(temporary, "wb") else { throw CaffeError(file: path, "cannot create \(temporary)") }
        var closed = false
        defer { if !closed { fclose(file); unlink(temporary) } }
        try records(net) { bytes in _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) } } packed: { m in
            Self.pack(m, to: file)
        }
        let failed = ferror(file) != 0
        closed = true
        guard fclose(file) == 0, !failed, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CaffeError(file: path, "write failed: \(String(cString: strerror(errno)))")
        }
    }

    /// The caffemodel bytes, for tests and small nets.
    public func caffemodelBytes(_ net: CaffeNet) throws -> [UInt8] {
        var out: [UInt8] = []
        try records(net) { out += $0 } packed: { m in
            let size = protobuf_c_message_get_packed_size(m.raw)
            let start = out.count
            out += [UInt8](repeating: 0, count: size)
            out.withUnsafeMutableBufferPointer { _ = protobuf_c_message_pack(m.raw, $0.baseAddress! + start) }
        }
        return out
    }

    /// Emits the header record bytes, then for each layer its key and length (`raw`) and the layer
    /// message itself (`packed`).
    private func records(_ net: CaffeNet, raw: ([UInt8]) -> Void, packed: (ProtoRef) -> Void) throws {
        let header = try netMessage(net, withLayers: false)
        defer { header.free() }
        var bytes = [UInt8](repeating: 0, count: protobuf_c_message_get_packed_size(header.raw))
        bytes.withUnsafeMutableBufferPointer { _ = protobuf_c_message_pack(header.raw, $0.baseAddress!) }
        raw(bytes)
        let field: UInt64 = syntax == .current ? 100 : 2
        for layer in layersToWrite(net) {
            try withLayerMessage(layer) { m in
                raw(Self.varint(field << 3 | 2) + Self.varint(UInt64(protobuf_c_message_get_packed_size(m.raw))))
                packed(m)
            }
        }
    }

    private static func varint(_ value: UInt64) -> [UInt8] {
        var v = value, out: [UInt8] = []
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
        return out
    }

    /// Packs through a ProtobufCBuffer whose append callback writes to `file`; the FILE pointer
    /// sits right after the buffer struct, where the C callback finds it.
    private static func pack(_ m: ProtoRef, to file: UnsafeMutablePointer<FILE>) {
        let stride = MemoryLayout<ProtobufCBuffer>.stride
        let memory = UnsafeMutableRawPointer.allocate(byteCount: stride + MemoryLayout<UnsafeMutablePointer<FILE>>.size, alignment: 16)
        defer { memory.deallocate() }
        memory.initializeMemory(as: ProtobufCBuffer.self, repeating: ProtobufCBuffer(append: { buffer, length, data in
            let fp = UnsafeMutableRawPointer(buffer!).load(fromByteOffset: MemoryLayout<ProtobufCBuffer>.stride, as: UnsafeMutablePointer<FILE>.self)
            fwrite(data, 1, length, fp)
        }), count: 1)
        (memory + stride).storeBytes(of: file, as: UnsafeMutablePointer<FILE>.self)
        _ = protobuf_c_message_pack_to_buffer(m.raw, memory.assumingMemoryBound(to: ProtobufCBuffer.self))
    }

    // MARK: Text

    /// The net as a prototxt; weights are left out unless `includeBlobs`.
    public func prototxt(_ net: CaffeNet, includeBlobs: Bool = false) throws -> String {
        let message = try netMessage(net, withLayers: true)
        defer { message.free() }
        var out = ""
        TextPrinter.print(message, skip: includeBlobs ? [] : ["blobs"], into: &out)
        return out
    }

    // MARK: Building messages

    /// In V1 syntax Input layers become legacy input fields, as old releases wrote them.
    private func layersToWrite(_ net: CaffeNet) -> [CaffeLayer] {
        syntax == .v1 ? net.layers.filter { $0.type != "Input" } : net.layers
    }

    private func netMessage(_ net: CaffeNet, withLayers: Bool) throws -> ProtoRef {
        let m = CaffeDescriptors.netParameter.newMessage()
        do {
            if !net.name.isEmpty { m.set("name", net.name) }
            if syntax == .v1 {
                for input in net.inputs {
                    m.set("input", input.name)
                    if input.shape.count == 4 {
                        for d in input.shape { m.set("input_dim", d) }
                    } else {
                        let s = m.add("input_shape")
                        for d in input.shape { s.set("dim", d) }
                    }
                }
            }
            if withLayers {
                for layer in layersToWrite(net) {
                    let sub = m.add(syntax == .current ? "layer" : "layers")
                    try fill(sub, layer)
                    for (i, blob) in layer.blobs.enumerated() {
                        let b = sub.messages("blobs")[i]
                        for x in blob.data { b.set("data", x) }
                    }
                }
            }
            return m
        } catch {
            m.free()
            throw error
        }
    }

    /// A layer message whose blob data borrows the layer's arrays for the duration of `body`.
    private func withLayerMessage(_ layer: CaffeLayer, _ body: (ProtoRef) throws -> Void) throws {
        let descriptor = syntax == .current ? CaffeDescriptors.layerParameter : CaffeDescriptors.v1LayerParameter
        let m = descriptor.newMessage()
        defer { m.free() }
        try fill(m, layer)
        let blobMessages = m.messages("blobs")
        func borrow(_ i: Int) throws {
            guard i < blobMessages.count else { return try body(m) }
            try layer.blobs[i].data.withUnsafeBufferPointer { buffer in
                blobMessages[i].borrow("data", buffer)
                defer { blobMessages[i].unborrow("data") }
                try borrow(i + 1)
            }
        }
        try borrow(0)
    }

    private func fill(_ m: ProtoRef, _ layer: CaffeLayer) throws {
        let fail = { (message: String) in CaffeError(file: "<writer>", "layer \"\(layer.name)\": \(message)") }
        m.set("name", layer.name)
        for b in layer.bottoms { m.set("bottom", b) }
        for t in layer.tops { m.set("top", t) }
        for w in layer.lossWeights { m.set("loss_weight", w) }
        if syntax == .current {
            m.set("type", layer.type)
            for p in layer.params {
                let s = m.add("param")
                if let name = p.name { s.set("name", name) }
                s.set("lr_mult", p.lrMult)
                s.set("decay_mult", p.decayMult)
            }
            if let phase = layer.phase { m.set("phase", enumName: phase.rawValue) }
            for p in layer.propagateDown { m.set("propagate_down", p) }
        } else {
            guard let enumName = v1LayerTypeNames.first(where: { $0.value == layer.type })?.key else {
                throw fail("type \(layer.type) has no V1 equivalent")
            }
            m.set("type", enumName: enumName)
            for p in layer.params {
                m.set("blobs_lr", p.lrMult)
                m.set("weight_decay", p.decayMult)
            }
            if layer.params.contains(where: { $0.name != nil }) {
                for p in layer.params { m.set("param", p.name ?? "") }
            }
        }
        for (rules, field) in [(layer.include, "include"), (layer.exclude, "exclude")] {
            for r in rules {
                let s = m.add(field)
                if let phase = r.phase { s.set("phase", enumName: phase.rawValue) }
                if let v = r.minLevel { s.set("min_level", v) }
                if let v = r.maxLevel { s.set("max_level", v) }
                for st in r.stages { s.set("stage", st) }
                for st in r.notStages { s.set("not_stage", st) }
            }
        }
        for blob in layer.blobs {
            let b = m.add("blobs")
            if syntax == .current {
                let s = b.add("shape")
                for d in blob.shape { s.set("dim", d) }
            } else {
                guard blob.shape.count <= 4 else { throw fail("a \(blob.shape.count)-D blob cannot be written with legacy 4-D shapes") }
                let dims = Array(repeating: 1, count: 4 - blob.shape.count) + blob.shape
                for (name, d) in zip(["num", "channels", "height", "width"], dims) { b.set(name, d) }
            }
        }
        try fillTypeParams(m, layer, fail: fail)
    }

    private func fillTypeParams(_ m: ProtoRef, _ layer: CaffeLayer, fail: (String) -> CaffeError) throws {
        func sub(_ field: String) throws -> ProtoRef {
            guard m.descriptor.field(named: field) != nil else { throw fail("\(field) cannot be written in V1 syntax") }
            return m.add(field)
        }
        func hw(_ p: ProtoRef, _ value: CaffeHW, repeated: String, h: String, w: String, default d: Int, singular: Bool = false) {
            if value.h == value.w {
                if value.h != d || singular { p.set(repeated, value.h) }
            } else {
                p.set(h, value.h)
                p.set(w, value.w)
            }
        }
        switch layer.typeParams {
        case .none: break
        case .convolution(let c):
            let p = try sub("convolution_param")
            p.set("num_output", c.numOutput)
            if !c.biasTerm { p.set("bias_term", false) }
            hw(p, c.kernel, repeated: "kernel_size", h: "kernel_h", w: "kernel_w", default: 0, singular: true)
            hw(p, c.stride, repeated: "stride", h: "stride_h", w: "stride_w", default: 1)
            hw(p, c.pad, repeated: "pad", h: "pad_h", w: "pad_w", default: 0)
            if c.dilation.h == c.dilation.w {
                if c.dilation.h != 1 { p.set("dilation", c.dilation.h) }
            } else {
                p.set("dilation", c.dilation.h)
                p.set("dilation", c.dilation.w)
            }
            if c.group != 1 { p.set("group", c.group) }
            if c.axis != 1 { p.set("axis", c.axis) }
        case .pooling(let q):
            let p = try sub("pooling_param")
            p.set("pool", enumName: q.method.rawValue)
            if q.global { p.set("global_pooling", true) } else {
                hw(p, q.kernel, repeated: "kernel_size", h: "kernel_h", w: "kernel_w", default: 0, singular: true)
            }
            hw(p, q.stride, repeated: "stride", h: "stride_h", w: "stride_w", default: 1)
            hw(p, q.pad, repeated: "pad", h: "pad_h", w: "pad_w", default: 0)
            if !q.ceil { p.set("round_mode", enumName: "FLOOR") }
        case .innerProduct(let q):
            let p = try sub("inner_product_param")
            p.set("num_output", q.numOutput)
            if !q.biasTerm { p.set("bias_term", false) }
            if q.axis != 1 { p.set("axis", q.axis) }
            if q.transpose { p.set("transpose", true) }
        case .relu(let slope):
            if slope != 0 { try sub("relu_param").set("negative_slope", slope) }
        case .prelu(let shared):
            if shared { try sub("prelu_param").set("channel_shared", true) }
        case .dropout(let ratio):
            try sub("dropout_param").set("dropout_ratio", ratio)
        case .softmax(let axis):
            if axis != 1 { try sub("softmax_param").set("axis", axis) }
        case .lrn(let q):
            let p = try sub("lrn_param")
            p.set("local_size", q.localSize)
            p.set("alpha", q.alpha)
            p.set("beta", q.beta)
            p.set("k", q.k)
            p.set("norm_region", enumName: q.region.rawValue)
        case .eltwise(let op, let coeffs):
            let p = try sub("eltwise_param")
            p.set("operation", enumName: op.rawValue)
            for c in coeffs { p.set("coeff", c) }
        case .concat(let axis):
            try sub("concat_param").set("axis", axis)
        case .slice(let axis, let points):
            let p = try sub("slice_param")
            p.set("axis", axis)
            for s in points { p.set("slice_point", s) }
        case .flatten(let axis, let endAxis):
            let p = try sub("flatten_param")
            p.set("axis", axis)
            p.set("end_axis", endAxis)
        case .reshape(let q):
            let p = try sub("reshape_param")
            let s = p.add("shape")
            for d in q.shape { s.set("dim", d) }
            p.set("axis", q.axis)
            p.set("num_axes", q.numAxes)
        case .batchNorm(let q):
            let p = try sub("batch_norm_param")
            p.set("eps", q.eps)
            if let g = q.useGlobalStats { p.set("use_global_stats", g) }
            p.set("moving_average_fraction", q.movingAverageFraction)
        case .scale(let axis, let numAxes, let biasTerm):
            let p = try sub("scale_param")
            p.set("axis", axis)
            p.set("num_axes", numAxes)
            p.set("bias_term", biasTerm)
        case .bias(let axis, let numAxes):
            let p = try sub("bias_param")
            p.set("axis", axis)
            p.set("num_axes", numAxes)
        case .input(let shapes):
            let p = try sub("input_param")
            for shape in shapes {
                let s = p.add("shape")
                for d in shape { s.set("dim", d) }
            }
        case .normalize, .permute, .priorBox, .detectionOutput:
            try fillSSDParams(layer.typeParams, sub: sub)
        }
    }
}
