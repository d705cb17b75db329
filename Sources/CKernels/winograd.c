// The tile transforms of Winograd F(4x4, 3x3) (Kernels' FastOps+Winograd.swift has the algorithm, the
// layouts and the GEMMs between them): LN tiles at a time, one per lane, as plain loops over the lanes
// that the compiler vectorizes, in one clone per instruction set. They are most of a small layer's
// time (ExpNet48's 16-128 channels), and Swift's own vectors would run them as SSE.
#include "CKernels.h"
#include "clones.h"

enum { LN = 16 };  // tiles per block: Kernels' Winograd.lanes

// Bᵀ d: six rows of LN lanes at s + k·ss into six at d + k·ds (d may be s).
//     Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
INLINE void input_1d(const float *s, long ss, float *d, long ds) {
    float o[6][LN];
    for (int l = 0; l < LN; l++) {
        float d0 = s[l], d1 = s[ss + l], d2 = s[2 * ss + l], d3 = s[3 * ss + l], d4 = s[4 * ss + l], d5 = s[5 * ss + l];
        float a = d4 - 4 * d2, b = d3 - 4 * d1, c = d4 - d2, e = 2 * (d3 - d1);
        o[0][l] = 4 * d0 - 5 * d2 + d4, o[1][l] = a + b, o[2][l] = a - b;
        o[3][l] = c + e, o[4][l] = c - e, o[5][l] = 4 * d1 - 5 * d3 + d5;
    }
    for (int k = 0; k < 6; k++) for (int l = 0; l < LN; l++) d[k * ds + l] = o[k][l];
}

// Aᵀ m: six rows at s + k·ss into four at d + k·ds.  Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
INLINE void output_1d(const float *s, long ss, float *d, long ds) {
    for (int l = 0; l < LN; l++) {
        float p12 = s[ss + l] + s[2 * ss + l], n12 = s[ss + l] - s[2 * ss + l];
        float p34 = s[3 * ss + l] + s[4 * ss + l], n34 = s[3 * ss + l] - s[4 * ss + l];
        d[l] = s[l] + p12 + p34, d[ds + l] = n12 + 2 * n34, d[2 * ds + l] = p12 + 4 * p34, d[3 * ds + l] = n12 + 8 * n34 + s[5 * ss + l];
    }
}

// A e, the adjoint of the output transform: four rows at s + k·ss into six at d + k·ds.
INLINE void gradient_1d(const float *s, long ss, float *d, long ds) {
    for (int l = 0; l < LN; l++) {
        float e0 = s[l], e1 = s[ss + l], e2 = s[2 * ss + l], e3 = s[3 * ss + l];
        float ev = e0 + e2, od = e1 + e3, ev4 = e0 + 4 * e2, od4 = 2 * e1 + 8 * e3;
        d[l] = e0, d[ds + l] = ev + od, d[2 * ds + l] = ev - od, d[3 * ds + l] = ev4 + od4, d[4 * ds + l] = ev4 - od4, d[5 * ds + l] = e3;
    }
}

// The first tile of item `item`'s block (items are channel · blocks + block): its image n, tile row ty, column tx.
typedef struct { long n, c, t0; int ty, tx; } tile_at;
INLINE tile_at block_start(fn2e_wino p, long item, long first, long blocks) {
    tile_at a = {0, item / blocks, (item % blocks) * LN, 0, 0};
    long t = first + a.t0, per = (long)p.tiles_h * p.tiles_w, r = t % per;
    a.n = t / per, a.ty = (int)(r / p.tiles_w), a.tx = (int)(r % p.tiles_w);
    return a;
}

INLINE void next_tile(tile_at *a, fn2e_wino p) {
    if (++a->tx == p.tiles_w) { a->tx = 0; if (++a->ty == p.tiles_h) a->ty = 0, a->n++; }
}

CLONES void fn2e_winograd_input(const float *x, float *v, fn2e_wino p, long first, long count, long ld, long i0, long i1) {
    long blocks = (count + LN - 1) / LN, stride = (long)p.cin * ld, hw = (long)p.h * p.w;
    float buf[36 * LN];  // [6, 6, LN]: the patches, then their row transforms
    for (long item = i0; item < i1; item++) {
        tile_at a = block_start(p, item, first, blocks);
        for (int lane = 0; lane < LN; lane++, next_tile(&a, p)) {
            int iy0 = 4 * a.ty - p.ph, ix0 = 4 * a.tx - p.pw, inside = a.t0 + lane < count;
            const float *plane = x + (inside ? (a.n * p.cin + a.c) * hw : 0);
            if (inside && iy0 >= 0 && iy0 + 6 <= p.h && ix0 >= 0 && ix0 + 6 <= p.w) {
                const float *s = plane + (long)iy0 * p.w + ix0;
                for (int i = 0; i < 6; i++, s += p.w) for (int j = 0; j < 6; j++) buf[(i * 6 + j) * LN + lane] = s[j];
            } else {
                for (int i = 0, iy = iy0; i < 6; i++, iy++)
                    for (int j = 0, ix = ix0; j < 6; j++, ix++)
                        buf[(i * 6 + j) * LN + lane] = inside && iy >= 0 && iy < p.h && ix >= 0 && ix < p.w ? plane[(long)iy * p.w + ix] : 0;
            }
        }
        for (int i = 0; i < 6; i++) input_1d(buf + i * 6 * LN, LN, buf + i * 6 * LN, LN);
        float *out = v + a.c * ld + a.t0;
        for (int j = 0; j < 6; j++) input_1d(buf + j * LN, 6 * LN, out + j * stride, 6 * stride);
    }
}

