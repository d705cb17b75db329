import Kernels
import Shapes
import Reference
import Tensors
import XCTest

final class ElementwiseTests: XCTestCase {
    let shape = [3, 4, 5, 3]
    var count: Int { shape.reduce(1, *) }

    /// PReLU in place (as the scheduler runs it) over planes of 37 values (two 16-wide vectors and a
    /// tail), one slope per channel and a shared one, NaN and zeros included, against the reference.
    func testPReLUInPlaceOverVectors() {
        let shape = [2, 3, 37], count = 2 * 3 * 37
        var x = rounded(randomValues(count, seed: 11))
        (x[5], x[40], x[100]) = (0, -0.0, .nan)
        for slopeCount in [3, 1] {
            let a = rounded(randomValues(slopeCount, seed: 12, scale: 0.5))
            var y = floats(x)
            y.withUnsafeMutableBufferPointer { b in
                FastOps.prelu(x: b.baseAddress!, slope: floats(a), y: b.baseAddress!, batch: 2, channels: 3, spatial: 37, slopeCount: slopeCount)
            }
            let want = RefOps.prelu(x: x, shape: shape, slope: a)
            XCTAssertTrue(y[100].isNaN, "NaN stays NaN")
            assertClose(y.enumerated().filter { $0.offset != 100 }.map(\.element),
                        want.enumerated().filter { $0.offset != 100 }.map(\.element), "prelu in place, \(slopeCount) slopes")
        }
    }

    func testReluAndPrelu() {
        let x = rounded(randomValues(count, seed: 1)), dy = rounded(randomValues(count, seed: 2))
        for slope in [0.0, 0.1] {
            var y = [Float](repeating: .nan, count: count)
            FastOps.relu(x: floats(x), y: &y, count: count, negativeSlope: Float(slope))
            assertClose(y, RefOps.relu(x, negativeSlope: slope), "relu \(slope)")
            var dx = [Float](repeating: .nan, count: count)
            FastOps.reluBackward(dy: floats(dy), x: floats(x), dx: &dx, count: count, negativeSlope: Float(slope))
            let refDx = RefOps.reluBackward(dy: dy, x: x, negativeSlope: slope)
            assertClose(dx, refDx, "relu backward \(slope)")
            checkGradient("relu \(slope)", x: x, analytic: refDx, skip: { abs(x[$0]) < 1e-3 }) {
                project(RefOps.relu($0, negativeSlope: slope), dy)
            }
        }
        for slopeCount in [shape[1], 1] {
            let a = rounded(randomValues(slopeCount, seed: 3, scale: 0.3))
            var y = [Float](repeating: .nan, count: count)
            FastOps.prelu(x: floats(x), slope: floats(a), y: &y, batch: shape[0], channels: shape[1], spatial: 15, slopeCount: slopeCount)
            assertClose(y, RefOps.prelu(x: x, shape: shape, slope: a), "prelu \(slopeCount)")
            var dx = [Float](repeating: .nan, count: count), da = [Float](repeating: .nan, count: slopeCount)
            FastOps.preluBackward(dy: floats(dy), x: floats(x), slope: floats(a), dx: &dx, dslope: &da,
                                  batch: shape[0], channels: shape[1], spatial: 15, slopeCount: slopeCount)
            let r = RefOps.preluBackward(dy: dy, x: x, shape: shape, slope: a)
            assertClose(dx, r.dx, "prelu dx \(slopeCount)")
            assertClose(da, r.dslope, "prelu dslope \(slopeCount)")
            checkGradient("prelu dx", x: x, analytic: r.dx, skip: { abs(x[$0]) < 1e-3 }) { project(RefOps.prelu(x: $0, shape: self.shape, slope: a), dy) }
            checkGradient("prelu dslope", x: a, analytic: r.dslope) { project(RefOps.prelu(x: x, shape: self.shape, slope: $0), dy) }
        }
    }

