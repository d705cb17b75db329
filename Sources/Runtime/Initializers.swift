import IR
import Tensors

/// Fills parameters from their declared initializers. Each parameter draws from its own generator,
/// seeded from the run's seed and the parameter's name, so the same seed gives bitwise the same
/// weights whatever else the graph holds.
public enum Initializers {
    /// Caffe's fan-in: elements per output unit (`C·KH·KW` for a conv weight, `K` for a linear one).
    public static func fanIn(_ shape: [Int]) -> Int {
        shape.count <= 1 ? max(1, shape.first ?? 1) : max(1, shape.dropFirst().reduce(1, *))
    }

    public static func seed(_ seed: UInt64, name: String) -> UInt64 {
        Digest.fnv1a64(name.utf8) ^ seed
    }

    public static func tensor(for p: Param, seed: UInt64) -> Tensor {
        let shape = p.type.shape ?? []
        var data = [Float](repeating: 0, count: shape.reduce(1, *))
        data.withUnsafeMutableBufferPointer { fill(p, seed: seed, into: $0.baseAddress!) }
        return Tensor(shape: shape, data: data)
    }

    /// Writes the parameter's initial values straight into its buffer (no temporary copy: VGG-Face's
    /// fc6 alone is 411 MB).
    public static func fill(_ p: Param, seed: UInt64, into data: UnsafeMutablePointer<Float>) {
        let shape = p.type.shape ?? []
        let count = shape.reduce(1, *)
        var rng = Xoshiro256(seed: Initializers.seed(seed, name: p.name))
        switch p.initializer {
        case .zeros:
            data.update(repeating: 0, count: count)
        case .constant(let v):
            data.update(repeating: Float(v), count: count)
        case .gaussian(let std):
            for i in 0..<count { data[i] = rng.nextGaussian() * Float(std) }
        case .uniform(let lo, let hi):
            for i in 0..<count { data[i] = Float(lo) + rng.nextFloat() * Float(hi - lo) }
        case .xavier:
            let a = Float((3.0 / Double(fanIn(shape))).squareRoot())
            for i in 0..<count { data[i] = (rng.nextFloat() * 2 - 1) * a }
        case .msra:
            let std = Float((2.0 / Double(fanIn(shape))).squareRoot())
            for i in 0..<count { data[i] = rng.nextGaussian() * std }
        }
    }
}
