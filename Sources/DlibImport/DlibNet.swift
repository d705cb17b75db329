// A dlib network: its type (which the file does not record: dlib's C++ template names it) and the
// layers read from a file of that type.
//
// dlib serializes a network outside-in: the loss layer, then each layer's version number from the
// top of the network down to the input layer, then each layer's details from the bottom up. Tag
// and skip layers store only their version, and `add_prev` stores no tag id, so the file cannot be
// read without the type, exactly as dlib's own `deserialize` needs the C++ type.

/// One entry of a network type, listed from the top (next to the loss) down to the input.
public enum DlibEntry: Equatable, Sendable, CustomStringConvertible {
    /// A computational layer of a family: "con", "fc", "relu", "affine" (also reads dlib's bn_con,
    /// which dlib converts into affine when it loads a net), "max_pool", "avg_pool".
    case layer(String)
    /// `add_prevN`: the output plus the output of the nearest `tagN` below.
    case addPrev(tag: Int)
    /// `tagN`: marks its input for `add_prevN` and `skipN` above.
    case tag(Int)
    /// `skipN`: continues from the nearest `tagN` below.
    case skip(Int)

    public var description: String {
        switch self {
        case .layer(let family): return family
        case .addPrev(let id): return "add_prev\(id)"
        case .tag(let id): return "tag\(id)"
        case .skip(let id): return "skip\(id)"
        }
    }
}

/// A network type: loss, layers top-down, input.
public struct DlibNetType: Equatable, Sendable {
    public var loss: String
    public var layers: [DlibEntry]
    public var input: String

    public init(loss: String, layers: [DlibEntry], input: String) {
        self.loss = loss
        self.layers = layers
        self.input = input
    }

    /// A small type with every layer family the importer maps (con, affine, relu, max and avg
    /// pooling, tags, skip, add_prev over mismatched shapes, fc, loss_metric): the generated test
    /// net's type, and the second type the dlib fuzz target reads with.
    public static let everyFamily = DlibNetType(loss: "loss_metric", layers: [
        .layer("fc"), .layer("avg_pool"), .layer("relu"), .addPrev(tag: 2), .layer("avg_pool"), .skip(1), .tag(2),
        .layer("affine"), .layer("con"), .tag(1), .layer("max_pool"), .layer("relu"), .layer("affine"), .layer("con"),
    ], input: "input_rgb_image_sized")

    /// `anet_type` of dlib's `dnn_face_recognition_ex.cpp`, the type of
    /// dlib_face_recognition_resnet_model_v1.dat, with its aliases expanded the way C++ does:
    ///
    ///     block<N,BN,S,SUB>  = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,S,S,SUB>>>>>
    ///     ares<N,SUB>        = relu<add_prev1<block<N,affine,1,tag1<SUB>>>>
    ///     ares_down<N,SUB>   = relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUB>>>>>>>
    ///     alevel0..alevel4   = ares_down<256>; ares<256>x2 ares_down<256>; ares<128>x2 ares_down<128>;
    ///                          ares<64>x3 ares_down<64>; ares<32>x3
    ///     anet_type = loss_metric<fc_no_bias<128,avg_pool_everything<alevel0<...alevel4<
    ///                 max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,input_rgb_image_sized<150>>>>>>>>>>>>
    public static let faceRecognitionResNet: DlibNetType = {
        let block: [DlibEntry] = [.layer("affine"), .layer("con"), .layer("relu"), .layer("affine"), .layer("con")]
        let ares: [DlibEntry] = [.layer("relu"), .addPrev(tag: 1)] + block + [.tag(1)]
        let aresDown: [DlibEntry] = [.layer("relu"), .addPrev(tag: 2), .layer("avg_pool"), .skip(1), .tag(2)] + block + [.tag(1)]
        let level0 = aresDown
        let level1 = ares + ares + aresDown
        let level2 = ares + ares + aresDown
        let level3 = ares + ares + ares + aresDown
        let level4 = ares + ares + ares
        let top: [DlibEntry] = [.layer("fc"), .layer("avg_pool")]
        let stem: [DlibEntry] = [.layer("max_pool"), .layer("relu"), .layer("affine"), .layer("con")]
        return DlibNetType(loss: "loss_metric", layers: top + level0 + level1 + level2 + level3 + level4 + stem,
                           input: "input_rgb_image_sized")
    }()
}

