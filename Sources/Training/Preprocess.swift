import Foundation
import Tensors

/// How images become network input: channels, histogram equalization, resize, crop to the input
/// size (centre, or random in training, optionally reaching `cropPad` pixels beyond the image),
/// and in training mirror, rotation, scale, brightness and contrast; then `(x - mean) * scale`, and
/// an optional H/W transpose for MATLAB-trained models. Evaluation uses the same pipeline without
/// randomness.
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
    /// Histogram equalization (`Images.equalizeHistogram`) of every image as it is read, before resizing.
    public var equalize = false
    /// Random crops may start this many pixels outside the image (edge pixels repeat there).
    public var cropPad = 0
    /// Training draws a rotation in [-rotate, rotate] degrees, a scale in [1 - zoom, 1 + zoom], a
    /// brightness shift in [-brightness, brightness] gray levels and a contrast factor in
    /// [1 - contrast, 1 + contrast]; 0 turns each off.
    public var rotate: Float = 0, zoom: Float = 0, brightness: Float = 0, contrast: Float = 0
    /// Evaluation and prediction average the class probabilities of this many views of an image
    /// (1, 2 or 10; see `views`).
    public var testViews = 1

    /// The preprocessing a run's settings describe for a network input `[C, H, W]` (what
    /// `train`, `eval` and `predict` all use).
    public init(settings: Settings, channels: Int, inputHeight: Int, inputWidth: Int) throws {
        self.init(channels: channels, inputHeight: inputHeight, inputWidth: inputWidth, resize: settings.resize,
                  randomCrop: settings.string("crop_mode") == "random", mirror: settings.bool("mirror"),
                  mean: Float(settings.double("mean")), scale: Float(settings.double("scale")), transpose: settings.bool("transpose"))
        equalize = settings.string("equalize") == "hist"
        cropPad = settings.int("crop_pad")
        (rotate, zoom) = (Float(settings.double("rotate")), Float(settings.double("zoom")))
        (brightness, contrast) = (Float(settings.double("brightness")), Float(settings.double("contrast")))
        guard cropPad == 0 || randomCrop else {
            throw TrainingError("crop_pad = \(cropPad) needs crop_mode = random (a centre crop is never padded)")
        }
        testViews = settings.int("test_views")
        guard testViews != 10 || randomCrop else {
            throw TrainingError("test_views = 10 needs crop_mode = random (its corner views are the farthest crops training reaches)")
        }
    }

    /// Whether training draws augmentations from a continuum (rotation, scale, brightness,
    /// contrast), so that no two are alike and a frozen part's results cannot be reused.
    public var continuous: Bool { rotate > 0 || zoom > 0 || brightness > 0 || contrast > 0 }

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
        for s in data.samples {
            do {
                images.append(try decode(s.path))
                kept.append(s)
            } catch {
                if !skipBad { throw error }
                data.skipped += 1
            }
        }
        data.samples = kept
        return images
    }

    /// One image, read as training stores it; errors name the file.
    public func decode(_ path: String) throws -> Tensor {
        let (ch, cw) = cropSize
        let target = resize ?? (ch, cw)
        guard target.0 >= ch, target.1 >= cw else {
            throw DataError("\(path): error: image \(target.0)x\(target.1) is smaller than the input \(ch)x\(cw); set resize")
        }
        return stored(try Images.load(path: path, channels: channels))
    }

    /// The image as training stores it (this preprocessing's channels): equalized if asked, then
    /// resized to `resize` (else the crop size) when it is not that size already.
    public func stored(_ image: Tensor) -> Tensor {
        let img = equalize ? Images.equalizeHistogram(image) : image
        let (h, w) = resize ?? cropSize
        return img.shape[1] == h && img.shape[2] == w ? img : Images.resizeBilinear(img, height: h, width: w)
    }

    /// Where a training image is cropped, whether it is mirrored, and its rotation (degrees), scale,
    /// brightness (gray levels added) and contrast (factor about 127.5): 0, 1, 0, 1 leave it as is.
    public struct Augmentation: Hashable, CustomStringConvertible {
        public var y0: Int, x0: Int, flip: Bool
        public var angle: Float = 0, zoom: Float = 1, brightness: Float = 0, contrast: Float = 1

        public init(y0: Int, x0: Int, flip: Bool, angle: Float = 0, zoom: Float = 1, brightness: Float = 0, contrast: Float = 1) {
            (self.y0, self.x0, self.flip) = (y0, x0, flip)
            (self.angle, self.zoom, self.brightness, self.contrast) = (angle, zoom, brightness, contrast)
        }

        var geometric: Bool { angle != 0 || zoom != 1 }
        var photometric: Bool { brightness != 0 || contrast != 1 }
        /// A crop and mirror alone keep the key they always had (frozen results stored by it stay valid).
        public var description: String {
            "\(y0):\(x0):\(flip)" + (geometric || photometric ? ":\(angle):\(zoom):\(brightness):\(contrast)" : "")
        }
    }

    /// The augmentation `rng` draws for an image of `h` x `w` (the centre crop, unmirrored, outside
    /// training). The draws come in a fixed order (crop, mirror, rotation, scale, brightness,
    /// contrast), each only when turned on, so a setting left off does not change the others'.
    public func augmentation(height h: Int, width w: Int, train: Bool, rng: inout Xoshiro256) -> Augmentation {
        let (ch, cw) = cropSize
        var a = Augmentation(y0: (h - ch) / 2, x0: (w - cw) / 2, flip: false)
        if train {
            if randomCrop {
                a.y0 = rng.nextInt(upperBound: h - ch + 1 + 2 * cropPad) - cropPad
                a.x0 = rng.nextInt(upperBound: w - cw + 1 + 2 * cropPad) - cropPad
            }
            if mirror { a.flip = rng.nextFloat() < 0.5 }
            func symmetric(_ r: Float) -> Float { (2 * rng.nextFloat() - 1) * r }
            if rotate > 0 { a.angle = symmetric(rotate) }
            if zoom > 0 { a.zoom = 1 + symmetric(zoom) }
            if brightness > 0 { a.brightness = symmetric(brightness) }
            if contrast > 0 { a.contrast = 1 + symmetric(contrast) }
        }
        return a
    }

    /// Every augmentation training can draw, when there are few (centre crops, each mirrored or
    /// not); nil with random crops.
    public func everyAugmentation(height h: Int, width w: Int) -> [Augmentation]? {
        guard !randomCrop, !continuous else { return nil }
        let (ch, cw) = cropSize
        return (mirror ? [false, true] : [false]).map { Augmentation(y0: (h - ch) / 2, x0: (w - cw) / 2, flip: $0) }
    }

    /// The views of an `h` x `w` image that evaluation averages, the centre crop first: with
    /// `testViews` 2 also its mirror; with 10 the centre and the four corner crops as far as
    /// training's random crops reach (`cropPad` beyond the image), each plain and mirrored.
    public func views(height h: Int, width w: Int) -> [Augmentation] {
        let (ch, cw) = cropSize
        let centre = (y: (h - ch) / 2, x: (w - cw) / 2)
        var places = [centre]
        if testViews == 10 {
            let (ys, xs) = ([-cropPad, h - ch + cropPad], [-cropPad, w - cw + cropPad])
            places += ys.flatMap { y in xs.map { x in (y: y, x: x) } }
        }
        return places.flatMap { p in (testViews == 1 ? [false] : [false, true]).map { Augmentation(y0: p.y, x0: p.x, flip: $0) } }
    }

    /// Writes one image into `out` ([C, inputHeight, inputWidth]). `rng` drives the random crop and
    /// mirror when `train` is true.
    public func apply(_ img: Tensor, into out: UnsafeMutablePointer<Float>, train: Bool, rng: inout Xoshiro256) {
        apply(img, into: out, augmentation(height: img.shape[1], width: img.shape[2], train: train, rng: &rng))
    }

    /// Writes one image into `out` cropped, mirrored, rotated, scaled and adjusted as `a` says. The
    /// rotation and scale turn the crop about its centre (a positive angle turns the picture
    /// clockwise as seen; a scale above 1 enlarges it), sampling bilinearly; outside the image, edge
    /// pixels repeat. Brightness and contrast act on 0-255 levels, clamped to that range.
    public func apply(_ img: Tensor, into out: UnsafeMutablePointer<Float>, _ a: Augmentation) {
        let (h, w) = (img.shape[1], img.shape[2])
        let (ch, cw) = cropSize
        let (cy, cx) = (Float(a.y0) + Float(ch - 1) / 2, Float(a.x0) + Float(cw - 1) / 2)
        let radians = a.angle * .pi / 180
        let (cosA, sinA) = (cos(radians) / a.zoom, sin(radians) / a.zoom)
        img.data.withUnsafeBufferPointer { src in
            for c in 0..<channels {
                let plane = src.baseAddress! + c * h * w
                func at(_ y: Int, _ x: Int) -> Float { plane[min(max(y, 0), h - 1) * w + min(max(x, 0), w - 1)] }
                let dst = out + c * ch * cw
                for y in 0..<ch {
                    for x in 0..<cw {
                        let u = a.flip ? cw - 1 - x : x
                        var v: Float
                        if a.geometric {
                            // The source point: the output offset from the centre turned back by the angle, shrunk by the scale.
                            let (dy, dx) = (Float(y) - Float(ch - 1) / 2, Float(u) - Float(cw - 1) / 2)
                            let (sy, sx) = (cy + cosA * dy - sinA * dx, cx + sinA * dy + cosA * dx)
                            let (y0, x0) = (Int(sy.rounded(.down)), Int(sx.rounded(.down)))
                            let (fy, fx) = (sy - Float(y0), sx - Float(x0))
                            v = (at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx) * (1 - fy) + (at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx) * fy
                        } else {
                            v = at(a.y0 + y, a.x0 + u)
                        }
                        if a.photometric { v = min(255, max(0, (v - 127.5) * a.contrast + 127.5 + a.brightness)) }
                        v = (v - mean) * scale
                        // Transposed models read the image with H and W swapped.
                        if transpose { dst[x * ch + y] = v } else { dst[y * cw + x] = v }
                    }
                }
            }
        }
    }
}
