import CBLAS

extension FastOps {
    /// c = op(a) · op(b), row-major, op = transpose when asked. a is `[m, k]` (`[k, m]` when
    /// `transposeA`), b is `[k, n]` (`[n, k]` when `transposeB`); c `[m, n]` is overwritten.
    public static func matmul(a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                              m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool) {
        cblas_sgemm(CblasRowMajor,                              // all matrices row-major
                    transposeA ? CblasTrans : CblasNoTrans,     // op(a)
                    transposeB ? CblasTrans : CblasNoTrans,     // op(b)
                    Int32(m),                                   // M: rows of op(a) and c
                    Int32(n),                                   // N: columns of op(b) and c
                    Int32(k),                                   // K: the summed dimension
                    1,                                          // alpha
                    a,                                          // A
                    Int32(transposeA ? m : k),                  // lda: a's stored row length
                    b,                                          // B
                    Int32(transposeB ? k : n),                  // ldb: b's stored row length
                    0,                                          // beta: overwrite c
                    c,                                          // C
                    Int32(n))                                   // ldc: c's row length
    }
}
