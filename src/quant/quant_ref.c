/* Scalar reference dequantization of every type, and the reference dot
 * product (dequantize, then sum in double).
 *
 * Each formula does the same f32 operations in the same order as the `gguf`
 * Python package's numpy dequantizers (e.g. (d*sc)*q - dmin*m), so results
 * are bit-identical to that independent reference; tests hold us to it. */
#include "quant/quant_internal.h"

#include <stdlib.h>

static void deq_q4_0(const uint8_t *b, float *y) {
    float d = slm_rd_f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((qs[j] & 15) - 8);
        y[j + 16] = d * (float)((qs[j] >> 4) - 8);
    }
}

static void deq_q4_1(const uint8_t *b, float *y) {
    float d = slm_rd_f16(b), m = slm_rd_f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(qs[j] & 15) + m;
        y[j + 16] = d * (float)(qs[j] >> 4) + m;
    }
}

static void deq_q5_0(const uint8_t *b, float *y) {
    float d = slm_rd_f16(b);
    uint32_t qh = slm_rd_u32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 15) | (int)(((qh >> j) & 1) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

static void deq_q5_1(const uint8_t *b, float *y) {
    float d = slm_rd_f16(b), m = slm_rd_f16(b + 2);
    uint32_t qh = slm_rd_u32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 15) | (int)(((qh >> j) & 1) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        y[j] = d * (float)lo + m;
        y[j + 16] = d * (float)hi + m;
    }
}

static void deq_q8_0(const uint8_t *b, float *y) {
    float d = slm_rd_f16(b);
    const int8_t *qs = (const int8_t *)(b + 2);
    for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
}

static void deq_q8_1(const uint8_t *b, float *y) {
    float d = slm_rd_f16(b);
    const int8_t *qs = (const int8_t *)(b + 4);
    for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
}

/* Q2_K: element h*128 + s*32 + l (half h, shift s) has 2 bits at
 * qs[h*32 + l] >> 2s; sub-block (16 values) e/16 has scale and min. */
static void deq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *qs = b + Q2_K_QS;
    float d = slm_rd_f16(b + Q2_K_D), dmin = slm_rd_f16(b + Q2_K_D + 2);
    for (int e = 0; e < QK_K; e++) {
        int h = e >> 7, s = (e >> 5) & 3, l = e & 31;
        int q = (qs[h * 32 + l] >> (2 * s)) & 3;
        float dl = d * (float)(sc[e >> 4] & 15);
        float ml = dmin * (float)(sc[e >> 4] >> 4);
        y[e] = dl * (float)q - ml;
    }
}

/* Q3_K: 2 low bits as Q2_K; the hmask bit of element e is bit e/32 of
 * hmask[e%32]; q = low - (bit ? 0 : 4). */
static void deq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *qs = b + Q3_K_QS;
    int8_t sc[16];
    slm_k3_scales(b + Q3_K_SC, sc);
    float d = slm_rd_f16(b + Q3_K_D);
    for (int e = 0; e < QK_K; e++) {
        int h = e >> 7, s = (e >> 5) & 3, l = e & 31;
        int lo = (qs[h * 32 + l] >> (2 * s)) & 3;
        int hb = (hm[l] >> (e >> 5)) & 1;
        float dl = d * (float)sc[e >> 4];
        y[e] = dl * (float)(lo - (hb ? 0 : 4));
    }
}

/* Q4_K: chunk i (64 values) = low nibbles of qs[32i..32i+31] (sub-block 2i)
 * then their high nibbles (sub-block 2i+1). */
static void deq_q4_k(const uint8_t *b, float *y) {
    float d = slm_rd_f16(b), dmin = slm_rd_f16(b + 2);
    const uint8_t *s = b + Q4_K_SC, *qs = b + Q4_K_QS;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        slm_k4_scale_min(s, j, &sc, &m);
        float dl = d * (float)sc, ml = dmin * (float)m;
        const uint8_t *q = qs + 32 * (j >> 1);
        int sh = (j & 1) * 4;
        for (int l = 0; l < 32; l++) y[32 * j + l] = dl * (float)((q[l] >> sh) & 15) - ml;
    }
}