    func testSigmoidTanh() {
        let x = rounded(randomValues(count, seed: 4, scale: 3)), dy = rounded(randomValues(count, seed: 5))
        var y = [Float](repeating: .nan, count: count), dx = [Float](repeating: .nan, count: count)
        FastOps.sigmoid(x: floats(x), y: &y, count: count)
        let ys = RefOps.sigmoid(x)
        assertClose(y, ys, "sigmoid")
        FastOps.sigmoidBackward(dy: floats(dy), y: floats(ys), dx: &dx, count: count)
        let rs = RefOps.sigmoidBackward(dy: dy, y: ys)
        assertClose(dx, rs, "sigmoid backward")
        checkGradient("sigmoid", x: x, analytic: rs) { project(RefOps.sigmoid($0), dy) }
        FastOps.tanh(x: floats(x), y: &y, count: count)
        let yt = RefOps.tanh(x)
        assertClose(y, yt, "tanh")
        FastOps.tanhBackward(dy: floats(dy), y: floats(yt), dx: &dx, count: count)
        let rt = RefOps.tanhBackward(dy: dy, y: yt)
        assertClose(dx, rt, "tanh backward")
        checkGradient("tanh", x: x, analytic: rt) { project(RefOps.tanh($0), dy) }
    }

    func testBroadcastBinaryAndReduceToShape() {
        let pairs: [([Int], [Int])] = [
            ([2, 3, 4, 5], [2, 3, 4, 5]), ([2, 3, 4, 5], [1, 3, 1, 1]), ([1, 3, 1, 1], [2, 3, 4, 5]),
            ([3, 1, 5], [2, 1, 4, 1]), ([4], [2, 3, 4]), ([], [2, 3]), ([2, 3, 1], [1, 1, 4]), ([2, 3, 4, 5], [3, 1, 1]),
            ([2, 1, 3, 1, 2], [1, 4, 1, 5, 1]),
        ]
        for (pi, (sa, sb)) in pairs.enumerated() {
            let a = rounded(randomValues(sa.reduce(1, *), seed: UInt64(10 + pi)))
            let b = rounded(randomValues(sb.reduce(1, *), seed: UInt64(20 + pi)))
            for op in RefOps.BinaryOp.allCases {
                // div's divisors kept at least 0.5 from 0.
                let b = op == .div ? b.map { $0 < 0 ? $0 - 0.5 : $0 + 0.5 } : b
                let ref = RefOps.binary(op, a: a, aShape: sa, b: b, bShape: sb)
                XCTAssertEqual(broadcastShape(sa, sb), ref.shape)
                var y = [Float](repeating: .nan, count: ref.out.count)
                FastOps.binary(FastOps.BinaryOp(rawValue: op.rawValue)!, a: floats(a), aShape: sa, b: floats(b), bShape: sb, y: &y)
                assertClose(y, ref.out, "\(op) \(sa) \(sb)")
            }
            // Gradient of a·b with respect to b: reduce (dy · a) back to b's shape.
            let outShape = broadcastShape(sa, sb)!
            let dy = rounded(randomValues(outShape.reduce(1, *), seed: UInt64(30 + pi)))
            let dyA = RefOps.binary(.mul, a: dy, aShape: outShape, b: a, bShape: sa).out
            let db = RefOps.reduceToShape(dyA, gShape: outShape, to: sb)
            checkGradient("mul broadcast db \(sa) \(sb)", x: b, analytic: db) {
                project(RefOps.binary(.mul, a: a, aShape: sa, b: $0, bShape: sb).out, dy)
            }
            var fastDb = [Float](repeating: .nan, count: b.count)
            FastOps.reduceToShape(g: floats(dyA), gShape: outShape, out: &fastDb, shape: sb)
            assertClose(fastDb, db, "reduceToShape \(outShape) -> \(sb)")
            var fastDa = [Float](repeating: .nan, count: a.count)
            FastOps.reduceToShape(g: floats(dy), gShape: outShape, out: &fastDa, shape: sa)
            assertClose(fastDa, RefOps.reduceToShape(dy, gShape: outShape, to: sa), "reduceToShape \(outShape) -> \(sa)")
        }
    }

