import Foundation
import Tensors

/// A stand-in for CK+ when the real crops are not at hand: 48x48 gray drawings of faces whose
/// brows, eyes and mouth follow seven expressions, with per-subject face size, position, skin tone
/// and noise, written as PNGs with an index.csv (path,label,subject,sequence,frame) like CK+'s.
public enum SyntheticFaces {
    public static let classes = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]

    /// Writes `subjects` subjects × `perSubject` images to `dir`; returns the index path.
    public static func write(to dir: String, subjects: Int = 40, perSubject: Int = 7, seed: UInt64 = 1) throws -> String {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var rng = Xoshiro256(seed: seed)
        var csv = "path,label,subject,sequence,frame\n"
        for s in 0..<subjects {
            let subject = String(format: "S%03d", s + 1)
            // Who the subject is: face geometry and tone.
            let (cx, cy) = (24 + Float(rng.nextInt(upperBound: 5)) - 2, 25 + Float(rng.nextInt(upperBound: 5)) - 2)
            let (rx, ry) = (15 + rng.nextFloat() * 4, 18 + rng.nextFloat() * 4)
            let tone = 150 + rng.nextFloat() * 60
            for k in 0..<perSubject {
                let label = (s + k) % classes.count
                let img = draw(classes[label], cx: cx, cy: cy, rx: rx, ry: ry, tone: tone, rng: &rng)
                let name = "\(subject)_\(String(format: "%03d", k + 1))_\(classes[label]).png"
                try Images.writePNG(img, to: dir + "/" + name)
                csv += "\(name),\(classes[label]),\(subject),\(String(format: "%03d", k + 1)),1\n"
            }
        }
        let index = dir + "/index.csv"
        try csv.write(toFile: index, atomically: true, encoding: .utf8)
        return index
    }

    static func draw(_ expression: String, cx: Float, cy: Float, rx: Float, ry: Float, tone: Float, rng: inout Xoshiro256) -> Tensor {
        let n = 48
        var px = [Float](repeating: 40, count: n * n)
        func paint(_ inside: (Float, Float) -> Bool, _ v: Float) {
            for y in 0..<n { for x in 0..<n where inside(Float(x), Float(y)) { px[y * n + x] = v } }
        }
        paint({ pow(($0 - cx) / rx, 2) + pow(($1 - cy) / ry, 2) <= 1 }, tone)
        let eyeY = cy - ry * 0.25, mouthY = cy + ry * 0.5, dark = tone * 0.25
        // Eyes: wide open for surprise and fear, narrowed for disgust and anger.
        let eyeH: Float = ["surprise", "fear"].contains(expression) ? 3 : (["disgust", "anger"].contains(expression) ? 1 : 2)
        for side: Float in [-1, 1] {
            let ex = cx + side * rx * 0.4
            paint({ pow(($0 - ex) / 3, 2) + pow(($1 - eyeY) / eyeH, 2) <= 1 }, dark)
            // Brows: lowered and slanted inward (anger), raised (surprise, fear), slanted up inward (sadness).
            let slant: Float = expression == "anger" ? 0.5 : (expression == "sadness" ? -0.5 : 0)
            let lift: Float = ["surprise", "fear"].contains(expression) ? -3 : (expression == "anger" ? 1.5 : 0)
            paint({ x, y in
                let t = (x - ex) * side
                return abs(t) <= 4 && abs(y - (eyeY - 5 + lift + slant * (-t))) <= 0.8
            }, dark)
        }
        // Mouth.
        switch expression {
        case "happy":
            paint({ x, y in abs(x - cx) <= rx * 0.45 && abs(y - (mouthY - 0.06 * pow(x - cx, 2) + 2)) <= 1 }, dark)
        case "sadness":
            paint({ x, y in abs(x - cx) <= rx * 0.4 && abs(y - (mouthY + 0.05 * pow(x - cx, 2) - 1)) <= 1 }, dark)
        case "surprise":
            paint({ pow(($0 - cx) / 3.5, 2) + pow(($1 - mouthY) / 4.5, 2) <= 1 }, dark)
        case "fear":
            paint({ x, y in abs(x - cx) <= rx * 0.45 && abs(y - mouthY) <= 2 }, dark)
        case "contempt":
            paint({ x, y in abs(x - cx) <= rx * 0.4 && abs(y - (mouthY - max(0, x - cx) * 0.35)) <= 1 }, dark)
        case "disgust":
            paint({ x, y in abs(x - cx) <= rx * 0.35 && abs(y - (mouthY - 1 + 1.2 * sin((x - cx) * 0.8))) <= 1 }, dark)
        default:  // anger: pressed lips
            paint({ x, y in abs(x - cx) <= rx * 0.3 && abs(y - mouthY) <= 0.6 }, dark)
        }
        for i in px.indices { px[i] = min(255, max(0, px[i] + rng.nextGaussian() * 12)) }
        return Tensor(shape: [1, n, n], data: px)
    }
}
