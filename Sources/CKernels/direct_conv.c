// Direct convolutions for few input channels (first layers), stride 1 across: each output row is
// computed from a zero-padded copy of the input rows it reads, 4 output channels by 16 columns in
// registers. Plain loops the compiler vectorizes, one clone per instruction set, chosen at load time.
#include "CKernels.h"
#include <string.h>

#if defined(__x86_64__) && defined(__linux__)
#define CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define CLONES
#endif
#define MIN(a, b) ((a) < (b) ? (a) : (b))
enum { L = 16, OB = 4 };  // columns per vector, output channels per block

// Padded rows hold every column a 16-wide block reads, past the last output too.
static int padded_width(fn2e_conv g) { return g.ow + L + g.kw + g.pw; }

// Row r of the batch (image r / oh, row r % oh): xp[(c·kh + i)·wp + t] = x[c, oy·sh − ph + i, t − pw]
// or 0 outside the image; returns the image.
static long pad_rows(const float *x, fn2e_conv g, long r, float *xp) {
    long n = r / g.oh, wp = padded_width(g), count = MIN(g.w, wp - g.pw);
    for (int c = 0; c < g.c; c++)
        for (int i = 0, iy = (int)(r % g.oh) * g.sh - g.ph; i < g.kh; i++, iy++) {
            float *d = xp + (c * g.kh + i) * wp;
            memset(d, 0, sizeof(float) * wp);
            if (iy >= 0 && iy < g.h) memcpy(d + g.pw, x + ((n * g.c + c) * g.h + iy) * g.w, sizeof(float) * count);
        }
    return n;
}

long fn2e_conv_direct_scratch(fn2e_conv g, int filter) {
    return (long)g.c * g.kh * padded_width(g) + (filter ? (long)(g.o + OB - 1) / OB * OB * g.c * g.kh * g.kw * L : 0);
}

CLONES void fn2e_conv_direct(const float *x, const float *w, const float *bias, float *y, fn2e_conv g,
                             int relu, float slope, float *xp, long r0, long r1) {
    int taps = g.c * g.kh * g.kw, wp = padded_width(g);
    for (long r = r0; r < r1; r++) {
        long n = pad_rows(x, g, r, xp), oy = r % g.oh;
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
                    float out[L], *d = y + ((n * g.o + o + k) * g.oh + oy) * g.ow + ox;
                    for (int v = 0; v < L; v++) out[v] = relu && acc[k][v] < 0 ? acc[k][v] * slope : acc[k][v];
                    if (ox + L <= g.ow) memcpy(d, out, sizeof out);
                    else for (int v = 0; v < g.ow - ox; v++) d[v] = out[v];
                }
            }
        }
    }
}

// part[(o·taps + t)·L + v]: 16 partial sums per weight, summed into dw at the end.
CLONES void fn2e_conv_direct_filter(const float *dy, const float *x, float *dw, fn2e_conv g, float *xp, long r0, long r1) {
    int taps = g.c * g.kh * g.kw, wp = padded_width(g);
    float *part = memset(xp + g.c * g.kh * wp, 0, sizeof(float) * (fn2e_conv_direct_scratch(g, 1) - g.c * g.kh * wp));
    for (long r = r0; r < r1; r++) {
        long n = pad_rows(x, g, r, xp), oy = r % g.oh;
        for (int o = 0; o < g.o; o += OB)
            for (int t = 0; t < taps; t++) {
                const float *s = xp + t / g.kw * wp + t % g.kw, *d[OB];
                float acc[OB][L];
                for (int k = 0; k < OB; k++) d[k] = dy + ((n * g.o + MIN(o + k, g.o - 1)) * g.oh + oy) * g.ow;
                for (int k = 0; k < OB; k++) memcpy(acc[k], part + ((o + k) * taps + t) * L, sizeof acc[k]);
                int ox = 0;
                for (; ox + L <= g.ow; ox += L)
                    for (int k = 0; k < OB; k++) for (int v = 0; v < L; v++) acc[k][v] += d[k][ox + v] * s[ox + v];
                for (; ox < g.ow; ox++) for (int k = 0; k < OB; k++) acc[k][0] += d[k][ox] * s[ox];
                for (int k = 0; k < OB; k++) memcpy(part + ((o + k) * taps + t) * L, acc[k], sizeof acc[k]);
            }
    }
    for (long i = 0; i < (long)g.o * taps; i++) { dw[i] = 0; for (int v = 0; v < L; v++) dw[i] += part[i * L + v]; }
}
