/* NEON kernels for every weight type (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0, Q2_K..Q6_K) and for the activation quantizers. Baseline ARMv8-A
 * Advanced SIMD; where the compiler targets the dot-product extension
 * (__ARM_FEATURE_DOTPROD, e.g. -march=armv8.2-a+dotprod) dot16 becomes one
 * SDOT, otherwise:
 *
 * int8 products: vmull_s8 / vmlal_high_s8 (16 products into 8 int16, no
 * overflow for |a| <= 128, |b| <= 127) then vpadalq_s16 into int32 lanes.
 * Either way the int32 lanes hold exact integer sums; only which products
 * land in which lane differs. Weights with an offset (Q4_0 -8, Q5_0 -16,
 * Q3_K -4, Q6_K -32) are made signed before the product; weights with a min
 * (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K) take it out through sums of x (Q8_K's bsums).
 * Rounding in the quantizers is vcvtnq (nearest, ties to even), as the
 * scalar nearbyintf in the default mode. */
#include "quant/quant_internal.h"

#include <arm_neon.h>

/* acc + the 16 products a[i] b[i], summed into the four int32 lanes */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    p = vmlal_high_s8(p, a, b);
    return vpadalq_s16(acc, p);
#endif
}

static inline float f16v(const uint8_t *p) { return slm_f16_to_f32(slm_rd_u16(p)); }

/* ---- float weights x f32 ---- */

/* 4 floats from any address (rows need not be 4-byte aligned) */
static inline float32x4_t ldf4(const uint8_t *p) { return vreinterpretq_f32_u8(vld1q_u8(p)); }

static float dot_f32(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, ldf4(w + 4 * i), ldf4(x + 4 * i));
        a1 = vfmaq_f32(a1, ldf4(w + 4 * i + 16), ldf4(x + 4 * i + 16));
        a2 = vfmaq_f32(a2, ldf4(w + 4 * i + 32), ldf4(x + 4 * i + 32));
        a3 = vfmaq_f32(a3, ldf4(w + 4 * i + 48), ldf4(x + 4 * i + 48));
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
        a0 = vfmaq_f32(a0, lo, ldf4(x + 4 * i));
        a1 = vfmaq_f32(a1, hi, ldf4(x + 4 * i + 16));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) s += f16v(w + 2 * i) * slm_rd_f32(x + 4 * i);
    return s;
}

/* bf16 is the top half of an f32: widen with a 16-bit left shift */
static inline float32x4_t bf16x4(uint16x4_t h) { return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); }

static float dot_bf16(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint16x8_t h0 = vreinterpretq_u16_u8(vld1q_u8(w + 2 * i)), h1 = vreinterpretq_u16_u8(vld1q_u8(w + 2 * i + 16));
        a0 = vfmaq_f32(a0, bf16x4(vget_low_u16(h0)), ldf4(x + 4 * i));
        a1 = vfmaq_f32(a1, bf16x4(vget_high_u16(h0)), ldf4(x + 4 * i + 16));
        a2 = vfmaq_f32(a2, bf16x4(vget_low_u16(h1)), ldf4(x + 4 * i + 32));
        a3 = vfmaq_f32(a3, bf16x4(vget_high_u16(h1)), ldf4(x + 4 * i + 48));
    }
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) s += slm_bf16_to_f32(slm_rd_u16(w + 2 * i)) * slm_rd_f32(x + 4 * i);
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

/* sum of the 32 int8 of a Q8_0 block, in the four int32 lanes */
static inline int32x4_t xsum32(int8x16_t x0, int8x16_t x1) {
    return vpaddlq_s16(vaddq_s16(vpaddlq_s8(x0), vpaddlq_s8(x1)));
}

