import Foundation
import Tensors

/// Where a face's five landmarks (MTCNN's order: left eye, right eye, nose, left and right mouth
/// corner as seen) sit in a model's face crop, and the crop's size and colour: the framing of the
/// model's training data, so that a face from a photo is cut out as the model saw faces.
public struct FaceTemplate: Sendable, Equatable {
    public var name: String
    /// Side of the square crop, in pixels.
    public var size: Int
    /// Landmark positions in the crop (pixel centres at integers, 0-based).
    public var points: [Point]
    public var gray: Bool

    /// CK+48's framing (gray 48x48): the mean of MTCNN's landmarks over every 10th CK+48 crop in
    /// index.csv order (99 crops, one face found in each), each upscaled 4x and framed by a 64-pixel
    /// gray border so the detector sees the whole face (`measure`); `AlignTests` measures it again.
    public static let ckplus48 = FaceTemplate(name: "ckplus48", size: 48, points: [
        Point(x: 14.71, y: 18.98), Point(x: 32.65, y: 18.62), Point(x: 23.67, y: 28.15), Point(x: 16.36, y: 37.78), Point(x: 31.51, y: 37.59),
    ], gray: true)

    /// FER2013's framing (gray 48x48), measured the same way on every 30th of FER2013's Training
    /// rows in index.csv order (957 crops, one face found in 861): `fn2e-run measure-template
    /// $FN2E_DATA/fer2013/index.csv --name fer2013 --every 30 --where usage=Training`. The faces sit a
    /// little higher and wider than CK+48's; `AlignTests` measures every 300th row again.
    public static let fer2013 = FaceTemplate(name: "fer2013", size: 48, points: [
        Point(x: 15.03, y: 17.90), Point(x: 32.60, y: 17.50), Point(x: 23.98, y: 27.60), Point(x: 16.43, y: 36.91), Point(x: 31.40, y: 36.65),
    ], gray: true)

    public static let all = [ckplus48, fer2013]

    /// The template called `name`; an unknown name is an error listing the known ones.
    public static func named(_ name: String) throws -> FaceTemplate {
        guard let t = all.first(where: { $0.name == name }) else {
            throw FaceError("unknown face template '\(name)' (known: \(all.map(\.name).joined(separator: ", ")))")
        }
        return t
    }
}

/// A similarity transform (rotation, uniform scale, translation; no reflection):
/// x' = a x - b y + tx, y' = b x + a y + ty.
public struct Similarity: Sendable, Equatable {
    public var a, b, tx, ty: Double

    public func apply(_ p: Point) -> Point { Point(x: a * p.x - b * p.y + tx, y: b * p.x + a * p.y + ty) }

    public var inverse: Similarity {
        let d = a * a + b * b
        let (ia, ib) = (a / d, -b / d)
        return Similarity(a: ia, b: ib, tx: -(ia * tx - ib * ty), ty: -(ib * tx + ia * ty))
    }

    /// The least-squares similarity taking `from` onto `to` (Umeyama 1991, rotation without reflection).
    public static func fit(from: [Point], to: [Point]) -> Similarity {
        let n = Double(from.count)
        let (mx, my) = (from.map(\.x).reduce(0, +) / n, from.map(\.y).reduce(0, +) / n)
        let (nx, ny) = (to.map(\.x).reduce(0, +) / n, to.map(\.y).reduce(0, +) / n)
        var (dot, cross, norm) = (0.0, 0.0, 0.0)
        for (p, q) in zip(from, to) {
            let (px, py, qx, qy) = (p.x - mx, p.y - my, q.x - nx, q.y - ny)
            dot += px * qx + py * qy
            cross += px * qy - py * qx
            norm += px * px + py * py
        }
        let (a, b) = norm > 0 ? (dot / norm, cross / norm) : (1, 0)
        return Similarity(a: a, b: b, tx: nx - (a * mx - b * my), ty: ny - (b * mx + a * my))
    }
}

