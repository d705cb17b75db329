// The Caffe model as the rest of fn2e sees it: layers in the current (post-upgrade) vocabulary,
// parameters resolved to plain Swift values, weights as float arrays, source locations kept.
import Detection

/// TRAIN or TEST, as in `NetStateRule.phase`.
public enum CaffePhase: String, Sendable, Equatable {
    case train = "TRAIN"
    case test = "TEST"
}

/// One `include { ... }` / `exclude { ... }` rule (Caffe `NetStateRule`).
public struct CaffeRule: Equatable, Sendable {
    public var phase: CaffePhase?
    public var minLevel: Int?
    public var maxLevel: Int?
    public var stages: [String]
    public var notStages: [String]
    public init(phase: CaffePhase? = nil, minLevel: Int? = nil, maxLevel: Int? = nil, stages: [String] = [], notStages: [String] = []) {
        self.phase = phase
        self.minLevel = minLevel
        self.maxLevel = maxLevel
        self.stages = stages
        self.notStages = notStages
    }
}

/// Learning-rate and weight-decay multipliers of one parameter blob (Caffe `ParamSpec`).
public struct CaffeParamSpec: Equatable, Sendable {
    public var name: String?
    public var lrMult: Float
    public var decayMult: Float
    public init(name: String? = nil, lrMult: Float = 1, decayMult: Float = 1) {
        self.name = name
        self.lrMult = lrMult
        self.decayMult = decayMult
    }
}

/// A weight blob. `shape` is as stored: `[O, I, kH, kW]` for convolution weights in the current
/// format, the legacy 4-D `[num, channels, height, width]` (e.g. `[1, 1, 1, O]` for a bias) in
/// old files; right-aligning legacy shapes is left to whoever matches them against layers.
public struct CaffeBlob: Equatable, Sendable {
    public var shape: [Int]
    public var data: [Float]
    public init(shape: [Int], data: [Float]) {
        self.shape = shape
        self.data = data
    }
}

/// A (height, width) pair.
public struct CaffeHW: Equatable, Sendable, CustomStringConvertible {
    public var h: Int
    public var w: Int
    public init(_ h: Int, _ w: Int) {
        self.h = h
        self.w = w
    }
    public var description: String { "\(h)x\(w)" }
}

public struct ConvolutionParams: Equatable, Sendable {
    public var numOutput: Int
    public var biasTerm: Bool = true
    public var kernel: CaffeHW
    public var stride = CaffeHW(1, 1)
    public var pad = CaffeHW(0, 0)
    public var dilation = CaffeHW(1, 1)
    public var group = 1
    public var axis = 1
    public init(numOutput: Int, kernel: CaffeHW, stride: CaffeHW = CaffeHW(1, 1), pad: CaffeHW = CaffeHW(0, 0),
                dilation: CaffeHW = CaffeHW(1, 1), group: Int = 1, biasTerm: Bool = true, axis: Int = 1) {
        self.numOutput = numOutput
        self.kernel = kernel
        self.stride = stride
        self.pad = pad
        self.dilation = dilation
        self.group = group
        self.biasTerm = biasTerm
        self.axis = axis
    }
}

public enum CaffePoolMethod: String, Sendable, Equatable {
    case max = "MAX"
    case average = "AVE"
    case stochastic = "STOCHASTIC"
}

public struct PoolingParams: Equatable, Sendable {
    public var method: CaffePoolMethod
    public var kernel: CaffeHW
    public var stride: CaffeHW
    public var pad: CaffeHW
    /// Pool over the whole spatial extent; `kernel` is then (0, 0).
    public var global: Bool
    /// Output size rounds up (Caffe's default, `round_mode: CEIL`) rather than down.
    public var ceil: Bool
    public init(method: CaffePoolMethod = .max, kernel: CaffeHW, stride: CaffeHW = CaffeHW(1, 1), pad: CaffeHW = CaffeHW(0, 0),
                global: Bool = false, ceil: Bool = true) {
        self.method = method
        self.kernel = kernel
        self.stride = stride
        self.pad = pad
        self.global = global
        self.ceil = ceil
    }
}

public struct InnerProductParams: Equatable, Sendable {
    public var numOutput: Int
    public var biasTerm: Bool
    public var axis: Int
    public var transpose: Bool
    public init(numOutput: Int, biasTerm: Bool = true, axis: Int = 1, transpose: Bool = false) {
        self.numOutput = numOutput
        self.biasTerm = biasTerm
        self.axis = axis
        self.transpose = transpose
    }
}

public enum CaffeLRNRegion: String, Sendable, Equatable {
    case acrossChannels = "ACROSS_CHANNELS"
    case withinChannel = "WITHIN_CHANNEL"
}

public struct LRNParams: Equatable, Sendable {
    public var localSize: Int
    public var alpha: Float
    public var beta: Float
    public var k: Float
    public var region: CaffeLRNRegion
    public init(localSize: Int = 5, alpha: Float = 1, beta: Float = 0.75, k: Float = 1, region: CaffeLRNRegion = .acrossChannels) {
        self.localSize = localSize
        self.alpha = alpha
        self.beta = beta
        self.k = k
        self.region = region
    }
}

public enum CaffeEltwiseOp: String, Sendable, Equatable {
    case product = "PROD"
    case sum = "SUM"
    case max = "MAX"
}

