/* Quantization to the K-quant super-blocks (256 values): Q2_K, Q4_K and
 * Q5_K store per-sub-block scales and mins (x = d*sc*q - dmin*m), Q3_K and
 * Q6_K signed per-sub-block scales (x = d*sc*q).
 *
 * Each super-block is fitted in four steps:
 *  1. every sub-block gets its own best float scale (and min) from the
 *     weighted search in quant_fit.c;
 *  2. those scales (and mins) are themselves quantized to their 4, 6 or 8
 *     bits against one f16 super-scale, weighting each sub-block by its
 *     total weight;
 *  3. each sub-block tries its neighbouring integer scale/min codes and
 *     keeps the pair with the lowest error after re-rounding its values;
 *  4. the super-scales are refitted by least squares to the final integers
 *     and kept only if that lowers the error.
 * With an importance matrix (clip) the super-block is fitted twice, with
 * and without clipping in step 1, and the lower total error is kept.
 * Layouts are the inverse of quant_ref.c's dequantizers. */
#include <math.h>
#include <string.h>

#include "quant/quant_internal.h"
#include "quant/quantize.h"

static inline int clamp_round(float v, int lo, int hi) {
    int i = (int)lrintf(v);
    return i < lo ? lo : i > hi ? hi : i;
}
static inline float f16_round(float v) { return slm_f16_to_f32(slm_f32_to_f16(v)); }
static inline float wt(const float *w, int i) { return w ? w[i] : 1.0f; }
static inline void wr_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

/* ---- scale + min super-blocks (Q2_K, Q4_K, Q5_K) ---- */

typedef struct kaff {
    int nsub, sublen;   /* sub-blocks and their length */
    int qmax;           /* element levels 0..qmax */
    int cmax;           /* scale/min codes 0..cmax */
    int grid;           /* candidate scales per sub-block */
} kaff;

/* Rounds sub-block j's values against scale dl and min ml; returns the error. */
static float aff_sub(const kaff *c, const float *x, const float *w, float dl, float ml, uint8_t *q) {
    float err = 0, id = dl > 0 ? 1.0f / dl : 0.0f;
    for (int i = 0; i < c->sublen; i++) {
        int l = dl > 0 ? clamp_round((x[i] + ml) * id, 0, c->qmax) : 0;
        q[i] = (uint8_t)l;
        float e = dl * (float)l - ml - x[i];
        err += wt(w, i) * e * e;
    }
    return err;
}

static float aff_total(const kaff *c, const float *x, const float *w, float d, float dmin, const uint8_t *sc,
                       const uint8_t *mn, uint8_t *q) {
    float err = 0;
    for (int j = 0; j < c->nsub; j++) {
        int o = j * c->sublen;
        err += aff_sub(c, x + o, w ? w + o : NULL, d * (float)sc[j], dmin * (float)mn[j], q + o);
    }
    return err;
}

