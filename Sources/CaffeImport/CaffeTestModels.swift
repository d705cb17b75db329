// Test models: small nets written as Caffe files of either syntax with seeded random weights,
// through the same protobuf-c code the reader uses.
import Foundation
import IR
import Tensors

public enum CaffeTestModels {
    /// A VGG-shaped net small enough to commit (a few KB of weights), with only layer types the V1
    /// syntax can spell: convolutions (one grouped), ReLU, MAX and AVE pooling with Caffe's ceil
    /// rounding, LRN, InnerProduct over a 4-D input, Dropout, Softmax. Input `[1, 3, 12, 12]`.
    public static let miniVGG = """
    name: "mini_vgg"
    input: "data"
    input_dim: 1
    input_dim: 3
    input_dim: 12
    input_dim: 12
    layer { name: "conv1_1" type: "Convolution" bottom: "data" top: "conv1_1"
      param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
      convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
    layer { name: "relu1_1" type: "ReLU" bottom: "conv1_1" top: "conv1_1" }
    layer { name: "conv1_2" type: "Convolution" bottom: "conv1_1" top: "conv1_2"
      convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
    layer { name: "relu1_2" type: "ReLU" bottom: "conv1_2" top: "conv1_2" }
    layer { name: "pool1" type: "Pooling" bottom: "conv1_2" top: "pool1"
      pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    layer { name: "conv2_1" type: "Convolution" bottom: "pool1" top: "conv2_1"
      convolution_param { num_output: 8 kernel_size: 3 pad: 1 group: 2 } }
    layer { name: "relu2_1" type: "ReLU" bottom: "conv2_1" top: "conv2_1" }
    layer { name: "norm2" type: "LRN" bottom: "conv2_1" top: "norm2"
      lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }
    layer { name: "pool2" type: "Pooling" bottom: "norm2" top: "pool2"
      pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
    layer { name: "fc6" type: "InnerProduct" bottom: "pool2" top: "fc6" inner_product_param { num_output: 16 } }
    layer { name: "relu6" type: "ReLU" bottom: "fc6" top: "fc6" }
    layer { name: "drop6" type: "Dropout" bottom: "fc6" top: "fc6" dropout_param { dropout_ratio: 0.5 } }
    layer { name: "fc7" type: "InnerProduct" bottom: "fc6" top: "fc7" inner_product_param { num_output: 10 } }
    layer { name: "prob" type: "Softmax" bottom: "fc7" top: "prob" }
    """

    /// Every other layer type the importer converts (current syntax only: V1 cannot spell PReLU,
    /// BatchNorm, Scale or Reshape). Input `[1, 4, 10, 10]`.
    public static let allLayers = """
    name: "all_layers"
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 10 dim: 10 } } }
    layer { name: "slice0" type: "Slice" bottom: "data" top: "a" top: "b" slice_param { axis: 1 slice_point: 2 } }
    layer { name: "conv_a" type: "Convolution" bottom: "a" top: "conv_a"
      convolution_param { num_output: 4 kernel_size: 3 pad: 2 dilation: 2 bias_term: false } }
    layer { name: "prelu_a" type: "PReLU" bottom: "conv_a" top: "conv_a" }
    layer { name: "conv_b" type: "Convolution" bottom: "b" top: "conv_b"
      convolution_param { num_output: 4 kernel_h: 3 kernel_w: 1 pad_h: 1 pad_w: 0 } }
    layer { name: "prelu_b" type: "PReLU" bottom: "conv_b" top: "conv_b" prelu_param { channel_shared: true } }
    layer { name: "split_b" type: "Split" bottom: "conv_b" top: "b1" top: "b2" }
    layer { name: "sum" type: "Eltwise" bottom: "conv_a" bottom: "b1" top: "sum"
      eltwise_param { operation: SUM coeff: 0.5 coeff: -1 } }
    layer { name: "prod" type: "Eltwise" bottom: "conv_a" bottom: "b2" top: "prod" eltwise_param { operation: PROD } }
    layer { name: "emax" type: "Eltwise" bottom: "sum" bottom: "prod" bottom: "b2" top: "emax" eltwise_param { operation: MAX } }
    layer { name: "cat" type: "Concat" bottom: "sum" bottom: "emax" top: "cat" concat_param { axis: 1 } }
    layer { name: "bn" type: "BatchNorm" bottom: "cat" top: "cat" batch_norm_param { eps: 0.001 } }
    layer { name: "scale" type: "Scale" bottom: "cat" top: "cat" scale_param { bias_term: true } }
    layer { name: "sig" type: "Sigmoid" bottom: "cat" top: "sig" }
    layer { name: "th" type: "TanH" bottom: "sig" top: "th" }
    layer { name: "lrn" type: "LRN" bottom: "th" top: "lrn" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 } }
    layer { name: "pool" type: "Pooling" bottom: "lrn" top: "pool" pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
    layer { name: "gpool" type: "Pooling" bottom: "pool" top: "gpool" pooling_param { pool: AVE global_pooling: true } }
    layer { name: "flat" type: "Flatten" bottom: "gpool" top: "flat" }
    layer { name: "reshape" type: "Reshape" bottom: "flat" top: "reshape" reshape_param { shape { dim: 0 dim: -1 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "reshape" top: "ip" inner_product_param { num_output: 5 transpose: true } }
    layer { name: "leaky" type: "ReLU" bottom: "ip" top: "ip" relu_param { negative_slope: 0.1 } }
    layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
    """

