/* Weighted least-squares fitting of one block's scale (and min).
 *
 * The search is the same for every shape of block: pick a candidate scale,
 * round every value to its nearest level, then solve the small normal
 * equations for the scale (and min) that best fit those integers. The
 * integers are a step function of the scale, so a handful of candidates
 * around the "largest value lands on the last level" scale finds most of
 * the gain; two rounds of "re-round with the fitted scale, refit" polish
 * the winner. Errors are sum_i w_i (x_i - y_i)^2. */
#include <math.h>
#include <string.h>

#include "quant/quantize.h"

#define FIT_TINY 1e-30f

static inline int round_clamp(float v, int lo, int hi) {
    int i = (int)lrintf(v);
    return i < lo ? lo : i > hi ? hi : i;
}

static inline float wt(const float *w, int i) { return w ? w[i] : 1.0f; }

void slm_quant_weights(const float *x, const float *imp, float *w, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    float s2 = n > 0 ? (float)(s / (double)n) : 0.0f;
    if (s2 <= 0) s2 = FIT_TINY;
    for (int64_t i = 0; i < n; i++) {
        float e = s2 + x[i] * x[i];
        w[i] = imp ? (imp[i] > 0 ? imp[i] : 0.0f) * sqrtf(e) : e;
    }
}

/* ---- symmetric: x ~ d*q ---- */

/* For fixed rounding inverse scale `is`, fills q and returns the fitted
 * score sxq^2/sqq (larger is better: error = sxx - score) and d. */
static float sym_try(int n, const float *x, const float *w, int qmin, int qmax, float is, int8_t *q, float *d) {
    float sxq = 0, sqq = 0;
    for (int i = 0; i < n; i++) {
        int l = round_clamp(x[i] * is, qmin, qmax);
        q[i] = (int8_t)l;
        float wi = wt(w, i);
        sxq += wi * x[i] * (float)l;
        sqq += wi * (float)(l * l);
    }
    if (sqq <= 0) { *d = 0; return 0; }
    *d = sxq / sqq;
    return sxq * sxq / sqq;
}

float slm_fit_sym(int n, const float *x, const float *w, int qmin, int qmax, int n_grid, int8_t *q) {
    float amax = 0, xm = 0;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax) amax = a, xm = x[i];
    }
    if (amax < FIT_TINY) {
        memset(q, 0, (size_t)n);
        return 0;
    }
    int8_t cand[256];
    float best_d = 0, best = -1;
    float l0 = (float)-qmin;
    /* k = -1 puts the extreme value on level +-qmax and k = 0 on qmin (the
     * two classic round-to-nearest scales: data already on such a grid comes
     * back exactly); the grid spans levels l0 down to l0 - 1.5. Scales that
     * would clip the largest value are never tried: clipping lowers the rms
     * error but loses the outliers a model depends on (perplexity suffers) */
    for (int k = qmax == -qmin ? 0 : -1; k <= n_grid; k++) {
        float level = k == -1 ? (float)qmax
                    : k == 0 ? l0
                             : l0 - 1.5f * (float)(k - 1) / (float)(n_grid > 1 ? n_grid - 1 : 1);
        if (level <= 0.5f) continue;
        float d;
        float s = sym_try(n, x, w, qmin, qmax, -level / xm, cand, &d);
        if (s > best) best = s, best_d = d, memcpy(q, cand, (size_t)n);
    }
    for (int it = 0; it < 2 && best_d != 0; it++) {
        float d;
        float s = sym_try(n, x, w, qmin, qmax, 1.0f / best_d, cand, &d);
        if (s <= best || fabsf(xm / d) > l0 + 0.5f) break;
        best = s, best_d = d, memcpy(q, cand, (size_t)n);
    }
    return best_d;
}

/* ---- affine: x ~ d*q + m ---- */

/* Solves the 2x2 weighted normal equations for (d, m) given q; with
 * min_nonpos, m > 0 is replaced by m = 0 and d refitted. Returns the error. */
