/* NEON kernels (baseline ARMv8-A Advanced SIMD, no dot-product extension) for
 * the types that matter most (Q8_0, Q4_0, Q5_0, Q4_K, Q6_K, F32, F16) and
 * for the activation quantizers; other types keep the scalar kernel.
 *
 * int8 products: vmull_s8 / vmlal_high_s8 (16 products into 8 int16, no
 * overflow for |a| <= 128, |b| <= 127) then vpadalq_s16 into int32 lanes.
 * Rounding in the quantizers is vcvtnq (nearest, ties to even), as the
 * scalar nearbyintf in the default mode. */
#include "quant/quant_internal.h"

#include <arm_neon.h>

static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    p = vmlal_high_s8(p, a, b);
    return vpadalq_s16(acc, p);
}

static inline float f16v(const uint8_t *p) { return slm_f16_to_f32(slm_rd_u16(p)); }

/* ---- float weights x f32 ---- */

static float dot_f32(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, vld1q_f32((const float *)(const void *)(w + 4 * i)), vld1q_f32((const float *)(const void *)(x + 4 * i)));
        a1 = vfmaq_f32(a1, vld1q_f32((const float *)(const void *)(w + 4 * i + 16)), vld1q_f32((const float *)(const void *)(x + 4 * i + 16)));
        a2 = vfmaq_f32(a2, vld1q_f32((const float *)(const void *)(w + 4 * i + 32)), vld1q_f32((const float *)(const void *)(x + 4 * i + 32)));
        a3 = vfmaq_f32(a3, vld1q_f32((const float *)(const void *)(w + 4 * i + 48)), vld1q_f32((const float *)(const void *)(x + 4 * i + 48)));
    }
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) s += slm_rd_f32(w + 4 * i) * slm_rd_f32(x + 4 * i);
    return s;
}

static float dot_f16(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x8_t h = vreinterpretq_u16_u8(vld1q_u8(w + 2 * i));
        float32x4_t lo = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
        float32x4_t hi = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h)));
        a0 = vfmaq_f32(a0, lo, vreinterpretq_f32_u8(vld1q_u8(x + 4 * i)));
        a1 = vfmaq_f32(a1, hi, vreinterpretq_f32_u8(vld1q_u8(x + 4 * i + 16)));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) s += f16v(w + 2 * i) * slm_rd_f32(x + 4 * i);
    return s;
}

/* ---- 32-blocks x Q8_0 ---- */

static float dot_q8_0(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float32x4_t acc = vdupq_n_f32(0);
    for (int64_t i = 0; i < n / QK; i++, w += Q8_0_BYTES, x += Q8_0_BYTES) {
        int32x4_t s = dot16(vdupq_n_s32(0), vld1q_s8((const int8_t *)(w + 2)), vld1q_s8((const int8_t *)(x + 2)));
        s = dot16(s, vld1q_s8((const int8_t *)(w + 18)), vld1q_s8((const int8_t *)(x + 18)));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), f16v(w) * f16v(x));
    }
    return vaddvq_f32(acc);
}

/* the 32 values of a Q4_0 / Q5_0 block as int8 (low half, high half) */
static inline void q4_vals(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi) {
    uint8x16_t q = vld1q_u8(qs);
    *lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(15)));
    *hi = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
}

static float dot_q4_0(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float32x4_t acc = vdupq_n_f32(0);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t i = 0; i < n / QK; i++, w += Q4_0_BYTES, x += Q8_0_BYTES) {
        int8x16_t lo, hi;
        q4_vals(w + 2, &lo, &hi);
        int32x4_t s = dot16(vdupq_n_s32(0), vsubq_s8(lo, eight), vld1q_s8((const int8_t *)(x + 2)));
        s = dot16(s, vsubq_s8(hi, eight), vld1q_s8((const int8_t *)(x + 18)));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), f16v(w) * f16v(x));
    }
    return vaddvq_f32(acc);
}

/* byte j = 16 if bit j of the 16-bit value is set */
static inline uint8x16_t bits16(uint32_t v) {
    static const uint8_t sel[16] = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };
    uint8x16_t b = vcombine_u8(vdup_n_u8((uint8_t)v), vdup_n_u8((uint8_t)(v >> 8)));
    return vandq_u8(vtstq_u8(b, vld1q_u8(sel)), vdupq_n_u8(16));
}

static float dot_q5_0(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float32x4_t acc = vdupq_n_f32(0);
    const int8x16_t sixteen = vdupq_n_s8(16);
    for (int64_t i = 0; i < n / QK; i++, w += Q5_0_BYTES, x += Q8_0_BYTES) {
        uint32_t qh = slm_rd_u32(w + 2);
        int8x16_t lo, hi;
        q4_vals(w + 6, &lo, &hi);
        lo = vsubq_s8(vorrq_s8(lo, vreinterpretq_s8_u8(bits16(qh))), sixteen);
        hi = vsubq_s8(vorrq_s8(hi, vreinterpretq_s8_u8(bits16(qh >> 16))), sixteen);
        int32x4_t s = dot16(vdupq_n_s32(0), lo, vld1q_s8((const int8_t *)(x + 2)));
        s = dot16(s, hi, vld1q_s8((const int8_t *)(x + 18)));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), f16v(w) * f16v(x));
    }
    return vaddvq_f32(acc);
}

/* ---- K-quants x Q8_K ---- */

