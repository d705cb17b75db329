// Importing part of a net: only the layers a set of outputs needs (`--until`, `--outputs`).

extension CaffeNet {
    /// The layers named (a top blob's name stands for the last layer that writes it).
    public func outputLayers(_ names: [String]) throws(CaffeError) -> [String] {
        var producer: [String: String] = [:]
        for layer in layers { for top in layer.tops { producer[top] = layer.name } }
        return try names.map { (name) throws(CaffeError) -> String in
            if layers.contains(where: { $0.name == name }) { return name }
            if let p = producer[name] { return p }
            let known = layers.suffix(12).map(\.name).joined(separator: ", ")
            throw CaffeError(file: "<command line>", "no layer or blob named '\(name)' in net '\(self.name)' (its last layers: \(known))")
        }
    }

    /// The layers needed to compute the outputs of the named layers, in file order; every other
    /// layer is dropped before anything converts it, so a layer fn2e cannot import may follow the
    /// cut. Applied after phase filtering.
    public func cut(outputs names: [String]) throws(CaffeError) -> CaffeNet {
        var producer: [String: Int] = [:]
        var inputs: [[Int]] = []
        for (i, layer) in layers.enumerated() {
            inputs.append(layer.bottoms.compactMap { producer[$0] })
            for top in layer.tops { producer[top] = i }
        }
        let targets = try outputLayers(names)
        let wanted = layers.indices.filter { targets.contains(layers[$0].name) }
        var keep = Set<Int>()
        var stack = wanted
        while let i = stack.popLast() {
            guard keep.insert(i).inserted else { continue }
            stack += inputs[i]
        }
        var copy = self
        copy.layers = layers.indices.filter(keep.contains).map { layers[$0] }
        copy.upgradeLog.append("importing \(keep.count) of \(layers.count) layers: those needed for \(names.joined(separator: ", "))")
        return copy
    }
}