public enum Align {
    /// The face crop `[C, size, size]` (C = 1 for a gray template, else 3) of an RGB image
    /// `[3, H, W]`: every crop pixel samples the image where the similarity from the template to the
    /// face's landmarks puts it, averaging enough bilinear samples to cover the pixel's footprint
    /// (shrinking a large face does not alias). Outside the image, edge pixels repeat.
    public static func crop(_ image: Tensor, landmarks: [Point], template t: FaceTemplate) -> Tensor {
        let toImage = Similarity.fit(from: t.points, to: landmarks)
        let footprint = (toImage.a * toImage.a + toImage.b * toImage.b).squareRoot()
        let k = max(1, Int(footprint.rounded(.up)))
        let (h, w) = (image.shape[1], image.shape[2])
        let channels = t.gray ? 1 : 3
        var out = [Float](repeating: 0, count: channels * t.size * t.size)
        func pixel(_ c: Int, _ x: Int, _ y: Int) -> Double { Double(image.data[(c * h + min(max(y, 0), h - 1)) * w + min(max(x, 0), w - 1)]) }
        for v in 0..<t.size {
            for u in 0..<t.size {
                var rgb = [0.0, 0.0, 0.0]
                for sy in 0..<k {
                    for sx in 0..<k {
                        let q = toImage.apply(Point(x: Double(u) - 0.5 + (Double(sx) + 0.5) / Double(k),
                                                    y: Double(v) - 0.5 + (Double(sy) + 0.5) / Double(k)))
                        let (x0, y0) = (Int(q.x.rounded(.down)), Int(q.y.rounded(.down)))
                        let (ax, ay) = (q.x - Double(x0), q.y - Double(y0))
                        for c in 0..<3 {
                            rgb[c] += (pixel(c, x0, y0) * (1 - ax) + pixel(c, x0 + 1, y0) * ax) * (1 - ay)
                                + (pixel(c, x0, y0 + 1) * (1 - ax) + pixel(c, x0 + 1, y0 + 1) * ax) * ay
                        }
                    }
                }
                // Whole numbers 0...255, as the training images stored in 8-bit files are.
                rgb = rgb.map { min(255, max(0, ($0 / Double(k * k)).rounded())) }
                if t.gray {
                    // ITU-R BT.601 luma, as stb converts colour images to gray.
                    out[v * t.size + u] = Float(((77 * rgb[0] + 150 * rgb[1] + 29 * rgb[2]) / 256).rounded(.down))
                } else {
                    for c in 0..<3 { out[(c * t.size + v) * t.size + u] = Float(rgb[c]) }
                }
            }
        }
        return Tensor(shape: [channels, t.size, t.size], data: out)
    }
}

extension FaceTemplate {
    /// The mean landmarks MTCNN finds on face crops that all share one framing (gray or RGB
    /// `[C, S, S]`), in crop pixels: each crop is upscaled `zoom` times and framed by a gray border of
    /// `border` pixels, so the detector sees the whole face; crops with other than one face found are
    /// left out. Returns the template and how many crops it averages.
    public static func measure(_ crops: [Tensor], detector: MTCNN, name: String, zoom: Int = 4, border: Int = 64) throws -> (FaceTemplate, Int) {
        precondition(!crops.isEmpty && crops[0].shape[1] == crops[0].shape[2], "measure needs square crops")
        let size = crops[0].shape[1], side = size * zoom + 2 * border
        var sum = [Point](repeating: Point(x: 0, y: 0), count: 5)
        var used = 0
        for crop in crops {
            let big = Resample.image(crop, height: size * zoom, width: size * zoom)
            var framed = [Float](repeating: 128, count: 3 * side * side)
            for c in 0..<3 {
                let src = (crop.shape[0] == 1 ? 0 : c) * size * zoom * size * zoom
                for y in 0..<(size * zoom) {
                    for x in 0..<(size * zoom) { framed[(c * side + border + y) * side + border + x] = big.data[src + y * size * zoom + x] }
                }
            }
            let faces = try detector.detect(Tensor(shape: [3, side, side], data: framed))
            guard faces.count == 1 else { continue }
            used += 1
            for (k, p) in faces[0].landmarks.enumerated() {
                // Back to crop pixels: centre u of the zoomed crop is (u + 0.5) / zoom - 0.5.
                sum[k].x += (p.x - Double(border) + 0.5) / Double(zoom) - 0.5
                sum[k].y += (p.y - Double(border) + 0.5) / Double(zoom) - 0.5
            }
        }
        let points = sum.map { Point(x: $0.x / Double(max(used, 1)), y: $0.y / Double(max(used, 1))) }
        return (FaceTemplate(name: name, size: size, points: points, gray: crops[0].shape[0] == 1), used)
    }
}
