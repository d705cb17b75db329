import IR
import Shapes
import XCTest

/// The inferred type of every op, through the parser and verifier as a user would write it.
final class ShapeInferenceTests: XCTestCase {
    /// The type of `%y` in a graph with the given inputs, parameters and node lines.
    func type(_ inputs: String, _ body: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        let text = "fn2e 1\ngraph @g(\(inputs)) {\n\(body)\n  return %y\n}\n"
        do {
            let p = try Loader.load(text: text, file: "t.fn2e")
            return p.graphs["g"]?.type(of: "y")?.description ?? "untyped"
        } catch {
            return "error: \(error)"
        }
    }

    func testConv() {
        XCTAssertEqual(type("%x: f32[N,3,224,224]", "param %w: f32[64,3,3,3] = msra\n%y = conv2d(%x, %w) {pad=1}"), "f32[N,64,224,224]")
        XCTAssertEqual(type("%x: f32[2,3,11,11]", "param %w: f32[8,3,5,5] = msra\n%y = conv2d(%x, %w) {stride=2}"), "f32[2,8,4,4]")
        XCTAssertEqual(type("%x: f32[1,4,9,9]", "param %w: f32[6,2,3,3] = msra\n%y = conv2d(%x, %w) {groups=2, dilation=2}"), "f32[1,6,5,5]")
        XCTAssert(type("%x: f32[1,4,9,9]", "param %w: f32[6,4,3,3] = msra\nparam %b: f32[5] = zeros\n%y = conv2d(%x, %w, %b)").contains("conv2d bias must be f32[6]"))
        XCTAssert(type("%x: f32[1,4,2,2]", "param %w: f32[6,4,3,3] = msra\n%y = conv2d(%x, %w)").contains("does not fit"))
    }

    func testPoolingRounding() {
        // 6x6, kernel 3, stride 2, pad 1: floor gives (6+2-3)/2+1 = 3, ceil gives ceil(5/2)+1 = 4; the 4th
        // window starts at row 3*2-1 = 5, inside the image, so Caffe keeps it.
        XCTAssertEqual(type("%x: f32[N,1,6,6]", "%y = max_pool(%x) {kernel=3, stride=2, pad=1, round=ceil}"), "f32[N,1,4,4]")
        XCTAssertEqual(type("%x: f32[N,1,6,6]", "%y = max_pool(%x) {kernel=3, stride=2, pad=1}"), "f32[N,1,3,3]")
        // 7x7, kernel 2, stride 2, pad 1: ceil(7/2)+1 = 5, but the 5th window would start at 4*2-1 = 7,
        // in the padding (7 >= size), so Caffe drops it: 4, the same as floor.
        XCTAssertEqual(type("%x: f32[N,1,7,7]", "%y = max_pool(%x) {kernel=2, stride=2, pad=1, round=ceil}"), "f32[N,1,4,4]")
        XCTAssertEqual(type("%x: f32[N,1,7,7]", "%y = avg_pool(%x) {kernel=2, stride=2, pad=1}"), "f32[N,1,4,4]")
        // Without padding ceil and floor differ: 7 -> floor 3, ceil 4 (last window hangs over the edge).
        XCTAssertEqual(type("%x: f32[N,1,7,7]", "%y = max_pool(%x) {kernel=2, stride=2}"), "f32[N,1,3,3]")
        XCTAssertEqual(type("%x: f32[N,1,7,7]", "%y = avg_pool(%x) {kernel=2, stride=2, round=ceil}"), "f32[N,1,4,4]")
        XCTAssertEqual(type("%x: f32[N,1,112,112]", "%y = max_pool(%x) {kernel=3, stride=2, round=ceil}"), "f32[N,1,56,56]")
        XCTAssertEqual(type("%x: f32[N,5,7,3]", "%y = avg_pool(%x) {global=true}"), "f32[N,5,1,1]")
        XCTAssertEqual(poolOutputSize(input: 6, kernel: 3, stride: 2, pad: 1, ceil: true), 4)
        XCTAssertEqual(poolOutputSize(input: 7, kernel: 2, stride: 2, pad: 1, ceil: true), 4)
        XCTAssertEqual(poolOutputSize(input: 5, kernel: 2, stride: 2, pad: 1, ceil: true), 3)
        XCTAssertEqual(poolOutputSize(input: 224, kernel: 2, stride: 2, pad: 0, ceil: true), 112)
        XCTAssert(type("%x: f32[N,1,6,6]", "%y = max_pool(%x) {stride=2}").contains("needs attribute 'kernel'"))
        XCTAssert(type("%x: f32[N,1,6,6]", "%y = max_pool(%x) {kernel=2, pad=2}").contains("smaller than the kernel"))
    }

