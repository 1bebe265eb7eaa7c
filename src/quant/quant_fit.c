/* Weighted least-squares fitting of one block's scale (and min).
 *
 * The search is the same for every shape of block: pick a candidate scale,
 * round every value to its nearest level, then solve the small normal
 * equations for the scale (and min) that best fit those integers. The
 * integers are a step function of the scale, so a handful of candidates
 * around the "largest value lands on the last level" scale finds most of
 * the gain; two rounds of "re-round with the fitted scale, refit" polish
 * the winner. With weights from an importance matrix (clip), scales that
 * clip a block's extremes are tried as well. Errors are
 * sum_i w_i (x_i - y_i)^2. */
#include <math.h>
#include <string.h>

#include "quant/quantize.h"

#define FIT_TINY 1e-30f
/* A later candidate must beat the current best by more than rounding: two
 * fits that are equally exact (a block with one non-zero value fits any
 * level) differ only in the last bits, and the first candidates are the
 * classic round-to-nearest scales, the ones that survive storing d as f16. */
#define FIT_TIE (1.0 + 1e-12)

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
 * score sxq^2/sqq (larger is better: error = sxx - score) and d. In double:
 * with the default x^2-weighted errors a block holding one large outlier
 * makes every candidate's score agree with the exact one to float precision,
 * and float rounding then picked a non-exact scale for a block that was
 * already on the grid (a Q8_0 output head came back with 0.2 % of its
 * blocks changed; KL to the base rose by ~1 %). */
static double sym_try(int n, const float *x, const float *w, int qmin, int qmax, float is, int8_t *q, float *d) {
    double sxq = 0, sqq = 0;
    for (int i = 0; i < n; i++) {
        int l = round_clamp(x[i] * is, qmin, qmax);
        q[i] = (int8_t)l;
        double wi = wt(w, i);
        sxq += wi * x[i] * l;
        sqq += wi * (double)(l * l);
    }
    if (sqq <= 0) { *d = 0; return 0; }
    *d = (float)(sxq / sqq);
    return sxq * sxq / sqq;
}

/* Re-rounds with the fitted scale and refits, up to `rounds` times, while
 * the score improves; clipping allowed. */
static void sym_polish(int n, const float *x, const float *w, int qmin, int qmax, int rounds, int8_t *q,
                       double *score, float *d) {
    int8_t cand[256];
    for (int it = 0; it < rounds && *d != 0; it++) {
        float nd;
        double s = sym_try(n, x, w, qmin, qmax, 1.0f / *d, cand, &nd);
        if (s <= *score) break;
        *score = s, *d = nd, memcpy(q, cand, (size_t)n);
    }
}

/* Scales that clip the largest value, tried only for weights from an
 * importance matrix. Such a matrix often has a few columns hundreds of times
 * more active than the rest; the best fit then puts that column's value
 * exactly on a level and lets the block's extremes clip. The default
 * weights are only a proxy for what the model needs, and with them
 * clipping lowers the weighted error but raises perplexity (slm_fit_sym).
 * Candidates: the heaviest element (largest w x^2) on each level 1..16, and
 * 8 scales up to two levels finer than the largest value's; each is
 * re-rounded and refitted CLIP_ROUNDS times. The result replaces the
 * no-clip fit only if its error is at least 2 % lower (CLIP_GAIN): on data
 * already on a grid the no-clip fit is exact, and a tie must not move it. */
#define CLIP_GAIN 0.98f
#define CLIP_ROUNDS 2
#define CLIP_FINER 8

static void sym_clip_search(int n, const float *x, const float *w, int qmin, int qmax, int8_t *q, double *best,
                            float *best_d) {
    double sxx = 0, top = -1;
    float amax = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        double e = (double)w[i] * x[i] * x[i];
        sxx += e;
        if (e > top) top = e, k = i;
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]);
    }
    if (!(sxx > 0) || x[k] == 0) return;
    int8_t cand[256], bq[2][256];
    double top_s[2] = { -1, -1 };
    float top_d[2] = { 0, 0 };
    int lmax = -qmin > qmax ? -qmin : qmax;
    int n_anchor = lmax < 16 ? lmax : 16;
    /* the two best candidates as rounded, then polished */
    for (int c = 0; c < n_anchor + CLIP_FINER; c++) {
        float is = c < n_anchor ? (float)(c + 1) / fabsf(x[k])
                                : ((float)lmax + 0.25f * (float)(c - n_anchor + 1)) / amax;
        float d;
        double s = sym_try(n, x, w, qmin, qmax, is, cand, &d);
        if (d == 0 || s <= top_s[1]) continue;
        int slot = s > top_s[0] ? 0 : 1;
        if (slot == 0) top_s[1] = top_s[0], top_d[1] = top_d[0], memcpy(bq[1], bq[0], (size_t)n);
        top_s[slot] = s, top_d[slot] = d, memcpy(bq[slot], cand, (size_t)n);
    }
    double cbest = -1;
    float cd = 0;
    int win = 0;
    for (int t = 0; t < 2 && top_s[t] > 0; t++) {
        sym_polish(n, x, w, qmin, qmax, CLIP_ROUNDS, bq[t], &top_s[t], &top_d[t]);
        if (top_s[t] > cbest) cbest = top_s[t], cd = top_d[t], win = t;
    }
    if (cbest > *best && sxx - cbest < CLIP_GAIN * (sxx - *best)) {
        *best = cbest, *best_d = cd;
        memcpy(q, bq[win], (size_t)n);
    }
}

