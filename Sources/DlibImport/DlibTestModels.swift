// Small dlib networks written in Swift, for tests and fuzz seeds (no dlib or model file needed).
import Tensors

public enum DlibTestModels {
    private static func values(_ count: Int, seed: UInt64, std: Float = 0.5) -> [Float] {
        Tensor(shape: [count], seed: seed, std: std).data
    }

    /// The net of `DlibNetType.everyFamily` with seeded weights: an 8x8 input, a 4-channel
    /// convolution block and a strided 6-channel one joined by an add_prev over mismatched shapes.
    public static func everyFamily(avgPadding: [Int] = [0, 0]) -> DlibNet {
        let layers: [DlibLayer] = [
            DlibLayer(index: 14, version: "con_4", details: .con(filters: DlibTensor(shape: [4, 3, 3, 3], data: values(108, seed: 1)),
                                                                  biases: values(4, seed: 2), stride: [1, 1], padding: [1, 1], relu: false)),
            DlibLayer(index: 13, version: "affine_", details: .affine(gamma: values(4, seed: 3), beta: values(4, seed: 4), disabled: false)),
            DlibLayer(index: 12, version: "relu_", details: .relu(disabled: false)),
            DlibLayer(index: 11, version: "max_pool_2", details: .maxPool(window: [3, 3], stride: [1, 1], padding: [1, 1])),
            DlibLayer(index: 10, version: "tag1", details: .tag(1)),
            DlibLayer(index: 9, version: "con_6", details: .con(filters: DlibTensor(shape: [6, 4, 3, 3], data: values(216, seed: 5)),
                                                                 biases: nil, stride: [2, 2], padding: [0, 0], relu: true)),
            DlibLayer(index: 8, version: "bn_con2", details: .batchNorm(gamma: values(6, seed: 6), beta: values(6, seed: 7),
                                                                        mean: values(6, seed: 8), variance: values(6, seed: 9).map { $0 * $0 + 0.5 }, eps: 1e-5)),
            DlibLayer(index: 7, version: "tag2", details: .tag(2)),
            DlibLayer(index: 6, version: "skip1", details: .skip(1)),
            DlibLayer(index: 5, version: "avg_pool_2", details: .avgPool(window: [2, 2], stride: [2, 2], padding: avgPadding)),
            DlibLayer(index: 4, version: "add_prev_", details: .addPrev(tag: 2)),
            DlibLayer(index: 3, version: "relu_2", details: .relu(disabled: false)),
            DlibLayer(index: 2, version: "avg_pool_2", details: .avgPool(window: [0, 0], stride: [1, 1], padding: [0, 0])),
            DlibLayer(index: 1, version: "fc_3", details: .fc(weights: DlibTensor(shape: [6, 3], data: values(18, seed: 10)), biases: values(3, seed: 11))),
        ]
        return DlibNet(type: .everyFamily, loss: "loss_metric_2", lossValues: [0.04, 0.6], inputMeans: [122.782, 117.001, 104.298],
                       inputSize: [8, 8], layers: layers)
    }
}
