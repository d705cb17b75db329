// Writing a DlibNet in dlib's serialization, each layer in the version it was read with: test
// models made in Swift, and round trips of the reader. Fields fn2e does not keep are written as a
// freshly saved dlib net has them (multipliers 1, 1, 1, 0; empty cached tensors; flags set up).

extension DlibNet {
    public func serialized() -> [UInt8] {
        var s = DlibSink()
        s.int(1)
        s.string(loss)
        if loss == "loss_metric_2" { for v in lossValues { s.float(v) } }
        for (i, entry) in type.layers.enumerated() {
            switch entry {
            case .tag, .skip: s.int(1)
            case .layer, .addPrev: s.int(i == type.layers.count - 1 ? 3 : 2)
            }
        }
        s.string(type.input)
        for m in inputMeans { s.float(m) }
        for d in inputSize { s.int(d) }
        let empty = DlibTensor(shape: [0, 0, 0, 0], data: [])
        for (k, layer) in layers.enumerated() {
            if case .tag = layer.details { continue }
            if case .skip = layer.details { continue }
            s.string(layer.version)
            Self.write(layer, into: &s)
            s.bool(true)
            s.bool(true)
            s.bool(false)
            s.tensor(empty)
            s.tensor(empty)
            s.tensor(empty)
            if k == 0 { s.int(1) }  // the bottom layer's sample_expansion_factor
        }
        return s.bytes
    }

    private static func write(_ layer: DlibLayer, into s: inout DlibSink) {
        func multipliers() { for v: Float in [1, 1, 1, 0] { s.float(v) } }
        func params(_ data: [Float], rows: Int, columns: Int = 1) {
            s.tensor(DlibTensor(shape: [rows, columns, 1, 1], data: data))
        }
        func window(_ w: [Int], _ stride: [Int], _ padding: [Int]) { for v in w + stride + padding { s.int(v) } }
        switch layer.details {
        case .con(let filters, let biases, let stride, let padding, let relu):
            let o = filters.shape[0]
            let values = filters.data + (biases ?? [])
            params(values, rows: values.count)
            s.int(o)
            window(Array(filters.shape[2...]), stride, padding)
            s.aliasShape(filters.shape)
            s.aliasShape([1, o, 1, 1])
            multipliers()
            if layer.version != "con_4" { s.bool(biases != nil) }
            if layer.version == "con_6" { s.bool(relu) }
        case .fc(let weights, let biases):
            let (i, o) = (weights.shape[0], weights.shape[1])
            s.int(o)
            s.int(i)
            params(weights.data + (biases ?? []), rows: i + (biases == nil ? 0 : 1), columns: o)
            s.aliasShape([i, o, 1, 1])
            s.aliasShape(biases == nil ? [0, 0, 0, 0] : [1, o, 1, 1])
            s.int(biases == nil ? 1 : 0)
            multipliers()
            if layer.version == "fc_3" { s.bool(true) }
        case .relu(let disabled):
            if layer.version == "relu_2" { s.bool(disabled) }
        case .affine(let gamma, let beta, let disabled):
            params(gamma + beta, rows: gamma.count * 2)
            s.aliasShape([1, gamma.count, 1, 1])
            s.aliasShape([1, gamma.count, 1, 1])
            s.int(0)
            if layer.version == "affine_2" { s.bool(disabled) }
        case .batchNorm(let gamma, let beta, let mean, let variance, let eps):
            let k = gamma.count
            params(gamma + beta, rows: k * 2)
            s.aliasShape([1, k, 1, 1])
            s.aliasShape([1, k, 1, 1])
            for t in [[Float](repeating: 0, count: k), [Float](repeating: 1, count: k), mean, variance] {
                s.tensor(DlibTensor(shape: [1, k, 1, 1], data: t))
            }
            s.int(0)
            s.int(1000)
            multipliers()
            s.float(eps)
        case .maxPool(let w, let stride, let padding), .avgPool(let w, let stride, let padding):
            window(w, stride, padding)
        case .addPrev, .tag, .skip:
            break
        }
    }
}