    /// An SSD-style detector using every layer of the SSD fork fn2e imports: BatchNorm + frozen Scale
    /// (folded) and BatchNorm + learned Scale (kept), Normalize per position with per-channel scale
    /// and across the sample with one shared scale, Permute, Flatten, PriorBox on two feature maps
    /// (clipped with given variances; explicit step and offset), Concat on axes 1 and 2, Reshape,
    /// Softmax on axis 2 and DetectionOutput with CENTER_SIZE coding. 3 classes, input `[1, 3, 32, 32]`.
    public static let ssdMini = """
    name: "ssd_mini"
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 32 dim: 32 } } }
    layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
    layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" batch_norm_param { use_global_stats: true } }
    layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" param { lr_mult: 0 } param { lr_mult: 0 }
      scale_param { bias_term: true } }
    layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
    layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2" convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
    layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "conv2" }
    layer { name: "scale2" type: "Scale" bottom: "conv2" top: "conv2" scale_param { bias_term: true } }
    layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
    layer { name: "conv2_norm" type: "Normalize" bottom: "conv2" top: "conv2_norm"
      norm_param { across_spatial: false channel_shared: false scale_filler { type: "constant" value: 20 } } }
    layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    layer { name: "conv3" type: "Convolution" bottom: "pool2" top: "conv3" convolution_param { num_output: 16 kernel_size: 3 pad: 1 } }
    layer { name: "relu3" type: "ReLU" bottom: "conv3" top: "conv3" }
    layer { name: "conv3_norm" type: "Normalize" bottom: "conv3" top: "conv3_norm" norm_param { eps: 0.001 } }
    layer { name: "res" type: "Eltwise" bottom: "conv3_norm" bottom: "conv3" top: "res" }
    layer { name: "conv2_mbox_loc" type: "Convolution" bottom: "conv2_norm" top: "conv2_mbox_loc"
      convolution_param { num_output: 16 kernel_size: 3 pad: 1 } }
    layer { name: "conv2_mbox_loc_perm" type: "Permute" bottom: "conv2_mbox_loc" top: "conv2_mbox_loc_perm"
      permute_param { order: 0 order: 2 order: 3 order: 1 } }
    layer { name: "conv2_mbox_loc_flat" type: "Flatten" bottom: "conv2_mbox_loc_perm" top: "conv2_mbox_loc_flat" }
    layer { name: "conv2_mbox_conf" type: "Convolution" bottom: "conv2_norm" top: "conv2_mbox_conf"
      convolution_param { num_output: 12 kernel_size: 3 pad: 1 } }
    layer { name: "conv2_mbox_conf_perm" type: "Permute" bottom: "conv2_mbox_conf" top: "conv2_mbox_conf_perm"
      permute_param { order: 0 order: 2 order: 3 order: 1 } }
    layer { name: "conv2_mbox_conf_flat" type: "Flatten" bottom: "conv2_mbox_conf_perm" top: "conv2_mbox_conf_flat" }
    layer { name: "conv2_mbox_priorbox" type: "PriorBox" bottom: "conv2_norm" bottom: "data" top: "conv2_mbox_priorbox"
      prior_box_param { min_size: 6 max_size: 12 aspect_ratio: 2 flip: true clip: true
        variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 } }
    layer { name: "res_mbox_loc" type: "Convolution" bottom: "res" top: "res_mbox_loc"
      convolution_param { num_output: 24 kernel_size: 3 pad: 1 } }
    layer { name: "res_mbox_loc_perm" type: "Permute" bottom: "res_mbox_loc" top: "res_mbox_loc_perm"
      permute_param { order: 0 order: 2 order: 3 order: 1 } }
    layer { name: "res_mbox_loc_flat" type: "Flatten" bottom: "res_mbox_loc_perm" top: "res_mbox_loc_flat" }
    layer { name: "res_mbox_conf" type: "Convolution" bottom: "res" top: "res_mbox_conf"
      convolution_param { num_output: 18 kernel_size: 3 pad: 1 } }
    layer { name: "res_mbox_conf_perm" type: "Permute" bottom: "res_mbox_conf" top: "res_mbox_conf_perm"
      permute_param { order: 0 order: 2 order: 3 order: 1 } }
    layer { name: "res_mbox_conf_flat" type: "Flatten" bottom: "res_mbox_conf_perm" top: "res_mbox_conf_flat" }
    layer { name: "res_mbox_priorbox" type: "PriorBox" bottom: "res" bottom: "data" top: "res_mbox_priorbox"
      prior_box_param { min_size: 12 max_size: 24 aspect_ratio: 2 aspect_ratio: 3 flip: true
        variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 step: 4 offset: 0.5 } }
    layer { name: "mbox_loc" type: "Concat" bottom: "conv2_mbox_loc_flat" bottom: "res_mbox_loc_flat" top: "mbox_loc" }
    layer { name: "mbox_conf" type: "Concat" bottom: "conv2_mbox_conf_flat" bottom: "res_mbox_conf_flat" top: "mbox_conf" }
    layer { name: "mbox_priorbox" type: "Concat" bottom: "conv2_mbox_priorbox" bottom: "res_mbox_priorbox" top: "mbox_priorbox"
      concat_param { axis: 2 } }
    layer { name: "mbox_conf_reshape" type: "Reshape" bottom: "mbox_conf" top: "mbox_conf_reshape"
      reshape_param { shape { dim: 0 dim: -1 dim: 3 } } }
    layer { name: "mbox_conf_softmax" type: "Softmax" bottom: "mbox_conf_reshape" top: "mbox_conf_softmax" softmax_param { axis: 2 } }
    layer { name: "mbox_conf_flatten" type: "Flatten" bottom: "mbox_conf_softmax" top: "mbox_conf_flatten" }
    layer { name: "detection_out" type: "DetectionOutput" bottom: "mbox_loc" bottom: "mbox_conf_flatten" bottom: "mbox_priorbox"
      top: "detection_out" detection_output_param { num_classes: 3 share_location: true background_label_id: 0
        nms_param { nms_threshold: 0.45 top_k: 20 } code_type: CENTER_SIZE keep_top_k: 30 confidence_threshold: 0.5 } }
    """