float slm_fit_sym(int n, const float *x, const float *w, int qmin, int qmax, int n_grid, bool clip, int8_t *q) {
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
    float best_d = 0;
    double best = -1;
    float l0 = (float)-qmin;
    /* k = -1 and 0 put the extreme value on level +-qmax and on qmin (the
     * two classic round-to-nearest scales: data already on such a grid comes
     * back exactly); the grid spans levels l0 down to l0 - 1.5. Scales that
     * would clip the largest value are not tried here: clipping lowers the
     * rms error but loses the outliers a model depends on (perplexity
     * suffers); only with clip (an importance matrix) does sym_clip_search
     * try them. The reference quantizers' own scale goes first, so that it
     * wins a tie (amax/127 for 8 bits, max/qmin for 4 and 5): a block with a
     * single non-zero value fits every level exactly, but only the reference
     * level survives storing d as f16 */
    float ref = qmax >= 127 ? (float)qmax : l0, other = qmax >= 127 ? l0 : (float)qmax;
    for (int k = -1; k <= n_grid; k++) {
        if (k == 0 && other == ref) continue;
        float level = k == -1 ? ref
                    : k == 0 ? other
                             : l0 - 1.5f * (float)(k - 1) / (float)(n_grid > 1 ? n_grid - 1 : 1);
        if (level <= 0.5f) continue;
        float d;
        double s = sym_try(n, x, w, qmin, qmax, -level / xm, cand, &d);
        if (s > best * FIT_TIE) best = s, best_d = d, memcpy(q, cand, (size_t)n);
    }
    for (int it = 0; it < 2 && best_d != 0; it++) {
        float d;
        double s = sym_try(n, x, w, qmin, qmax, 1.0f / best_d, cand, &d);
        if (s <= best * FIT_TIE || fabsf(xm / d) > l0 + 0.5f) break;
        best = s, best_d = d, memcpy(q, cand, (size_t)n);
    }
    if (clip && w) sym_clip_search(n, x, w, qmin, qmax, q, &best, &best_d);
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

void slm_fit_affine(int n, const float *x, const float *w, int qmax, bool min_nonpos, int n_grid, bool clip,
                    uint8_t *q, float *d, float *m) {
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
    uint8_t cand[256], qtmp[256];
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
    if (clip && w) { /* as in sym_clip_search: CLIP_FINER finer steps clipping the top, as many the bottom */
        uint8_t bq[2][256];
        float top_e[2] = { INFINITY, INFINITY }, top_d[2] = { 0, 0 }, top_m[2] = { 0, 0 };
        for (int c = 0; c < 2 * CLIP_FINER; c++) {
            float is = ((float)qmax + 0.25f * (float)(c / 2 + 1)) / (hi - lo);
            float org = c % 2 ? hi - (float)qmax / is : lo;
            affine_round(n, x, qmax, org, is, cand);
            float cd, cm;
            float e = affine_solve(n, x, w, cand, min_nonpos, &cd, &cm);
            if (!(cd > 0) || !(e < top_e[1])) continue;
            int slot = e < top_e[0] ? 0 : 1;
            if (slot == 0)
                top_e[1] = top_e[0], top_d[1] = top_d[0], top_m[1] = top_m[0], memcpy(bq[1], bq[0], (size_t)n);
            top_e[slot] = e, top_d[slot] = cd, top_m[slot] = cm, memcpy(bq[slot], cand, (size_t)n);
        }
        float keep = best;
        for (int t = 0; t < 2 && top_d[t] > 0; t++) { /* polish the two best */
            for (int it = 0; it < CLIP_ROUNDS; it++) {
                affine_round(n, x, qmax, top_m[t], 1.0f / top_d[t], qtmp);
                float nd, nm;
                float e2 = affine_solve(n, x, w, qtmp, min_nonpos, &nd, &nm);
                if (!(e2 < top_e[t]) || nd <= 0) break;
                top_e[t] = e2, top_d[t] = nd, top_m[t] = nm, memcpy(bq[t], qtmp, (size_t)n);
            }
            if (top_e[t] < CLIP_GAIN * keep && top_e[t] < best)
                best = top_e[t], bd = top_d[t], bm = top_m[t], memcpy(q, bq[t], (size_t)n);
        }
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
