import CBLAS

extension FastOps {
    /// Caffe InnerProduct: y `[N, M]` = x `[N, K]` · wᵀ (w `[M, K]`) + bias `[M]`, then `activation`.
    public static func linear(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              y: UnsafeMutablePointer<Float>, n: Int, k: Int, m: Int, activation: Activation = .none) {
        cblas_sgemm(CblasRowMajor,   // all matrices row-major
                    CblasNoTrans,    // A = x [N, K]
                    CblasTrans,      // B = w stored [M, K], used as wᵀ [K, M]
                    Int32(n),        // M (BLAS): rows of y
                    Int32(m),        // N (BLAS): columns of y
                    Int32(k),        // K: input features
                    1,               // alpha
                    x, Int32(k),     // A, lda
                    w, Int32(k),     // B, ldb: row length of the stored [M, K] weights
                    0,               // beta: overwrite y
                    y, Int32(m))     // C, ldc
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