    func testElementwiseAndActivations() {
        let x = "%x: f32[N,4,5,5]"
        for op in ["relu", "sigmoid", "tanh", "dropout"] {
            XCTAssertEqual(type(x, "%y = \(op)(%x)"), "f32[N,4,5,5]", op)
        }
        XCTAssertEqual(type(x, "%y = affine(%x) {scale=2, shift=1}"), "f32[N,4,5,5]")
        XCTAssertEqual(type(x, "param %s: f32[4] = constant(0.25)\n%y = prelu(%x, %s)"), "f32[N,4,5,5]")
        XCTAssertEqual(type(x, "param %s: f32[1] = constant(0.25)\n%y = prelu(%x, %s)"), "f32[N,4,5,5]")
        XCTAssert(type(x, "param %s: f32[3] = zeros\n%y = prelu(%x, %s)").contains("prelu: slope"))
        XCTAssertEqual(type(x, "%y = lrn(%x) {size=3}"), "f32[N,4,5,5]")
        XCTAssert(type(x, "%y = lrn(%x) {size=4}").contains("positive odd"))
    }

    func testBroadcasting() {
        XCTAssertEqual(type("%a: f32[N,4,1], %b: f32[3]", "%y = add(%a, %b)"), "f32[N,4,3]")
        XCTAssertEqual(type("%a: f32[N,1], %b: f32[1,6]", "%y = mul(%a, %b)"), "f32[N,6]")
        XCTAssertEqual(type("%a: f32[2,3], %b: f32[]", "%y = sub(%a, %b)"), "f32[2,3]")
        XCTAssertEqual(type("%a: f32[N,3], %b: f32[N,3]", "%y = maximum(%a, %b)"), "f32[N,3]")
        XCTAssertEqual(type("%a: f32[N,4,1], %b: f32[4,5]", "%y = div(%a, %b)"), "f32[N,4,5]")
        XCTAssert(type("%a: f32[N,3], %b: f32[2]", "%y = div(%a, %b)").contains("do not broadcast"))
        XCTAssert(type("%a: f32[N,3], %b: f32[4]", "%y = add(%a, %b)").contains("do not broadcast"))
        XCTAssert(type("%a: f32[N,3], %b: f32[2,3]", "%y = add(%a, %b)").contains("do not broadcast"))
    }

    func testMovement() {
        XCTAssertEqual(type("%x: f32[N,512,7,7]", "%y = flatten(%x)"), "f32[N,25088]")
        XCTAssertEqual(type("%x: f32[N,2,3,4]", "%y = flatten(%x) {axis=2}"), "f32[N,2,12]")
        XCTAssertEqual(type("%x: f32[N,2,3,4]", "%y = flatten(%x) {axis=1, end_axis=2}"), "f32[N,6,4]")
        XCTAssertEqual(type("%x: f32[N,2,3,4]", "%y = reshape(%x) {shape=[0,-1]}"), "f32[N,24]")
        XCTAssertEqual(type("%x: f32[N,2,3,4]", "%y = reshape(%x) {shape=[0,0,12]}"), "f32[N,2,12]")
        XCTAssertEqual(type("%x: f32[6,4]", "%y = reshape(%x) {shape=[-1,2,3]}"), "f32[4,2,3]")
        XCTAssert(type("%x: f32[N,2,3,4]", "%y = reshape(%x) {shape=[-1,4]}").contains("batch dimension N"))
        XCTAssert(type("%x: f32[N,2,3,4]", "%y = reshape(%x) {shape=[0,-1,-1]}").contains("only one -1"))
        XCTAssert(type("%x: f32[N,2,3,4]", "%y = reshape(%x) {shape=[0,5]}").contains("24 elements"))
        XCTAssertEqual(type("%x: f32[N,2,3,4]", "%y = transpose(%x) {perm=[0,3,1,2]}"), "f32[N,4,2,3]")
        XCTAssert(type("%x: f32[N,2,3,4]", "%y = transpose(%x) {perm=[0,1,1,2]}").contains("not a permutation"))
        XCTAssertEqual(type("%a: f32[N,2,3], %b: f32[N,5,3]", "%y = concat(%a, %b)"), "f32[N,7,3]")
        XCTAssertEqual(type("%a: f32[N,2,3], %b: f32[N,2,1]", "%y = concat(%a, %b) {axis=-1}"), "f32[N,2,4]")
        XCTAssertEqual(type("%x: f32[N,10,3]", "%y = slice(%x) {start=2, end=7}"), "f32[N,5,3]")
        XCTAssertEqual(type("%x: f32[N,1,48,48]", "%y = channel_replicate(%x)"), "f32[N,3,48,48]")
        XCTAssert(type("%x: f32[N,2,48,48]", "%y = channel_replicate(%x)").contains("1 channel"))
    }