/* Q4_1 / Q5_1: x = d q + m, so the block is d dx sum(q x) + m dx sum(x) */
static inline float dot_min32(const uint8_t *w, const uint8_t *x, int64_t nb, bool five) {
    const size_t bytes = five ? Q5_1_BYTES : Q4_1_BYTES;
    float32x4_t acc = vdupq_n_f32(0), accm = vdupq_n_f32(0);
    for (int64_t i = 0; i < nb; i++, w += bytes, x += Q8_0_BYTES) {
        int8x16_t lo, hi;
        q4_vals(w + (five ? 8 : 4), &lo, &hi);
        if (five) {
            uint32_t qh = slm_rd_u32(w + 4);
            lo = vorrq_s8(lo, vreinterpretq_s8_u8(bits16(qh)));
            hi = vorrq_s8(hi, vreinterpretq_s8_u8(bits16(qh >> 16)));
        }
        int8x16_t x0 = vld1q_s8((const int8_t *)(x + 2)), x1 = vld1q_s8((const int8_t *)(x + 18));
        int32x4_t s = dot16(dot16(vdupq_n_s32(0), lo, x0), hi, x1);
        float dx = f16v(x);
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), f16v(w) * dx);
        accm = vfmaq_n_f32(accm, vcvtq_f32_s32(xsum32(x0, x1)), f16v(w + 2) * dx);
    }
    return vaddvq_f32(vaddq_f32(acc, accm));
}

static float dot_q4_1(const void *row, const void *xq, int64_t n) { return dot_min32(row, xq, n / QK, false); }
static float dot_q5_1(const void *row, const void *xq, int64_t n) { return dot_min32(row, xq, n / QK, true); }

/* ---- K-quants x Q8_K ---- */

/* the 16 int16 bsums of a Q8_K block */
static inline void load_bsums(const uint8_t *x, int16x8_t *b0, int16x8_t *b1) {
    *b0 = vreinterpretq_s16_u8(vld1q_u8(x + Q8_K_BSUMS));
    *b1 = vreinterpretq_s16_u8(vld1q_u8(x + Q8_K_BSUMS + 16));
}

/* Q4_K / Q5_K: the eight 6-bit scales (sc) and mins (m) as bytes 0-7, the
 * same values as slm_k4_scale_min, four at a time in 32-bit words */
static inline void k4_unpack(const uint8_t *s, uint8_t sc[8], uint8_t m[8]) {
    uint32_t u0 = slm_rd_u32(s), u1 = slm_rd_u32(s + 4), u2 = slm_rd_u32(s + 8);
    uint32_t v[4] = { u0 & 0x3f3f3f3fu, (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u),
                      u1 & 0x3f3f3f3fu, ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u) };
    uint8_t b[16];
    memcpy(b, v, 16); /* little-endian: byte k of word i is value 4i + k */
    memcpy(sc, b, 8);
    memcpy(m, b + 8, 8);
}

/* Sub-block j (32 values) is nibble j & 1 of qs[32 (j / 2) + l]; Q5_K adds
 * bit j of qh[l] as 16. */
