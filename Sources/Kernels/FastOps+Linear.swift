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

    /// Gradients of `linear` (before any activation): dx `[N, K]` = dy · w, dw `[M, K]` = dyᵀ · x,
    /// db `[M]` = Σₙ dy. Each output is optional; dw and db are overwritten unless `accumulate`.
    public static func linearBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                      dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?,
                                      db: UnsafeMutablePointer<Float>?, n: Int, k: Int, m: Int, accumulate: Bool = false) {
        if let dx {
            cblas_sgemm(CblasRowMajor,   // all matrices row-major
                        CblasNoTrans,    // A = dy [N, M]
                        CblasNoTrans,    // B = w [M, K]
                        Int32(n),        // M (BLAS): rows of dx
                        Int32(k),        // N (BLAS): columns of dx
                        Int32(m),        // K: output features (summed over)
                        1,               // alpha
                        dy, Int32(m),    // A, lda
                        w, Int32(k),     // B, ldb
                        0,               // beta: overwrite dx
                        dx, Int32(k))    // C, ldc
        }
        if let dw {
            cblas_sgemm(CblasRowMajor,   // all matrices row-major
                        CblasTrans,      // A = dy stored [N, M], used as dyᵀ [M, N]
                        CblasNoTrans,    // B = x [N, K]
                        Int32(m),        // M (BLAS): rows of dw
                        Int32(k),        // N (BLAS): columns of dw
                        Int32(n),        // K: batch (summed over)
                        1,               // alpha
                        dy, Int32(m),    // A, lda: row length of the stored [N, M] dy
                        x, Int32(k),     // B, ldb
                        accumulate ? 1 : 0,  // beta: add to dw or overwrite it
                        dw, Int32(k))    // C, ldc
        }
        if let db {
            if !accumulate { db.update(repeating: 0, count: m) }
            for i in 0..<n { let row = dy + i * m; for j in 0..<m { db[j] += row[j] } }
        }
    }
}