    /// maximum's gradient per operand, broadcast expansion, batch_norm's gradient with given
    /// statistics, and dropout masks, against naive Double loops.
    func testGradientHelpers() {
        let (aShape, bShape, out) = ([3, 1, 5], [4, 1], [3, 4, 5])
        let count = out.reduce(1, *)
        var a = rounded(randomValues(15, seed: 4)), b = rounded(randomValues(4, seed: 5))
        a[0] = b[0]  // a tie: operand 0 wins it
        let dy = rounded(randomValues(count, seed: 6))
        let ea = RefOps.binary(.add, a: a, aShape: aShape, b: [Double](repeating: 0, count: count), bShape: out).out
        let eb = RefOps.binary(.add, a: b, aShape: bShape, b: [Double](repeating: 0, count: count), bShape: out).out
        var expanded = [Float](repeating: .nan, count: count)
        FastOps.broadcast(x: floats(a), xShape: aShape, y: &expanded, shape: out, factor: 0.5)
        assertClose(expanded, ea.map { $0 * 0.5 }, "broadcast")
        for operand in [0, 1] {
            var dx = [Float](repeating: .nan, count: count), ws = [Float](repeating: .nan, count: count)
            FastOps.maximumBackward(a: floats(a), aShape: aShape, b: floats(b), bShape: bShape, dy: floats(dy), dx: &dx,
                                    shape: out, operand: operand, workspace: &ws)
            let ref = (0..<count).map { (operand == 0 ? ea[$0] >= eb[$0] : eb[$0] > ea[$0]) ? dy[$0] : 0 }
            assertClose(dx, ref, "maximum backward, operand \(operand)")
        }
        let variance = rounded(randomValues(4, seed: 7)).map(abs)
        var dx = [Float](repeating: .nan, count: count)
        FastOps.batchNormGivenStatisticsBackward(dy: floats(dy), variance: floats(variance), eps: 1e-3, dx: &dx, batch: 3, channels: 4, spatial: 5)
        assertClose(dx, (0..<count).map { dy[$0] / (variance[($0 / 5) % 4] + Double(Float(1e-3))).squareRoot() }, "batch_norm backward")
        var mask = [Float](repeating: .nan, count: 20000), rng = Xoshiro256(seed: 8)
        FastOps.dropoutMask(y: &mask, count: mask.count, ratio: 0.25) { rng.nextFloat() }
        XCTAssertEqual(Set(mask), [0, Float(1 / 0.75)])
        XCTAssertEqual(Double(mask.filter { $0 == 0 }.count) / 20000, 0.25, accuracy: 0.02)
    }

    func testAffineDropoutChannelOps() {
        let x = rounded(randomValues(count, seed: 6)), dy = rounded(randomValues(count, seed: 7))
        var y = [Float](repeating: .nan, count: count)
        FastOps.affine(x: floats(x), y: &y, count: count, scale: 0.5, shift: -2)
        assertClose(y, RefOps.affine(x, scale: 0.5, shift: -2), "affine")

        var rng = Xoshiro256(seed: 9)
        let mask = rng.dropoutMask(count: count, ratio: 0.25)
        XCTAssertTrue(mask.allSatisfy { $0 == 0 || abs($0 - 1 / 0.75) < 1e-6 })
        let dropped = mask.filter { $0 == 0 }.count
        XCTAssertTrue(dropped > count / 8 && dropped < count * 3 / 8, "dropped \(dropped) of \(count)")
        FastOps.dropout(x: floats(x), mask: mask, y: &y, count: count)
        assertClose(y, RefOps.dropout(x, mask: mask.map(Double.init)), "dropout")

        let (n, c, sp) = (shape[0], shape[1], 15)
        let g = rounded(randomValues(c, seed: 8)), b = rounded(randomValues(c, seed: 9))
        FastOps.channelScale(x: floats(x), scale: floats(g), bias: floats(b), y: &y, batch: n, channels: c, spatial: sp)
        assertClose(y, RefOps.channelScale(x: x, shape: shape, scale: g, bias: b), "channel scale")
        FastOps.channelScale(x: floats(x), scale: floats(g), bias: floats(b), y: &y, batch: n, channels: c, spatial: sp,
                             activation: .relu(negativeSlope: 0))
        assertClose(y, RefOps.relu(RefOps.channelScale(x: x, shape: shape, scale: g, bias: b), negativeSlope: 0), "channel scale + relu")
        FastOps.channelScale(x: floats(x), scale: nil, bias: floats(b), y: &y, batch: n, channels: c, spatial: sp)
        assertClose(y, RefOps.channelBias(x: x, shape: shape, bias: b), "channel bias")
        let r = RefOps.channelScaleBackward(dy: dy, x: x, shape: shape, scale: g)
        var dg = [Float](repeating: .nan, count: c)
        FastOps.sum(x: floats(dy), times: floats(x), shape: shape, axes: [0, 2, 3], y: &dg)
        assertClose(dg, r.dscale, "sum of a product (the scale's gamma gradient)")
        checkGradient("scale dx", x: x, analytic: r.dx) { project(RefOps.channelScale(x: $0, shape: self.shape, scale: g, bias: b), dy) }
        checkGradient("scale dg", x: g, analytic: r.dscale) { project(RefOps.channelScale(x: x, shape: self.shape, scale: $0, bias: b), dy) }
        checkGradient("scale db", x: b, analytic: r.dbias) { project(RefOps.channelScale(x: x, shape: self.shape, scale: g, bias: $0), dy) }

        let mean = rounded(randomValues(c, seed: 10)), variance = rounded(randomValues(c, seed: 11).map { abs($0) + 0.5 })
        FastOps.batchNorm(x: floats(x), mean: floats(mean), variance: floats(variance), eps: 1e-5, y: &y, batch: n, channels: c, spatial: sp)
        assertClose(y, RefOps.batchNorm(x: x, shape: shape, mean: mean, variance: variance, eps: Double(Float(1e-5))), "batch norm")
        var dx = [Float](repeating: .nan, count: count), dm = [Float](repeating: .nan, count: c), dv = [Float](repeating: .nan, count: c)
        FastOps.batchNormBackward(dy: floats(dy), x: floats(x), mean: floats(mean), variance: floats(variance), eps: 1e-5,
                                  dx: &dx, dmean: &dm, dvariance: &dv, batch: n, channels: c, spatial: sp)
        let eps = Double(Float(1e-5))
        let rb = RefOps.batchNormBackward(dy: dy, x: x, shape: shape, mean: mean, variance: variance, eps: eps)
        assertClose(dx, rb.dx, "bn dx"); assertClose(dm, rb.dmean, "bn dmean"); assertClose(dv, rb.dvariance, "bn dvar")
        checkGradient("bn dx", x: x, analytic: rb.dx) { project(RefOps.batchNorm(x: $0, shape: self.shape, mean: mean, variance: variance, eps: eps), dy) }
        checkGradient("bn dmean", x: mean, analytic: rb.dmean) { project(RefOps.batchNorm(x: x, shape: self.shape, mean: $0, variance: variance, eps: eps), dy) }
        checkGradient("bn dvar", x: variance, analytic: rb.dvariance) { project(RefOps.batchNorm(x: x, shape: self.shape, mean: mean, variance: $0, eps: eps), dy) }
    }

