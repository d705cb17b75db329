import IR

/// The part of a training graph that depends on its inputs but on no trainable parameter (the
/// frozen face net of FaceNet2ExpNet stage 1). Its outputs at the boundary with the trainable part
/// are the same for the same input, so they can be computed once per (image, augmentation) and fed
/// to the training step as inputs instead of being recomputed every step.
public struct FrozenCut {
    /// Values computed by the frozen part and read by the trainable part (or the loss).
    public var boundary: [String]
    /// The frozen part alone, returning the boundary values.
    public var frozen: Graph
    /// The rest: boundary values become inputs.
    public var trainable: Graph

    /// Finds the cut of a flat graph; nil when nothing frozen depends on an input.
    public static func find(_ g: Graph, loss: String) -> FrozenCut? {
        let trainableParams = Set(g.params.filter(\.trainable).map(\.name))
        let inputs = Set(g.inputs.map(\.name))
        var usesTrainable: Set<String> = trainableParams
        var usesInput: Set<String> = inputs
        for n in g.nodes {
            if n.operands.contains(where: usesTrainable.contains) { usesTrainable.insert(n.name) }
            if n.operands.contains(where: usesInput.contains) { usesInput.insert(n.name) }
        }
        // Random ops never belong to the cached part.
        var random: Set<String> = []
        for n in g.nodes where n.op == .dropout || n.op == .dropoutMask || n.operands.contains(where: random.contains) {
            random.insert(n.name)
        }
        func frozenValue(_ v: String) -> Bool {
            g.node(v) != nil && usesInput.contains(v) && !usesTrainable.contains(v) && !random.contains(v)
        }
        var boundary: [String] = []
        for n in g.nodes where usesTrainable.contains(n.name) || n.name == loss {
            for o in n.operands where frozenValue(o) && !boundary.contains(o) { boundary.append(o) }
        }
        guard !boundary.isEmpty else { return nil }
        var frozen = g
        frozen.name = g.name + ".frozen"
        frozen.outputs = boundary
        var trainable = g
        let cut = Set(boundary)
        trainable.nodes = g.nodes.filter { !cut.contains($0.name) }
        for b in boundary {
            trainable.inputs.append(Input(name: b, type: g.node(b)!.type!, loc: g.node(b)!.loc))
        }
        // Drop what only the frozen part needed.
        var live = Set(trainable.outputs)
        for n in trainable.nodes.reversed() where live.contains(n.name) { live.formUnion(n.operands) }
        trainable.nodes = trainable.nodes.filter { live.contains($0.name) }
        trainable.params = trainable.params.filter { live.contains($0.name) }
        trainable.inputs = trainable.inputs.filter { live.contains($0.name) }
        return FrozenCut(boundary: boundary, frozen: frozen, trainable: trainable)
    }
}
