import Foundation
import Tensors

/// How images become network input: channels, resize, crop to the input size (centre, or random in
/// training), mirror, `(x - mean) * scale`, and an optional H/W transpose for MATLAB-trained models.
/// Evaluation uses the same pipeline without randomness.
public struct Preprocess {
    public var channels: Int
    /// The network input's spatial size (after any transpose).
    public var inputHeight: Int
    public var inputWidth: Int
    public var resize: (Int, Int)?
    public var randomCrop: Bool
    public var mirror: Bool
    public var mean: Float
    public var scale: Float
    public var transpose: Bool

    public init(channels: Int, inputHeight: Int, inputWidth: Int, resize: (Int, Int)? = nil, randomCrop: Bool = false,
                mirror: Bool = false, mean: Float = 0, scale: Float = 1, transpose: Bool = false) {
        (self.channels, self.inputHeight, self.inputWidth) = (channels, inputHeight, inputWidth)
        (self.resize, self.randomCrop, self.mirror) = (resize, randomCrop, mirror)
        (self.mean, self.scale, self.transpose) = (mean, scale, transpose)
    }

    /// The crop taken from the stored image, in image coordinates.
    var cropSize: (Int, Int) { transpose ? (inputWidth, inputHeight) : (inputHeight, inputWidth) }

    /// Decodes and resizes every image once; errors name the file. With `skipBad`, unreadable
    /// images are dropped from the data set and counted.
    public func decode(_ data: inout Dataset, skipBad: Bool) throws -> [Tensor] {
        var images: [Tensor] = []
        var kept: [Sample] = []
        let (ch, cw) = cropSize
        let target = resize ?? (ch, cw)
        for s in data.samples {
            do {
                var img = try Images.load(path: s.path, channels: channels)
                if img.shape[1] != target.0 || img.shape[2] != target.1 {
                    img = Images.resizeBilinear(img, height: target.0, width: target.1)
                }
                guard target.0 >= ch, target.1 >= cw else {
                    throw DataError("\(s.path): error: image \(target.0)x\(target.1) is smaller than the input \(ch)x\(cw); set resize")
                }
                images.append(img)
                kept.append(s)
            } catch {
                if !skipBad { throw error }
                data.skipped += 1
            }
        }
        data.samples = kept
        return images
    }

    /// Where a training image is cropped and whether it is mirrored.
    public struct Augmentation: Hashable, CustomStringConvertible {
        public var y0: Int, x0: Int, flip: Bool
        public var description: String { "\(y0):\(x0):\(flip)" }
    }

    /// The augmentation `rng` draws for an image of `h` x `w` (the centre crop, unmirrored, outside training).
    public func augmentation(height h: Int, width w: Int, train: Bool, rng: inout Xoshiro256) -> Augmentation {
        let (ch, cw) = cropSize
        var a = Augmentation(y0: (h - ch) / 2, x0: (w - cw) / 2, flip: false)
        if train {
            if randomCrop { a.y0 = rng.nextInt(upperBound: h - ch + 1); a.x0 = rng.nextInt(upperBound: w - cw + 1) }
            if mirror { a.flip = rng.nextFloat() < 0.5 }
        }
        return a
    }

    /// Every augmentation training can draw, when there are few (centre crops, each mirrored or
    /// not); nil with random crops.
    public func everyAugmentation(height h: Int, width w: Int) -> [Augmentation]? {
        guard !randomCrop else { return nil }
        let (ch, cw) = cropSize
        return (mirror ? [false, true] : [false]).map { Augmentation(y0: (h - ch) / 2, x0: (w - cw) / 2, flip: $0) }
    }

    /// Writes one image into `out` ([C, inputHeight, inputWidth]). `rng` drives the random crop and
    /// mirror when `train` is true.
    public func apply(_ img: Tensor, into out: UnsafeMutablePointer<Float>, train: Bool, rng: inout Xoshiro256) {
        apply(img, into: out, augmentation(height: img.shape[1], width: img.shape[2], train: train, rng: &rng))
    }

    /// Writes one image into `out` cropped and mirrored as `a` says.
    public func apply(_ img: Tensor, into out: UnsafeMutablePointer<Float>, _ a: Augmentation) {
        let (h, w) = (img.shape[1], img.shape[2])
        let (ch, cw) = cropSize
        let (y0, x0, flip) = (a.y0, a.x0, a.flip)
        img.data.withUnsafeBufferPointer { src in
            for c in 0..<channels {
                let plane = src.baseAddress! + c * h * w
                let dst = out + c * ch * cw
                for y in 0..<ch {
                    for x in 0..<cw {
                        let sx = flip ? x0 + cw - 1 - x : x0 + x
                        let v = (plane[(y0 + y) * w + sx] - mean) * scale
                        // Transposed models read the image with H and W swapped.
                        if transpose { dst[x * ch + y] = v } else { dst[y * cw + x] = v }
                    }
                }
            }
        }
    }
}
