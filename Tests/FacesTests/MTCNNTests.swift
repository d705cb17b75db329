// The MTCNN cascade: its box arithmetic on hand-made cases, and the real release nets (from
// $FN2E_DATA/caffe/mtcnn, never copied into the repository) on the release's sample photos.
@testable import Faces
import Driver
import Foundation
import Tensors
import XCTest

/// `$FN2E_DATA/<relative>`, or a skip that says why.
func dataPath(_ relative: String) throws -> String {
    let found = SharedData.find(relative)
    guard let path = found.path else { throw XCTSkip(found.reason) }
    return path
}

final class BoxTests: XCTestCase {
    func box(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, _ s: Double) -> Candidate {
        Candidate(x1: x1, y1: y1, x2: x2, y2: y2, score: s)
    }

    /// A small box inside a big one: Union keeps both (IoU 0.25), Min drops the small one (overlap 1).
    func testNMSUnionAndMin() {
        let b = [box(1, 1, 10, 10, 0.8), box(1, 1, 20, 20, 0.9), box(50, 50, 60, 60, 0.95)]
        XCTAssertEqual(Boxes.nms(b, NMSStep(0.5, .union)), [2, 1, 0])
        XCTAssertEqual(Boxes.nms(b, NMSStep(0.5, .min)), [2, 1])
        // Pixel-counting areas: boxes 1...10 and 2...11 share 9x9 of 10x10 pixels, IoU 81/119.
        let shifted = [box(1, 1, 10, 10, 0.9), box(2, 2, 11, 11, 0.8)]
        XCTAssertEqual(Boxes.nms(shifted, NMSStep(81.0 / 119 - 1e-9, .union)), [0])
        XCTAssertEqual(Boxes.nms(shifted, NMSStep(81.0 / 119 + 1e-9, .union)), [0, 1])
    }

    func testRegressSquareTruncate() {
        var c = box(11, 21, 30, 30, 1)  // 20 x 10 pixels
        c.reg = [0.1, -0.1, 0.05, 0.2]
        let r = Boxes.regress(c)
        XCTAssertEqual([r.x1, r.y1, r.x2, r.y2], [13, 20, 31, 32])
        let s = Boxes.square(box(10, 20, 30, 30, 1))
        XCTAssertEqual([s.x1, s.y1, s.x2, s.y2], [10, 15, 30, 35])
        let t = Boxes.truncated(box(-1.5, 2.7, 3.2, -0.4, 1))
        XCTAssertEqual([t.x1, t.y1, t.x2, t.y2], [-1, 2, 3, 0])
    }

    /// Shrinking averages whole blocks; growing interpolates between centres with clamped edges.
    func testResample() {
        let img = Tensor(shape: [1, 4, 4], data: (0..<16).map(Float.init))
        XCTAssertEqual(Resample.image(img, height: 2, width: 2).data, [2.5, 4.5, 10.5, 12.5])
        let third = Resample.image(Tensor(shape: [1, 1, 3], data: [0, 3, 6]), height: 1, width: 2)
        XCTAssertEqual(third.data[0], 1, accuracy: 1e-5)  // (0 * 1 + 3 * 0.5) / 1.5
        XCTAssertEqual(third.data[1], 5, accuracy: 1e-5)
        let grown = Resample.image(Tensor(shape: [1, 1, 2], data: [0, 4]), height: 1, width: 4)
        XCTAssertEqual(grown.data, [0, 1, 3, 4])
    }

    /// A window that crosses the image's border (shrunk and grown), read from the transposed image,
    /// against the separable weights summed directly, pixels outside the window's image counting as 0.
    func testResampledWindowMatchesWeights() {
        let (c, h, w) = (2, 5, 7)
        let img = Tensor(shape: [c, h, w], data: (0..<(c * h * w)).map { Float(($0 * 37) % 101) })
        let columns = Resample.transposed(img)
        XCTAssertEqual(columns.shape, [c, w, h])
        XCTAssertEqual(columns.data[(1 * w + 6) * h + 4], img.data[(1 * h + 4) * w + 6])
        for (window, outH, outW) in [((-2, 3, 6, 6), 4, 3), ((3, -1, 3, 2), 5, 4), ((0, 0, h, w), 3, 4)] {
            let (wy, wx) = (Resample.weights(from: window.2, to: outH), Resample.weights(from: window.3, to: outW))
            var got = [Float](repeating: .nan, count: c * outH * outW)
            columns.data.withUnsafeBufferPointer { src in
                Resample.resample(src.baseAddress!, channels: c, height: h, width: w, window: window,
                                  x: Resample.Taps(from: window.3, to: outW), y: Resample.Taps(from: window.2, to: outH)) { ch, x, column in
                    for y in 0..<outH { got[(ch * outH + y) * outW + x] = column[y] }
                }
            }
            for ch in 0..<c {
                for y in 0..<outH {
                    for x in 0..<outW {
                        var want: Float = 0
                        for (i, a) in wy[y] {
                            for (j, b) in wx[x] {
                                let (iy, ix) = (window.0 + i, window.1 + j)
                                if iy >= 0 && iy < h && ix >= 0 && ix < w { want += a * b * img.data[(ch * h + iy) * w + ix] }
                            }
                        }
                        XCTAssertEqual(got[(ch * outH + y) * outW + x], want, accuracy: 1e-3, "\(window) \(ch) \(y) \(x)")
                    }
                }
            }
        }
    }

