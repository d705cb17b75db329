import IR

/// Reverse-mode differentiation of a flat graph into a training graph in the same IR.
///
/// The result computes the forward values the outputs need, then the gradient of the loss with
/// respect to every chosen parameter. Names:
/// - `%grad.V` is the gradient of the loss with respect to value `%V` (so `%grad.conv1.weight` for
///   parameter `%conv1.weight`, `%grad.loss` the seed 1); when `%V` feeds several nodes, each
///   contribution is `%grad.V.1`, `%grad.V.2`, ... and `%grad.V` is their sum. Temporaries of a
///   rule are `%grad.V.<what>`. Every node the pass adds is named `grad.*`, so the backward part
///   of a printed graph is recognisable by name alone.
/// - Outputs: the forward graph's outputs (the loss included), then `%grad.P` for each parameter
///   `P`, in parameter order.
/// - Training mode: `%d = dropout(%x) {ratio}` becomes `%d.mask = dropout_mask(%x) {ratio}` and
///   `%d = mul(%x, %d.mask)`, so the mask is a saved forward value.
/// - Training-mode batch norm (`batch_norm` with momentum < 1) normalizes with the batch's
///   statistics: see `LowerBatchNorm`, whose running statistics and batch moments become outputs.
/// - Forward nodes no output needs are dropped, and with them the parameters only they used.
public enum Autodiff {
    public static let prefix = "grad."

    /// The training graph of `graph` (flat: call `Inliner.inline` first), named `NAME.grad`.
    /// `loss` names an f32[] node; `wrt` defaults to every trainable parameter. Frozen parameters
    /// get no gradient, and nothing is differentiated that lies on no path from a chosen parameter
    /// to the loss.
    public static func gradient(of graph: Graph, loss: String, wrt: [String]? = nil) throws -> Graph {
        if let call = graph.nodes.first(where: { $0.op == .call }) {
            throw Diagnostic.error("autodiff needs a flat graph: inline '%\(call.name)' (call @\(call.callee ?? "")) first", at: call.loc)
        }
        var g = graph
        let problems = Verifier().verify(&g)
        guard problems.isEmpty else { throw DiagnosticList(problems) }
        guard let lossNode = g.node(loss) else {
            throw Diagnostic.error("graph '@\(g.name)' has no node '%\(loss)' to use as the loss", at: g.loc)
        }
        guard lossNode.type == TensorType(.f32, []) else {
            throw Diagnostic.error("the loss '%\(loss)' must be a scalar f32[], found \(lossNode.type!)", at: lossNode.loc)
        }
        let names = g.inputs.map(\.name) + g.params.map(\.name) + g.nodes.map(\.name)
        if let clash = names.first(where: { $0.hasPrefix(prefix) }) {
            throw Diagnostic.error("'%\(clash)' clashes with the gradient names the pass adds (\(prefix)*); rename it", at: g.loc)
        }

        _ = try LowerDropout().run(&g, PassContext())
        _ = try LowerBatchNorm().run(&g, PassContext())
        if !g.outputs.contains(loss) { g.outputs.insert(loss, at: 0) }
        g = DeadCodeElimination.prune(g)

        let chosen: [String]
        if let wrt = wrt {
            for p in wrt {
                guard let param = graph.param(p) else { throw Diagnostic.error("'%\(p)' is not a parameter of '@\(graph.name)'", at: graph.loc) }
                guard param.trainable else { throw Diagnostic.error("'%\(p)' is frozen (trainable=false) and gets no gradient", at: param.loc) }
            }
            chosen = g.params.map(\.name).filter(wrt.contains)
        } else {
            chosen = g.params.filter(\.trainable).map(\.name)
        }

        var b = Backward(graph: g, loss: loss, wrt: Set(chosen))
        try b.run()
        for p in chosen {
            let name = prefix + p, loc = g.param(p)!.loc
            if let v = try b.gradient(p) {
                if v != name { try b.emit(name, .affine, [v], [:], at: loc) } // a plain copy
            } else {
                // Used by an output, but on no path to the loss.
                try b.emit(name, .fill, [], ["shape": .ints(shapeAttr(g.param(p)!.type.dims))], at: loc)
            }
        }
        var out = g
        out.name = g.name + ".grad"
        out.nodes = g.nodes + b.nodes
        out.outputs += chosen.map { prefix + $0 }
        if let first = out.nodes.firstIndex(where: { $0.name.hasPrefix(prefix) }) {
            out.nodes[first].trivia = Trivia(comments: ["Backward."], blankLineBefore: true)
        }
        let errors = Verifier().verify(&out)
        guard errors.isEmpty else { throw DiagnosticList(errors) }
        return out
    }

