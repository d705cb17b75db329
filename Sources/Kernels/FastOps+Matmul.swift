import CBLAS

extension FastOps {
    /// c = op(a) · op(b), row-major, op = transpose when asked. a is `[m, k]` (`[k, m]` when
    /// `transposeA`), b is `[k, n]` (`[n, k]` when `transposeB`); c `[m, n]` is overwritten.
    public static func matmul(a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                              m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1,            // M, N: c's rows and columns; K: the summed dimension
                    a, Int32(transposeA ? m : k), b, Int32(transposeB ? k : n),  // a, b and their stored row lengths
                    0, c, Int32(n))                             // c overwritten
    }
}
