/* Quantization to the 32-value block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)
 * and the float types, and slm_quantize_row, which dispatches every type.
 * Layouts are the inverse of the reference dequantizer in quant_ref.c. */
#include <math.h>
#include <string.h>

#include "quant/quant_internal.h"
#include "quant/quantize.h"

/* candidate scales per block in the search (see quant_fit.c) */
#define GRID_4BIT 16
#define GRID_5BIT 12
#define GRID_8BIT 2

bool slm_can_quantize(uint32_t type) {
    switch (type) {
    case SLM_T_F32: case SLM_T_F16: case SLM_T_BF16:
    case SLM_T_Q4_0: case SLM_T_Q4_1: case SLM_T_Q5_0: case SLM_T_Q5_1: case SLM_T_Q8_0:
    case SLM_T_Q2_K: case SLM_T_Q3_K: case SLM_T_Q4_K: case SLM_T_Q5_K: case SLM_T_Q6_K:
        return true;
    default:
        return false;
    }
}

static inline void wr_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void wr_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* The scale as it will be stored (f16) and read back. */
static inline float f16_round(float v) { return slm_f16_to_f32(slm_f32_to_f16(v)); }

static inline int clamp_round(float v, int lo, int hi) {
    int i = (int)lrintf(v);
    return i < lo ? lo : i > hi ? hi : i;
}

/* Symmetric block: fit, store d as f16, re-round against the stored d. */
static float sym_block(const float *x, const float *w, bool clip, int qmin, int qmax, int grid, int8_t *q) {
    float d = slm_fit_sym(QK, x, w, qmin, qmax, grid, clip, q);
    float dr = f16_round(d);
    if (dr != d) {
        float id = dr != 0 ? 1.0f / dr : 0.0f;
        for (int i = 0; i < QK; i++) q[i] = (int8_t)clamp_round(x[i] * id, qmin, qmax);
    }
    return dr;
}

/* Affine block: fit, store d and m as f16, re-round against them. */
static void affine_block(const float *x, const float *w, bool clip, int qmax, int grid, uint8_t *q, float *d,
                         float *m) {
    slm_fit_affine(QK, x, w, qmax, false, grid, clip, q, d, m);
    float dr = f16_round(*d), mr = f16_round(*m);
    if (dr != *d || mr != *m) {
        float id = dr != 0 ? 1.0f / dr : 0.0f;
        for (int i = 0; i < QK; i++) q[i] = (uint8_t)clamp_round((x[i] - mr) * id, 0, qmax);
    }
    *d = dr, *m = mr;
}

static void q4_0_block(const float *x, const float *w, bool clip, uint8_t *b) {
    int8_t q[QK];
    float d = sym_block(x, w, clip, -8, 7, GRID_4BIT, q);
    wr_u16(b, slm_f32_to_f16(d));
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)((q[j] + 8) | ((q[j + 16] + 8) << 4));
}

static void q4_1_block(const float *x, const float *w, bool clip, uint8_t *b) {
    uint8_t q[QK];
    float d, m;
    affine_block(x, w, clip, 15, GRID_4BIT, q, &d, &m);
    wr_u16(b, slm_f32_to_f16(d));
    wr_u16(b + 2, slm_f32_to_f16(m));
    for (int j = 0; j < 16; j++) b[4 + j] = (uint8_t)(q[j] | (q[j + 16] << 4));
}

/* Q5: low nibbles in qs, the fifth bits of element j in bit j of qh. */
static void pack_q5(const uint8_t *u, uint8_t *qh_at, uint8_t *qs) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((u[j] & 15) | ((u[j + 16] & 15) << 4));
        qh |= (uint32_t)((u[j] >> 4) & 1) << j;
        qh |= (uint32_t)((u[j + 16] >> 4) & 1) << (j + 16);
    }
    wr_u32(qh_at, qh);
}

/* Without an importance matrix, Q5_0 keeps the classic scale: the value of
 * largest magnitude on level -16, every value rounded half up against the
 * unrounded scale. Measured on Gemma 3 270M (docs/QUANTIZATION.md), this beat
 * the x^2-weighted least-squares fit on both the evaluation and the
 * calibration text (mean KL 0.0559 vs 0.0581, 0.0351 vs 0.0359), though its
 * rms error is 15 % higher; for Q4_0 the fit wins by far, so only Q5_0 does
 * this. With an importance matrix the weighted search runs as for every type. */
