// Direct convolutions for few input channels (first layers), stride 1 across: each output row is
// computed from a zero-padded copy of the input rows it reads, 4 output channels by 16 columns in
// registers. Plain loops the compiler vectorizes (the weight gradient's: 16-float vector types), one
// clone per instruction set, chosen at load time.
#include "CKernels.h"
#include "clones.h"
#include <math.h>
#include <string.h>

enum { L = 16, OB = 4 };  // columns per vector, output channels per block
typedef float vf __attribute__((vector_size(4 * L), aligned(4), may_alias));  // L floats at any address

// Padded rows hold every column a 16-wide block (or 16 pairs) reads, past the last output too; even, to split.
static int padded_width(fn2e_conv g) { return (g.ow + g.kw + g.pw) / 2 * 2 + 2 * L; }

// Row r of the batch (image r / oh, row r % oh): xp[(c·kh + i)·wp + t] = x[c, oy·sh − ph + i, t − pw]
// or 0 outside the image; with `split` (a row of scratch), each row's even columns then its odd ones
// (t at t / 2 + t % 2 · wp / 2). Returns the image.
static long pad_rows(const float *x, fn2e_conv g, long r, float *xp, float *split) {
    long n = r / g.oh, wp = padded_width(g), count = MIN(g.w, wp - g.pw);
    for (int c = 0; c < g.c; c++)
        for (int i = 0, iy = (int)(r % g.oh) * g.sh - g.ph; i < g.kh; i++, iy++) {
            float *d = xp + (c * g.kh + i) * wp, *e = split ? split : d;
            memset(e, 0, sizeof(float) * wp);
            if (iy >= 0 && iy < g.h) memcpy(e + g.pw, x + ((n * g.c + c) * g.h + iy) * g.w, sizeof(float) * count);
            for (int m = 0; split && m < wp / 2; m++) d[m] = e[2 * m], d[wp / 2 + m] = e[2 * m + 1];
        }
    return n;
}

// The weight gradient's 16 partial sums per weight.
static long partial_sums(fn2e_conv g) { return (long)(g.o + OB - 1) / OB * OB * g.c * g.kh * g.kw * L; }

// The padded rows and two more (the pooled forward's: kh + 1 rows per channel, split, and one to
// split from), then the weight gradient's row of dy per channel and its partial sums.
long fn2e_conv_direct_scratch(fn2e_conv g, int filter) {
    return (g.c * (g.kh + 1L) + 1) * padded_width(g) + (filter ? (long)g.o * g.ow + partial_sums(g) : 0);
}

// Row oy of image n of every channel of dy = max_pool_backward(winners, dp) into d[o·ow + ox]:
// each pooled value whose window holds row oy adds to its winner when the winner is in that row.
// Inlined into the weight gradient's clones, so its loops are vectorized for the machine.
INLINE void unpool_row(const float *dp, const unsigned char *win, fn2e_pool p, fn2e_conv g,
                                                             long n, long oy, float *d) {
    long lo = oy + p.ph - p.kh + 1 <= 0 ? 0 : (oy + p.ph - p.kh + p.sh) / p.sh, hi = MIN((oy + p.ph) / p.sh, p.oh - 1);
    int tiles = p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 && p.ph == 0 && p.pw == 0;
    memset(d, 0, sizeof(float) * g.o * g.ow);
    for (long c = 0; c < g.o; c++)
        for (long py = lo; py <= hi; py++) {
            long at = ((n * g.o + c) * p.oh + py) * p.ow;
            int i = (int)(oy - (py * p.sh - p.ph)) * p.kw;  // row oy's first place in the window (an int: compared 16 at a time)
            if (tiles) {  // 2x2 windows at stride 2: each pooled value's two cells in row oy, as vectors
                for (long px = 0; px < p.ow; px++) {
                    d[c * g.ow + 2 * px] = win[at + px] == i ? dp[at + px] : 0;
                    d[c * g.ow + 2 * px + 1] = win[at + px] == i + 1 ? dp[at + px] : 0;
                }
                continue;
            }
            for (long px = 0; px < p.ow; px++) {  // without branches (half of a 2x2 pool's winners are in row oy, at random),
                unsigned long j = (unsigned long)(win[at + px] - i);  // the winner's column in the window, if in row oy;
                int hit = j < (unsigned long)p.kw;  // a miss adds 0 to a cell of its own window's columns (no chain of stores)
                long col = px * p.sw - p.pw + (hit ? (long)j : 0);
                d[c * g.ow + MAX(0, MIN(g.ow - 1, col))] += hit ? dp[at + px] : 0;
            }
        }
}

