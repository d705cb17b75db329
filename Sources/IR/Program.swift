import Foundation

/// A root file with everything it imports, every graph verified and typed.
public struct Program: Sendable {
    /// The file named on the command line.
    public var root: Module
    /// Every loaded file, imports before the files that import them.
    public var modules: [Module]
    /// Verified graphs by name.
    public var graphs: [String: Graph]
    /// Graph names in verification order (callees before callers).
    public var order: [String]

    /// The named graph, or the last graph of the root file.
    public func graph(_ name: String? = nil) -> Graph? {
        if let n = name { return graphs[n] }
        return root.graphs.last.flatMap { graphs[$0.name] }
    }

    /// The root module with verified (typed, normalised) graphs, ready to print.
    public var verifiedRoot: Module {
        var m = root
        m.graphs = m.graphs.map { graphs[$0.name] ?? $0 }
        return m
    }
}

/// Reads a file and its imports, then verifies every graph. Errors come back as a `DiagnosticList`.
public struct Loader {
    /// Limits on what a graph file may ask for: call nesting, and nodes once calls are inlined.
    public static let maxCallDepth = 64
    public static let maxInlinedNodes = 1_000_000
    public let sources: SourceManager
    private var loaded: [String: Module] = [:]
    private var modules: [Module] = []
    private var diags: [Diagnostic] = []

    /// Folders searched for an import that is not found beside the importing file (like a C
    /// include path), followed by those in the environment variable `FN2E_PATH` (colon-separated).
    public var searchPaths: [String] = []

    public init(sources: SourceManager = SourceManager(), searchPaths: [String] = []) {
        self.sources = sources
        self.searchPaths = searchPaths + (ProcessInfo.processInfo.environment["FN2E_PATH"]?.split(separator: ":").map(String.init) ?? [])
    }

    public static func load(path: String, sources: SourceManager = SourceManager(), searchPaths: [String] = []) throws -> Program {
        var l = Loader(sources: sources, searchPaths: searchPaths)
        return try l.load(path: path)
    }

    /// Loads text as if it were the file `file` (imports resolve relative to its folder).
    public static func load(text: String, file: String, sources: SourceManager = SourceManager()) throws -> Program {
        try load(bytes: Array(text.utf8), file: file, sources: sources)
    }

    /// Loads raw bytes as if they were the file `file`; invalid UTF-8 is a diagnostic.
    public static func load(bytes: [UInt8], file: String, sources: SourceManager = SourceManager()) throws -> Program {
        var l = Loader(sources: sources)
        guard let root = l.parse(file: file, bytes: bytes, stack: []) else { throw DiagnosticList(l.diags) }
        return try l.finish(root)
    }

    public mutating func load(path: String) throws -> Program {
        guard let root = read(path, from: nil, stack: []) else { throw DiagnosticList(diags) }
        return try finish(root)
    }

    private mutating func finish(_ root: Module) throws -> Program {
        guard diags.isEmpty else { throw DiagnosticList(diags) }
        let (graphs, order) = verifyAll()
        guard diags.isEmpty else { throw DiagnosticList(diags) }
        return Program(root: root, modules: modules, graphs: graphs, order: order)
    }