    /// `ssdMini` as batch-1 deploy nets are often written: its Reshape names the batch, `dim: 1 dim: -1 dim: 3`.
    public static let ssdMiniBatch1 = ssdMini.replacingOccurrences(of: "shape { dim: 0 dim: -1 dim: 3 }", with: "shape { dim: 1 dim: -1 dim: 3 }")

    /// The net with seeded random blobs in every layer that has parameters, shaped as Caffe stores
    /// them (a transposed InnerProduct as `[K, M]`; BatchNorm with a scale-factor blob of 2).
    public static func withRandomWeights(_ net: CaffeNet, seed: UInt64) throws(CaffeError) -> CaffeNet {
        let builder = try GraphBuilder(net: net.filtered(phase: .test), name: "net", file: "<generator>")
        var rng = Xoshiro256(seed: seed)
        var out = net
        for i in out.layers.indices {
            guard let slots = builder.slots[out.layers[i].name] else { continue }
            var blobs: [CaffeBlob] = []
            for slot in slots {
                let count = slot.stored.reduce(1, *)
                // Fan-in scaled values keep deep nets' activations in a sensible range.
                let fanIn = slot.stored.count > 1 ? max(1, count / slot.stored[0]) : 1
                let std = 1 / Float(fanIn).squareRoot()
                var data = [Float](repeating: 0, count: count)
                for k in 0..<count { data[k] = rng.nextGaussian() * std }
                if slot.param.hasSuffix(".variance") { data = data.map { (abs($0) + 0.5) * 2 } }
                if slot.param.hasSuffix(".mean") { data = data.map { $0 * 2 } }
                blobs.append(CaffeBlob(shape: slot.stored, data: data))
            }
            if slots.contains(where: { $0.transform == .batchNormStat }) { blobs.append(CaffeBlob(shape: [1], data: [2])) }
            out.layers[i].blobs = blobs
        }
        return out
    }

    /// Writes `NAME.prototxt` and `NAME.caffemodel` of `net` with seeded random weights into `directory`.
    public static func write(_ net: CaffeNet, seed: UInt64, syntax: CaffeSyntax, directory: String, name: String) throws {
        let weighted = try withRandomWeights(net, seed: seed)
        let writer = CaffeWriter(syntax: syntax)
        let base = (directory as NSString).appendingPathComponent(name)
        try Data(try writer.prototxt(weighted).utf8).write(to: URL(fileURLWithPath: base + ".prototxt"), options: .atomic)
        try writer.writeCaffemodel(weighted, to: base + ".caffemodel")
    }
}
