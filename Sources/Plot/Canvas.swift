import Foundation
import Tensors

/// An integer pixel rectangle; `x`, `y` is the top-left corner.
public struct Rect: Equatable, Sendable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) { (self.x, self.y, self.width, self.height) = (x, y, width, height) }
    public var maxX: Int { x + width }
    public var maxY: Int { y + height }
    public var midX: Int { x + width / 2 }
    public var midY: Int { y + height / 2 }
    public func contains(_ px: Int, _ py: Int) -> Bool { px >= x && px < maxX && py >= y && py < maxY }
}

/// Horizontal text anchoring (for vertical text: along the text's own direction, bottom to top).
public enum TextAlign: Sendable { case left, center, right }

/// An RGB raster, row-major, 8 bits per channel, with simple anti-aliased drawing and a bitmap font.
/// Coordinates are pixels, origin top-left, y down; pixel (x, y) covers [x, x+1) × [y, y+1), so its
/// centre is (x + 0.5, y + 0.5).
public struct Canvas: Sendable {
    public let width: Int, height: Int
    /// Interleaved RGB, `3 * (y * width + x) + channel`.
    public var pixels: [UInt8]
    /// When set, drawing only touches pixels inside this rectangle.
    public var clip: Rect?
    /// For charts with axes: the plot area and its data-to-pixel mapping.
    public internal(set) var axes: Axes?

    public init(width: Int, height: Int, background: Color = .white) {
        precondition(width > 0 && height > 0, "canvas needs a positive size")
        (self.width, self.height) = (width, height)
        pixels = [UInt8](repeating: 0, count: 3 * width * height)
        fill(background)
    }

    // MARK: Pixels

    /// Paints every pixel (ignores `clip`).
    public mutating func fill(_ color: Color) {
        for i in stride(from: 0, to: pixels.count, by: 3) { (pixels[i], pixels[i + 1], pixels[i + 2]) = (color.r, color.g, color.b) }
    }

