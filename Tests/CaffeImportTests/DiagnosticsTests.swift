// Malformed input gives `file:line:col: error: message`, and never a crash.
import CaffeImport
import XCTest

final class DiagnosticsTests: XCTestCase {
    /// The one-line diagnostic for `text`, or a failure when it parses.
    private func diagnostic(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try CaffeNet(prototxt: text, file: "bad.prototxt")
            XCTFail("parsed without error", file: file, line: line)
            return ""
        } catch {
            return error.description
        }
    }

    func testMessages() {
        let cases: [(String, String)] = [
            ("layer {\n  name: \"a\"\n  colour 3\n}\n",
             "bad.prototxt:3:10: error: expected \":\" or \"{\" after field \"colour\", found number 3"),
            ("layer { type: \"Pooling\" pooling_param { pool: MEDIAN } }",
             "bad.prototxt:1:47: error: unknown value \"MEDIAN\" for enum field \"pool\"; allowed values: MAX, AVE, STOCHASTIC"),
            ("layer {\n  convolution_param { num_output: \"ten\" }\n}",
             "bad.prototxt:2:35: error: expected uint32 value for field \"num_output\", found string \"ten\""),
            ("layer {\n  convolution_param { num_output: 1.5 }\n}",
             "bad.prototxt:2:35: error: expected uint32 value for field \"num_output\", found number 1.5"),
            ("layer {\n  convolution_param { num_output: -3 }\n}",
             "bad.prototxt:2:35: error: value -3 is out of range for field \"num_output\" (uint32)"),
            ("name: \"net\nlayer {}",
             "bad.prototxt:1:7: error: unterminated string literal"),
            ("layer {\n  name: \"a\"\n  convolution_param {\n    num_output: 3\n",
             "bad.prototxt:5:1: error: unexpected end of file: expected \"}\" to close \"convolution_param\" opened at 3:21"),
            ("layer {\n  name: \"a\"\n",
             "bad.prototxt:3:1: error: unexpected end of file: expected \"}\" to close \"layer\" opened at 1:7"),
            ("layer { name \"a\" }",
             "bad.prototxt:1:14: error: expected \":\" after field \"name\", found string \"a\""),
            ("layer { name: \"a\" name: \"b\" }",
             "bad.prototxt:1:19: error: non-repeated field \"name\" is specified multiple times"),
            ("layer { name: [\"a\", \"b\"] }",
             "bad.prototxt:1:15: error: field \"name\" is not repeated and cannot take a list"),
            ("layer { bottom: [\"a\" \"b\" }",
             "bad.prototxt:1:26: error: expected \",\" or \"]\" in the list of \"bottom\", found \"}\""),
            ("}", "bad.prototxt:1:1: error: expected a field name, found \"}\""),
            ("layer { name: \"a\\q\" }", "bad.prototxt:1:17: error: invalid escape sequence \"\\q\""),
            ("layer { type: \"Convolution\" convolution_param { num_output: 2 } }",
             "bad.prototxt:1:1: error: layer \"\": convolution needs kernel_size (1 or 2 values) or kernel_h and kernel_w; only 2-D convolution is supported"),
            ("input: \"data\"\ninput_dim: 1\ninput_dim: 3\n",
             "bad.prototxt:1:1: error: 1 legacy inputs but 2 input_dim values; give four (N, C, H, W) per input"),
        ]
        for (text, expected) in cases { XCTAssertEqual(diagnostic(text), expected, text) }
    }

    /// Settings shape inference cannot take (found by the prototxt and caffemodel fuzz targets: a
    /// zero stride divided by zero) are refused with the layer named.
    func testOutOfRangeSettingsAreRefusedNotACrash() throws {
        let input = "layer { name: \"data\" type: \"Input\" top: \"data\" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n"
        let cases = [
            ("layer { name: \"p\" type: \"Pooling\" bottom: \"data\" top: \"p\" pooling_param { pool: MAX kernel_size: 2 stride: 0 } }",
             "layer 'p' (Pooling): stride must be positive, found [0,0]"),
            ("layer { name: \"c\" type: \"Convolution\" bottom: \"data\" top: \"c\" convolution_param { num_output: 2 kernel_size: 3 dilation: 0 } }",
             "layer 'c' (Convolution): dilation must be positive, found [0,0]"),
            ("layer { name: \"c\" type: \"Convolution\" bottom: \"data\" top: \"c\" convolution_param { num_output: 2 kernel_size: 3 stride_h: 0 stride_w: 1 } }",
             "layer 'c' (Convolution): stride must be positive, found [0,1]"),
        ]
        for (layer, message) in cases {
            let net = try CaffeNet(prototxt: input + layer, file: "z.prototxt")
            XCTAssertThrowsError(try CaffeToIR.convert(net, name: "z")) { e in XCTAssertTrue("\(e)".contains(message), "\(e)") }
        }
    }

    func testRenderedWithCaret() {
        let text = "layer {\n  name: \"a\"\n  colour 3\n}\n"
        do {
            _ = try CaffeNet(prototxt: text, file: "bad.prototxt")
            XCTFail("parsed")
        } catch {
            XCTAssertEqual(error.rendered(source: text), """
                bad.prototxt:3:10: error: expected ":" or "{" after field "colour", found number 3
                  colour 3
                         ^
                """)
        }
    }

    func testAcceptedSyntaxVariants() throws {
        let net = try CaffeNet(prototxt: """
            # comment
            name: 'n' "et"   # adjacent strings join
            layer < name: "c"; type: "Convolution"; bottom: ["x", "y"], top: "c"
              convolution_param: { num_output: 0x10 kernel_size: [3, 5] stride_h: 2 stride_w: 1 bias_term: false }
              param [{ lr_mult: 1e-1 }, { lr_mult: -.5f decay_mult: inf }]
            >
            layer { name: "p" type: "Pooling" pooling_param { pool: 1 kernel_h: 2 kernel_w: 3 round_mode: FLOOR global_pooling: f } }
            layer { name: "r" type: "ReLU" relu_param { negative_slope: -nan } }
            """)
        XCTAssertEqual(net.name, "net")
        let c = try XCTUnwrap(net.layer(named: "c"))
        XCTAssertEqual(c.bottoms, ["x", "y"])
        XCTAssertEqual(c.typeParams, .convolution(ConvolutionParams(numOutput: 16, kernel: CaffeHW(3, 5), stride: CaffeHW(2, 1), biasTerm: false)))
        XCTAssertEqual(c.params.map(\.lrMult), [0.1, -0.5])
        XCTAssertEqual(c.params.map(\.decayMult), [1, .infinity])
        XCTAssertEqual(net.layer(named: "p")?.typeParams,
                       .pooling(PoolingParams(method: .average, kernel: CaffeHW(2, 3), stride: CaffeHW(1, 1), ceil: false)))
        guard case .relu(let slope) = net.layer(named: "r")?.typeParams else { return XCTFail("relu") }
        XCTAssertTrue(slope.isNaN)
    }

    func testMixedLayerAndLayersIsRefused() throws {
        let text = "layer { name: \"a\" type: \"ReLU\" }\nlayers { name: \"b\" type: RELU }\n"
        XCTAssertThrowsError(try CaffeNet(prototxt: text, file: "mixed.prototxt")) { error in
            XCTAssertTrue("\(error)".hasPrefix("mixed.prototxt:2:1: error: the net mixes current 'layer' and V1 'layers'"), "\(error)")
        }
        // The same in a binary file: a current-syntax record followed by a V1 one.
        let net = CaffeNet(name: "m", layers: [CaffeLayer(name: "a", type: "ReLU", typeParams: .relu(negativeSlope: 0))])
        let bytes = try CaffeWriter(syntax: .current).caffemodelBytes(net) + CaffeWriter(syntax: .v1).caffemodelBytes(net)
        XCTAssertThrowsError(try CaffeNet(caffemodel: bytes, file: "mixed.caffemodel")) { error in
            XCTAssertTrue("\(error)".hasPrefix("mixed.caffemodel: error: the net mixes"), "\(error)")
        }
    }

    func testBinaryErrors() throws {
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]
        XCTAssertThrowsError(try CaffeNet(caffemodel: png, file: "face.png")) { error in
            XCTAssertEqual("\(error)", "face.png: error: not a Caffe model: unexpected field 1281 (wire type 1) at byte offset 0")
        }
        XCTAssertThrowsError(try CaffeNet(caffemodel: [], file: "empty")) { error in
            XCTAssertEqual("\(error)", "empty: error: empty file: not a Caffe model")
        }
        let bytes = try CaffeWriter().caffemodelBytes(makeTestNet())
        XCTAssertThrowsError(try CaffeNet(caffemodel: Array(bytes.dropLast(3)), file: "cut.caffemodel")) { error in
            XCTAssertTrue("\(error)".hasPrefix("cut.caffemodel: error: truncated file: field 100 at byte offset"), "\(error)")
        }
        XCTAssertThrowsError(try CaffeNet(caffemodelPath: "/nonexistent/x.caffemodel")) { error in
            XCTAssertTrue("\(error)".hasPrefix("/nonexistent/x.caffemodel: error: cannot open file"), "\(error)")
        }
    }

    /// Thousands of truncations and bit flips: errors are fine, crashes are not.
    func testFuzzNeverCrashes() throws {
        var rng = SeededGenerator(state: 2024)
        let net = makeTestNet(seed: 3)
        for syntax in [CaffeSyntax.current, .v1] {
            let bytes = try CaffeWriter(syntax: syntax).caffemodelBytes(net)
            var accepted = 0
            for n in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 1500)) {
                if (try? CaffeNet(caffemodel: Array(bytes.prefix(n)))) != nil { accepted += 1 }
            }
            for _ in 0..<1500 {
                var flipped = bytes
                for _ in 0..<(1 + Int(rng.next() % 3)) {
                    let i = Int(rng.next() % UInt64(flipped.count))
                    flipped[i] ^= UInt8(1) << (rng.next() % 8)
                }
                _ = try? CaffeNet(caffemodel: flipped)
            }
            XCTAssertLessThan(accepted, 20, "most truncations are refused")
        }
        let text = Array(try CaffeWriter(syntax: .current).prototxt(net, includeBlobs: false).utf8)
            + Array(try CaffeWriter(syntax: .v1).prototxt(net).utf8)
        for n in stride(from: 0, to: text.count, by: max(1, text.count / 1500)) {
            _ = try? CaffeNet(prototxt: String(decoding: text.prefix(n), as: UTF8.self))
        }
        for _ in 0..<1500 {
            var flipped = text
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let i = Int(rng.next() % UInt64(flipped.count))
                flipped[i] ^= UInt8(1) << (rng.next() % 8)
            }
            _ = try? CaffeNet(prototxt: String(decoding: flipped, as: UTF8.self))
        }
    }
}
