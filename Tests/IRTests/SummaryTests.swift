import IR
import XCTest

/// Parameter and multiply-add counts of the real graphs, against numbers computed by hand.
final class SummaryTests: XCTestCase {
    func summary(_ name: String, batch: Int = 1) throws -> Summary {
        let p = try Loader.load(path: Repo.graphs + "/\(name).fn2e")
        let g = try XCTUnwrap(p.graph())
        return Summary(Inliner.inline(g, graphs: p.graphs), batch: batch)
    }

    func testVGGFace() throws {
        let s = try summary("vgg_face")
        XCTAssertEqual(s.totalParams, 145_002_878)
        XCTAssertEqual(s.trainableParams, 145_002_878)
        XCTAssertEqual(s.totalMACs, 15_476_908_032)
        XCTAssertEqual(try summary("vgg_face", batch: 4).totalMACs, 4 * 15_476_908_032)
    }

    func testExpNet() throws {
        let s = try summary("expnet")
        // conv: 64*1*9+64 + 128*64*9+128 + 256*128*9+256 + 512*256*9+512 + 512*512*9+512; fc6 25088*256+256; fc7 256*7+7
        XCTAssertEqual(s.totalParams, 10_334_215)
        XCTAssertEqual(s.rows.first { $0.node == "pool5" }?.type.description, "f32[1,512,7,7]")
        XCTAssertEqual(s.rows.first { $0.node == "fc6" }?.params, 25088 * 256 + 256)
    }

    func testSummaryCountsSmallGraph() throws {
        let text = """
        fn2e 1
        graph @t(%x: f32[N,3,8,8]) {
          param %w: f32[4,3,3,3] = msra
          param %fc: f32[10,256] = xavier {trainable=false}
          %c = conv2d(%x, %w) {pad=1}
          %f = flatten(%c)
          %y = linear(%f, %fc)
          return %y
        }
        """
        let p = try Loader.load(text: text, file: "t.fn2e")
        let s = Summary(p.graph()!, batch: 2)
        XCTAssertEqual(s.totalParams, 108 + 2560)
        XCTAssertEqual(s.trainableParams, 108)
        XCTAssertEqual(s.totalMACs, 2 * 4 * 64 * 27 + 2 * 10 * 256)
        XCTAssertEqual(s.activationBytes, 4 * (2 * 256 + 2 * 256 + 2 * 10))
    }
}