static float kaff_fit(const kaff *c, const float *x, const float *w, bool clip, uint8_t *q, uint8_t *sc,
                      uint8_t *mn, float *d_out, float *dmin_out) {
    float scales[16], mins[16], sw[16];
    for (int j = 0; j < c->nsub; j++) {
        int o = j * c->sublen;
        const float *wj = w ? w + o : NULL;
        float m;
        slm_fit_affine(c->sublen, x + o, wj, c->qmax, true, c->grid, clip, q + o, &scales[j], &m);
        mins[j] = -m;
        sw[j] = 0;
        for (int i = 0; i < c->sublen; i++) sw[j] += wt(wj, i);
    }
    float d = f16_round(slm_fit_unsigned(c->nsub, scales, sw, c->cmax, sc));
    float dmin = f16_round(slm_fit_unsigned(c->nsub, mins, sw, c->cmax, mn));
    /* step 3: neighbouring codes per sub-block */
    uint8_t tmp[32];
    for (int j = 0; j < c->nsub; j++) {
        int o = j * c->sublen;
        const float *wj = w ? w + o : NULL;
        int bs = sc[j], bm = mn[j];
        float best = aff_sub(c, x + o, wj, d * (float)bs, dmin * (float)bm, q + o);
        for (int a = -1; a <= 1; a++)
            for (int b = -1; b <= 1; b++) {
                int s = sc[j] + a, mm = mn[j] + b;
                if ((a == 0 && b == 0) || s < 0 || s > c->cmax || mm < 0 || mm > c->cmax) continue;
                float e = aff_sub(c, x + o, wj, d * (float)s, dmin * (float)mm, tmp);
                if (e < best) best = e, bs = s, bm = mm, memcpy(q + o, tmp, (size_t)c->sublen);
            }
        sc[j] = (uint8_t)bs, mn[j] = (uint8_t)bm;
    }
    /* step 4: x ~ d*(sc*q) - dmin*mn, linear in (d, dmin) */
    float err = aff_total(c, x, w, d, dmin, sc, mn, q);
    double saa = 0, sab = 0, sbb = 0, sxa = 0, sxb = 0;
    for (int j = 0; j < c->nsub; j++)
        for (int i = 0; i < c->sublen; i++) {
            int e = j * c->sublen + i;
            double wi = wt(w, e), a = (double)sc[j] * q[e], b = -(double)mn[j];
            saa += wi * a * a, sab += wi * a * b, sbb += wi * b * b, sxa += wi * x[e] * a, sxb += wi * x[e] * b;
        }
    double det = saa * sbb - sab * sab;
    if (det > 1e-20 * (saa * sbb + 1e-30)) {
        float nd = f16_round((float)((sxa * sbb - sxb * sab) / det));
        float ndm = f16_round((float)((saa * sxb - sab * sxa) / det));
        uint8_t q2[256];
        if (nd >= 0 && ndm >= 0) {
            float e2 = aff_total(c, x, w, nd, ndm, sc, mn, q2);
            if (e2 < err) err = e2, d = nd, dmin = ndm, memcpy(q, q2, (size_t)(c->nsub * c->sublen));
        }
    } else {
        err = aff_total(c, x, w, d, dmin, sc, mn, q);
    }
    *d_out = d, *dmin_out = dmin;
    return err;
}

/* With clip, the super-block is fitted both ways and the lower total error
 * kept: a sub-block fit that clips can win on its own yet lose once the
 * scales are quantized (a block already on a K-quant grid, for one). */
static void kaff_best(const kaff *c, const float *x, const float *w, bool clip, uint8_t *q, uint8_t *sc,
                      uint8_t *mn, float *d, float *dmin) {
    float e0 = kaff_fit(c, x, w, false, q, sc, mn, d, dmin);
    if (!clip || !w || !(e0 > 0)) return;
    uint8_t q1[QK_K], sc1[16], mn1[16];
    float d1, dmin1;
    float e1 = kaff_fit(c, x, w, true, q1, sc1, mn1, &d1, &dmin1);
    if (e1 < e0) {
        memcpy(q, q1, QK_K), memcpy(sc, sc1, (size_t)c->nsub), memcpy(mn, mn1, (size_t)c->nsub);
        *d = d1, *dmin = dmin1;
    }
}

static const kaff KAFF_Q2 = { 16, 16, 3, 15, 16 };
static const kaff KAFF_Q4 = { 8, 32, 15, 63, 12 };
static const kaff KAFF_Q5 = { 8, 32, 31, 63, 8 };

/* Q2_K / Q3_K element e keeps its 2 low bits at qs[h*32 + l] >> 2s with
 * h = e/128, s = (e/32)%4, l = e%32. */
static void pack_2bit(const uint8_t *u, uint8_t *qs) {
    memset(qs, 0, 64);
    for (int e = 0; e < QK_K; e++) {
        int h = e >> 7, s = (e >> 5) & 3, l = e & 31;
        qs[h * 32 + l] |= (uint8_t)((u[e] & 3) << (2 * s));
    }
}