    private mutating func read(_ path: String, from: Module.Import?, stack: [String]) -> Module? {
        let key = URL(fileURLWithPath: path).standardizedFileURL.path
        if stack.contains(key) {
            let chain = (stack + [key]).map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: " -> ")
            diags.append(.error("import cycle: \(chain)", at: from?.loc))
            return nil
        }
        if let m = loaded[key] { return m }
        guard let data = FileManager.default.contents(atPath: path) else {
            let why = FileManager.default.fileExists(atPath: path) ? "cannot read" : "no such file"
            let what = from.map { "cannot import '\($0.path)': \(why) (looked for '\(path)')" } ?? "\(why): '\(path)'"
            diags.append(.error(what, at: from?.loc))
            return nil
        }
        return parse(file: path, bytes: [UInt8](data), stack: stack + [key], key: key)
    }

    private mutating func parse(file: String, bytes: [UInt8], stack: [String], key: String? = nil) -> Module? {
        sources.add(file: file, text: String(decoding: bytes, as: UTF8.self))
        let module: Module
        do {
            module = try Parser.parse(file: file, bytes: bytes)
        } catch let d as Diagnostic {
            diags.append(d)
            return nil
        } catch {
            diags.append(.error("\(error)", at: SourceLoc(file: file, line: 1, column: 1)))
            return nil
        }
        // Relative imports resolve against the importing file's folder, kept relative when it is,
        // so that diagnostics name files the way the user did.
        let dir = (file as NSString).deletingLastPathComponent
        let key = key ?? URL(fileURLWithPath: file).standardizedFileURL.path
        for imp in module.imports {
            var path = imp.path.hasPrefix("/") || dir.isEmpty ? imp.path : (dir as NSString).appendingPathComponent(imp.path)
            if !imp.path.hasPrefix("/"), !FileManager.default.fileExists(atPath: path),
               let found = searchPaths.map({ ($0 as NSString).appendingPathComponent(imp.path) }).first(where: { FileManager.default.fileExists(atPath: $0) }) {
                path = found
            }
            _ = read(path, from: imp, stack: stack.isEmpty ? [key] : stack)
        }
        loaded[key] = module
        modules.append(module)
        return module
    }

    private mutating func verifyAll() -> ([String: Graph], [String]) {
        var all: [String: Graph] = [:]
        var declOrder: [String] = []
        for m in modules {
            for g in m.graphs {
                if let prev = all[g.name] {
                    diags.append(.error("redefinition of graph '@\(g.name)'", at: g.loc,
                                        notes: [Diagnostic(.note, "previous definition is here", at: prev.loc)]))
                    continue
                }
                all[g.name] = g
                declOrder.append(g.name)
            }
        }
        var done: [String: Graph] = [:]
        var order: [String] = []
        var visiting: [String] = []
        var failed: Set<String> = []
        var inlinedSize: [String: Int] = [:]

        func visit(_ name: String) {
            if done[name] != nil || failed.contains(name) { return }
            guard var g = all[name] else { return }
            if let start = visiting.firstIndex(of: name) {
                // Report at the call that closes the cycle.
                let caller = visiting.last.flatMap { all[$0] }
                let call = caller?.nodes.first { $0.op == .call && $0.callee == name }
                let chain = (visiting[start...] + [name]).map { "'@\($0)'" }.joined(separator: " -> ")
                diags.append(.error("recursive call: \(chain)", at: call?.opLoc ?? call?.loc ?? g.loc))
                failed.insert(name)
                return
            }
            // Bounds an input sets: call nesting (this walk and the inliner recurse through it)
            // and the size the graph has once every call is inlined (calls can double it per level).
            guard visiting.count < Self.maxCallDepth else {
                diags.append(.error("calls nested more than \(Self.maxCallDepth) deep", at: g.loc))
                failed.insert(name)
                return
            }
            visiting.append(name)
            for n in g.nodes where n.op == .call { if let c = n.callee { visit(c) } }
            visiting.removeLast()
            // A caller of a broken graph is not verified: the callee's errors already explain it.
            if failed.contains(name) || g.nodes.contains(where: { $0.op == .call && $0.callee.map(failed.contains) == true }) {
                failed.insert(name)
                return
            }
            var size = g.nodes.count
            for n in g.nodes where n.op == .call { size += n.callee.flatMap { inlinedSize[$0] } ?? 0 }
            inlinedSize[name] = min(size, Self.maxInlinedNodes + 1)
            if size > Self.maxInlinedNodes {
                diags.append(.error("graph '@\(name)' grows to \(size) nodes when its calls are inlined, more than the \(Self.maxInlinedNodes) fn2e compiles", at: g.loc))
                failed.insert(name)
                return
            }
            let problems = Verifier(callees: done).verify(&g)
            if problems.isEmpty {
                done[name] = g
                order.append(name)
            } else {
                diags.append(contentsOf: problems)
                failed.insert(name)
            }
        }
        for name in declOrder { visit(name) }
        return (done, order)
    }
}