CLONES void fn2e_winograd_output(const float *m, float *y, const float *bias, int relu, float slope, fn2e_wino p,
                                 long first, long count, long ld, const fn2e_pool *pool, unsigned char *win, int mask, long i0, long i1) {
    long blocks = (count + LN - 1) / LN, stride = (long)p.cout * ld;
    int oh = pool ? pool->oh : p.oh, ow = pool ? pool->ow : p.ow;
    float rows[24 * LN], tile[16 * LN], best[4][LN], won[4][LN];  // Aᵀ along M's rows; the output tiles; pooled
    for (long item = i0; item < i1; item++) {
        tile_at a = block_start(p, item, first, blocks);
        long o = a.c;
        for (int i = 0; i < 6; i++) output_1d(m + o * ld + a.t0 + 6 * i * stride, stride, rows + 4 * i * LN, LN);
        for (int k = 0; k < 4; k++) output_1d(rows + k * LN, 4 * LN, tile + k * LN, 4 * LN);
        float b = bias ? bias[o] : 0;
        for (int k = 0; k < 16 * LN; k++) {
            float r = tile[k] + b;
            tile[k] = relu && r < 0 ? r * slope : r;
        }
        for (int q = 0; pool && q < 4; q++)  // window q (row q / 2, column q % 2): the first maximum, NaN never wins
            for (int l = 0; l < LN; l++) {
                float bv = -__builtin_inff(), k = -1;
                for (int i = 0; i < 4; i++) {
                    float t = tile[((q / 2 * 2 + i / 2) * 4 + q % 2 * 2 + i % 2) * LN + l];
                    k = t > bv ? i : k;
                    bv = t > bv ? t : bv;
                }
                best[q][l] = bv, won[q][l] = mask && !(bv > 0) ? -1 : k;
            }
        for (int lane = 0; lane < MIN(LN, count - a.t0); lane++, next_tile(&a, p)) {  // scatter, one lane per tile
            if (pool) {
                long at = ((a.n * p.cout + o) * oh + 2 * a.ty) * ow + 2 * a.tx;
                for (int i = 0; i < MIN(2, oh - 2 * a.ty); i++)
                    for (int j = 0; j < MIN(2, ow - 2 * a.tx); j++) {
                        y[at + i * ow + j] = best[2 * i + j][lane];
                        if (win) win[at + i * ow + j] = (unsigned char)(int)won[2 * i + j][lane];
                    }
                continue;
            }
            float *d = y + ((a.n * p.cout + o) * oh + 4 * a.ty) * ow + 4 * a.tx;
            for (int i = 0; i < MIN(4, oh - 4 * a.ty); i++)
                for (int j = 0; j < MIN(4, ow - 4 * a.tx); j++) d[i * ow + j] = tile[(i * 4 + j) * LN + lane];
        }
    }
}

CLONES void fn2e_winograd_gradient(const float *dy, float *m, fn2e_wino p, long first, long count, long ld, long i0, long i1) {
    long blocks = (count + LN - 1) / LN, stride = (long)p.cout * ld;
    float tile[16 * LN], rows[24 * LN];  // the dy tiles; A along each tile row
    for (long item = i0; item < i1; item++) {
        tile_at a = block_start(p, item, first, blocks);
        for (int lane = 0; lane < LN; lane++, next_tile(&a, p)) {
            int oy0 = 4 * a.ty, ox0 = 4 * a.tx, inside = a.t0 + lane < count;
            int ny = inside ? MIN(4, p.oh - oy0) : 0, nx = inside ? MIN(4, p.ow - ox0) : 0;
            const float *s = dy + (inside ? ((a.n * p.cout + a.c) * p.oh + oy0) * p.ow + ox0 : 0);
            for (int i = 0; i < 4; i++) for (int j = 0; j < 4; j++) tile[(i * 4 + j) * LN + lane] = i < ny && j < nx ? s[i * p.ow + j] : 0;
        }
        for (int i = 0; i < 4; i++) gradient_1d(tile + 4 * i * LN, LN, rows + 6 * i * LN, LN);
        float *out = m + a.c * ld + a.t0;
        for (int j = 0; j < 6; j++) gradient_1d(rows + j * LN, 6 * LN, out + j * stride, 6 * stride);
    }
}