// One output row of every channel from its padded input rows: channel o's at y + o·stride.
INLINE void conv_row(const float *w, const float *bias, fn2e_conv g, int relu, float slope,
                                                           const float *xp, float *y, long stride) {
    int taps = g.c * g.kh * g.kw, wp = padded_width(g);
    for (int o = 0; o < g.o; o += OB) {
        const float *wk[OB];  // the block's weights (the last channel again past the end)
        for (int k = 0; k < OB; k++) wk[k] = w + MIN(o + k, g.o - 1) * taps;
        for (int ox = 0; ox < g.ow; ox += L) {
            float acc[OB][L];
            for (int k = 0; k < OB; k++) for (int v = 0; v < L; v++) acc[k][v] = bias ? bias[MIN(o + k, g.o - 1)] : 0;
            for (int row = 0, t = 0; row < g.c * g.kh; row++)
                for (int j = 0; j < g.kw; j++, t++) {
                    const float *s = xp + row * wp + ox + j;
                    for (int k = 0; k < OB; k++) for (int v = 0; v < L; v++) acc[k][v] += wk[k][t] * s[v];
                }
            for (int k = 0; k < OB; k++) {  // (a bound of OB alone keeps acc in registers)
                if (o + k >= g.o) break;
                float out[L], *d = y + (o + k) * stride + ox;
                for (int v = 0; v < L; v++) out[v] = relu && acc[k][v] < 0 ? acc[k][v] * slope : acc[k][v];
                if (ox + L <= g.ow) memcpy(d, out, sizeof out);
                else for (int v = 0; v < g.ow - ox; v++) d[v] = out[v];
            }
        }
    }
}

CLONES void fn2e_conv_direct(const float *x, const float *w, const float *bias, float *y, fn2e_conv g,
                             int relu, float slope, float *xp, long r0, long r1) {
    for (long r = r0; r < r1; r++) {
        long n = pad_rows(x, g, r, xp, NULL);
        conv_row(w, bias, g, relu, slope, xp, y + (n * g.o * g.oh + r % g.oh) * g.ow, (long)g.oh * g.ow);
    }
}

// Output rows 2·py and 2·py + 1 (a and b; stride 1, so b reads a's rows one down) of PB channels by
// LW pairs of columns at a time in 4·PB accumulators (rows a, b by even, odd columns), from kh + 1
// padded rows per channel split into even and odd columns: all vector work, pooled where computed.
INLINE void conv_pool(const float *x, const float *w, const float *bias, float *y, unsigned char *win,
                                                             fn2e_conv g, fn2e_pool p, int relu, float slope, int mask, float *xp, long r0, long r1,
                                                             const int PB, const int LW) {
    int taps = g.c * g.kh * g.kw, wp = padded_width(g), tap[2 * taps];
    slope = relu ? slope : 1;  // without ReLU x · 1 = x: one pooling, not a second unactivated one beside it
    fn2e_conv h = {g.c, g.h, g.w, g.o, g.kh + 1, g.kw, g.sh, g.sw, g.ph, g.pw, g.oh, g.ow};  // both rows' input rows
    // Tap t's first value for even (tap[2t]) and odd (tap[2t + 1]) output columns of row a: column 2·m + e + j in its half.
    for (int ch = 0, t = 0; ch < g.c; ch++)
        for (int i = 0; i < g.kh; i++)
            for (int j = 0; j < g.kw; j++, t++)
                for (int e = 0; e < 2; e++) tap[2 * t + e] = (ch * h.kh + i) * wp + (e + j) % 2 * wp / 2 + (e + j) / 2;
    for (long r = r0; r < r1; r++) {
        long n = r / p.oh, py = r % p.oh;
        pad_rows(x, h, n * g.oh + 2 * py, xp, xp + g.c * h.kh * wp);
        for (int o = 0; o < g.o; o += PB) {
            const float *wk[4];  // the block's weights (the last channel again past the end); PB ≤ 4
            float b[4];
            for (int k = 0; k < PB; k++) wk[k] = w + MIN(o + k, g.o - 1) * taps, b[k] = bias ? bias[MIN(o + k, g.o - 1)] : 0;
            for (int m = 0; m < p.ow; m += LW) {
                float acc[4][4][L];  // [row·2 + column parity][k][v]: window order; unrolled whole, so kept in registers
#pragma clang loop unroll(full)
                for (int q = 0; q < 4; q++)
#pragma clang loop unroll(full)
                    for (int k = 0; k < PB; k++) for (int v = 0; v < LW; v++) acc[q][k][v] = b[k];
                for (int t = 0; t < taps; t++)
#pragma clang loop unroll(full)
                    for (int q = 0; q < 4; q++) {  // row a + q / 2, output column 2·m + q % 2
                        const float *s = xp + tap[2 * t + q % 2] + q / 2 * wp + m;
#pragma clang loop unroll(full)
                        for (int k = 0; k < PB; k++) for (int v = 0; v < LW; v++) acc[q][k][v] += wk[k][t] * s[v];
                    }
#pragma clang loop unroll(full)  // (acc stays in registers)
                for (int k = 0; k < PB; k++) {
                    float best[L];
                    unsigned char won[L];
                    for (int v = 0; v < LW; v++) {  // the first maximum in window order; NaN never wins
                        float i = 255;  // (a float: selects as wide as the values')
                        best[v] = -INFINITY;
                        for (int q = 0; q < 4; q++) {
                            float a = acc[q][k][v] < 0 ? acc[q][k][v] * slope : acc[q][k][v];
                            int more = a > best[v];
                            best[v] = more ? a : best[v], i = more ? q : i;
                        }
                        won[v] = mask && !(best[v] > 0) ? 255 : i;
                    }
                    long at = ((n * g.o + o + k) * p.oh + py) * p.ow + m, count = MIN(LW, p.ow - m);
                    if (o + k >= g.o) continue;
                    if (count == LW) { memcpy(y + at, best, sizeof(float) * LW); if (win) memcpy(win + at, won, LW); }
                    else for (int v = 0; v < count; v++) { y[at + v] = best[v]; if (win) win[at + v] = won[v]; }  // (no memcpy calls)
                }
            }
        }
    }
}