    /// Batch norm with the batch's statistics: moments, forward (out of place and in place) and the
    /// gradient through the statistics, against the Double reference (the reference's gradient is the
    /// chain rule through mean and variance; here also checked by finite differences), and the gradient
    /// through a following scale (gamma folded in). Two shapes: channels split over both workers, and
    /// one large enough to run in parallel, whose planes (600) end in a partial vector.
    func testBatchNormTrain() {
        for (shape, seed) in [([3, 4, 5, 3], UInt64(40)), ([8, 6, 24, 25], UInt64(41))] {
            let (n, c, sp) = (shape[0], shape[1], shape[2...].reduce(1, *)), count = shape.reduce(1, *)
            let x = rounded(randomValues(count, seed: seed, scale: 3).map { $0 + 1 }), dy = rounded(randomValues(count, seed: seed + 1))
            let eps = 1e-3
            var moments = [Float](repeating: .nan, count: 2 * c), y = [Float](repeating: .nan, count: count)
            FastOps.batchMoments(x: floats(x), moments: &moments, batch: n, channels: c, spatial: sp)
            let (m, v) = RefOps.batchMoments(x: x, shape: shape)
            assertClose(moments, m + v, "batch moments \(shape)")
            FastOps.batchNormTrain(x: floats(x), y: &y, eps: Float(eps), batch: n, channels: c, spatial: sp)
            let ry = RefOps.batchNormTrain(x: x, shape: shape, eps: eps)
            assertClose(y, ry, "batch_norm_train \(shape)")
            var inPlace = floats(x)
            inPlace.withUnsafeMutableBufferPointer { p in
                FastOps.batchNormTrain(x: p.baseAddress!, y: p.baseAddress!, eps: Float(eps), batch: n, channels: c, spatial: sp)
            }
            XCTAssertEqual(inPlace, y, "batch_norm_train in place \(shape)")
            var dx = [Float](repeating: .nan, count: count)
            FastOps.batchNormTrainBackward(x: floats(x), dy: floats(dy), dx: &dx, eps: Float(eps), batch: n, channels: c, spatial: sp)
            let rdx = RefOps.batchNormTrainBackward(dy: dy, x: x, shape: shape, eps: eps)
            assertClose(dx, rdx, "batch_norm_train_backward \(shape)")
            let gamma = rounded(randomValues(c, seed: seed + 2))
            FastOps.batchNormTrainBackward(x: floats(x), dy: floats(dy), moments: moments, scale: floats(gamma), dx: &dx, eps: Float(eps),
                                           batch: n, channels: c, spatial: sp)
            let scaled = RefOps.channelScaleBackward(dy: dy, x: ry, shape: shape, scale: gamma).dx
            assertClose(dx, RefOps.batchNormTrainBackward(dy: scaled, x: x, shape: shape, eps: eps), "batch_norm_train_backward, scaled \(shape)")
            // Folded into the scale after it (its ReLU fused or not) and into gamma's gradient Σ dy · x̂, from x
            // and the moments (Scheduler.foldBatchNormTrain): x̂ never written.
            let beta = rounded(randomValues(c, seed: seed + 3)), affine = RefOps.channelScale(x: ry, shape: shape, scale: gamma, bias: beta)
            moments.withUnsafeBufferPointer { m in
                for act in [Activation.none, .relu(negativeSlope: 0)] {
                    FastOps.channelScale(x: floats(x), scale: floats(gamma), bias: floats(beta), y: &y, batch: n, channels: c, spatial: sp,
                                         activation: act, normalizing: (m.baseAddress!, Float(eps)))
                    assertClose(y, act == .none ? affine : RefOps.relu(affine, negativeSlope: 0), "batch_norm_train+scale \(act) \(shape)")
                }
                var dgamma = [Float](repeating: .nan, count: c)
                FastOps.sum(x: floats(dy), times: floats(x), normalizing: (m.baseAddress!, Float(eps)), shape: shape, axes: [0, 2, 3], y: &dgamma)
                assertClose(dgamma, RefOps.channelScaleBackward(dy: dy, x: ry, shape: shape, scale: gamma).dscale, "gamma gradient from x \(shape)")
            }
            if count < 1000 {
                checkGradient("batch_norm_train dx", x: x, analytic: rdx) { project(RefOps.batchNormTrain(x: $0, shape: shape, eps: eps), dy) }
            }
        }
    }

