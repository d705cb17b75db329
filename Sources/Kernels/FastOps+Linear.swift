import CBLAS

extension FastOps {
    /// Caffe InnerProduct: y `[N, M]` = x `[N, K]` · wᵀ (w `[M, K]`) + bias `[M]`, then `activation`.
    public static func linear(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              y: UnsafeMutablePointer<Float>, n: Int, k: Int, m: Int, activation: Activation = .none) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,  // y = x [N, K] · wᵀ (w stored [M, K])
                    Int32(n), Int32(m), Int32(k), 1, x, Int32(k), w, Int32(k), 0, y, Int32(m))
        if bias == nil && activation == .none { return }
        for i in 0..<n {
            let row = y + i * m
            switch activation {
            case .none: for j in 0..<m { row[j] += bias![j] }
            case let .relu(s):
                if let b = bias { for j in 0..<m { let t = row[j] + b[j]; row[j] = t > 0 ? t : t * s } }
                else { for j in 0..<m { let t = row[j]; row[j] = t > 0 ? t : t * s } }
            }
        }
    }

}