static inline float k45_dot(const uint8_t *w, const uint8_t *x, int64_t nb, bool five) {
    const size_t bytes = five ? Q5_K_BYTES : Q4_K_BYTES;
    const int qs_off = five ? Q5_K_QS : Q4_K_QS;
    const uint8x16_t m15 = vdupq_n_u8(15), k16 = vdupq_n_u8(16);
    float32x4_t acc = vdupq_n_f32(0);
    float summ = 0.f;
    for (int64_t b = 0; b < nb; b++, w += bytes, x += Q8_K_BYTES) {
        float dx = slm_rd_f32(x);
        uint8_t sc[8], m[8];
        k4_unpack(w + 4, sc, m);
        /* mins: sum_j m[j] (bsums[2j] + bsums[2j + 1]) */
        int16x8_t b0, b1;
        load_bsums(x, &b0, &b1);
        int16x8_t bs = vpaddq_s16(b0, b1), mv = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(m)));
        int32x4_t ms = vmlal_high_s16(vmull_s16(vget_low_s16(bs), vget_low_s16(mv)), bs, mv);
        summ += f16v(w + 2) * dx * (float)vaddvq_s32(ms);
        uint8x16_t qh0 = vdupq_n_u8(0), qh1 = qh0;
        if (five) { qh0 = vld1q_u8(w + Q5_K_QH); qh1 = vld1q_u8(w + Q5_K_QH + 16); }
        const int8_t *qx = (const int8_t *)(x + Q8_K_QS);
        int32x4_t isum = vdupq_n_s32(0);
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const uint8_t *q = w + qs_off + 32 * (j >> 1);
            uint8x16_t a = vld1q_u8(q), c = vld1q_u8(q + 16);
            if (j & 1) { a = vshrq_n_u8(a, 4); c = vshrq_n_u8(c, 4); }
            else { a = vandq_u8(a, m15); c = vandq_u8(c, m15); }
            if (five) {
                uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << j));
                a = vorrq_u8(a, vandq_u8(vtstq_u8(qh0, bit), k16));
                c = vorrq_u8(c, vandq_u8(vtstq_u8(qh1, bit), k16));
            }
            int32x4_t p = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(a), vld1q_s8(qx + 32 * j));
            p = dot16(p, vreinterpretq_s8_u8(c), vld1q_s8(qx + 32 * j + 16));
            isum = vmlaq_n_s32(isum, p, sc[j]);
        }
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(isum), f16v(w) * dx);
    }
    return vaddvq_f32(acc) - summ;
}

static float dot_q4_k(const void *row, const void *xq, int64_t n) { return k45_dot(row, xq, n / QK_K, false); }
static float dot_q5_k(const void *row, const void *xq, int64_t n) { return k45_dot(row, xq, n / QK_K, true); }

/* Q2_K: element 128h + 32s + l is (qs[32h + l] >> 2s) & 3; group e / 16 has
 * scale = low nibble, min = high nibble of scales[e / 16] */
static float dot_q2_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    const uint8x16_t m3 = vdupq_n_u8(3);
    float32x4_t acc = vdupq_n_f32(0);
    float summ = 0.f;
    for (int64_t b = 0; b < n / QK_K; b++, w += Q2_K_BYTES, x += Q8_K_BYTES) {
        float dx = slm_rd_f32(x);
        /* mins: sum_g (scales[g] >> 4) bsums[g] */
        uint8x16_t mn = vshrq_n_u8(vld1q_u8(w), 4);
        int16x8_t b0, b1;
        load_bsums(x, &b0, &b1);
        int16x8_t m0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mn))), m1 = vreinterpretq_s16_u16(vmovl_high_u8(mn));
        int32x4_t ms = vmlal_high_s16(vmull_s16(vget_low_s16(b0), vget_low_s16(m0)), b0, m0);
        ms = vmlal_high_s16(vmlal_s16(ms, vget_low_s16(b1), vget_low_s16(m1)), b1, m1);
        summ += f16v(w + Q2_K_D + 2) * dx * (float)vaddvq_s32(ms);
        const int8_t *qx = (const int8_t *)(x + Q8_K_QS);
        int32x4_t isum = vdupq_n_s32(0);
        #pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            uint8x16_t q0 = vld1q_u8(w + Q2_K_QS + 32 * h), q1 = vld1q_u8(w + Q2_K_QS + 32 * h + 16);
            #pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                int8x16_t sh = vdupq_n_s8((int8_t)(-2 * s));
                int8x16_t u0 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(q0, sh), m3));
                int8x16_t u1 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(q1, sh), m3));
                const int8_t *xs = qx + 128 * h + 32 * s;
                int g = 8 * h + 2 * s;
                isum = vmlaq_n_s32(isum, dot16(vdupq_n_s32(0), u0, vld1q_s8(xs)), w[g] & 15);
                isum = vmlaq_n_s32(isum, dot16(vdupq_n_s32(0), u1, vld1q_s8(xs + 16)), w[g + 1] & 15);
            }
        }
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(isum), f16v(w + Q2_K_D) * dx);
    }
    return vaddvq_f32(acc) - summ;
}