    func testLRN() {
        let shape = [2, 7, 3, 4]
        let count = shape.reduce(1, *)
        let x = rounded(randomValues(count, seed: 12, scale: 2)), dy = rounded(randomValues(count, seed: 13))
        var ws = [Float](repeating: .nan, count: 2 * count)  // the largest workspace: scale and ratio of the backward
        for (size, alpha, beta, k) in [(5, 1e-4, 0.75, 1.0), (3, 0.5, 0.75, 2.0), (1, 0.3, 0.5, 1.0)] {
            var y = [Float](repeating: .nan, count: count)
            FastOps.lrnAcross(x: floats(x), y: &y, batch: 2, channels: 7, spatial: 12, size: size, alpha: Float(alpha), beta: Float(beta), k: Float(k),
                              workspace: &ws)
            let ref = RefOps.lrnAcross(x: x, shape: shape, size: size, alpha: Double(Float(alpha)), beta: Double(Float(beta)), k: k)
            assertClose(y, ref, "lrn across size \(size)")
            var dx = [Float](repeating: .nan, count: count)
            FastOps.lrnAcrossBackward(dy: floats(dy), x: floats(x), y: floats(ref), dx: &dx, batch: 2, channels: 7, spatial: 12,
                                      size: size, alpha: Float(alpha), beta: Float(beta), k: Float(k), workspace: &ws)
            let refDx = RefOps.lrnAcrossBackward(dy: dy, x: x, shape: shape, size: size, alpha: alpha, beta: beta, k: k)
            assertClose(dx, refDx, "lrn across backward size \(size)")
            checkGradient("lrn across size \(size)", x: x, analytic: refDx) {
                project(RefOps.lrnAcross(x: $0, shape: shape, size: size, alpha: alpha, beta: beta, k: k), dy)
            }
            FastOps.lrnWithin(x: floats(x), y: &y, batch: 2, channels: 7, height: 3, width: 4, size: size, alpha: Float(alpha), beta: Float(beta),
                              workspace: &ws)
            assertClose(y, RefOps.lrnWithin(x: x, shape: shape, size: size, alpha: Double(Float(alpha)), beta: Double(Float(beta))), "lrn within size \(size)")
        }
    }

