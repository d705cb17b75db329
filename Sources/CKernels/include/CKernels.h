#ifndef CKERNELS_H
#define CKERNELS_H

/// Sizes of a convolution with groups 1, no dilation and stride 1 across (sw = 1): x [N, c, h, w],
/// w [o, c, kh, kw], y [N, o, oh, ow] (as Kernels' ConvGeometry).
typedef struct { int c, h, w, o, kh, kw, sh, sw, ph, pw, oh, ow; } fn2e_conv;

/// Direct convolution of the output rows r0..<r1 of the batch (row r is row r % oh of image
/// r / oh): y = act(w * x + bias), act the identity or, with `relu`, x > 0 ? x : slope * x; `bias`
/// may be NULL. For few input channels, where im2col's GEMM would have a tiny K.
/// `xp` holds `fn2e_conv_direct_scratch(g, 0)` floats.
void fn2e_conv_direct(const float *x, const float *w, const float *bias, float *y, fn2e_conv g,
                      int relu, float slope, float *xp, long r0, long r1);

/// A max pool over a convolution's output [oh, ow] (as Kernels' PoolGeometry): window kh x kw,
/// stride sh x sw, padding ph x pw, pooled size oh x ow.
typedef struct { int kh, kw, sh, sw, ph, pw, oh, ow; } fn2e_pool;

/// Max pool of the planes p0..<p1 of x [planes, h, w] into y [planes, p.oh, p.ow], no winners
/// recorded (inference): the window's values inside the plane (none: -inf), NaN never winning. With
/// `slopes`, each value is first x > 0 ? x : slopes[plane % channels] · x (a PReLU fused in, never
/// written). `col` holds 2w + 2 floats.
void fn2e_max_pool(const float *x, float *y, int h, int w, fn2e_pool p, const float *slopes, int channels,
                   float *col, long p0, long p1);

/// `fn2e_conv_direct` (sh = 1) then a max pool p of 2x2 windows at stride 2 over the pooled rows r0..<r1
/// of the batch (row r is row r % p.oh of image r / p.oh), two output rows at a time: y [N, o, p.oh, p.ow]
/// and, when `win` is given, each window's winner (0-3, 255 for none or, with `mask`, a winner not > 0,
/// as Kernels' maxPool). No output row outside `xp` (`fn2e_conv_direct_scratch(g, 0)` floats).
void fn2e_conv_direct_pool(const float *x, const float *w, const float *bias, float *y, unsigned char *win, fn2e_conv g,
                           fn2e_pool p, int relu, float slope, int mask, float *xp, long r0, long r1);

/// Weight gradient of `fn2e_conv_direct` over the output rows r0..<r1 of the batch: dw [o, c, kh, kw]
/// (overwritten) = dy * x summed over those rows; `xp` holds `fn2e_conv_direct_scratch(g, 1)` floats.
/// With `win` (a max pool's recorded winners over the output, one byte each: the place i * p.kw + j
/// in its window or 255 for none, as Kernels' maxPool), dy is that pool's output gradient [N, o, p.oh, p.ow]: the convolution's own,
/// max_pool_backward(win, dy), is built one row at a time in `xp` and never exists whole.
void fn2e_conv_direct_filter(const float *dy, const unsigned char *win, fn2e_pool p, const float *x, float *dw, fn2e_conv g,
                             float *xp, long r0, long r1);

/// db[c] for c0 <= c < c1 = the sum of max_pool_backward(win, dp) over [batch, ·, plane]: of every dp
/// whose window has a winner (win != 255). The bias gradient of the convolution before the pool.
void fn2e_pool_grad_channel_sum(const float *dp, const unsigned char *win, float *db, long batch, int channels, long plane, int c0, int c1);

/// Floats of scratch one call of the forward (`filter` 0) or weight-gradient kernel needs.
long fn2e_conv_direct_scratch(fn2e_conv g, int filter);

/// One Winograd F(4x4, 3x3) convolution as Kernels' Winograd.Plan tiles it: input [N, cin, h, w], output
/// [N, cout, oh, ow], padding ph x pw, tiles_h x tiles_w 4x4 output tiles per image, numbered over the
/// batch (image, tile row, tile column).
typedef struct { int cin, h, w, cout, oh, ow, ph, pw, tiles_h, tiles_w; } fn2e_wino;

/// Items i0..<i1 of a chunk's input transform: item = c · blocks + b, blocks = ⌈count / 16⌉, is the block of
/// 16 tiles first + 16b ..< first + 16b + 16 of input channel c (tiles from `count` on are zero):
/// v[ξ, c, t − first] (row stride ld) = (Bᵀ d B)[ξ], d the tile's 6x6 input patch (zero outside x).
void fn2e_winograd_input(const float *x, float *v, fn2e_wino p, long first, long count, long ld, long i0, long i1);

/// Items i0..<i1 (item = o · blocks + b) of a chunk's output transform: the 4x4 tiles Aᵀ M A of output
/// channel o from m [36, cout, ld], plus bias[o] (bias may be NULL), then leaky ReLU with `relu`,
/// written to y (clipped at the borders), or, with `pool` (2x2 windows at stride 2), pooled in the tile:
/// y [N, cout, pool.oh, pool.ow] and each window's winner in `win` (when given) as `fn2e_conv_direct_pool`.
void fn2e_winograd_output(const float *m, float *y, const float *bias, int relu, float slope, fn2e_wino p,
                          long first, long count, long ld, const fn2e_pool *pool, unsigned char *win, int mask, long i0, long i1);

/// Items i0..<i1 (item = o · blocks + b) of the weight gradient's transform of dy [N, cout, oh, ow]:
/// m[ξ, o, t − first] = (A e Aᵀ)[ξ], e the tile's 4x4 block of dy (zero past the borders and from `count` on).
void fn2e_winograd_gradient(const float *dy, float *m, fn2e_wino p, long first, long count, long ld, long i0, long i1);

#endif