static float q5_0_classic(const float *x, uint8_t *u) {
    float amax = 0, xm = 0;
    for (int i = 0; i < QK; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), xm = x[i];
    float d = xm / -16.0f, id = d != 0 ? 1.0f / d : 0.0f;
    for (int i = 0; i < QK; i++) {
        float v = floorf(x[i] * id + 16.5f);   /* compared as float: a NaN lands on 0, never converted */
        u[i] = (uint8_t)(v >= 31.0f ? 31 : v >= 0.0f ? (int)v : 0);
    }
    return d;
}

static void q5_0_block(const float *x, const float *w, bool clip, uint8_t *b) {
    int8_t q[QK];
    uint8_t u[QK];
    if (!clip) {
        wr_u16(b, slm_f32_to_f16(q5_0_classic(x, u)));
        pack_q5(u, b + 2, b + 6);
        return;
    }
    float d = sym_block(x, w, clip, -16, 15, GRID_5BIT, q);
    for (int i = 0; i < QK; i++) u[i] = (uint8_t)(q[i] + 16);
    wr_u16(b, slm_f32_to_f16(d));
    pack_q5(u, b + 2, b + 6);
}

static void q5_1_block(const float *x, const float *w, bool clip, uint8_t *b) {
    uint8_t q[QK];
    float d, m;
    affine_block(x, w, clip, 31, GRID_5BIT, q, &d, &m);
    wr_u16(b, slm_f32_to_f16(d));
    wr_u16(b + 2, slm_f32_to_f16(m));
    pack_q5(q, b + 4, b + 8);
}

static void q8_0_block(const float *x, const float *w, bool clip, uint8_t *b) {
    int8_t q[QK];
    float d = sym_block(x, w, clip, -128, 127, GRID_8BIT, q);
    wr_u16(b, slm_f32_to_f16(d));
    memcpy(b + 2, q, QK);
}

typedef void (*block_fn)(const float *x, const float *w, bool clip, uint8_t *dst);

static block_fn block_fn_for(uint32_t type) {
    switch (type) {
    case SLM_T_Q4_0: return q4_0_block;
    case SLM_T_Q4_1: return q4_1_block;
    case SLM_T_Q5_0: return q5_0_block;
    case SLM_T_Q5_1: return q5_1_block;
    case SLM_T_Q8_0: return q8_0_block;
    case SLM_T_Q2_K: return slm_quantize_block_q2_k;
    case SLM_T_Q3_K: return slm_quantize_block_q3_k;
    case SLM_T_Q4_K: return slm_quantize_block_q4_k;
    case SLM_T_Q5_K: return slm_quantize_block_q5_k;
    case SLM_T_Q6_K: return slm_quantize_block_q6_k;
    default: return NULL;
    }
}

static bool quantize_row(uint32_t type, const float *x, const float *w, bool clip, void *dst, int64_t n) {
    uint8_t *p = dst;
    switch (type) {
    case SLM_T_F32:
        if (n <= 0) return false;
        memcpy(dst, x, (size_t)n * sizeof(float));
        return true;
    case SLM_T_F16:
        if (n <= 0) return false;
        for (int64_t i = 0; i < n; i++) wr_u16(p + 2 * i, slm_f32_to_f16(x[i]));
        return true;
    case SLM_T_BF16:
        if (n <= 0) return false;
        for (int64_t i = 0; i < n; i++) wr_u16(p + 2 * i, slm_f32_to_bf16(x[i]));
        return true;
    default: break;
    }
    block_fn f = block_fn_for(type);
    const slm_type_info *t = slm_type_get(type);
    if (!f || !t || n <= 0 || n % t->block_size) return false;
    int bs = t->block_size;
    for (int64_t i = 0; i < n / bs; i++) {
        const float *wb = w ? w + i * bs : NULL;
        if (wb) { /* a block whose weights are all zero is fitted unweighted */
            float s = 0;
            for (int j = 0; j < bs; j++) s += wb[j];
            if (!(s > 0)) wb = NULL;
        }
        f(x + i * bs, wb, clip, p + (size_t)i * t->block_bytes);
    }
    return true;
}

bool slm_quantize_row(uint32_t type, const float *x, const float *w, void *dst, int64_t n) {
    return quantize_row(type, x, w, false, dst, n);
}

bool slm_quantize_row_imp(uint32_t type, const float *x, const float *imp, float *w, void *dst, int64_t n) {
    const slm_type_info *t = slm_type_get(type);
    if (!imp || !w || !t || n <= 0) return false;
    if (t->block_size == QK)
        for (int64_t i = 0; i < n; i++) w[i] = imp[i] > 0 ? imp[i] : 0.0f;
    else
        slm_quant_weights(x, imp, w, n);
    return quantize_row(type, x, w, true, dst, n);
}