/* Q3_K: element 128h + 32s + l is ((qs[32h + l] >> 2s) & 3) - 4, plus 4 when
 * bit 4h + s of hmask[l] is set: low bits | (hmask bit << 2), minus 4 */
static float dot_q3_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    const uint8x16_t m3 = vdupq_n_u8(3), four = vdupq_n_u8(4);
    float32x4_t acc = vdupq_n_f32(0);
    for (int64_t b = 0; b < n / QK_K; b++, w += Q3_K_BYTES, x += Q8_K_BYTES) {
        int8_t sc[16];
        slm_k3_scales(w + Q3_K_SC, sc);
        uint8x16_t hm0 = vld1q_u8(w), hm1 = vld1q_u8(w + 16);
        const int8_t *qx = (const int8_t *)(x + Q8_K_QS);
        int32x4_t isum = vdupq_n_s32(0);
        #pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            uint8x16_t q0 = vld1q_u8(w + Q3_K_QS + 32 * h), q1 = vld1q_u8(w + Q3_K_QS + 32 * h + 16);
            #pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                int8x16_t sh = vdupq_n_s8((int8_t)(-2 * s));
                uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << (4 * h + s)));
                uint8x16_t u0 = vorrq_u8(vandq_u8(vshlq_u8(q0, sh), m3), vandq_u8(vtstq_u8(hm0, bit), four));
                uint8x16_t u1 = vorrq_u8(vandq_u8(vshlq_u8(q1, sh), m3), vandq_u8(vtstq_u8(hm1, bit), four));
                int8x16_t v0 = vsubq_s8(vreinterpretq_s8_u8(u0), vreinterpretq_s8_u8(four));
                int8x16_t v1 = vsubq_s8(vreinterpretq_s8_u8(u1), vreinterpretq_s8_u8(four));
                const int8_t *xs = qx + 128 * h + 32 * s;
                int g = 8 * h + 2 * s;
                isum = vmlaq_n_s32(isum, dot16(vdupq_n_s32(0), v0, vld1q_s8(xs)), sc[g]);
                isum = vmlaq_n_s32(isum, dot16(vdupq_n_s32(0), v1, vld1q_s8(xs + 16)), sc[g + 1]);
            }
        }
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(isum), f16v(w + Q3_K_D) * slm_rd_f32(x));
    }
    return vaddvq_f32(acc);
}

static float dot_q6_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    float sum = 0.f;
    const uint8x16_t m15 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
    const int8x16_t k32 = vdupq_n_s8(32);
    for (int64_t b = 0; b < n / QK_K; b++, w += Q6_K_BYTES, x += Q8_K_BYTES) {
        const int8_t *sc = (const int8_t *)(w + Q6_K_SC);
        const int8_t *qx = (const int8_t *)(x + Q8_K_QS);
        int32x4_t isum = vdupq_n_s32(0);
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
                    isum = vmlaq_n_s32(isum, p, sc[e0 >> 4]);
                }
            }
        }
        sum += slm_rd_f32(x) * f16v(w + Q6_K_D) * (float)vaddvq_s32(isum);
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
    k->dot[SLM_T_BF16] = dot_bf16;
    k->dot[SLM_T_Q8_0] = dot_q8_0;
    k->dot[SLM_T_Q4_0] = dot_q4_0;
    k->dot[SLM_T_Q4_1] = dot_q4_1;
    k->dot[SLM_T_Q5_0] = dot_q5_0;
    k->dot[SLM_T_Q5_1] = dot_q5_1;
    k->dot[SLM_T_Q2_K] = dot_q2_k;
    k->dot[SLM_T_Q3_K] = dot_q3_k;
    k->dot[SLM_T_Q4_K] = dot_q4_k;
    k->dot[SLM_T_Q5_K] = dot_q5_k;
    k->dot[SLM_T_Q6_K] = dot_q6_k;
    k->quant_q8_0 = quant_q8_0;
    k->quant_q8_k = quant_q8_k;
}
