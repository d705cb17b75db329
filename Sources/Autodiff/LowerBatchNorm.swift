import IR

/// Training-mode batch normalization, lowered before differentiation. `%y = batch_norm(%x, %m, %v)
/// {eps, momentum}` with momentum < 1 becomes `%y.moments = batch_moments(%x)` and
/// `%y = batch_norm_train(%x) {eps}`: the layer normalizes with the batch's statistics and its
/// gradient flows through them. `%y.moments` and the running statistics `%m` and `%v` (frozen
/// parameters) become outputs, so the trainer can fold each batch's statistics into them after a
/// step (`runningAverages`); evaluation and prediction run the graph as written, with the running
/// statistics. A batch_norm whose input no trainable parameter reaches (a frozen face net's) is
/// frozen with it and keeps normalizing with its running statistics, as the frozen part cached on
/// its own does.
public struct LowerBatchNorm: GraphPass {
    public let name = "lower-batch-norm"
    public init() {}

    /// A running statistic and the batch statistic folded into it after every step:
    /// `param = momentum · param + (1 − momentum) · moments[row] · correction`.
    public struct RunningAverage: Equatable, Sendable {
        /// The running mean (row 0) or variance (row 1), a frozen parameter f32[C].
        public var param: String
        /// The `batch_moments` value f32[2, C] and its row.
        public var moments: String
        public var row: Int
        public var momentum: Double
        /// Elements per channel and sample (the product of the dimensions after C).
        public var spatial: Int

        /// The factor on the batch's value: M / (M − 1) for the variance (the unbiased estimate, as
        /// Caffe and PyTorch keep it), M = batch · spatial; 1 for the mean.
        public func correction(batch: Int) -> Double {
            let m = Double(batch * spatial)
            return row == 1 && m > 1 ? m / (m - 1) : 1
        }
    }

    /// The training-mode batch_norm nodes of `graph`: momentum < 1, input reached by a trainable parameter.
    static func lowered(_ graph: Graph) -> [Node] {
        var trained = Set(graph.params.filter(\.trainable).map(\.name))
        for n in graph.nodes where n.operands.contains(where: trained.contains) { trained.insert(n.name) }
        return graph.nodes.filter { $0.op == .batchNorm && $0.fullAttrs.float("momentum") < 1 && trained.contains($0.operands[0]) }
    }

    /// The running statistics the lowered `graph` updates, two per training-mode batch_norm.
    public static func runningAverages(_ graph: Graph) -> [RunningAverage] {
        lowered(graph).flatMap { n -> [RunningAverage] in
            let spatial = graph.type(of: n.operands[0])?.dims.dropFirst(2).reduce(1) { $0 * ($1.value ?? 1) } ?? 1
            return (0..<2).map {
                RunningAverage(param: n.operands[1 + $0], moments: n.name + ".moments", row: $0,
                               momentum: n.fullAttrs.float("momentum"), spatial: spatial)
            }
        }
    }

    public func run(_ graph: inout Graph, _ context: PassContext) throws -> Bool {
        let lowered = Set(LowerBatchNorm.lowered(graph).map(\.name))
        guard !lowered.isEmpty else { return false }
        let taken = Set(graph.nodes.map(\.name) + graph.inputs.map(\.name) + graph.params.map(\.name))
        var running: Set<String> = [], nodes: [Node] = []
        for n in graph.nodes {
            guard lowered.contains(n.name) else {
                nodes.append(n)
                continue
            }
            for p in n.operands[1...] {
                guard let param = graph.param(p), !param.trainable else {
                    throw Diagnostic.error("'%\(n.name)': batch_norm with momentum < 1 keeps its statistics as running averages; '%\(p)' must be a frozen parameter (trainable=false)", at: n.loc)
                }
                guard running.insert(p).inserted else {
                    throw Diagnostic.error("'%\(n.name)': the running statistic '%\(p)' belongs to another batch_norm already", at: n.loc)
                }
            }
            let moments = n.name + ".moments"
            guard !taken.contains(moments) else { throw Diagnostic.error("'%\(moments)' is taken; it would hold the batch statistics of '%\(n.name)'", at: n.loc) }
            var m = Node(name: moments, op: .batchMoments, operands: [n.operands[0]], loc: n.loc)
            m.trivia = n.trivia
            m.type = graph.type(of: n.operands[0]).flatMap { try? Op.batchMoments.inferType([$0], m.fullAttrs) }
            nodes.append(m)
            nodes.append(Node(name: n.name, op: .batchNormTrain, operands: [n.operands[0]], attrs: ["eps": n.fullAttrs["eps"]!], type: n.type, loc: n.loc))
            for o in [moments] + n.operands[1...] where !graph.outputs.contains(o) { graph.outputs.append(o) }
        }
        graph.nodes = nodes
        return true
    }
}