void slm_quantize_block_q2_k(const float *x, const float *w, bool clip, uint8_t *b) {
    uint8_t q[QK_K], sc[16], mn[16];
    float d, dmin;
    kaff_best(&KAFF_Q2, x, w, clip, q, sc, mn, &d, &dmin);
    for (int j = 0; j < 16; j++) b[j] = (uint8_t)(sc[j] | (mn[j] << 4));
    pack_2bit(q, b + Q2_K_QS);
    wr_u16(b + Q2_K_D, slm_f32_to_f16(d));
    wr_u16(b + Q2_K_D + 2, slm_f32_to_f16(dmin));
}

/* Q4_K / Q5_K scale packing: the inverse of slm_k4_scale_min. */
static void pack_k4_scales(const uint8_t *sc, const uint8_t *mn, uint8_t *s) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
}

/* Q4_K / Q5_K: 64-value chunk i = low nibbles of qs[32i..] (sub-block 2i),
 * then the high nibbles (sub-block 2i+1). */
static void pack_nibbles_k(const uint8_t *u, uint8_t *qs) {
    for (int i = 0; i < 4; i++)
        for (int l = 0; l < 32; l++)
            qs[32 * i + l] = (uint8_t)((u[64 * i + l] & 15) | ((u[64 * i + 32 + l] & 15) << 4));
}

void slm_quantize_block_q4_k(const float *x, const float *w, bool clip, uint8_t *b) {
    uint8_t q[QK_K], sc[8], mn[8];
    float d, dmin;
    kaff_best(&KAFF_Q4, x, w, clip, q, sc, mn, &d, &dmin);
    wr_u16(b, slm_f32_to_f16(d));
    wr_u16(b + 2, slm_f32_to_f16(dmin));
    pack_k4_scales(sc, mn, b + Q4_K_SC);
    pack_nibbles_k(q, b + Q4_K_QS);
}

void slm_quantize_block_q5_k(const float *x, const float *w, bool clip, uint8_t *b) {
    uint8_t q[QK_K], sc[8], mn[8];
    float d, dmin;
    kaff_best(&KAFF_Q5, x, w, clip, q, sc, mn, &d, &dmin);
    wr_u16(b, slm_f32_to_f16(d));
    wr_u16(b + 2, slm_f32_to_f16(dmin));
    pack_k4_scales(sc, mn, b + Q5_K_SC);
    uint8_t *qh = b + Q5_K_QH;
    memset(qh, 0, 32);
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 32; l++) qh[l] |= (uint8_t)(((q[32 * j + l] >> 4) & 1) << j);
    pack_nibbles_k(q, b + Q5_K_QS);
}

/* ---- signed-scale super-blocks (Q3_K, Q6_K): 16 sub-blocks of 16 ---- */

typedef struct ksym {
    int qmin, qmax;     /* element levels */
    int cmin, cmax;     /* scale codes */
    int grid;
} ksym;

static float sym_sub(const ksym *c, const float *x, const float *w, float dl, int8_t *q) {
    float err = 0, id = dl != 0 ? 1.0f / dl : 0.0f;
    for (int i = 0; i < 16; i++) {
        int l = clamp_round(x[i] * id, c->qmin, c->qmax);
        q[i] = (int8_t)l;
        float e = dl * (float)l - x[i];
        err += wt(w, i) * e * e;
    }
    return err;
}