    /// The colour at (x, y); the pixel must be on the canvas.
    public subscript(x: Int, y: Int) -> Color {
        let i = 3 * (y * width + x)
        return Color(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Sets one pixel; off-canvas or clipped pixels are ignored.
    public mutating func setPixel(_ x: Int, _ y: Int, _ color: Color) { blend(x, y, color, alpha: 1) }

    /// Mixes `color` into pixel (x, y) with opacity `alpha` (0...1).
    public mutating func blend(_ x: Int, _ y: Int, _ color: Color, alpha: Double) {
        guard x >= 0, y >= 0, x < width, y < height, alpha > 0 else { return }
        if let clip, !clip.contains(x, y) { return }
        let i = 3 * (y * width + x)
        if alpha >= 1 { (pixels[i], pixels[i + 1], pixels[i + 2]) = (color.r, color.g, color.b); return }
        let c = Color(pixels[i], pixels[i + 1], pixels[i + 2]).mixed(with: color, alpha)
        (pixels[i], pixels[i + 1], pixels[i + 2]) = (c.r, c.g, c.b)
    }

    // MARK: Shapes

    /// Fills a rectangle, optionally translucent.
    public mutating func fillRect(_ r: Rect, _ color: Color, alpha: Double = 1) {
        // Clipped to the canvas; a rectangle wholly outside it draws nothing.
        let (y0, y1, x0, x1) = (max(0, r.y), min(height, r.maxY), max(0, r.x), min(width, r.maxX))
        guard y0 < y1, x0 < x1 else { return }
        for y in y0..<y1 {
            for x in x0..<x1 { blend(x, y, color, alpha: alpha) }
        }
    }

    /// Outlines a rectangle with lines `thickness` pixels wide, drawn inside `r`.
    public mutating func strokeRect(_ r: Rect, _ color: Color, thickness: Int = 1) {
        let t = max(1, min(thickness, r.width, r.height))
        fillRect(Rect(x: r.x, y: r.y, width: r.width, height: t), color)
        fillRect(Rect(x: r.x, y: r.maxY - t, width: r.width, height: t), color)
        fillRect(Rect(x: r.x, y: r.y, width: t, height: r.height), color)
        fillRect(Rect(x: r.maxX - t, y: r.y, width: t, height: r.height), color)
    }

    /// A straight line between two points (continuous pixel coordinates); see `polyline`.
    public mutating func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, _ color: Color,
                              thickness: Double = 1, antialiased: Bool = true, dash: (on: Double, off: Double)? = nil) {
        polyline([(x0, y0), (x1, y1)], color, thickness: thickness, antialiased: antialiased, dash: dash)
    }

    /// Connected line segments `thickness` pixels wide with round joins. Anti-aliased lines get a
    /// one-pixel soft edge; each pixel is painted once with the polyline's strongest coverage, so joins
    /// don't darken. `dash` (lengths in pixels) runs continuously along the whole polyline.
    /// Non-finite points are skipped.
    public mutating func polyline(_ points: [(Double, Double)], _ color: Color, thickness: Double = 1,
                                  antialiased: Bool = true, dash: (on: Double, off: Double)? = nil) {
        let pts = points.filter { $0.0.isFinite && $0.1.isFinite }
        guard !pts.isEmpty else { return }
        let half = max(0.5, thickness / 2), pad = half + 1
        let minX = max(0, Int((pts.map(\.0).min()! - pad).rounded(.down)))
        let maxX = min(width - 1, Int((pts.map(\.0).max()! + pad).rounded(.up)))
        let minY = max(0, Int((pts.map(\.1).min()! - pad).rounded(.down)))
        let maxY = min(height - 1, Int((pts.map(\.1).max()! + pad).rounded(.up)))
        guard minX <= maxX, minY <= maxY else { return }
        let bw = maxX - minX + 1
        var coverage = [Float](repeating: 0, count: bw * (maxY - minY + 1))
        var along = 0.0
        let segments = pts.count == 1 ? [(pts[0], pts[0])] : Array(zip(pts, pts.dropFirst()))
        for (a, b) in segments {
            let (dx, dy) = (b.0 - a.0, b.1 - a.1)
            let len2 = dx * dx + dy * dy, len = len2.squareRoot()
            let x0 = max(minX, Int((min(a.0, b.0) - pad).rounded(.down))), x1 = min(maxX, Int((max(a.0, b.0) + pad).rounded(.up)))
            let y0 = max(minY, Int((min(a.1, b.1) - pad).rounded(.down))), y1 = min(maxY, Int((max(a.1, b.1) + pad).rounded(.up)))
            if x0 <= x1 && y0 <= y1 {
                for y in y0...y1 {
                    for x in x0...x1 {
                        let (px, py) = (Double(x) + 0.5, Double(y) + 0.5)
                        let t = len2 > 0 ? max(0, min(1, ((px - a.0) * dx + (py - a.1) * dy) / len2)) : 0
                        if let dash, dash.on > 0, (along + t * len).truncatingRemainder(dividingBy: dash.on + dash.off) > dash.on { continue }
                        let (ex, ey) = (px - (a.0 + t * dx), py - (a.1 + t * dy))
                        let d = (ex * ex + ey * ey).squareRoot()
                        let c = antialiased ? max(0, min(1, half + 0.5 - d)) : (d <= half ? 1 : 0)
                        let k = (y - minY) * bw + (x - minX)
                        coverage[k] = max(coverage[k], Float(c))
                    }
                }
            }
            along += len
        }
        for y in minY...maxY {
            for x in minX...maxX where coverage[(y - minY) * bw + (x - minX)] > 0 {
                blend(x, y, color, alpha: Double(coverage[(y - minY) * bw + (x - minX)]))
            }
        }
    }

    /// A filled, anti-aliased disc (a plot marker).
    public mutating func fillCircle(_ cx: Double, _ cy: Double, radius: Double, _ color: Color) {
        polyline([(cx, cy)], color, thickness: 2 * radius)
    }

    // MARK: Text

    /// Width in pixels of `text` drawn at `scale`.
    public static func textWidth(_ text: String, scale: Int = 1) -> Int {
        text.isEmpty ? 0 : (text.count * Font.advance - 1) * scale
    }

    /// Height in pixels of one line of text at `scale` (the 7-pixel cap height; descenders hang one pixel below).
    public static func textHeight(scale: Int = 1) -> Int { Font.glyphHeight * scale }

    /// Draws one line of text with the built-in 5x7 font (characters outside ASCII 32...126 draw as `?`), each font pixel a `scale`×`scale` block.
    /// Horizontal text: `y` is the top; `align` says whether `x` is the left end, centre or right end.
    /// Vertical text (rotated 90° counter-clockwise, reading bottom to top, for y-axis labels): `x` is
    /// the left edge of the rotated box (the glyph tops face left), and `align` says whether `y` is
    /// where the text starts (its bottom), its centre, or where it ends (its top).
    public mutating func text(_ text: String, x: Int, y: Int, color: Color = .ink, scale: Int = 1,
                              align: TextAlign = .left, vertical: Bool = false) {
        let s = max(1, scale), w = Self.textWidth(text, scale: s)
        let offset = align == .left ? 0 : align == .center ? w / 2 : w
        for (i, ch) in text.enumerated() {
            for col in 0..<Font.glyphWidth {
                for row in 0..<Font.rows where Font.isSet(ch, col: col, row: row) {
                    let u = i * Font.advance + col   // along the text
                    if vertical {
                        fillRect(Rect(x: x + row * s, y: y + offset - (u + 1) * s, width: s, height: s), color)
                    } else {
                        fillRect(Rect(x: x - offset + u * s, y: y + row * s, width: s, height: s), color)
                    }
                }
            }
        }
    }

    // MARK: Images

    /// Draws an image tensor `[C, H, W]` (C = 1 or 3, values 0...255) scaled into `rect`, nearest or
    /// bilinear. An optional `heat` map (`[H', W']` or `[1, H', W']`, any resolution; it is stretched
    /// over the same rectangle) is normalised to 0...1 over `heatRange` (default: its own min...max),
    /// coloured with `colorMap` and blended with opacity `alpha × value`, so cold regions stay visible.
    public mutating func drawImage(_ image: Tensor, in rect: Rect, bilinear: Bool = true, heat: Tensor? = nil,
                                   colorMap: ColorMap = .jet, alpha: Double = 0.6, heatRange: ClosedRange<Float>? = nil) {
        precondition(image.rank == 3 && (image.shape[0] == 1 || image.shape[0] == 3), "drawImage needs [1 or 3, H, W], got \(image.shape)")
        guard rect.width > 0, rect.height > 0 else { return }
        let heatMap = heat.map { h -> (Tensor, Float, Float) in
            let hw = Array(h.shape.suffix(2))
            precondition(h.shape.count >= 2 && h.count == hw[0] * hw[1], "heat map must be [H, W] or [1, H, W], got \(h.shape)")
            let finite = h.data.filter(\.isFinite)
            let lo = heatRange?.lowerBound ?? finite.min() ?? 0, hi = heatRange?.upperBound ?? finite.max() ?? 1
            return (Tensor(shape: [1] + hw, data: h.data), lo, hi)
        }
        for dy in 0..<rect.height {
            for dx in 0..<rect.width {
                let u = (Double(dx) + 0.5) / Double(rect.width), v = (Double(dy) + 0.5) / Double(rect.height)
                let rgb = (0..<3).map { Self.sample(image, channel: image.shape[0] == 1 ? 0 : $0, u: u, v: v, bilinear: bilinear) }
                var c = Color(UInt8(max(0, min(255, rgb[0].rounded()))), UInt8(max(0, min(255, rgb[1].rounded()))),
                              UInt8(max(0, min(255, rgb[2].rounded()))))
                if let (h, lo, hi) = heatMap {
                    let raw = Self.sample(h, channel: 0, u: u, v: v, bilinear: true)
                    let t = raw.isFinite ? Double(max(0, min(1, (raw - lo) / max(hi - lo, 1e-12)))) : 0
                    c = c.mixed(with: colorMap.color(t), alpha * t)
                }
                setPixel(rect.x + dx, rect.y + dy, c)
            }
        }
    }

    /// Samples channel `channel` of `[C, H, W]` at normalised position (u, v) in 0...1 (pixel centres at
    /// (i + 0.5) / W); edges clamp.
    static func sample(_ t: Tensor, channel: Int, u: Double, v: Double, bilinear: Bool) -> Float {
        let (h, w) = (t.shape[1], t.shape[2]), base = channel * h * w
        if !bilinear {
            return t.data[base + min(h - 1, Int(v * Double(h))) * w + min(w - 1, Int(u * Double(w)))]
        }
        let fx = max(0, min(Double(w - 1), u * Double(w) - 0.5)), fy = max(0, min(Double(h - 1), v * Double(h) - 0.5))
        let x0 = Int(fx), y0 = Int(fy), x1 = min(x0 + 1, w - 1), y1 = min(y0 + 1, h - 1)
        let ax = Float(fx - Double(x0)), ay = Float(fy - Double(y0))
        let top = t.data[base + y0 * w + x0] * (1 - ax) + t.data[base + y0 * w + x1] * ax
        let bot = t.data[base + y1 * w + x0] * (1 - ax) + t.data[base + y1 * w + x1] * ax
        return top * (1 - ay) + bot * ay
    }

    // MARK: Output

    /// The canvas as a `[3, H, W]` tensor with values 0...255.
    public func toTensor() -> Tensor {
        var data = [Float](repeating: 0, count: 3 * width * height)
        let plane = width * height
        for i in 0..<plane {
            for c in 0..<3 { data[c * plane + i] = Float(pixels[3 * i + c]) }
        }
        return Tensor(shape: [3, height, width], data: data)
    }

    /// Writes the canvas as a PNG file.
    public func writePNG(_ path: String) throws { try Images.writePNG(toTensor(), to: path) }
}

/// A chart's plot area and data-to-pixel mapping (`y` may be logarithmic).
public struct Axes: Sendable {
    public var rect: Rect
    public var x: ClosedRange<Double>, y: ClosedRange<Double>
    public var logY: Bool

    /// The pixel position (continuous) of a data point; the y range is in data units even when `logY`.
    public func pixel(x dx: Double, y dy: Double) -> (x: Double, y: Double) {
        let tx = (dx - x.lowerBound) / (x.upperBound - x.lowerBound)
        let ty = logY ? (log10(dy) - log10(y.lowerBound)) / (log10(y.upperBound) - log10(y.lowerBound))
                      : (dy - y.lowerBound) / (y.upperBound - y.lowerBound)
        return (Double(rect.x) + tx * Double(rect.width), Double(rect.maxY) - ty * Double(rect.height))
    }
}