static float affine_solve(int n, const float *x, const float *w, const uint8_t *q, bool min_nonpos, float *d,
                          float *m) {
    double sw = 0, sq = 0, sqq = 0, sx = 0, sxq = 0;
    for (int i = 0; i < n; i++) {
        double wi = wt(w, i), qi = q[i];
        sw += wi, sq += wi * qi, sqq += wi * qi * qi, sx += wi * x[i], sxq += wi * x[i] * qi;
    }
    double det = sw * sqq - sq * sq;
    double dd = 0, mm = sw > 0 ? sx / sw : 0;
    if (det > 1e-30 * (sw * sqq + 1e-30)) {
        dd = (sw * sxq - sq * sx) / det;
        mm = (sqq * sx - sq * sxq) / det;
    }
    if (min_nonpos && mm > 0) {
        mm = 0;
        dd = sqq > 0 ? sxq / sqq : 0;
    }
    if (dd < 0) dd = 0;
    *d = (float)dd, *m = (float)mm;
    float err = 0;
    for (int i = 0; i < n; i++) {
        float e = *d * (float)q[i] + *m - x[i];
        err += wt(w, i) * e * e;
    }
    return err;
}

static void affine_round(int n, const float *x, int qmax, float lo, float is, uint8_t *q) {
    for (int i = 0; i < n; i++) q[i] = (uint8_t)round_clamp((x[i] - lo) * is, 0, qmax);
}

void slm_fit_affine(int n, const float *x, const float *w, int qmax, bool min_nonpos, int n_grid, uint8_t *q,
                    float *d, float *m) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    if (min_nonpos && lo > 0) lo = 0;
    if (hi - lo < FIT_TINY * (fabsf(lo) + 1.0f) || hi - lo < FIT_TINY) {
        memset(q, 0, (size_t)n);
        *d = 0, *m = min_nonpos && lo > 0 ? 0 : lo;
        return;
    }
    uint8_t cand[256];
    float best = INFINITY, bd = 0, bm = lo;
    for (int k = 0; k <= n_grid; k++) {
        /* never more than qmax steps: that would clip the extremes */
        float steps = k == 0 ? (float)qmax : (float)qmax - 1.0f * (float)(k - 1) / (float)(n_grid > 1 ? n_grid - 1 : 1);
        if (steps <= 0.5f) continue;
        affine_round(n, x, qmax, lo, steps / (hi - lo), cand);
        float cd, cm;
        float e = affine_solve(n, x, w, cand, min_nonpos, &cd, &cm);
        if (e < best) best = e, bd = cd, bm = cm, memcpy(q, cand, (size_t)n);
    }
    for (int it = 0; it < 2 && bd > 0; it++) {
        affine_round(n, x, qmax, bm, 1.0f / bd, cand);
        float cd, cm;
        float e = affine_solve(n, x, w, cand, min_nonpos, &cd, &cm);
        if (!(e < best) || cd <= 0 || (hi - cm) / cd > (float)qmax + 0.5f) break;
        best = e, bd = cd, bm = cm, memcpy(q, cand, (size_t)n);
    }
    *d = bd, *m = bm;
}

/* ---- non-negative values: v ~ d*q, q in [0, qmax] ---- */

float slm_fit_unsigned(int n, const float *v, const float *w, int qmax, uint8_t *q) {
    float vmax = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > vmax) vmax = v[i];
    if (vmax < FIT_TINY) {
        memset(q, 0, (size_t)n);
        return 0;
    }
    uint8_t cand[64];
    float best = -1, bd = 0;
    for (int k = 0; k <= 8; k++) {
        float top = k == 0 ? (float)qmax : (float)qmax + 0.5f - 0.25f * (float)(k - 1);
        float is = top / vmax, sxq = 0, sqq = 0;
        for (int i = 0; i < n; i++) {
            int l = round_clamp(v[i] * is, 0, qmax);
            cand[i] = (uint8_t)l;
            sxq += wt(w, i) * v[i] * (float)l, sqq += wt(w, i) * (float)(l * l);
        }
        if (sqq <= 0) continue;
        float s = sxq * sxq / sqq;
        if (s > best) best = s, bd = sxq / sqq, memcpy(q, cand, (size_t)n);
    }
    if (best < 0) { /* every weight zero: plain max scaling */
        bd = vmax / (float)qmax;
        for (int i = 0; i < n; i++) q[i] = (uint8_t)round_clamp(v[i] / bd, 0, qmax);
    }
    return bd;
}
