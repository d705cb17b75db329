import AllocationCounter
import Autodiff
import Foundation
import IR
import Runtime
import Training
import XCTest

/// A steady-state step allocates nothing: every temporary lives in the planned arena, every kernel's
/// scratch in its booked workspace, the batch in the step's own buffers. After warm-up steps,
/// allocations over `bound` bytes are counted (malloc and the aligned allocators interposed, see
/// Tests/AllocationCounter) over further steps: none is allowed. Small ones (Swift's and Dispatch's
/// own bookkeeping, a metrics line) are not counted, nor OpenBLAS's own: its threaded GEMM mallocs
/// a 512 KB job table on every call (counted apart and printed).
final class AllocationTests: XCTestCase {
    static let bound = 4096

    func counting(_ body: () throws -> Void) rethrows -> [Int] {
        allocation_counter_start(Self.bound)
        try body()
        return Self.stop()
    }

    /// Stops counting: the sizes of the allocations over the bound (the first 16, then a count of
    /// the rest, -1 each); prints how many OpenBLAS made.
    static func stop() -> [Int] {
        let n = allocation_counter_stop()
        print("allocations over \(bound) bytes: \(n), and \(allocation_counter_blas()) by OpenBLAS (its GEMM's job table)")
        return (0..<min(n, 16)).map { Int(allocation_counter_size($0)) } + Array(repeating: -1, count: max(0, n - 16))
    }

    func requireCounter() throws {
        guard allocation_counter_available() != 0 else {
            throw XCTSkip("the allocators are not interposed here (a sanitizer build brings its own)")
        }
        // The interposition works: a large allocation is seen (Swift's aligned allocation, which
        // the optimiser cannot elide as it may a malloc and free pair).
        let seen = counting { UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 64).deallocate() }
        XCTAssertEqual(seen, [1 << 20], "the allocation counter does not see the allocators")
    }

    /// ExpNet48's stage-2 training step (the batch preprocessed straight into the step's input,
    /// forward, backward, SGD update) through the trainer, batch 8: steps 3 to 5 allocate nothing
    /// over the bound.
    func testTrainingStepAllocatesNothing() throws {
        try requireCounter()
        let graph = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path + "/Graphs/expnet48_stage2.fn2e"
        let s = try Toy.settings("alloc", ["graph": graph, "batch": "8", "iterations": "6", "eval_interval": "1000",
                                           "checkpoint_interval": "1000", "lr": "0.01"])
        let trainer = try Toy.trainer(s)
        var calls = 0
        var sizes: [Int] = []
        _ = try trainer.train(shouldStop: {
            // Polled before each step: count over steps 3, 4 and 5.
            if calls == 2 { allocation_counter_start(Self.bound) }
            if calls == 5 { sizes = Self.stop() }
            calls += 1
            return false
        })
        XCTAssertEqual(calls, 6)
        XCTAssertEqual(sizes, [], "allocations over \(Self.bound) bytes in 3 steady-state training steps (sizes in bytes)")
    }

    /// A VGG-Face-shaped forward (VGG-Face's 13 convolutions in five blocks, three fully connected
    /// layers and the softmax over 2622 identities) at 64x64, batch 2: runs 3 and 4 allocate nothing
    /// over the bound. The first block runs as convolution+pool chains, as at 224x224.
    func testForwardAllocatesNothing() throws {
        try requireCounter()
        let cache = CompiledGraph(graph: try Self.vggShaped(size: 64), weights: [])
        let ex = try cache.executor(batch: 2)
        XCTAssert(ex.schedule.kernels.contains { $0.label.contains("+max_pool") }, "no conv+pool chain in the schedule")
        ex.run()
        ex.run()
        let sizes = counting { ex.run(); ex.run() }
        XCTAssertEqual(sizes, [], "allocations over \(Self.bound) bytes in 2 forward passes (sizes in bytes)")
    }

    /// The kernels that used to allocate their scratch while they ran (LRN across and within
    /// channels, softmax over channels, l2 normalisation; 64 KB an image here) take it from
    /// their booked workspace: a forward and a training step of them allocate nothing over the bound.
    func testNormalisationsAllocateNothing() throws {
        try requireCounter()
        func graph(within: Bool) throws -> Graph {
            // lrn_backward is across channels only: the training step leaves the within-channel LRN out.
            let text = """
                fn2e 1
                graph @scratch(%x: f32[N,16,32,32]) {
                  param %w: f32[16,16,1,1] = msra
                  %c = conv2d(%x, %w)
                  %a = lrn(%c) {size=5, alpha=0.0001, beta=0.75}
                  %b = \(within ? "lrn(%a) {size=3, alpha=0.0001, beta=0.75, region=within_channel}" : "relu(%a)")
                  %s = softmax(%b) {axis=1}
                  %d = l2_normalize(%s) {across_spatial=false}
                  %loss = mean(%d)
                  return %loss
                }
                """
            return try XCTUnwrap(try Loader.load(text: text, file: "scratch.fn2e").graphs["scratch"])
        }
        for (what, g) in [("forward", try graph(within: true)), ("training step", try Autodiff.gradient(of: try graph(within: false), loss: "loss"))] {
            let ex = try CompiledGraph(graph: g).executor(batch: 2)
            XCTAssertGreaterThanOrEqual(ex.schedule.kernels.filter { $0.workspaceBytes > 0 }.count, 3, what)
            ex.run()
            let sizes = counting { ex.run(); ex.run() }
            XCTAssertEqual(sizes, [], "\(what): allocations over \(Self.bound) bytes in 2 runs (sizes in bytes)")
        }
    }

    /// VGG-Face's layers for a `size`x`size` RGB input.
    static func vggShaped(size: Int) throws -> Graph {
        var params = "", body = "", x = "%data", c = 3, h = size
        for (block, (width, count)) in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)].enumerated() {
            for k in 1...count {
                let n = "conv\(block + 1)_\(k)"
                params += "  param %\(n).weight: f32[\(width),\(c),3,3] = msra\n  param %\(n).bias: f32[\(width)] = zeros\n"
                body += "  %\(n) = conv2d(\(x), %\(n).weight, %\(n).bias) {pad=1}\n  %relu\(block + 1)_\(k) = relu(%\(n))\n"
                (x, c) = ("%relu\(block + 1)_\(k)", width)
            }
            body += "  %pool\(block + 1) = max_pool(\(x)) {kernel=2, stride=2}\n"
            (x, h) = ("%pool\(block + 1)", h / 2)
        }
        body += "  %flat = flatten(\(x))\n"
        x = "%flat"
        var inputs = c * h * h
        for (name, width) in [("fc6", 4096), ("fc7", 4096), ("fc8", 2622)] {
            params += "  param %\(name).weight: f32[\(width),\(inputs)] = gaussian(0.01)\n  param %\(name).bias: f32[\(width)] = zeros\n"
            body += "  %\(name) = linear(\(x), %\(name).weight, %\(name).bias)\n"
            x = "%\(name)"
            if name != "fc8" { body += "  %relu_\(name) = relu(\(x))\n"; x = "%relu_\(name)" }
            inputs = width
        }
        body += "  %prob = softmax(\(x))\n  return %prob\n"
        let text = "fn2e 1\ngraph @vgg_shaped(%data: f32[N,3,\(size),\(size)]) {\n" + params + body + "}\n"
        return try Loader.load(text: text, file: "vgg_shaped.fn2e").graph()!
    }
}