    /// Forward values (inputs, parameters, forward nodes) read by the backward nodes of a graph that
    /// `gradient` produced, in definition order: what a training step keeps alive for backward.
    public static func savedValues(_ g: Graph) -> [String] {
        var used: Set<String> = []
        for n in g.nodes where n.name.hasPrefix(prefix) {
            for o in n.operands where !o.hasPrefix(prefix) { used.insert(o) }
        }
        let order = g.inputs.map(\.name) + g.params.map(\.name) + g.nodes.map(\.name)
        return order.filter(used.contains)
    }
}

/// The state of one reverse sweep: which values need gradients, the contributions collected so
/// far, and the backward nodes emitted.
struct Backward {
    let graph: Graph
    let loss: String
    /// Values on a path from a chosen parameter to the loss.
    let needs: Set<String>
    /// How many contributions each value will receive (one per use by a node in `needs`).
    let expected: [String: Int]
    var types: [String: TensorType]
    var contributions: [String: [String]] = [:]
    var sums: [String: String] = [:]
    var nodes: [Node] = []

    init(graph: Graph, loss: String, wrt: Set<String>) {
        self.graph = graph
        self.loss = loss
        var fromParams = wrt
        for n in graph.nodes where !Op.constantOutput.contains(n.op) {
            let sig = n.op.signature
            if n.operands.enumerated().contains(where: { !sig.intOperands.contains($0.offset) && fromParams.contains($0.element) }) {
                fromParams.insert(n.name)
            }
        }
        var toLoss: Set<String> = [loss]
        for n in graph.nodes.reversed() where toLoss.contains(n.name) { toLoss.formUnion(n.operands) }
        let needs = fromParams.intersection(toLoss)
        var expected: [String: Int] = [:]
        for n in graph.nodes where needs.contains(n.name) && !Op.constantOutput.contains(n.op) {
            for o in n.operands where needs.contains(o) { expected[o, default: 0] += 1 }
        }
        self.needs = needs
        self.expected = expected
        self.types = graph.typeTable
    }

    mutating func run() throws {
        guard needs.contains(loss) else { return }
        let seed = Autodiff.prefix + loss
        try emit(seed, .fill, [], ["value": .float(1)], at: graph.node(loss)!.loc)
        contributions[loss] = [seed]
        for n in graph.nodes.reversed() where needs.contains(n.name) {
            guard let dy = try gradient(n.name) else { continue }
            try rule(n, dy)
        }
    }

    /// The summed gradient of `v`, once every contribution has arrived; nil if none did.
    mutating func gradient(_ v: String) throws -> String? {
        if let s = sums[v] { return s }
        guard let cs = contributions[v], !cs.isEmpty else { return nil }
        var acc = cs[0]
        for (k, c) in cs.enumerated().dropFirst() {
            let name = k == cs.count - 1 ? Autodiff.prefix + v : Autodiff.prefix + v + ".sum\(k + 1)"
            acc = try emit(name, .add, [acc, c], [:], at: locOf(v))
        }
        sums[v] = acc
        return acc
    }

    /// The name the next contribution to `v` gets.
    func slot(_ v: String) -> String {
        let base = Autodiff.prefix + v
        return (expected[v] ?? 1) == 1 ? base : base + ".\((contributions[v]?.count ?? 0) + 1)"
    }

    func locOf(_ v: String) -> SourceLoc {
        graph.node(v)?.loc ?? graph.param(v)?.loc ?? graph.input(v)?.loc ?? graph.loc
    }

