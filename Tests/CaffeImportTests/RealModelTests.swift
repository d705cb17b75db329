// The reading layer against the real Caffe files in $FN2E_DATA (never copied into the repository).
import CaffeImport
import Driver
import XCTest

/// `$FN2E_DATA/<relative>`, or a skip that says why.
func dataPath(_ relative: String) throws -> String {
    let found = SharedData.find(relative)
    guard let path = found.path else { throw XCTSkip(found.reason) }
    return path
}

final class RealModelTests: XCTestCase {
    func testMTCNNPrototxtsParse() throws {
        for i in 1...4 {
            let net = try CaffeNet(prototxtPath: try dataPath("caffe/mtcnn/det\(i).prototxt"))
            XCTAssertEqual(net.layers.first?.type, "Input", "det\(i)")
            XCTAssertEqual(net.upgradeLog, ["upgrading legacy input fields to an Input layer"], "det\(i)")
            XCTAssertFalse(net.layers.isEmpty)
            for layer in net.layers.dropFirst() {
                XCTAssertNotNil(layer.location, "\(layer.name) has no location")
                XCTAssertNotNil(layer.typeLocation, "\(layer.name) has no type location")
            }
        }
        let det1 = try CaffeNet(prototxtPath: try dataPath("caffe/mtcnn/det1.prototxt"))
        XCTAssertEqual(det1.name, "PNet")
        XCTAssertEqual(det1.inputs, [CaffeInput(name: "data", shape: [1, 3, 12, 12])])
        let conv1 = try XCTUnwrap(det1.layer(named: "conv1"))
        XCTAssertEqual(conv1.type, "Convolution")
        XCTAssertEqual(conv1.bottoms, ["data"])
        XCTAssertEqual(conv1.tops, ["conv1"])
        XCTAssertEqual(conv1.params, [CaffeParamSpec(lrMult: 1, decayMult: 1), CaffeParamSpec(lrMult: 2, decayMult: 0)])
        XCTAssertEqual(conv1.typeParams, .convolution(ConvolutionParams(numOutput: 10, kernel: CaffeHW(3, 3))))
        XCTAssertEqual(conv1.location, CaffeSourceLocation(line: 8, column: 1))
        XCTAssertEqual(conv1.typeLocation, CaffeSourceLocation(line: 10, column: 3))
        XCTAssertEqual(det1.layer(named: "PReLU1")?.typeParams, .prelu(channelShared: false))
        guard case .pooling(let pool) = det1.layer(named: "pool1")?.typeParams else { return XCTFail("pool1") }
        XCTAssertEqual(pool.method, .max)
        XCTAssertEqual(pool.kernel, CaffeHW(2, 2))
        XCTAssertEqual(pool.stride, CaffeHW(2, 2))
        XCTAssertTrue(pool.ceil)
    }

    func testVGGFaceBothSyntaxesAgree() throws {
        let current = try CaffeNet(prototxtPath: try dataPath("caffe/vgg_face/VGG_FACE_deploy.prototxt"))
        let v1 = try CaffeNet(prototxtPath: try dataPath("caffe/vgg_face/VGG_FACE_deploy.v1.prototxt"))
        XCTAssertEqual(v1.upgradeLog, ["upgrading legacy input fields to an Input layer", "upgrading V1 layers to current format"])
        let a = current.withoutLocations.layers, b = v1.withoutLocations.layers
        XCTAssertEqual(a.count, b.count)
        XCTAssertEqual(a.map(\.name), b.map(\.name))
        XCTAssertEqual(a.map(\.type), b.map(\.type))
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, x.name) }
        // 39 layers plus the Input layer made from the legacy input fields.
        XCTAssertEqual(a.count, 40)
        XCTAssertEqual(current.inputs, [CaffeInput(name: "data", shape: [1, 3, 224, 224])])
        XCTAssertEqual(current.layer(named: "fc8")?.typeParams, .innerProduct(InnerProductParams(numOutput: 2622)))
        XCTAssertEqual(current.layer(named: "conv1_1")?.typeParams,
                       .convolution(ConvolutionParams(numOutput: 64, kernel: CaffeHW(3, 3), pad: CaffeHW(1, 1))))
        XCTAssertEqual(Set(a.map(\.type)), ["Input", "Convolution", "ReLU", "Pooling", "InnerProduct", "Dropout", "Softmax"])
    }

    func testMTCNNCaffemodelsRead() throws {
        let expectedConv1: [Int: [Int]] = [1: [10, 3, 3, 3], 2: [28, 3, 3, 3], 3: [32, 3, 3, 3], 4: [28, 3, 3, 3]]
        for i in 1...4 {
            let path = try dataPath("caffe/mtcnn/det\(i).caffemodel")
            let net = try CaffeNet(caffemodelPath: path)
            let deploy = try CaffeNet(prototxtPath: try dataPath("caffe/mtcnn/det\(i).prototxt"))
            let withBlobs = net.layers.filter { !$0.blobs.isEmpty }
            XCTAssertFalse(withBlobs.isEmpty, "det\(i)")
            // Every deploy layer that learns something finds its weights by name in the training net.
            for layer in deploy.layers where ["Convolution", "InnerProduct", "PReLU"].contains(layer.type) {
                let trained = try XCTUnwrap(net.layer(named: layer.name), "det\(i) \(layer.name)")
                XCTAssertFalse(trained.blobs.isEmpty, "det\(i) \(layer.name)")
                for blob in trained.blobs { XCTAssertEqual(blob.shape.reduce(1, *), blob.data.count) }
            }
            if let conv1 = net.layer(named: "conv1") ?? net.layer(named: "conv1_1") {
                XCTAssertEqual(conv1.blobs.first?.shape, expectedConv1[i], "det\(i)")
            }
            XCTAssertTrue(net.layers.contains { $0.type == "HDF5Data" || $0.type == "Slice" || $0.type.hasSuffix("Loss") }, "det\(i) is a training net")
        }
        let det1 = try CaffeNet(caffemodelPath: try dataPath("caffe/mtcnn/det1.caffemodel"))
        XCTAssertEqual(det1.layer(named: "conv1")?.blobs.map(\.shape), [[10, 3, 3, 3], [10]])
        XCTAssertEqual(det1.layer(named: "PReLU1")?.blobs.map(\.shape), [[10]])
    }

    func testNonCaffeFileIsRefused() throws {
        let png = try dataPath("caffe/mtcnn/test1.jpg")
        XCTAssertThrowsError(try CaffeNet(caffemodelPath: png)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(png + ": error: "), text)
            XCTAssertTrue(text.contains("not a Caffe model") || text.contains("truncated") || text.contains("corrupt"), text)
        }
    }
}