/* Returns the weighted error; the super-scale goes to *d_out. */
static float ksym_fit(const ksym *c, const float *x, const float *w, bool clip, int8_t *q, int8_t *sc,
                      float *d_out) {
    float scales[16], sw[16];
    for (int j = 0; j < 16; j++) {
        const float *wj = w ? w + 16 * j : NULL;
        scales[j] = slm_fit_sym(16, x + 16 * j, wj, c->qmin, c->qmax, c->grid, clip, q + 16 * j);
        /* a scale error e costs e^2 * sum w q^2 in this sub-block */
        sw[j] = 0;
        for (int i = 0; i < 16; i++) sw[j] += wt(wj, i) * (float)(q[16 * j + i] * q[16 * j + i]);
    }
    float d = f16_round(slm_fit_sym(16, scales, sw, c->cmin, c->cmax, 8, false, sc));
    int8_t tmp[16];
    float err = 0;
    for (int j = 0; j < 16; j++) {
        const float *wj = w ? w + 16 * j : NULL;
        int bs = sc[j];
        float best = sym_sub(c, x + 16 * j, wj, d * (float)bs, q + 16 * j);
        for (int a = -1; a <= 1; a += 2) {
            int s = sc[j] + a;
            if (s < c->cmin || s > c->cmax) continue;
            float e = sym_sub(c, x + 16 * j, wj, d * (float)s, tmp);
            if (e < best) best = e, bs = s, memcpy(q + 16 * j, tmp, 16);
        }
        sc[j] = (int8_t)bs;
        err += best;
    }
    /* refit d to the final integers: x ~ d * (sc*q) */
    double saa = 0, sxa = 0;
    for (int e = 0; e < QK_K; e++) {
        double a = (double)sc[e >> 4] * q[e];
        saa += wt(w, e) * a * a, sxa += wt(w, e) * x[e] * a;
    }
    if (saa > 0) {
        float nd = f16_round((float)(sxa / saa)), e2 = 0;
        int8_t q2[QK_K];
        for (int j = 0; j < 16; j++) e2 += sym_sub(c, x + 16 * j, w ? w + 16 * j : NULL, nd * (float)sc[j], q2 + 16 * j);
        if (e2 < err) err = e2, d = nd, memcpy(q, q2, QK_K);
    }
    *d_out = d;
    return err;
}

/* As kaff_best. */
static float ksym_best(const ksym *c, const float *x, const float *w, bool clip, int8_t *q, int8_t *sc) {
    float d;
    float e0 = ksym_fit(c, x, w, false, q, sc, &d);
    if (!clip || !w || !(e0 > 0)) return d;
    int8_t q1[QK_K], sc1[16];
    float d1;
    if (ksym_fit(c, x, w, true, q1, sc1, &d1) < e0) memcpy(q, q1, QK_K), memcpy(sc, sc1, 16), d = d1;
    return d;
}

static const ksym KSYM_Q3 = { -4, 3, -32, 31, 12 };
static const ksym KSYM_Q6 = { -32, 31, -128, 127, 6 };

void slm_quantize_block_q3_k(const float *x, const float *w, bool clip, uint8_t *b) {
    int8_t q[QK_K], sc[16];
    float d = ksym_best(&KSYM_Q3, x, w, clip, q, sc);
    uint8_t u[QK_K];
    for (int e = 0; e < QK_K; e++) u[e] = (uint8_t)(q[e] + 4);
    uint8_t *hm = b;
    memset(hm, 0, 32);
    for (int e = 0; e < QK_K; e++) hm[e & 31] |= (uint8_t)((u[e] >> 2) << (e >> 5));
    pack_2bit(u, b + Q3_K_QS);
    uint8_t *s = b + Q3_K_SC;
    memset(s, 0, 12);
    for (int i = 0; i < 16; i++) {
        int v = sc[i] + 32;
        if (i < 8) s[i] |= (uint8_t)(v & 15);
        else s[i - 8] |= (uint8_t)((v & 15) << 4);
        s[8 + (i & 3)] |= (uint8_t)((v >> 4) << (2 * (i >> 2)));
    }
    wr_u16(b + Q3_K_D, slm_f32_to_f16(d));
}

void slm_quantize_block_q6_k(const float *x, const float *w, bool clip, uint8_t *b) {
    int8_t q[QK_K], sc[16];
    float d = ksym_best(&KSYM_Q6, x, w, clip, q, sc);
    uint8_t *ql = b, *qh = b + Q6_K_QH;
    memset(ql, 0, 128);
    memset(qh, 0, 64);
    for (int e = 0; e < QK_K; e++) {
        int u = q[e] + 32;
        int h = e >> 7, k = (e >> 6) & 1, m = e & 63, s = (e >> 5) & 3, l = e & 31;
        ql[h * 64 + m] |= (uint8_t)((u & 15) << (4 * k));
        qh[h * 32 + l] |= (uint8_t)((u >> 4) << (2 * s));
    }
    memcpy(b + Q6_K_SC, sc, 16);
    wr_u16(b + Q6_K_D, slm_f32_to_f16(d));
}
