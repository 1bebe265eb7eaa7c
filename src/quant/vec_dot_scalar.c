/* Portable scalar dot products of every weight type against its vec_type
 * (F32 for the float types, Q8_0 for the 32-blocks, Q8_K for the K-quants).
 * Integer sums per block are exact; the per-block scales are applied in f32.
 * These are the ground truth of the SIMD kernels and the fallback where no
 * SIMD kernel exists. */
#include "quant/quant_internal.h"

/* ---- float weights x f32 activations ---- */

static float dot_f32(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float s[8] = { 0 };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += slm_rd_f32(w + 4 * (i + k)) * slm_rd_f32(x + 4 * (i + k));
    for (; i < n; i++) s[0] += slm_rd_f32(w + 4 * i) * slm_rd_f32(x + 4 * i);
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static float dot_f16(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float s[8] = { 0 };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += slm_rd_f16(w + 2 * (i + k)) * slm_rd_f32(x + 4 * (i + k));
    for (; i < n; i++) s[0] += slm_rd_f16(w + 2 * i) * slm_rd_f32(x + 4 * i);
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static float dot_bf16(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float s[8] = { 0 };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += slm_bf16_to_f32(slm_rd_u16(w + 2 * (i + k))) * slm_rd_f32(x + 4 * (i + k));
    for (; i < n; i++) s[0] += slm_bf16_to_f32(slm_rd_u16(w + 2 * i)) * slm_rd_f32(x + 4 * i);
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* ---- 32-blocks x Q8_0 ---- */

static float dot_q8_0(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK; i++, w += Q8_0_BYTES, x += Q8_0_BYTES) {
        const int8_t *qw = (const int8_t *)(w + 2), *qx = (const int8_t *)(x + 2);
        int isum = 0;
        for (int j = 0; j < QK; j++) isum += qw[j] * qx[j];
        sum += slm_rd_f16(w) * slm_rd_f16(x) * (float)isum;
    }
    return sum;
}

static float dot_q4_0(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK; i++, w += Q4_0_BYTES, x += Q8_0_BYTES) {
        const uint8_t *qs = w + 2;
        const int8_t *qx = (const int8_t *)(x + 2);
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += ((qs[j] & 15) - 8) * qx[j] + ((qs[j] >> 4) - 8) * qx[j + 16];
        sum += slm_rd_f16(w) * slm_rd_f16(x) * (float)isum;
    }
    return sum;
}

static float dot_q4_1(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK; i++, w += Q4_1_BYTES, x += Q8_0_BYTES) {
        const uint8_t *qs = w + 4;
        const int8_t *qx = (const int8_t *)(x + 2);
        int isum = 0, xsum = 0;
        for (int j = 0; j < 16; j++) {
            isum += (qs[j] & 15) * qx[j] + (qs[j] >> 4) * qx[j + 16];
            xsum += qx[j] + qx[j + 16];
        }
        float dx = slm_rd_f16(x);
        sum += slm_rd_f16(w) * dx * (float)isum + slm_rd_f16(w + 2) * dx * (float)xsum;
    }
    return sum;
}

static float dot_q5_0(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK; i++, w += Q5_0_BYTES, x += Q8_0_BYTES) {
        uint32_t qh = slm_rd_u32(w + 2);
        const uint8_t *qs = w + 6;
        const int8_t *qx = (const int8_t *)(x + 2);
        int isum = 0;
        for (int j = 0; j < 16; j++) {
            int lo = ((qs[j] & 15) | (int)(((qh >> j) & 1) << 4)) - 16;
            int hi = ((qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - 16;
            isum += lo * qx[j] + hi * qx[j + 16];
        }
        sum += slm_rd_f16(w) * slm_rd_f16(x) * (float)isum;
    }
    return sum;
}

static float dot_q5_1(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK; i++, w += Q5_1_BYTES, x += Q8_0_BYTES) {
        uint32_t qh = slm_rd_u32(w + 4);
        const uint8_t *qs = w + 8;
        const int8_t *qx = (const int8_t *)(x + 2);
        int isum = 0, xsum = 0;
        for (int j = 0; j < 16; j++) {
            int lo = (qs[j] & 15) | (int)(((qh >> j) & 1) << 4);
            int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            isum += lo * qx[j] + hi * qx[j + 16];
            xsum += qx[j] + qx[j + 16];
        }
        float dx = slm_rd_f16(x);
        sum += slm_rd_f16(w) * dx * (float)isum + slm_rd_f16(w + 2) * dx * (float)xsum;
    }
    return sum;
}

/* ---- K-quants x Q8_K ---- */

static float dot_q2_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++, w += Q2_K_BYTES, x += Q8_K_BYTES) {
        const uint8_t *sc = w, *qs = w + Q2_K_QS;
        const int8_t *qx = (const int8_t *)(x + Q8_K_QS);
        int summs = 0, isum = 0;
        for (int j = 0; j < 16; j++) summs += (sc[j] >> 4) * slm_rd_i16(x + Q8_K_BSUMS + 2 * j);
        for (int h = 0; h < 2; h++)
            for (int s = 0; s < 4; s++)
                for (int half = 0; half < 2; half++) {
                    int e0 = h * 128 + s * 32 + half * 16, part = 0;
                    for (int l = half * 16; l < half * 16 + 16; l++)
                        part += ((qs[h * 32 + l] >> (2 * s)) & 3) * qx[h * 128 + s * 32 + l];
                    isum += (sc[e0 >> 4] & 15) * part;
                }
        float dx = slm_rd_f32(x);
        sum += dx * slm_rd_f16(w + Q2_K_D) * (float)isum - dx * slm_rd_f16(w + Q2_K_D + 2) * (float)summs;
    }
    return sum;
}