    @discardableResult
    mutating func emit(_ name: String, _ op: Op, _ operands: [String], _ attrs: [String: AttrValue], at loc: SourceLoc) throws -> String {
        var node = Node(name: name, op: op, operands: operands, attrs: attrs, loc: loc)
        do {
            node.type = try op.inferType(operands.map { types[$0]! }, node.fullAttrs)
        } catch let e as InferenceError {
            throw Diagnostic.error("autodiff: the rule for this node built an ill-typed '%\(name)': \(e.message)", at: loc)
        }
        types[name] = node.type
        nodes.append(node)
        return name
    }

    /// Adds `value` to the gradient of `v`, first summing it to `v`'s shape if it was broadcast.
    mutating func accumulate(_ v: String, _ value: String, at loc: SourceLoc) throws {
        var value = value
        let target = types[v]!.dims
        if types[value]!.dims != target {
            value = try emit(slot(v), .sumTo, [value], ["shape": .ints(shapeAttr(target))], at: loc)
        }
        contributions[v, default: []].append(value)
    }

    /// The vector-Jacobian product of one node: one case per op, no default, so a new op without a
    /// rule does not compile.
    mutating func rule(_ n: Node, _ dy: String) throws {
        let x = n.operands, a = n.fullAttrs, loc = n.loc
        let sig = n.op.signature
        func wants(_ k: Int) -> Bool { k < x.count && !sig.intOperands.contains(k) && needs.contains(x[k]) }
        func operandType(_ k: Int) -> TensorType { types[x[k]]! }
        // Every axis but the channel axis 1: where per-channel parameters' gradients are summed.
        func nonChannelAxes() -> AttrValue { .ints([0] + Array(2..<max(2, operandType(0).rank))) }
        /// Emits the contribution to operand k under its gradient name (`suffix` for a temporary that
        /// `accumulate` will still sum down to the operand's shape).
        func contribute(_ k: Int, _ op: Op, _ operands: [String], _ attrs: [String: AttrValue], broadcast: Bool = false) throws {
            let name = slot(x[k]) + (broadcast && types[n.name]!.dims != operandType(k).dims ? ".full" : "")
            try accumulate(x[k], try emit(name, op, operands, attrs, at: loc), at: loc)
        }
        func notDifferentiable(_ why: String) -> Diagnostic {
            Diagnostic.error("cannot differentiate '%\(n.name)' (\(n.op.rawValue)): \(why)", at: n.opLoc ?? loc)
        }

        var dy = dy
        if Op.fusableProducers.contains(n.op), a.string("activation") == "relu" {
            // A fused ReLU: its backward first, from the output's sign (the pre-activation is gone).
            guard a.float("negative_slope") >= 0 else { throw notDifferentiable("a fused activation with a negative slope needs its input; unfuse it") }
            dy = try emit(Autodiff.prefix + n.name + ".preact", .reluBackward, [n.name, dy], ["negative_slope": a["negative_slope"]!], at: loc)
        }
        switch n.op {
        case .conv2d:
            let w = operandType(1).dims
            let conv = n.attrs.filter { $0.key != "activation" && $0.key != "negative_slope" }
            // The data gradient last: x, often a large activation, dies at the weight gradient before dx exists.
            if wants(1) {
                try contribute(1, .conv2dBackwardFilter, [x[0], dy], conv.merging(["kernel": .ints(shapeAttr(Array(w[2...])))]) { $1 })
            }
            if wants(2) { try contribute(2, .sum, [dy], ["axes": .ints([0, 2, 3])]) }
            if wants(0) {
                try contribute(0, .conv2dBackwardData, [dy, x[1]], conv.merging(["input_size": .ints(shapeAttr(Array(operandType(0).dims[2...])))]) { $1 })
            }
        case .maxPool:
            if wants(0) { try contribute(0, .maxPoolBackward, [x[0], dy], n.attrs) }
        case .avgPool:
            if wants(0) {
                try contribute(0, .avgPoolBackward, [dy], n.attrs.merging(["input_size": .ints(shapeAttr(Array(operandType(0).dims[2...])))]) { $1 })
            }
        case .relu:
            // With a non-negative slope the output has the input's sign, and is saved anyway by the next layer.
            let sign = a.float("negative_slope") >= 0 ? n.name : x[0]
            if wants(0) { try contribute(0, .reluBackward, [sign, dy], n.attrs) }
        case .prelu:
            if wants(0) { try contribute(0, .preluBackwardInput, [x[0], x[1], dy], [:]) }
            if wants(1) {
                let shared = operandType(1).dims == [.fixed(1)] && operandType(0).dims[1] != .fixed(1)
                try contribute(1, .preluBackwardSlope, [x[0], dy], shared ? ["channel_shared": .bool(true)] : [:])
            }
        case .sigmoid:
            if wants(0) { try contribute(0, .sigmoidBackward, [n.name, dy], [:]) }
        case .tanh:
            if wants(0) { try contribute(0, .tanhBackward, [n.name, dy], [:]) }
        case .dropout:
            throw notDifferentiable("dropout is lowered to dropout_mask + mul before differentiation")
        case .flatten, .reshape:
            if wants(0) { try contribute(0, .reshape, [dy], ["shape": .ints(shapeAttr(operandType(0).dims))]) }
        case .transpose:
            let perm = a.ints("perm")
            var inverse = perm
            for (k, p) in perm.enumerated() { inverse[p] = k }
            if wants(0) { try contribute(0, .transpose, [dy], ["perm": .ints(inverse)]) }
        case .concat:
            let axis = a.int("axis") < 0 ? a.int("axis") + operandType(0).rank : a.int("axis")
            var start = 0
            for k in x.indices {
                let size = operandType(k).dims[axis].value!
                if wants(k) { try contribute(k, .slice, [dy], ["axis": .int(axis), "start": .int(start), "end": .int(start + size)]) }
                start += size
            }
        case .slice:
            let axis = a.int("axis") < 0 ? a.int("axis") + operandType(0).rank : a.int("axis")
            if wants(0) {
                try contribute(0, .sliceBackward, [dy], ["axis": .int(axis), "start": a["start"]!, "end": a["end"]!, "size": .int(operandType(0).dims[axis].value!)])
            }
        case .channelReplicate:
            if wants(0) { try accumulate(x[0], dy, at: loc) }
        case .resize:
            if wants(0) {
                guard let h = operandType(0).dims[2].value, let w = operandType(0).dims[3].value else {
                    throw notDifferentiable("the gradient of resize needs the input's height and width as numbers")
                }
                try contribute(0, .resizeBackward, [dy], ["size": .ints([h, w])])
            }
        case .add:
            for k in 0..<2 where wants(k) { try accumulate(x[k], dy, at: loc) }
        case .sub:
            if wants(0) { try accumulate(x[0], dy, at: loc) }
            if wants(1) { try contribute(1, .affine, [dy], ["scale": .float(-1)], broadcast: true) }
        case .mul:
            for k in 0..<2 where wants(k) { try contribute(k, .mul, [dy, x[1 - k]], [:], broadcast: true) }
        case .div:
            // d/da = dy / b; d/db = -dy · a / b² = -(dy · y) / b.
            if wants(0) { try contribute(0, .div, [dy, x[1]], [:], broadcast: true) }
            if wants(1) {
                let dyy = try emit(slot(x[1]) + ".dyy", .mul, [dy, n.name], [:], at: loc)
                let q = try emit(slot(x[1]) + ".q", .div, [dyy, x[1]], [:], at: loc)
                try contribute(1, .affine, [q], ["scale": .float(-1)], broadcast: true)
            }
        case .maximum:
            for k in 0..<2 where wants(k) { try contribute(k, .maximumBackward, [x[0], x[1], dy], ["operand": .int(k)], broadcast: true) }
        case .affine:
            if wants(0) {
                if a.float("scale") == 1 { try accumulate(x[0], dy, at: loc) } else { try contribute(0, .affine, [dy], ["scale": a["scale"]!]) }
            }
        case .scale:
            if wants(0) { try contribute(0, .scale, [dy, x[1]], [:]) }
            if wants(1) {
                let prod = try emit(slot(x[1]) + ".full", .mul, [dy, x[0]], [:], at: loc)
                try contribute(1, .sum, [prod], ["axes": nonChannelAxes()])
            }
            if wants(2) { try contribute(2, .sum, [dy], ["axes": nonChannelAxes()]) }
        case .bias:
            if wants(0) { try accumulate(x[0], dy, at: loc) }
            if wants(1) { try contribute(1, .sum, [dy], ["axes": nonChannelAxes()]) }
        case .batchNorm:
            if wants(1) || wants(2) {
                throw notDifferentiable("batch_norm uses its mean and variance operands as given; they must be frozen (trainable=false)")
            }
            if wants(0) { try contribute(0, .batchNormBackward, [x[2], dy], ["eps": a["eps"]!]) }
        case .batchNormTrain:
            if wants(0) { try contribute(0, .batchNormTrainBackward, [x[0], dy], n.attrs) }
        case .batchMoments:
            throw notDifferentiable("batch statistics feed running averages; batch_norm_train's gradient already flows through them")
        case .lrn:
            if wants(0) {
                guard a.string("region") == "across_channels" else {
                    throw notDifferentiable("lrn_backward implements region=across_channels only (Caffe's within_channel backward is not supported)")
                }
                try contribute(0, .lrnBackward, [x[0], n.name, dy], n.attrs)
            }
        case .linear:
            // y[N,O] = x[N,K] w[O,K]^T + b: dx = dy w, dw = dy^T x, db = sum over N of dy.
            if wants(0) { try contribute(0, .matmul, [dy, x[1]], [:]) }
            if wants(1) { try contribute(1, .matmul, [dy, x[0]], ["transpose_a": .bool(true)]) }
            if wants(2) { try contribute(2, .sum, [dy], ["axes": .ints([0])]) }
        case .matmul:
            // y = A B with A = op(a), B = op(b): dA = dy B^T, dB = A^T dy, transposed back where op transposes.
            let ta = a.bool("transpose_a"), tb = a.bool("transpose_b")
            if wants(0) {
                if ta { try contribute(0, .matmul, [x[1], dy], ["transpose_a": .bool(tb), "transpose_b": .bool(true)]) }
                else { try contribute(0, .matmul, [dy, x[1]], ["transpose_b": .bool(!tb)]) }
            }
            if wants(1) {
                if tb { try contribute(1, .matmul, [dy, x[0]], ["transpose_a": .bool(true), "transpose_b": .bool(ta)]) }
                else { try contribute(1, .matmul, [x[0], dy], ["transpose_a": .bool(!ta)]) }
            }
        case .softmax:
            if wants(0) { try contribute(0, .softmaxBackward, [n.name, dy], n.attrs) }
        case .logSoftmax:
            if wants(0) { try contribute(0, .logSoftmaxBackward, [n.name, dy], n.attrs) }
        case .softmaxCrossEntropy:
            if wants(0) { try contribute(0, .softmaxCrossEntropyBackward, [x[0], x[1], dy], [:]) }
        case .euclideanLoss:
            // The loss is symmetric: the gradient for b is the rule for a with the operands swapped.
            if wants(0) { try contribute(0, .euclideanLossBackward, [x[0], x[1], dy], [:]) }
            if wants(1) { try contribute(1, .euclideanLossBackward, [x[1], x[0], dy], [:]) }
        case .mean, .sum:
            if wants(0) {
                try contribute(0, .reduceBackward, [dy], ["axes": a["axes"]!, "shape": .ints(shapeAttr(operandType(0).dims)), "mean": .bool(n.op == .mean)])
            }
        case .l2Normalize:
            if wants(0) { try contribute(0, .l2NormalizeBackward, [x[0], dy], n.attrs) }
        case .dropoutMask, .fill, .priorBox:
            break // constant outputs: `needs` never contains them
        case .detectionOutput:
            throw notDifferentiable("non-maximum suppression has no gradient; train on the location and confidence outputs before it")
        case .call:
            throw notDifferentiable("calls must be inlined first (Inliner.inline)")
        case .conv2dBackwardData, .conv2dBackwardFilter, .maxPoolBackward, .avgPoolBackward, .reluBackward,
             .preluBackwardInput, .preluBackwardSlope, .sigmoidBackward, .tanhBackward, .softmaxBackward,
             .logSoftmaxBackward, .softmaxCrossEntropyBackward, .euclideanLossBackward, .maximumBackward,
             .lrnBackward, .batchNormBackward, .batchNormTrainBackward, .l2NormalizeBackward, .sliceBackward, .resizeBackward,
             .reduceBackward, .sumTo:
            throw notDifferentiable("backward ops have no gradient rule (second-order gradients are not supported)")
        }
    }
}