    func testSoftmaxAndLosses() {
        for shape in [[3, 5], [2, 4, 3, 2], [1, 6, 5]] {
            let count = shape.reduce(1, *), (n, c) = (shape[0], shape[1]), inner = count / (shape[0] * shape[1])
            let x = rounded(randomValues(count, seed: 14, scale: 4)), dy = rounded(randomValues(count, seed: 15))
            var y = [Float](repeating: .nan, count: count), dx = [Float](repeating: .nan, count: count)
            var ws = [Float](repeating: .nan, count: 2 * n * inner)
            FastOps.softmax(x: floats(x), y: &y, batch: n, channels: c, inner: inner, workspace: &ws)
            let ys = RefOps.softmax(x: x, shape: shape)
            assertClose(y, ys, "softmax \(shape)")
            FastOps.softmaxBackward(dy: floats(dy), y: floats(ys), dx: &dx, batch: n, channels: c, inner: inner, workspace: &ws)
            let rs = RefOps.softmaxBackward(dy: dy, y: ys, shape: shape)
            assertClose(dx, rs, "softmax backward \(shape)")
            checkGradient("softmax \(shape)", x: x, analytic: rs) { project(RefOps.softmax(x: $0, shape: shape), dy) }

            FastOps.softmax(x: floats(x), y: &y, batch: n, channels: c, inner: inner, log: true, workspace: &ws)
            let yl = RefOps.logSoftmax(x: x, shape: shape)
            assertClose(y, yl, "log softmax \(shape)")
            FastOps.logSoftmaxBackward(dy: floats(dy), y: floats(yl), dx: &dx, batch: n, channels: c, inner: inner, workspace: &ws)
            let rl = RefOps.logSoftmaxBackward(dy: dy, y: yl, shape: shape)
            assertClose(dx, rl, "log softmax backward \(shape)")
            checkGradient("log softmax \(shape)", x: x, analytic: rl) { project(RefOps.logSoftmax(x: $0, shape: shape), dy) }
        }
        // Large logits stay finite (max subtracted).
        var big = [Float](repeating: .nan, count: 3), bigWorkspace = [Float](repeating: .nan, count: 2)
        FastOps.softmax(x: [1000, 1001, 999], y: &big, batch: 1, channels: 3, inner: 1, workspace: &bigWorkspace)
        XCTAssertTrue(big.allSatisfy(\.isFinite))

        let (n, c) = (4, 5)
        let logits = rounded(randomValues(n * c, seed: 16, scale: 3))
        let labels: [Int32] = [0, 4, 2, 2]
        let ref = RefOps.softmaxCrossEntropy(logits: logits, n: n, c: c, labels: labels)
        var probs = [Float](repeating: .nan, count: n * c)
        let loss = FastOps.softmaxCrossEntropy(logits: floats(logits), labels: labels, probs: &probs, batch: n, classes: c)
        assertClose([loss], [ref.loss], "cross-entropy loss")
        assertClose(probs, ref.probs, "cross-entropy probs")
        var dl = [Float](repeating: .nan, count: n * c)
        FastOps.softmaxCrossEntropyBackward(probs: probs, labels: labels, dlogits: &dl, batch: n, classes: c, upstream: 0.5)
        let refD = RefOps.softmaxCrossEntropyBackward(probs: ref.probs, n: n, c: c, labels: labels, upstream: 0.5)
        assertClose(dl, refD, "cross-entropy backward")
        checkGradient("cross-entropy", x: logits, analytic: refD) { 0.5 * RefOps.softmaxCrossEntropy(logits: $0, n: n, c: c, labels: labels).loss }

        let a = rounded(randomValues(12, seed: 17)), b = rounded(randomValues(12, seed: 18))
        let el = FastOps.euclideanLoss(a: floats(a), b: floats(b), count: 12, batch: 3)
        assertClose([el], [RefOps.euclideanLoss(a: a, b: b, batch: 3)], "euclidean loss")
        var da = [Float](repeating: .nan, count: 12)
        FastOps.euclideanLossBackward(a: floats(a), b: floats(b), da: &da, count: 12, batch: 3, upstream: 2)
        let refDa = RefOps.euclideanLossBackward(a: a, b: b, batch: 3, upstream: 2)
        assertClose(da, refDa, "euclidean backward")
        checkGradient("euclidean", x: a, analytic: refDa) { 2 * RefOps.euclideanLoss(a: $0, b: b, batch: 3) }
    }
}
