import Foundation
import IR
import Tensors

/// Learning-rate schedule (Caffe's policies, plus cosine and linear warm-up).
public struct LRPolicy {
    public var base: Double
    public var policy: String
    public var gamma: Double
    public var stepsize: Int
    public var stepvalues: [Int]
    public var power: Double
    public var maxIter: Int
    public var warmup: Int

    public init(base: Double, policy: String, gamma: Double = 0.1, stepsize: Int = 1000, stepvalues: [Int] = [],
                power: Double = 1, maxIter: Int, warmup: Int = 0) {
        (self.base, self.policy, self.gamma, self.stepsize) = (base, policy, gamma, stepsize)
        (self.stepvalues, self.power, self.maxIter, self.warmup) = (stepvalues, power, maxIter, warmup)
    }

    public func rate(at iter: Int) -> Double {
        var lr: Double
        switch policy {
        case "step": lr = base * pow(gamma, Double(iter / max(stepsize, 1)))
        case "multistep": lr = base * pow(gamma, Double(stepvalues.filter { iter >= $0 }.count))
        case "poly": lr = base * pow(max(0, 1 - Double(iter) / Double(max(maxIter, 1))), power)
        case "cosine": lr = base * 0.5 * (1 + cos(Double.pi * Double(min(iter, maxIter)) / Double(max(maxIter, 1))))
        default: lr = base
        }
        if iter < warmup { lr *= Double(iter + 1) / Double(warmup) }
        return lr
    }
}

/// Updates trainable parameters from their gradients, Caffe's way: the weight decay (times the
/// parameter's decay_mult) is added to the gradient, the learning rate is times its lr_mult.
/// SGD: v = momentum·v + lr·g; w -= v. Adam: bias-corrected first and second moments.
public final class Solver {
    public struct Slot {
        public var param: Param
        public var weights: UnsafeMutablePointer<Float>
        public var gradient: UnsafeMutablePointer<Float>
        public var count: Int
        /// Momentum (SGD) or first moment (Adam).
        public var m: [Float]
        /// Second moment (Adam).
        public var v: [Float]
    }

    /// A parameter that is no gradient's but a running average of a batch statistic (batch norm's
    /// mean and variance, see `LowerBatchNorm`): after each update
    /// `weights = momentum · weights + (1 − momentum) · correction · source`. Saved and restored
    /// with the trainable parameters.
    public struct Average {
        public var param: Param
        public var weights: UnsafeMutablePointer<Float>
        public var source: UnsafePointer<Float>
        public var count: Int
        public var momentum: Float
        public var correction: Float
    }

    public let kind: String
    public var momentum: Float, weightDecay: Float, beta1: Float, beta2: Float, epsilon: Float
    public var slots: [Slot]
    public var averages: [Average] = []
    /// Updates applied so far (Adam's bias correction uses it).
    public var t = 0

    public init(kind: String, slots: [Slot], momentum: Double, weightDecay: Double, beta1: Double, beta2: Double, epsilon: Double) {
        self.kind = kind
        self.slots = slots
        (self.momentum, self.weightDecay) = (Float(momentum), Float(weightDecay))
        (self.beta1, self.beta2, self.epsilon) = (Float(beta1), Float(beta2), Float(epsilon))
    }

    public func step(lr: Double) {
        t += 1
        let correction = kind == "adam" ? Float((1 - pow(Double(beta2), Double(t))).squareRoot() / (1 - pow(Double(beta1), Double(t)))) : 1
        for k in slots.indices {
            let s = slots[k]
            let rate = Float(lr * s.param.lrMult), decay = weightDecay * Float(s.param.decayMult)
            let (w, g, n) = (s.weights, s.gradient, s.count)
            if kind == "adam" {
                let (b1, b2, eps) = (beta1, beta2, epsilon)
                // Moved out of the slot: two nested mutable accesses to slots[k] break exclusivity.
                var (m1, v1) = (slots[k].m, slots[k].v)
                (slots[k].m, slots[k].v) = ([], [])
                m1.withUnsafeMutableBufferPointer { m in
                    v1.withUnsafeMutableBufferPointer { v in
                        for i in 0..<n {
                            let gi = g[i] + decay * w[i]
                            m[i] = b1 * m[i] + (1 - b1) * gi
                            v[i] = b2 * v[i] + (1 - b2) * gi * gi
                            w[i] -= rate * correction * m[i] / (v[i].squareRoot() + eps)
                        }
                    }
                }
                (slots[k].m, slots[k].v) = (m1, v1)
            } else {
                let mom = momentum
                slots[k].m.withUnsafeMutableBufferPointer { m in
                    for i in 0..<n {
                        m[i] = mom * m[i] + rate * (g[i] + decay * w[i])
                        w[i] -= m[i]
                    }
                }
            }
        }
        for a in averages {
            for i in 0..<a.count { a.weights[i] = a.momentum * a.weights[i] + (1 - a.momentum) * a.correction * a.source[i] }
        }
    }

    /// Optimizer state as named tensors for checkpoints.
    public var state: [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for s in slots {
            let shape = s.param.type.shape ?? [s.count]
            out.append(("solver.m." + s.param.name, Tensor(shape: shape, data: s.m)))
            if kind == "adam" { out.append(("solver.v." + s.param.name, Tensor(shape: shape, data: s.v))) }
        }
        return out
    }

    public func restore(_ tensors: [String: Tensor], t: Int) throws {
        self.t = t
        for k in slots.indices {
            let name = slots[k].param.name
            guard let m = tensors["solver.m." + name], m.count == slots[k].count else {
                throw TrainingError("checkpoint lacks solver state for '\(name)'")
            }
            slots[k].m = m.data
            if kind == "adam" {
                guard let v = tensors["solver.v." + name], v.count == slots[k].count else {
                    throw TrainingError("checkpoint lacks Adam state for '\(name)'")
                }
                slots[k].v = v.data
            }
        }
    }
}

public struct TrainingError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