static float dot_q4_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    for (int64_t b = 0; b < n / QK_K; b++, w += Q4_K_BYTES, x += Q8_K_BYTES) {
        const int8_t *qx = (const int8_t *)(x + Q8_K_QS);
        int isum = 0, summs = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            slm_k4_scale_min(w + Q4_K_SC, j, &sc, &m);
            summs += m * (slm_rd_i16(x + Q8_K_BSUMS + 4 * j) + slm_rd_i16(x + Q8_K_BSUMS + 4 * j + 2));
            const uint8_t *q = w + Q4_K_QS + 32 * (j >> 1);
            uint8x16_t a = vld1q_u8(q), c = vld1q_u8(q + 16);
            if (j & 1) { a = vshrq_n_u8(a, 4); c = vshrq_n_u8(c, 4); }
            else { a = vandq_u8(a, vdupq_n_u8(15)); c = vandq_u8(c, vdupq_n_u8(15)); }
            int32x4_t s = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(a), vld1q_s8(qx + 32 * j));
            s = dot16(s, vreinterpretq_s8_u8(c), vld1q_s8(qx + 32 * j + 16));
            isum += sc * vaddvq_s32(s);
        }
        float dx = slm_rd_f32(x);
        sum += dx * f16v(w) * (float)isum - dx * f16v(w + 2) * (float)summs;
    }
    return sum;
}

static float dot_q6_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    const uint8x16_t m15 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
    const int8x16_t k32 = vdupq_n_s8(32);
    for (int64_t b = 0; b < n / QK_K; b++, w += Q6_K_BYTES, x += Q8_K_BYTES) {
        const int8_t *sc = (const int8_t *)(w + Q6_K_SC);
        const int8_t *qx = (const int8_t *)(x + Q8_K_QS);
        int isum = 0;
        for (int h = 0; h < 2; h++) {
            for (int s = 0; s < 4; s++) {   /* elements 128h + 32s + l, l < 32 */
                for (int half = 0; half < 2; half++) {
                    int l0 = 16 * half, e0 = 128 * h + 32 * s + l0;
                    /* low 4 bits: ql[64h + (32s + l) % 64] >> 4 * ((32s + l) / 64) */
                    uint8x16_t ql = vld1q_u8(w + 64 * h + 32 * (s & 1) + l0);
                    ql = (s >> 1) ? vshrq_n_u8(ql, 4) : vandq_u8(ql, m15);
                    uint8x16_t qh = vandq_u8(vshlq_u8(vld1q_u8(w + Q6_K_QH + 32 * h + l0), vdupq_n_s8((int8_t)(-2 * s))), m3);
                    int8x16_t q = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(ql, vshlq_n_u8(qh, 4))), k32);
                    int32x4_t p = dot16(vdupq_n_s32(0), q, vld1q_s8(qx + e0));
                    isum += sc[e0 >> 4] * vaddvq_s32(p);
                }
            }
        }
        sum += slm_rd_f32(x) * f16v(w + Q6_K_D) * (float)isum;
    }
    return sum;
}

/* ---- activation quantization (same operations as quant_act.c) ---- */

static inline float amax_n(const float *x, int n) {
    float32x4_t m = vdupq_n_f32(0);
    for (int j = 0; j < n; j += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + j)));
    return vmaxvq_f32(m);
}

/* 16 floats * v, rounded to nearest even, clamped to +-127 */
static inline int8x16_t round16(const float *x, float v) {
    int32x4_t a = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x), v));
    int32x4_t b = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 4), v));
    int32x4_t c = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 8), v));
    int32x4_t d = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 12), v));
    int16x8_t ab = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b)), cd = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
    int8x16_t q = vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd));
    return vmaxq_s8(q, vdupq_n_s8(-127));
}

static void quant_q8_0(const float *x, void *dst, int64_t n) {
    uint8_t *y = dst;
    for (int64_t i = 0; i < n / QK; i++, x += QK, y += Q8_0_BYTES) {
        float amax = amax_n(x, QK);
        float d = amax / 127.f;
        float id = amax >= SLM_ACT_TINY ? 1.f / d : 0.f;
        uint16_t dh = slm_f32_to_f16(d);
        memcpy(y, &dh, 2);
        vst1q_s8((int8_t *)(y + 2), round16(x, id));
        vst1q_s8((int8_t *)(y + 18), round16(x + 16, id));
    }
}

static void quant_q8_k(const float *x, void *dst, int64_t n) {
    uint8_t *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, y += Q8_K_BYTES) {
        float amax = amax_n(x, QK_K);
        float iscale = amax >= SLM_ACT_TINY ? 127.f / amax : 0.f;
        float d = iscale != 0.f ? 1.f / iscale : 0.f;
        memcpy(y, &d, 4);
        for (int g = 0; g < 16; g++) {
            int8x16_t q = round16(x + 16 * g, iscale);
            vst1q_s8((int8_t *)(y + Q8_K_QS + 16 * g), q);
            int16_t s = (int16_t)vaddlvq_s8(q);
            memcpy(y + Q8_K_BSUMS + 2 * g, &s, 2);
        }
    }
}

void slm_kernels_fill_neon(slm_kernels *k) {
    k->name = "neon";
    k->dot[SLM_T_F32] = dot_f32;
    k->dot[SLM_T_F16] = dot_f16;
    k->dot[SLM_T_Q8_0] = dot_q8_0;
    k->dot[SLM_T_Q4_0] = dot_q4_0;
    k->dot[SLM_T_Q5_0] = dot_q5_0;
    k->dot[SLM_T_Q4_K] = dot_q4_k;
    k->dot[SLM_T_Q6_K] = dot_q6_k;
    k->quant_q8_0 = quant_q8_0;
    k->quant_q8_k = quant_q8_k;
}