public struct ReshapeParams: Equatable, Sendable {
    /// Output dims; 0 copies the input dim, -1 is inferred.
    public var shape: [Int]
    public var axis: Int
    public var numAxes: Int
    public init(shape: [Int], axis: Int = 0, numAxes: Int = -1) {
        self.shape = shape
        self.axis = axis
        self.numAxes = numAxes
    }
}

public struct BatchNormParams: Equatable, Sendable {
    public var eps: Float
    /// nil when the file leaves it to the phase (TEST uses global statistics).
    public var useGlobalStats: Bool?
    public var movingAverageFraction: Float
    public init(eps: Float = 1e-5, useGlobalStats: Bool? = nil, movingAverageFraction: Float = 0.999) {
        self.eps = eps
        self.useGlobalStats = useGlobalStats
        self.movingAverageFraction = movingAverageFraction
    }
}

/// The type-specific settings of a layer, resolved with Caffe's defaults.
public enum CaffeLayerParams: Equatable, Sendable {
    /// Layer types without settings (Sigmoid, TanH, Split, ...) and types fn2e does not model.
    case none
    /// Convolution and Deconvolution.
    case convolution(ConvolutionParams)
    case pooling(PoolingParams)
    case innerProduct(InnerProductParams)
    case relu(negativeSlope: Float)
    case prelu(channelShared: Bool)
    case dropout(ratio: Float)
    case softmax(axis: Int)
    case lrn(LRNParams)
    case eltwise(op: CaffeEltwiseOp, coeffs: [Float])
    case concat(axis: Int)
    case slice(axis: Int, slicePoints: [Int])
    case flatten(axis: Int, endAxis: Int)
    case reshape(ReshapeParams)
    case batchNorm(BatchNormParams)
    case scale(axis: Int, numAxes: Int, biasTerm: Bool)
    case bias(axis: Int, numAxes: Int)
    /// One shape per top (or one for all).
    case input(shapes: [[Int]])
    // The SSD fork's layers (CaffeNet+SSD.swift).
    case normalize(NormalizeParams)
    case permute(order: [Int])
    case priorBox(PriorBoxParams)
    case detectionOutput(DetectionSpec)
}

public struct CaffeLayer: Equatable, Sendable {
    public var name: String
    /// The current type name, e.g. "Convolution" (V1 enum names are upgraded).
    public var type: String
    public var bottoms: [String]
    public var tops: [String]
    public var params: [CaffeParamSpec]
    public var blobs: [CaffeBlob]
    public var include: [CaffeRule]
    public var exclude: [CaffeRule]
    public var phase: CaffePhase?
    public var lossWeights: [Float]
    public var propagateDown: [Bool]
    public var typeParams: CaffeLayerParams
    /// Where the layer's `layer {` / `layers {` starts in its prototxt; nil for binary files.
    public var location: CaffeSourceLocation?
    /// Where its `type:` token is.
    public var typeLocation: CaffeSourceLocation?

    public init(name: String, type: String, bottoms: [String] = [], tops: [String] = [], params: [CaffeParamSpec] = [],
                blobs: [CaffeBlob] = [], include: [CaffeRule] = [], exclude: [CaffeRule] = [], phase: CaffePhase? = nil,
                lossWeights: [Float] = [], propagateDown: [Bool] = [], typeParams: CaffeLayerParams = .none,
                location: CaffeSourceLocation? = nil, typeLocation: CaffeSourceLocation? = nil) {
        self.name = name
        self.type = type
        self.bottoms = bottoms
        self.tops = tops
        self.params = params
        self.blobs = blobs
        self.include = include
        self.exclude = exclude
        self.phase = phase
        self.lossWeights = lossWeights
        self.propagateDown = propagateDown
        self.typeParams = typeParams
        self.location = location
        self.typeLocation = typeLocation
    }
}

/// A named network input and its shape (`[N, C, H, W]` for images; empty when unspecified).
public struct CaffeInput: Equatable, Sendable {
    public var name: String
    public var shape: [Int]
    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
    }
}

public struct CaffeNet: Equatable, Sendable {
    public var name: String
    public var layers: [CaffeLayer]
    /// One line per upgrade step applied while reading ("upgrading V1 layers to current format").
    public var upgradeLog: [String]
    /// What the reader skipped (`file:line:col: warning: ...`): fields caffe.proto does not have.
    public var warnings: [String] = []

    public init(name: String, layers: [CaffeLayer], upgradeLog: [String] = []) {
        self.name = name
        self.layers = layers
        self.upgradeLog = upgradeLog
    }

    /// The tops of the Input layers with their shapes; legacy `input:` fields have been upgraded
    /// into an Input layer, so this covers both spellings.
    public var inputs: [CaffeInput] {
        layers.filter { $0.type == "Input" }.flatMap { layer -> [CaffeInput] in
            guard case .input(let shapes) = layer.typeParams else { return layer.tops.map { CaffeInput(name: $0, shape: []) } }
            return layer.tops.enumerated().map { i, top in
                CaffeInput(name: top, shape: shapes.isEmpty ? [] : shapes[shapes.count == 1 ? 0 : min(i, shapes.count - 1)])
            }
        }
    }

    public func layer(named name: String) -> CaffeLayer? { layers.first { $0.name == name } }

    /// The net without source locations, for comparing a prototxt with a binary file.
    public var withoutLocations: CaffeNet {
        var copy = self
        for i in copy.layers.indices {
            copy.layers[i].location = nil
            copy.layers[i].typeLocation = nil
        }
        return copy
    }
}
