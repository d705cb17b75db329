// Named sizes (`K`) beside N: parsed and printed, carried through shape inference where a size
// passes unchanged, refused where a number is needed, bound before compiling (by hand, from the
// data's class count, or from the shapes of loaded weights).
import IR
import Scheduler
import XCTest

final class SymbolTests: XCTestCase {
    let classifier = """
        fn2e 1

        graph @cls(%x: f32[N,16], %label: i32[N]) {
          param %w: f32[K,16] = msra
          param %b: f32[K] = zeros
          %logits = f32[N,K] linear(%x, %w, %b)
          %prob = f32[N,K] softmax(%logits)
          %loss = f32[] softmax_cross_entropy(%logits, %label)
          return %loss, %prob
        }

        """

    func testNamedSizePrintsAndFlows() throws {
        let p = try Loader.load(text: classifier, file: "cls.fn2e")
        XCTAssertEqual(Printer.print(p.root), classifier)
        let g = try XCTUnwrap(p.graphs["cls"])
        XCTAssertEqual(g.symbols, ["K"])
        XCTAssertEqual(g.type(of: "prob")?.description, "f32[N,K]")
    }

    func testBindingRetypesEveryNode() throws {
        let g = try XCTUnwrap(try Loader.load(text: classifier, file: "cls.fn2e").graphs["cls"])
        let six = try g.binding(symbols: ["K": 6, "H": 3])
        XCTAssertEqual(six.symbols, [])
        XCTAssertEqual(six.param("w")?.type.description, "f32[6,16]")
        XCTAssertEqual(six.type(of: "prob")?.description, "f32[N,6]")
        let bound = try Scheduler.bind(g, batch: 4, symbols: ["K": 7])
        XCTAssertEqual(bound.type(of: "prob")?.description, "f32[4,7]")
        XCTAssertThrowsError(try Scheduler.bind(g, batch: 4)) { e in
            XCTAssertTrue("\(e)".contains("graph '@cls' has the named size K with no value"), "\(e)")
        }
        XCTAssertThrowsError(try g.binding(symbols: ["K": 0])) { e in XCTAssertTrue("\(e)".contains("must be positive"), "\(e)") }
    }

    /// A run's weights fix the class count; two tensors that disagree are an error naming both.
    func testValuesFromLoadedShapes() throws {
        let g = try XCTUnwrap(try Loader.load(text: classifier, file: "cls.fn2e").graphs["cls"])
        XCTAssertEqual(try Scheduler.symbolValues(g, from: ["w": [6, 16], "b": [6]]), ["K": 6])
        XCTAssertEqual(try Scheduler.symbolValues(g, from: [:]), [:])
        XCTAssertThrowsError(try Scheduler.symbolValues(g, from: ["w": [6, 16], "b": [7]])) { e in
            XCTAssertTrue("\(e)".contains("K=7") && "\(e)".contains("K=6"), "\(e)")
        }
    }

    /// Where an op needs a number, a named size is a located error that says so.
    func testNamedSizeWhereANumberIsNeeded() {
        let text = """
            fn2e 1
            graph @g(%x: f32[N,C,8,8]) {
              param %w: f32[4,3,3,3] = msra
              %y = conv2d(%x, %w)
              return %y
            }
            """
        XCTAssertThrowsError(try Loader.load(text: text, file: "c.fn2e")) { e in
            XCTAssertTrue("\(e)".contains("c.fn2e:4:") && "\(e)".contains("named size C"), "\(e)")
        }
        // Lower-case words are not sizes.
        XCTAssertThrowsError(try Loader.load(text: "fn2e 1\ngraph @g(%x: f32[N,k]) {\n  return %x\n}\n", file: "l.fn2e"))
    }

    /// A fully convolutional net over `f32[N,3,H,W]`: the convs after the input stay untyped until H
    /// and W are bound; each binding types every node for its own size.
    func testSpatialSizesAreTypedWhenBound() throws {
        let text = """
            fn2e 1

            graph @fcn(%x: f32[N,3,H,W]) {
              param %w: f32[4,3,3,3] = msra
              %a = relu(%x)
              %y = conv2d(%a, %w)
              %p = max_pool(%y) {kernel=2, stride=2, round=ceil}
              return %p
            }

            """
        let g = try XCTUnwrap(try Loader.load(text: text, file: "fcn.fn2e").graphs["fcn"])
        XCTAssertEqual(g.symbols, ["H", "W"])
        XCTAssertEqual(g.type(of: "a")?.description, "f32[N,3,H,W]", "a size that passes through stays named")
        XCTAssertNil(g.type(of: "y"))
        XCTAssertNil(g.type(of: "p"))
        XCTAssertEqual(try g.binding(symbols: ["H": 12, "W": 12]).type(of: "p")?.description, "f32[N,4,5,5]")
        XCTAssertEqual(try Scheduler.bind(g, batch: 2, symbols: ["H": 31, "W": 20]).type(of: "p")?.description, "f32[2,4,15,9]")
        XCTAssertThrowsError(try Scheduler.bind(g, batch: 1, symbols: ["H": 12])) { e in
            XCTAssertTrue("\(e)".contains("named size W with no value"), "\(e)")
        }
        // A size too small for the kernel is the conv's ordinary error, reported when bound.
        XCTAssertThrowsError(try Scheduler.bind(g, batch: 1, symbols: ["H": 2, "W": 12])) { e in
            XCTAssertTrue("\(e)".contains("does not fit input f32[1,3,2,12]"), "\(e)")
        }
    }
}
