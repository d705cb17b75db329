// The inference max pool (no winners recorded): any window, stride and padding, optionally with a
// PReLU applied to each value as it is read. See CKernels.h.
#include <math.h>
#include "CKernels.h"
#include "clones.h"

CLONES void fn2e_max_pool(const float *x, float *y, int h, int w, fn2e_pool p, const float *slopes, int channels,
                          float *col, long p0, long p1) {
    // Stride 2 across: the windows whose columns all lie in the plane, ox in [first, last], read the
    // even and odd columns' maxima (e, o) as vectors; the others (and every window at other strides)
    // read the column maxima one by one. NaN never wins: comparisons with it are false.
    int half = (w + 1) / 2, first = (p.pw + 1) / 2, last = p.sw == 2 && w - p.kw + p.pw >= 0 ? MIN((w - p.kw + p.pw) / 2, p.ow - 1) : -1;
    float *e = col + w + 1, *o = e + half;
    for (long q = p0; q < p1; q++) {
        const float *xs = x + q * (long)h * w;
        float *ys = y + q * (long)p.oh * p.ow, a = slopes ? slopes[q % channels] : 1;
        for (int oy = 0; oy < p.oh; oy++) {
            int lo = MAX(oy * p.sh - p.ph, 0), hi = MIN(oy * p.sh - p.ph + p.kh, h);
            for (int k = 0; k < w; k++) col[k] = -INFINITY;
            for (const float *r = xs + (long)lo * w; r < xs + (long)hi * w; r += w)
                for (int k = 0; k < w; k++) {
                    float u = slopes && !(r[k] > 0) ? a * r[k] : r[k];
                    col[k] = u > col[k] ? u : col[k];
                }
            float *d = ys + (long)oy * p.ow;
            if (first <= last) {
                for (int k = 0; k < w / 2; k++) e[k] = col[2 * k], o[k] = col[2 * k + 1];
                if (w % 2) e[half - 1] = col[w - 1];
                for (int ox = first; ox <= last; ox++) d[ox] = -INFINITY;
                for (int t = -p.pw; t < p.kw - p.pw; t++) {  // column 2·ox + t
                    const float *s = (t & 1 ? o : e) + (t >> 1);
                    for (int ox = first; ox <= last; ox++) d[ox] = s[ox] > d[ox] ? s[ox] : d[ox];
                }
            }
            for (int ox = 0; ox < p.ow; ox++) {
                if (ox == first && first <= last) ox = last + 1;
                if (ox >= p.ow) break;
                float best = -INFINITY;
                for (int ix = MAX(ox * p.sw - p.pw, 0); ix < MIN(ox * p.sw - p.pw + p.kw, w); ix++) best = col[ix] > best ? col[ix] : best;
                d[ox] = best;
            }
        }
    }
}