    func testPerChannelDenseAndLosses() {
        let x = "%x: f32[N,4,5,5]"
        XCTAssertEqual(type(x, "param %s: f32[4] = zeros\n%y = scale(%x, %s, %s)"), "f32[N,4,5,5]")
        XCTAssertEqual(type(x, "param %s: f32[4] = zeros\n%y = bias(%x, %s)"), "f32[N,4,5,5]")
        XCTAssertEqual(type(x, "param %m: f32[4] = zeros\n%y = batch_norm(%x, %m, %m)"), "f32[N,4,5,5]")
        XCTAssert(type(x, "param %s: f32[5] = zeros\n%y = bias(%x, %s)").contains("must be f32[4]"))
        XCTAssertEqual(type("%x: f32[N,25088]", "param %w: f32[256,25088] = xavier\nparam %b: f32[256] = zeros\n%y = linear(%x, %w, %b)"), "f32[N,256]")
        XCTAssertEqual(type("%x: f32[N,7]", "%y = softmax(%x)"), "f32[N,7]")
        XCTAssertEqual(type("%x: f32[N,7]", "%y = log_softmax(%x) {axis=-1}"), "f32[N,7]")
        XCTAssert(type("%x: f32[N,7]", "%y = softmax(%x) {axis=2}").contains("out of range"))
        XCTAssertEqual(type("%x: f32[N,7], %l: i32[N]", "%y = softmax_cross_entropy(%x, %l)"), "f32[]")
        XCTAssert(type("%x: f32[N,7], %l: i32[4]", "%y = softmax_cross_entropy(%x, %l)").contains("batch size"))
        XCTAssertEqual(type("%a: f32[N,512,7,7], %b: f32[N,512,7,7]", "%y = euclidean_loss(%a, %b)"), "f32[]")
        XCTAssert(type("%a: f32[N,512,7,7], %b: f32[N,512,7,6]", "%y = euclidean_loss(%a, %b)").contains("one shape"))
        XCTAssertEqual(type("%x: f32[N,4,5]", "%y = mean(%x) {axes=[0]}"), "f32[4,5]")
        XCTAssertEqual(type("%x: f32[N,4,5]", "%y = sum(%x) {axes=[1,-1]}"), "f32[N]")
        XCTAssertEqual(type("%x: f32[N,4,5]", "%y = sum(%x)"), "f32[]")
        XCTAssert(type("%x: f32[N,4,5]", "%y = mean(%x) {axes=[1,1]}").contains("repeat"))
    }

    func testCallBindsBatch() throws {
        let text = """
        fn2e 1
        graph @f(%x: f32[N,4]) {
          param %w: f32[2,4] = xavier
          %y = linear(%x, %w)
          return %y, %x
        }
        graph @g(%x: f32[3,4]) {
          %y = call @f(%x) {output="y"}
          return %y
        }
        """
        let p = try Loader.load(text: text, file: "t.fn2e")
        XCTAssertEqual(p.graphs["g"]?.type(of: "y")?.description, "f32[3,2]")
        XCTAssertEqual(p.order, ["f", "g"])
        let flat = Inliner.inline(p.graphs["g"]!, graphs: p.graphs)
        XCTAssertEqual(flat.params.map(\.name), ["y.w"])
        XCTAssertEqual(flat.nodes.map(\.name), ["y"])
    }

    func testResize() {
        XCTAssertEqual(type("%x: f32[N,1,48,48]", "%y = resize(%x) {size=[150,150]}"), "f32[N,1,150,150]")
        XCTAssertEqual(type("%x: f32[2,3,9,8]", "%y = resize(%x) {size=[4,2]}"), "f32[2,3,4,2]")
        XCTAssert(type("%x: f32[N,48,48]", "%y = resize(%x) {size=[150,150]}").contains("rank-4"))
        XCTAssert(type("%x: f32[N,1,48,48]", "%y = resize(%x) {size=[0,150]}").contains("positive"))
        XCTAssert(type("%x: f32[N,1,48,48]", "%y = resize(%x)").contains("size"))
    }

    /// `frozen_through` freezes what one callee value is computed from, and names a missing value.
    func testCallFrozenThrough() throws {
        let callee = """
        fn2e 1
        graph @net(%x: f32[N,4]) {
          param %a.w: f32[4,4] = xavier
          param %b.w: f32[4,4] = xavier
          param %c.w: f32[2,4] = xavier
          %a = linear(%x, %a.w)
          %b = linear(%a, %b.w)
          %c = linear(%b, %c.w)
          return %c
        }
        """
        let p = try Loader.load(text: callee + "\ngraph @g(%x: f32[N,4]) {\n  %y = call @net(%x) {frozen_through=\"a\"}\n  return %y\n}\n", file: "t.fn2e")
        let flat = Inliner.inline(p.graphs["g"]!, graphs: p.graphs)
        XCTAssertEqual(flat.params.filter(\.trainable).map(\.name), ["y.b.w", "y.c.w"])
        XCTAssertEqual(flat.params.filter { !$0.trainable }.map(\.name), ["y.a.w"])
        XCTAssertThrowsError(try Loader.load(text: callee + "\ngraph @g(%x: f32[N,4]) {\n  %y = call @net(%x) {frozen_through=\"d\"}\n  return %y\n}\n", file: "t.fn2e")) {
            XCTAssert("\($0)".contains("t.fn2e:12:"), "\($0)")
            XCTAssert("\($0)".contains("has no value '%d' to freeze through"), "\($0)")
        }
    }
}