static float dot_q3_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++, w += Q3_K_BYTES, x += Q8_K_BYTES) {
        const uint8_t *hm = w, *qs = w + Q3_K_QS;
        const int8_t *qx = (const int8_t *)(x + Q8_K_QS);
        int8_t sc[16];
        slm_k3_scales(w + Q3_K_SC, sc);
        int isum = 0;
        for (int h = 0; h < 2; h++)
            for (int s = 0; s < 4; s++)
                for (int half = 0; half < 2; half++) {
                    int e0 = h * 128 + s * 32 + half * 16, part = 0;
                    int hbit = h * 4 + s; /* = e / 32 */
                    for (int l = half * 16; l < half * 16 + 16; l++) {
                        int q = ((qs[h * 32 + l] >> (2 * s)) & 3) - (((hm[l] >> hbit) & 1) ? 0 : 4);
                        part += q * qx[h * 128 + s * 32 + l];
                    }
                    isum += sc[e0 >> 4] * part;
                }
        sum += slm_rd_f32(x) * slm_rd_f16(w + Q3_K_D) * (float)isum;
    }
    return sum;
}

static float dot_q4_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++, w += Q4_K_BYTES, x += Q8_K_BYTES) {
        const uint8_t *qs = w + Q4_K_QS;
        const int8_t *qx = (const int8_t *)(x + Q8_K_QS);
        int isum = 0, summs = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            slm_k4_scale_min(w + Q4_K_SC, j, &sc, &m);
            const uint8_t *q = qs + 32 * (j >> 1);
            int sh = (j & 1) * 4, part = 0;
            for (int l = 0; l < 32; l++) part += ((q[l] >> sh) & 15) * qx[32 * j + l];
            isum += sc * part;
            summs += m * (slm_rd_i16(x + Q8_K_BSUMS + 4 * j) + slm_rd_i16(x + Q8_K_BSUMS + 4 * j + 2));
        }
        float dx = slm_rd_f32(x);
        sum += dx * slm_rd_f16(w) * (float)isum - dx * slm_rd_f16(w + 2) * (float)summs;
    }
    return sum;
}

static float dot_q5_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++, w += Q5_K_BYTES, x += Q8_K_BYTES) {
        const uint8_t *qh = w + Q5_K_QH, *qs = w + Q5_K_QS;
        const int8_t *qx = (const int8_t *)(x + Q8_K_QS);
        int isum = 0, summs = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            slm_k4_scale_min(w + Q5_K_SC, j, &sc, &m);
            const uint8_t *q = qs + 32 * (j >> 1);
            int sh = (j & 1) * 4, part = 0;
            for (int l = 0; l < 32; l++)
                part += (((q[l] >> sh) & 15) | (((qh[l] >> j) & 1) << 4)) * qx[32 * j + l];
            isum += sc * part;
            summs += m * (slm_rd_i16(x + Q8_K_BSUMS + 4 * j) + slm_rd_i16(x + Q8_K_BSUMS + 4 * j + 2));
        }
        float dx = slm_rd_f32(x);
        sum += dx * slm_rd_f16(w) * (float)isum - dx * slm_rd_f16(w + 2) * (float)summs;
    }
    return sum;
}

static float dot_q6_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++, w += Q6_K_BYTES, x += Q8_K_BYTES) {
        const uint8_t *ql = w, *qh = w + Q6_K_QH;
        const int8_t *sc = (const int8_t *)(w + Q6_K_SC);
        const int8_t *qx = (const int8_t *)(x + Q8_K_QS);
        int isum = 0;
        for (int g = 0; g < 16; g++) { /* 16 values sharing scale sc[g] */
            int part = 0;
            for (int e = 16 * g; e < 16 * g + 16; e++) {
                int h = e >> 7, k = (e >> 6) & 1, m = e & 63, s = (e >> 5) & 3, l = e & 31;
                int q = (((ql[h * 64 + m] >> (4 * k)) & 15) | (((qh[h * 32 + l] >> (2 * s)) & 3) << 4)) - 32;
                part += q * qx[e];
            }
            isum += sc[g] * part;
        }
        sum += slm_rd_f32(x) * slm_rd_f16(w + Q6_K_D) * (float)isum;
    }
    return sum;
}

void slm_kernels_fill_scalar(slm_kernels *k) {
    memset(k, 0, sizeof *k);
    k->name = "scalar";
    k->dot[SLM_T_F32] = dot_f32;
    k->dot[SLM_T_F16] = dot_f16;
    k->dot[SLM_T_BF16] = dot_bf16;
    k->dot[SLM_T_Q4_0] = dot_q4_0;
    k->dot[SLM_T_Q4_1] = dot_q4_1;
    k->dot[SLM_T_Q5_0] = dot_q5_0;
    k->dot[SLM_T_Q5_1] = dot_q5_1;
    k->dot[SLM_T_Q8_0] = dot_q8_0;
    k->dot[SLM_T_Q2_K] = dot_q2_k;
    k->dot[SLM_T_Q3_K] = dot_q3_k;
    k->dot[SLM_T_Q4_K] = dot_q4_k;
    k->dot[SLM_T_Q5_K] = dot_q5_k;
    k->dot[SLM_T_Q6_K] = dot_q6_k;
    k->quant_q8_0 = slm_quantize_q8_0_scalar;
    k->quant_q8_k = slm_quantize_q8_k_scalar;
}