/// What one layer of a file holds, in dlib's terms.
public enum DlibLayerDetails: Equatable, Sendable {
    /// `con_`: filters `[O, C, KH, KW]`, biases `[O]` (none when `use_bias` is off), a fused relu.
    case con(filters: DlibTensor, biases: [Float]?, stride: [Int], padding: [Int], relu: Bool)
    /// `affine_` in conv mode: y = gamma[k] x + beta[k]. `disabled` (fused into the conv before it) is identity.
    case affine(gamma: [Float], beta: [Float], disabled: Bool)
    /// `bn_con`: y = gamma[k] (x - mean[k]) / sqrt(var[k] + eps) + beta[k] with the running statistics.
    case batchNorm(gamma: [Float], beta: [Float], mean: [Float], variance: [Float], eps: Float)
    case relu(disabled: Bool)
    /// A window of 0 means the whole input (`max_pool_everything`, `avg_pool_everything`).
    case maxPool(window: [Int], stride: [Int], padding: [Int])
    case avgPool(window: [Int], stride: [Int], padding: [Int])
    /// `fc_`: weights `[inputs, outputs]` as dlib multiplies them (x W), biases `[outputs]` or none.
    case fc(weights: DlibTensor, biases: [Float]?)
    case addPrev(tag: Int)
    case tag(Int)
    case skip(Int)
}

/// One layer read from a file.
public struct DlibLayer: Equatable, Sendable {
    /// dlib's index: `layer<index>(net)`; 0 is the loss, the input is one past the last layer.
    public var index: Int
    /// The version string the file gives (`con_4`, `affine_`, ...), or the entry's name for tags.
    public var version: String
    /// Where the layer's details start in the file.
    public var offset: Int
    public var details: DlibLayerDetails

    public init(index: Int, version: String, offset: Int = 0, details: DlibLayerDetails) {
        self.index = index
        self.version = version
        self.offset = offset
        self.details = details
    }

    /// The number of floats the layer learns, as dlib counts them (its parameter tensor).
    public var parameterCount: Int {
        switch details {
        case .con(let f, let b, _, _, _): return f.data.count + (b?.count ?? 0)
        case .affine(let g, let b, _): return g.count + b.count
        case .batchNorm(let g, let b, _, _, _): return g.count + b.count
        case .fc(let w, let b): return w.data.count + (b?.count ?? 0)
        case .relu, .maxPool, .avgPool, .addPrev, .tag, .skip: return 0
        }
    }
}

/// A network read from a dlib file.
public struct DlibNet: Equatable, Sendable {
    public var type: DlibNetType
    /// The loss layer's version string and its stored values (loss_metric: margin, distance threshold).
    public var loss: String
    public var lossValues: [Float]
    /// The input layer: per-channel means (R, G, B) subtracted before scaling by 1/256, and its size.
    public var inputMeans: [Float]
    public var inputSize: [Int]
    /// Bottom-up: the layer on the input first, the one under the loss last.
    public var layers: [DlibLayer]

    public init(type: DlibNetType, loss: String, lossValues: [Float], inputMeans: [Float], inputSize: [Int], layers: [DlibLayer]) {
        self.type = type
        self.loss = loss
        self.lossValues = lossValues
        self.inputMeans = inputMeans
        self.inputSize = inputSize
        self.layers = layers
    }

    /// Floats learned by all layers together (dlib's parameter tensors).
    public var parameterCount: Int { layers.reduce(0) { $0 + $1.parameterCount } }
}
