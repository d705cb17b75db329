/// An opaque 8-bit RGB colour.
public struct Color: Equatable, Hashable, Sendable {
    public var r: UInt8, g: UInt8, b: UInt8

    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { (self.r, self.g, self.b) = (r, g, b) }
    /// `Color(hex: 0x1f77b4)`.
    public init(hex: UInt32) { self.init(UInt8(hex >> 16 & 0xFF), UInt8(hex >> 8 & 0xFF), UInt8(hex & 0xFF)) }
    /// A gray level 0 (black) ... 255 (white).
    public static func gray(_ v: UInt8) -> Color { Color(v, v, v) }

    public static let white = Color(255, 255, 255), black = Color(0, 0, 0)
    /// Text and axis ink, slightly softer than black.
    public static let ink = Color(40, 40, 40)

    /// Linear mix: `t` = 0 gives `self`, 1 gives `other`.
    public func mixed(with other: Color, _ t: Double) -> Color {
        let t = max(0, min(1, t))
        func m(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8((Double(a) * (1 - t) + Double(b) * t).rounded()) }
        return Color(m(r, other.r), m(g, other.g), m(b, other.b))
    }

    /// Relative luminance 0...1 (Rec. 709 weights on the gamma-encoded values; enough to pick text ink).
    public var luminance: Double { (0.2126 * Double(r) + 0.7152 * Double(g) + 0.0722 * Double(b)) / 255 }

    /// The ten-colour categorical palette (matplotlib's tab10), used for series without a colour.
    public static let palette: [Color] = [0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                          0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf].map { Color(hex: $0) }
}

/// A colour map: evenly spaced anchor colours, linearly interpolated.
public struct ColorMap: Sendable {
    public var anchors: [Color]
    public init(anchors: [Color]) {
        precondition(anchors.count >= 2, "a colour map needs at least two anchors")
        self.anchors = anchors
    }

    /// The colour for `t` in 0...1 (clamped; NaN maps to 0).
    public func color(_ t: Double) -> Color {
        let t = t.isNaN ? 0 : max(0, min(1, t))
        let f = t * Double(anchors.count - 1)
        let i = min(Int(f), anchors.count - 2)
        return anchors[i].mixed(with: anchors[i + 1], f - Double(i))
    }

    /// Perceptually uniform sequential map (viridis, sampled at nine points).
    public static let viridis = ColorMap(anchors: [0x440154, 0x482878, 0x3E4989, 0x31688E, 0x26828E,
                                                   0x1F9E89, 0x35B779, 0x6DCD59, 0xFDE725].map { Color(hex: $0) })
    /// Sequential white → dark blue (matplotlib's Blues); larger values are darker.
    public static let blues = ColorMap(anchors: [0xF7FBFF, 0xDEEBF7, 0xC6DBEF, 0x9ECAE1, 0x6BAED6,
                                                 0x4292C6, 0x2171B5, 0x08519C, 0x08306B].map { Color(hex: $0) })
    /// Black → red → yellow → white, for activation overlays.
    public static let hot = ColorMap(anchors: [0x0B0000, 0xB00000, 0xFF4000, 0xFFC000, 0xFFFFFF].map { Color(hex: $0) })
    /// Diverging blue → white → red (coolwarm-like), for signed values.
    public static let blueWhiteRed = ColorMap(anchors: [0x3B4CC0, 0x8DB0FE, 0xF2F2F2, 0xF49A7B, 0xB40426].map { Color(hex: $0) })
    /// Blue → cyan → yellow → red (jet-like), the classic activation-map overlay.
    public static let jet = ColorMap(anchors: [0x00007F, 0x0000FF, 0x00FFFF, 0xFFFF00, 0xFF0000, 0x7F0000].map { Color(hex: $0) })
}
