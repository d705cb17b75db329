import Foundation
import IR
import Tensors

extension CaffeImported {
    /// Folds each BatchNorm whose only reader is a frozen Scale (every Scale parameter with
    /// `lr_mult: 0`) into that Scale: `gamma * (x - mean) / sqrt(var + eps) + beta` becomes one
    /// per-channel `scale(x, gamma', beta')` with `gamma' = gamma / sqrt(var + eps)` and
    /// `beta' = beta - mean * gamma'`, as Caffe's deploy-time tools and OpenCV do. Needs the
    /// weights of both layers; a pair without them stays as it is. Each fold is logged.
    mutating func foldFrozenBatchNorms() throws(CaffeError) {
        var readers: [String: Int] = [:]
        for n in graph.nodes { for o in n.operands { readers[o, default: 0] += 1 } }
        var weights = Dictionary(self.weights.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        let params = Dictionary(graph.params.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var removedNodes = Set<String>(), removedParams = Set<String>()
        for (k, s) in graph.nodes.enumerated() where s.op == .scale {
            guard let bn = graph.nodes.first(where: { $0.name == s.operands[0] }), bn.op == .batchNorm,
                  readers[bn.name] == 1, !graph.outputs.contains(bn.name) else { continue }
            let scaleParams = s.operands.dropFirst().compactMap { params[$0] }
            guard scaleParams.count == s.operands.count - 1, scaleParams.allSatisfy({ $0.lrMult == 0 }),
                  let mean = weights[bn.operands[1]], let variance = weights[bn.operands[2]], let gamma = weights[s.operands[1]] else { continue }
            let beta = s.operands.count == 3 ? weights[s.operands[2]] : nil
            guard s.operands.count == 2 || beta != nil else { continue }
            let eps = Float(bn.fullAttrs.float("eps"))
            let c = gamma.data.count
            var g = [Float](repeating: 0, count: c), b = [Float](repeating: 0, count: c)
            for i in 0..<c {
                g[i] = gamma.data[i] / (variance.data[i] + eps).squareRoot()
                b[i] = (beta?.data[i] ?? 0) - mean.data[i] * g[i]
            }
            var folded = s
            folded.operands[0] = bn.operands[0]
            weights[s.operands[1]] = Tensor(shape: [c], data: g)
            if s.operands.count == 3 {
                weights[s.operands[2]] = Tensor(shape: [c], data: b)
            } else {
                let bias = Self.freshName("\(s.name).bias", taken: Set(params.keys).union(weights.keys))
                var p = params[s.operands[1]]!
                p.name = bias
                p.initializer = .zeros
                graph.params.append(p)
                weights[bias] = Tensor(shape: [c], data: b)
                folded.operands.append(bias)
            }
            graph.nodes[k] = folded
            removedNodes.insert(bn.name)
            removedParams.formUnion(bn.operands.dropFirst())
            log.append("folded BatchNorm '\(bn.name)' into the frozen Scale '\(s.name)'")
        }
        guard !removedNodes.isEmpty else { return }
        graph.nodes.removeAll { removedNodes.contains($0.name) }
        graph.params.removeAll { removedParams.contains($0.name) }
        var g = graph
        if let d = Verifier().verify(&g).first {
            throw CaffeError(file: graph.loc.file, "internal: folding batch norms broke the graph: \(d.message)")
        }
        graph = g
        module.graphs = [g]
        self.weights = graph.params.compactMap { p in weights[p.name].map { (p.name, $0) } }
    }

    private static func freshName(_ base: String, taken: Set<String>) -> String {
        if !taken.contains(base) { return base }
        var k = 1
        while taken.contains("\(base).\(k)") { k += 1 }
        return "\(base).\(k)"
    }
}
