import IR

/// Training-mode dropout, lowered before differentiation: `%d = dropout(%x) {ratio}` becomes
/// `%d.mask = dropout_mask(%x) {ratio}` and `%d = mul(%x, %d.mask)`, so the mask is a forward
/// value the backward pass reads.
public struct LowerDropout: GraphPass {
    public let name = "lower-dropout"
    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws -> Bool {
        guard graph.nodes.contains(where: { $0.op == .dropout }) else { return false }
        let taken = Set(graph.nodes.map(\.name) + graph.inputs.map(\.name) + graph.params.map(\.name))
        var nodes: [Node] = []
        for n in graph.nodes {
            guard n.op == .dropout else {
                nodes.append(n)
                continue
            }
            let maskName = n.name + ".mask"
            guard !taken.contains(maskName) else { throw Diagnostic.error("'%\(maskName)' is taken; it would hold the dropout mask of '%\(n.name)'", at: n.loc) }
            var mask = Node(name: maskName, op: .dropoutMask, operands: n.operands, attrs: n.attrs, type: n.type, loc: n.loc)
            mask.trivia = n.trivia
            nodes.append(mask)
            nodes.append(Node(name: n.name, op: .mul, operands: [n.operands[0], maskName], type: n.type, loc: n.loc))
        }
        graph.nodes = nodes
        return true
    }
}