    /// Crops go through a few fixed batch sizes: a full batch of the largest size that fits, or the
    /// next size up padded by at most half of what is left; below the smallest size, that size.
    func testBatchSplit() {
        let sizes = [1, 4, 16, 64, 256]
        func batches(_ n: Int) -> [Int] { Batches.split(n, sizes: sizes).map(\.batch) }
        XCTAssertEqual(batches(0), [])
        XCTAssertEqual(batches(3), [4])
        XCTAssertEqual(batches(9), [4, 4, 1])
        XCTAssertEqual(batches(13), [16])
        XCTAssertEqual(batches(6), [4, 1, 1])
        XCTAssertEqual(batches(300), [256, 64])
        XCTAssertEqual(batches(600), [256, 256, 64, 16, 4, 4])
        XCTAssertEqual(Batches.split(300, sizes: sizes).map(\.range), [0..<256, 256..<300])
        XCTAssertEqual(Batches.split(5, sizes: [8, 32]).map(\.batch), [8])
    }

    /// The nets see the image transposed and mapped to about -1...1.
    func testNetInputIsTransposed() {
        let img = Tensor(shape: [3, 1, 2], data: [0, 255, 127.5, 127.5, 255, 0])
        let x = MTCNN.netInput([img])
        XCTAssertEqual(x.shape, [1, 3, 2, 1])
        XCTAssertEqual(x.data, [-255, 255, 0, 0, 255, -255].map { Float($0) / 256 })
    }
}

final class CascadeTests: XCTestCase {
    func testMissingNetsAreNamed() {
        XCTAssertThrowsError(try MTCNN(directory: "/nonexistent/mtcnn")) { e in
            XCTAssertEqual("\(e)", "/nonexistent/mtcnn/det1.prototxt: no such file (MTCNN's det1-det3, as .fn2e + .safetensors or the release's .prototxt + .caffemodel, are expected in /nonexistent/mtcnn)")
        }
    }


    /// The release's sample photos: faces with scores above O-Net's threshold, landmarks inside their
    /// boxes; P-Net compiled once per distinct scale size, and not again for the same photo.
    func testSamplePhotos() throws {
        let dir = try dataPath("caffe/mtcnn")
        let mtcnn = try MTCNN(directory: dir)
        var total = 0
        for name in ["test1.jpg", "test2.jpg"] {
            let img = try Images.load(path: dir + "/" + name)
            let faces = try mtcnn.detect(img)
            let before = mtcnn.pnetCompilations
            XCTAssertEqual(try mtcnn.detect(img), faces, "the same photo gives the same faces")
            XCTAssertEqual(mtcnn.pnetCompilations, before, "the second pass compiled nothing")
            print("\(name): \(faces.count) faces, P-Net compiled for \(before) sizes")
            XCTAssertFalse(faces.isEmpty, name)
            for f in faces {
                XCTAssertGreaterThan(f.score, 0.7)
                XCTAssertEqual(f.landmarks.count, 5)
                for p in f.landmarks {
                    XCTAssertTrue(p.x > f.x1 - 2 && p.x < f.x2 + 2 && p.y > f.y1 - 2 && p.y < f.y2 + 2, "\(name): \(f)")
                }
                // Eyes above the mouth corners, left eye left of the right eye.
                XCTAssertLessThan(f.landmarks[0].x, f.landmarks[1].x)
                XCTAssertLessThan(max(f.landmarks[0].y, f.landmarks[1].y), min(f.landmarks[3].y, f.landmarks[4].y))
            }
            total += faces.count
        }
        let sizes = Set([(344, 450), (431, 450)].flatMap { (h, w) in
            mtcnn.pyramid(height: h, width: w).map { [Int((Double(h) * $0).rounded(.up)), Int((Double(w) * $0).rounded(.up))] }
        })
        XCTAssertEqual(mtcnn.pnetCompilations, sizes.count)
        XCTAssertGreaterThan(total, 2)
    }
}