/* Q5_K: Q4_K plus bit j of qh[l] as the 5th bit of sub-block j. */
static void deq_q5_k(const uint8_t *b, float *y) {
    float d = slm_rd_f16(b), dmin = slm_rd_f16(b + 2);
    const uint8_t *s = b + Q5_K_SC, *qh = b + Q5_K_QH, *qs = b + Q5_K_QS;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        slm_k4_scale_min(s, j, &sc, &m);
        float dl = d * (float)sc, ml = dmin * (float)m;
        const uint8_t *q = qs + 32 * (j >> 1);
        int sh = (j & 1) * 4;
        for (int l = 0; l < 32; l++) {
            int v = ((q[l] >> sh) & 15) | (((qh[l] >> j) & 1) << 4);
            y[32 * j + l] = dl * (float)v - ml;
        }
    }
}

/* Q6_K: element e = h*128 + k*64 + m has low 4 bits (ql[h*64 + m] >> 4k) and,
 * writing e = h*128 + s*32 + l, high 2 bits (qh[h*32 + l] >> 2s); minus 32. */
static void deq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + Q6_K_QH;
    const int8_t *sc = (const int8_t *)(b + Q6_K_SC);
    float d = slm_rd_f16(b + Q6_K_D);
    for (int e = 0; e < QK_K; e++) {
        int h = e >> 7, k = (e >> 6) & 1, m = e & 63, s = (e >> 5) & 3, l = e & 31;
        int lo = (ql[h * 64 + m] >> (4 * k)) & 15;
        int hi = (qh[h * 32 + l] >> (2 * s)) & 3;
        float dl = d * (float)sc[e >> 4];
        y[e] = dl * (float)((lo | (hi << 4)) - 32);
    }
}

static void deq_q8_k(const uint8_t *b, float *y) {
    float d = slm_rd_f32(b);
    const int8_t *qs = (const int8_t *)(b + Q8_K_QS);
    for (int j = 0; j < QK_K; j++) y[j] = d * (float)qs[j];
}

typedef void (*deq_block_fn)(const uint8_t *b, float *y);

static deq_block_fn deq_fn(uint32_t type) {
    switch (type) {
    case SLM_T_Q4_0: return deq_q4_0;
    case SLM_T_Q4_1: return deq_q4_1;
    case SLM_T_Q5_0: return deq_q5_0;
    case SLM_T_Q5_1: return deq_q5_1;
    case SLM_T_Q8_0: return deq_q8_0;
    case SLM_T_Q8_1: return deq_q8_1;
    case SLM_T_Q2_K: return deq_q2_k;
    case SLM_T_Q3_K: return deq_q3_k;
    case SLM_T_Q4_K: return deq_q4_k;
    case SLM_T_Q5_K: return deq_q5_k;
    case SLM_T_Q6_K: return deq_q6_k;
    case SLM_T_Q8_K: return deq_q8_k;
    default: return NULL;
    }
}

void slm_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    switch (type) {
    case SLM_T_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    case SLM_T_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = slm_f16_to_f32(slm_rd_u16(p + 2 * i));
        return;
    case SLM_T_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = slm_bf16_to_f32(slm_rd_u16(p + 2 * i));
        return;
    default: break;
    }
    const slm_type_info *t = slm_type_get(type);
    deq_block_fn f = deq_fn(type);
    if (!t || !f || n % t->block_size != 0) abort(); /* caller bug */
    int64_t nb = n / t->block_size;
    for (int64_t i = 0; i < nb; i++) f(p + (size_t)i * t->block_bytes, dst + i * t->block_size);
}

double slm_dot_ref(uint32_t type, const void *row, const float *x, int64_t n) {
    const slm_type_info *t = slm_type_get(type);
    if (!t || n % t->block_size != 0) abort();
    float buf[QK_K];
    const uint8_t *p = row;
    double sum = 0;
    int64_t chunk = t->block_size == 1 ? QK_K : t->block_size;
    for (int64_t i = 0; i < n; i += chunk) {
        int64_t len = n - i < chunk ? n - i : chunk;
        size_t off = (size_t)(i / t->block_size) * t->block_bytes;
        slm_dequantize_row(type, p + off, buf, len);
        for (int64_t j = 0; j < len; j++) sum += (double)buf[j] * (double)x[i + j];
    }
    return sum;
}
