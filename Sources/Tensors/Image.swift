import CStb
import Foundation

/// Image decoding and encoding through stb_image / stb_image_write. Images are tensors of shape
/// `[C, H, W]` (C = 1 gray or 3 RGB) holding floats in 0...255.
public enum Images {
    /// The largest image decoded (width x height), checked from the header before stb allocates:
    /// 8192 x 8192. A header may claim any size up to 2^24 per side.
    nonisolated(unsafe) public static var maxPixels = 1 << 26

    private static func checkSize(_ w: Int32, _ h: Int32, _ label: String) throws {
        guard Int(w) * Int(h) <= maxPixels else {
            throw TensorError.image(path: label, message: "image of \(w) x \(h) pixels is larger than the \(maxPixels) pixels fn2e decodes")
        }
    }

    /// Decodes a PNG, JPEG or BMP file into `[channels, H, W]` floats 0...255 (channels 1 or 3;
    /// stb converts colour to gray or gray to RGB as asked). Errors name the file and stb's reason.
    public static func load(path: String, channels: Int = 3) throws -> Tensor {
        precondition(channels == 1 || channels == 3, "channels must be 1 or 3")
        var w: Int32 = 0, h: Int32 = 0, n: Int32 = 0
        if stbi_info(path, &w, &h, &n) == 1 { try checkSize(w, h, path) }
        guard let pixels = stbi_load(path, &w, &h, &n, Int32(channels)) else {
            throw TensorError.image(path: path, message: failureReason())
        }
        defer { stbi_image_free(pixels) }
        return planar(pixels, width: Int(w), height: Int(h), channels: channels)
    }

    /// Decodes an in-memory encoded image (see `load(path:channels:)`); `label` names it in errors.
    public static func decode(_ data: Data, channels: Int = 3, label: String = "<memory>") throws -> Tensor {
        precondition(channels == 1 || channels == 3, "channels must be 1 or 3")
        var w: Int32 = 0, h: Int32 = 0, n: Int32 = 0
        guard data.count <= Int(Int32.max) else { throw TensorError.image(path: label, message: "file is larger than 2 GB") }
        let info: Int32 = data.withUnsafeBytes { raw in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress else { return 0 }
            return stbi_info_from_memory(base, Int32(raw.count), &w, &h, &n)
        }
        if info == 1 { try checkSize(w, h, label) }
        let pixels: UnsafeMutablePointer<UInt8>? = data.withUnsafeBytes { raw in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress else { return nil }
            return stbi_load_from_memory(base, Int32(raw.count), &w, &h, &n, Int32(channels))
        }
        guard let pixels else { throw TensorError.image(path: label, message: failureReason()) }
        defer { stbi_image_free(pixels) }
        return planar(pixels, width: Int(w), height: Int(h), channels: channels)
    }

    /// Writes a `[C, H, W]` tensor (C = 1 or 3, values clamped to 0...255 and rounded) as PNG.
    public static func writePNG(_ image: Tensor, to path: String) throws {
        guard image.rank == 3, image.shape[0] == 1 || image.shape[0] == 3 else {
            throw TensorError.shape("writePNG needs [1 or 3, H, W], got \(image.shape)")
        }
        let (c, h, w) = (image.shape[0], image.shape[1], image.shape[2])
        var interleaved = [UInt8](repeating: 0, count: c * h * w)
        for ch in 0..<c {
            for i in 0..<(h * w) {
                let v = image.data[ch * h * w + i]
                interleaved[i * c + ch] = UInt8(max(0, min(255, v.rounded())))
            }
        }
        let ok = interleaved.withUnsafeBytes { raw in
            stbi_write_png(path, Int32(w), Int32(h), Int32(c), raw.baseAddress, Int32(w * c))
        }
        if ok == 0 { throw TensorError.image(path: path, message: "stbi_write_png failed") }
    }

    /// Bilinear resize of `[C, H, W]` to `[C, outH, outW]` with half-pixel centres (as OpenCV's
    /// INTER_LINEAR without antialiasing); edges clamp.
    public static func resizeBilinear(_ image: Tensor, height outH: Int, width outW: Int) -> Tensor {
        precondition(image.rank == 3 && outH > 0 && outW > 0, "resizeBilinear needs [C, H, W] and a positive size")
        let (c, h, w) = (image.shape[0], image.shape[1], image.shape[2])
        var out = [Float](repeating: 0, count: c * outH * outW)
        let sy = Float(h) / Float(outH), sx = Float(w) / Float(outW)
        for oy in 0..<outH {
            let fy = max(0, (Float(oy) + 0.5) * sy - 0.5)
            let y0 = min(Int(fy), h - 1), y1 = min(y0 + 1, h - 1)
            let ay = fy - Float(y0)
            for ox in 0..<outW {
                let fx = max(0, (Float(ox) + 0.5) * sx - 0.5)
                let x0 = min(Int(fx), w - 1), x1 = min(x0 + 1, w - 1)
                let ax = fx - Float(x0)
                for ch in 0..<c {
                    let base = ch * h * w
                    let top = image.data[base + y0 * w + x0] * (1 - ax) + image.data[base + y0 * w + x1] * ax
                    let bot = image.data[base + y1 * w + x0] * (1 - ax) + image.data[base + y1 * w + x1] * ax
                    out[ch * outH * outW + oy * outW + ox] = top * (1 - ay) + bot * ay
                }
            }
        }
        return Tensor(shape: [c, outH, outW], data: out)
    }

    /// Histogram equalization with OpenCV's `equalizeHist` arithmetic, each channel on its own
    /// (pixels are rounded to whole 0...255 levels first): with h the channel's histogram, i0 its
    /// darkest level and T its pixel count, level i0 maps to 0 and level i to
    /// round-half-even(float(h[i0+1] + ... + h[i]) * float(255 / (T - h[i0]))) in single precision,
    /// as OpenCV computes it; a channel of one level keeps it.
    public static func equalizeHistogram(_ image: Tensor) -> Tensor {
        let plane = image.shape.count == 3 ? image.shape[1] * image.shape[2] : image.count
        var out = image.data
        for c in 0..<(image.count / max(plane, 1)) {
            let levels = (0..<plane).map { Int(min(255, max(0, image.data[c * plane + $0])).rounded(.toNearestOrEven)) }
            var hist = [Int](repeating: 0, count: 256)
            for v in levels { hist[v] += 1 }
            let i0 = hist.firstIndex { $0 > 0 }!
            var lut = [Float](repeating: Float(i0), count: 256)
            if hist[i0] < plane {
                let scale = Float(255) / Float(plane - hist[i0])
                var sum = 0
                lut[i0] = 0
                for i in (i0 + 1)..<256 {
                    sum += hist[i]
                    lut[i] = min(255, (Float(sum) * scale).rounded(.toNearestOrEven))
                }
            }
            for (k, v) in levels.enumerated() { out[c * plane + k] = lut[v] }
        }
        return Tensor(shape: image.shape, data: out)
    }

    private static func planar(_ pixels: UnsafeMutablePointer<UInt8>, width w: Int, height h: Int, channels c: Int) -> Tensor {
        var out = [Float](repeating: 0, count: c * h * w)
        for i in 0..<(h * w) {
            for ch in 0..<c { out[ch * h * w + i] = Float(pixels[i * c + ch]) }
        }
        return Tensor(shape: [c, h, w], data: out)
    }

    private static func failureReason() -> String {
        if let r = stbi_failure_reason() { return String(cString: r) }
        return "unknown stb_image failure"
    }
}