CLONES void fn2e_conv_direct_pool(const float *x, const float *w, const float *bias, float *y, unsigned char *win, fn2e_conv g,
                                  fn2e_pool p, int relu, float slope, int mask, float *xp, long r0, long r1) {
    if (WIDE) conv_pool(x, w, bias, y, win, g, p, relu, slope, mask, xp, r0, r1, 4, L);  // 16 of 32 registers
    else conv_pool(x, w, bias, y, win, g, p, relu, slope, mask, xp, r0, r1, 3, L / 2);  // 12 of 16
}

// The weight gradient's rows r0..<r1 added to part[(o·taps + t)·L + v], 16 partial sums per weight:
// TB taps (the last again past the end) by OB channels, all TB·OB sums in registers, 16 columns at a time.
INLINE void filter_rows(const float *dy, const unsigned char *win, fn2e_pool p, const float *x, fn2e_conv g,
                                                             float *xp, float *part, long r0, long r1, const int TB) {
    int taps = g.c * g.kh * g.kw, wp = padded_width(g);
    float *rows = xp + g.c * g.kh * wp;
    for (long r = r0; r < r1; r++) {
        long n = pad_rows(x, g, r, xp, NULL), oy = r % g.oh;
        if (win) unpool_row(dy, win, p, g, n, oy, rows);
        for (int o = 0; o < g.o; o += OB)
            for (int t = 0; t < taps; t += TB) {
                const float *s[3], *d[OB];  // TB ≤ 3
                vf acc[3][OB];
                for (int k = 0; k < OB; k++)
                    d[k] = win ? rows + MIN(o + k, g.o - 1) * g.ow : dy + ((n * g.o + MIN(o + k, g.o - 1)) * g.oh + oy) * g.ow;
                for (int u = 0, tu; u < TB; u++) {
                    tu = MIN(t + u, taps - 1), s[u] = xp + tu / g.kw * wp + tu % g.kw;
                    for (int k = 0; k < OB; k++) acc[u][k] = *(vf *)(part + ((o + k) * taps + tu) * L);
                }
                int ox = 0;
                for (; ox + L <= g.ow; ox += L)
                    for (int u = 0; u < TB; u++) for (int k = 0; k < OB; k++) acc[u][k] += *(const vf *)(d[k] + ox) * *(const vf *)(s[u] + ox);
                for (; ox < g.ow; ox++) for (int u = 0; u < TB; u++) for (int k = 0; k < OB; k++) acc[u][k][0] += d[k][ox] * s[u][ox];
                for (int u = 0; u < TB; u++)
                    for (int k = 0; k < OB && t + u < taps; k++) *(vf *)(part + ((o + k) * taps + t + u) * L) = acc[u][k];
            }
    }
}

// The partial sums of all rows, then dw: the sums of each weight's 16.
CLONES void fn2e_conv_direct_filter(const float *dy, const unsigned char *win, fn2e_pool p, const float *x, float *dw, fn2e_conv g,
                                    float *xp, long r0, long r1) {
    long weights = (long)g.o * g.c * g.kh * g.kw;
    float *part = memset(xp + (g.c * g.kh * padded_width(g) + (long)g.o * g.ow), 0, sizeof(float) * partial_sums(g));
    if (WIDE) filter_rows(dy, win, p, x, g, xp, part, r0, r1, 3);  // 12 sums of 32 registers
    else filter_rows(dy, win, p, x, g, xp, part, r0, r1, 1);  // 4 sums, 8 of 16 (two each)
    for (long i = 0; i < weights; i++) { dw[i] = 0; for (int v = 0; v < L; v++) dw[i] += part[i * L + v]; }
}

void fn2e_pool_grad_channel_sum(const float *dp, const unsigned char *win, float *db, long batch, int channels, long plane, int c0, int c1) {
    for (int c = c0; c < c1; c++) {
        float sum = 0;
        for (long n = 0; n < batch; n++) {
            const float *d = dp + (n * channels + c) * plane;
            const unsigned char *w = win + (n * channels + c) * plane;
            for (long i = 0; i < plane; i++) sum += w[i] != 255 ? d[i] : 0;
        }
        db[c] = sum;
    }
}
