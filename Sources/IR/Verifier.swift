/// Checks a graph and infers the type of every node: SSA names, definition before use, no cycles,
/// arity, attribute kinds and ranges, element types and shapes. Attributes are normalised in place
/// (an integer given for a number becomes a number) so that the printer is canonical. A node that
/// needs a named spatial size (`f32[N,3,H,W]` into a conv) stays untyped, and so do its users,
/// until the size is bound.
public struct Verifier {
    /// Already verified graphs that calls may name.
    public var callees: [String: Graph]

    public init(callees: [String: Graph] = [:]) { self.callees = callees }

    /// Verifies `graph` in place; returns every problem found (empty when the graph is valid).
    public func verify(_ graph: inout Graph) -> [Diagnostic] {
        var diags: [Diagnostic] = []
        var defs: [String: SourceLoc] = [:]
        var types: [String: TensorType] = [:]
        // Values whose type is unknown because of an earlier error: uses stay quiet.
        var poisoned: Set<String> = []

        func define(_ name: String, _ loc: SourceLoc) -> Bool {
            if let prev = defs[name] {
                diags.append(.error("redefinition of '%\(name)'", at: loc,
                                    notes: [Diagnostic(.note, "previous definition is here", at: prev)]))
                return false
            }
            defs[name] = loc
            return true
        }

        for input in graph.inputs {
            if define(input.name, input.loc) { types[input.name] = input.type }
        }
        for p in graph.params {
            guard define(p.name, p.loc) else { continue }
            if p.type.usesBatch {
                diags.append(.error("parameter '%\(p.name)' cannot use the batch dimension N in \(p.type)", at: p.loc))
                poisoned.insert(p.name)
            } else if p.type.dtype != .f32 {
                diags.append(.error("parameter '%\(p.name)' must be f32, found \(p.type)", at: p.loc))
                poisoned.insert(p.name)
            } else {
                types[p.name] = p.type
            }
        }

        let laterNodes = Dictionary(graph.nodes.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
        for k in graph.nodes.indices {
            var node = graph.nodes[k]
            defer { graph.nodes[k] = node }
            let fresh = define(node.name, node.loc)
            var ok = fresh
            var operandTypes: [TensorType] = []
            for (j, name) in node.operands.enumerated() {
                if let t = types[name] {
                    operandTypes.append(t)
                    continue
                }
                ok = false
                if poisoned.contains(name) { continue }
                let at = node.operandLocs[j]
                if name == node.name {
                    diags.append(.error("cycle: '%\(name)' uses itself", at: at))
                } else if let later = laterNodes[name], later > k {
                    if dependsOn(graph, later, node.name) {
                        diags.append(.error("cycle: '%\(node.name)' uses '%\(name)', which depends on '%\(node.name)'", at: at,
                                            notes: [Diagnostic(.note, "'%\(name)' is defined here", at: graph.nodes[later].loc)]))
                    } else {
                        diags.append(.error("'%\(name)' is used before its definition", at: at,
                                            notes: [Diagnostic(.note, "'%\(name)' is defined here", at: graph.nodes[later].loc)]))
                    }
                } else if defs[name] == nil {
                    diags.append(.error("use of undefined value '%\(name)'", at: at))
                }
            }
            let sig = node.op.signature
            let count = node.operands.count
            if count < sig.minOperands || (sig.maxOperands.map { count > $0 } ?? false) {
                let want: String
                if let mx = sig.maxOperands { want = mx == sig.minOperands ? "\(mx)" : "\(sig.minOperands) to \(mx)" } else { want = "at least \(sig.minOperands)" }
                diags.append(.error("\(node.op.rawValue) takes \(want) operand\(want == "1" ? "" : "s"), found \(count)", at: node.opLoc ?? node.loc))
                ok = false
            }
            if !checkAttrs(&node, &diags) { ok = false }
            if ok {
                for (j, t) in operandTypes.enumerated() {
                    let want: DType = sig.intOperands.contains(j) ? .i32 : .f32
                    if node.op != .call && t.dtype != want {
                        diags.append(.error("\(node.op.rawValue) operand \(j) must be \(want), found \(t)", at: node.operandLocs[j]))
                        ok = false
                    }
                }
            }
            if ok {
                do {
                    node.type = node.op == .call ? try callType(node, operandTypes) : try node.op.inferType(operandTypes, node.fullAttrs)
                } catch let e as InferenceError where e.unbound {
                    ok = false  // typed when its named spatial sizes are bound; its users wait too
                } catch let e as InferenceError {
                    let at = e.operand.flatMap { $0 < node.operandLocs.count ? node.operandLocs[$0] : nil }
                        ?? e.attribute.flatMap { node.attrLocs[$0] } ?? node.opLoc ?? node.loc
                    diags.append(.error(e.message, at: at))
                    ok = false
                } catch let d as Diagnostic {
                    diags.append(d)
                    ok = false
                } catch {
                    diags.append(.error("\(error)", at: node.loc))
                    ok = false
                }
            }
            if ok, let declared = node.declaredType, declared != node.type {
                diags.append(.error("'%\(node.name)' is declared \(declared) but \(node.op.rawValue) gives \(node.type!)", at: node.loc))
                ok = false
            }
            if ok, let t = node.type, fresh {
                types[node.name] = t
            } else if fresh {
                poisoned.insert(node.name)
                node.type = nil
            }
        }

        if graph.outputs.isEmpty {
            diags.append(.error("graph '@\(graph.name)' has no 'return'", at: graph.loc))
        }
        var seenOutputs: Set<String> = []
        for (k, out) in graph.outputs.enumerated() {
            let at = k < graph.outputLocs.count ? graph.outputLocs[k] : graph.returnLoc ?? graph.loc
            if !seenOutputs.insert(out).inserted {
                diags.append(.error("'%\(out)' is returned twice", at: at))
            } else if defs[out] == nil {
                diags.append(.error("graph '@\(graph.name)' returns undefined value '%\(out)'", at: at))
            }
        }
        return diags
    }

    /// Whether node `index` (transitively) uses the value `name`.
    private func dependsOn(_ g: Graph, _ index: Int, _ name: String) -> Bool {
        var stack = [index]
        var seen: Set<Int> = []
        let byName = Dictionary(g.nodes.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
        while let k = stack.popLast() {
            guard seen.insert(k).inserted else { continue }
            for o in g.nodes[k].operands {
                if o == name { return true }
                if let j = byName[o] { stack.append(j) }
            }
        }
        return false
    }

    /// Checks every attribute against the op's table and normalises its value; false if any is wrong.
    private func checkAttrs(_ node: inout Node, _ diags: inout [Diagnostic]) -> Bool {
        let sig = node.op.signature
        var ok = true
        for key in node.attrs.keys.sorted() {
            let at = node.attrLocs[key] ?? node.loc
            guard let spec = sig.spec(key) else {
                let known = sig.attrs.map(\.name)
                let list = known.isEmpty ? "it takes no attributes" : "expected " + known.joined(separator: ", ")
                diags.append(.error("unknown attribute '\(key)' for \(node.op.rawValue) (\(list))", at: at))
                ok = false
                continue
            }
            let written = node.attrs[key]!
            guard let v = coerce(written, spec.kind) else {
                diags.append(.error("attribute '\(key)' of \(node.op.rawValue) expects \(spec.kind), found \(written)", at: at))
                ok = false
                continue
            }
            node.attrs[key] = v
            if let problem = Self.rangeProblem(node.op, key, v) {
                diags.append(.error("attribute '\(key)' of \(node.op.rawValue) \(problem), found \(written)", at: at))
                ok = false
            }
        }
        for spec in sig.attrs where spec.defaultValue == nil && node.attrs[spec.name] == nil {
            diags.append(.error("\(node.op.rawValue) needs attribute '\(spec.name)'", at: node.opLoc ?? node.loc))
            ok = false
        }
        if node.op == .call, node.callee == nil {
            diags.append(.error("call needs a graph name", at: node.loc))
            ok = false
        }
        return ok
    }

    private func coerce(_ v: AttrValue, _ kind: AttrKind) -> AttrValue? {
        switch (kind, v) {
        case (.int, .int), (.bool, .bool), (.string, .string), (.float, .float), (.floats, .floats): return v
        case (.float, .int(let i)): return .float(Double(i))
        case (.floats, .ints(let is_)): return .floats(is_.map(Double.init))
        case (.ints(let count), .ints(let vs)): return count == nil || count == vs.count ? v : nil
        case (.ints(let count), .int(let i)) where count == 2: return .ints([i, i])
        case (.word(let options), .word(let w)): return options.contains(w) ? v : nil
        default: return nil
        }
    }

    /// Why attribute `key` of `op` holds a value out of its range (the op table's `AttrSpec.range`), or nil.
    public static func rangeProblem(_ op: Op, _ key: String, _ v: AttrValue) -> String? {
        (op.signature.spec(key)?.range ?? .any).problem(v)
    }

    /// A call's type: the callee's inputs are matched to the operands, binding its N to one size.
    private func callType(_ node: Node, _ args: [TensorType]) throws -> TensorType {
        guard let name = node.callee, let callee = callees[name] else {
            throw Diagnostic.error("call to unknown graph '@\(node.callee ?? "")'", at: node.opLoc ?? node.loc)
        }
        guard args.count == callee.inputs.count else {
            throw Diagnostic.error("'@\(name)' takes \(callee.inputs.count) input\(callee.inputs.count == 1 ? "" : "s"), found \(args.count)", at: node.opLoc ?? node.loc)
        }
        var batch: Dim?
        for (k, (arg, input)) in zip(args, callee.inputs).enumerated() {
            var ok = arg.dtype == input.type.dtype && arg.rank == input.type.rank
            if ok {
                for (a, p) in zip(arg.dims, input.type.dims) {
                    if p == .batch {
                        if let b = batch, b != a { ok = false }
                        batch = a
                    } else if a != p {
                        ok = false
                    }
                }
            }
            if !ok {
                throw Diagnostic.error("argument \(k) of '@\(name)' is \(arg) but input '%\(input.name)' is \(input.type)", at: node.operandLocs[k])
            }
        }
        let output = node.attrs["output"].flatMap { if case .string(let s) = $0 { return s } else { return nil } } ?? ""
        let chosen: String
        if output.isEmpty {
            guard callee.outputs.count == 1 else {
                throw Diagnostic.error("'@\(name)' returns \(callee.outputs.count) values; choose one with output=\"...\" (one of \(callee.outputs.map { "%" + $0 }.joined(separator: ", ")))", at: node.opLoc ?? node.loc)
            }
            chosen = callee.outputs[0]
        } else {
            // Any node of the callee may be tapped, not only what it returns (a face net's pool5).
            guard callee.outputs.contains(output) || callee.node(output) != nil else {
                throw Diagnostic.error("'@\(name)' has no value '%\(output)' (it returns \(callee.outputs.map { "%" + $0 }.joined(separator: ", ")))", at: node.attrLocs["output"] ?? node.loc)
            }
            chosen = output
        }
        if case .string(let through)? = node.attrs["frozen_through"], callee.node(through) == nil {
            throw Diagnostic.error("'@\(name)' has no value '%\(through)' to freeze through", at: node.attrLocs["frozen_through"] ?? node.loc)
        }
        guard let t = callee.type(of: chosen) else {
            throw Diagnostic.error("'@\(name)' has no type for '%\(chosen)'", at: node.loc)
        }
        return TensorType(t.dtype, t.dims.map { $0 == .batch ? (batch ?? .batch) : $0 })
    }
}
