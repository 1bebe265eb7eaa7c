/* The weight types' activation partners and the half-precision conversions
 * (the type table itself is src/base/tensor_type.c). Conversions are written
 * with integer arithmetic so that they do not depend on the FPU's rounding
 * mode or on F16C being present. */
#include "quant/quant_internal.h"

uint32_t slm_vec_type(uint32_t weight_type) {
    switch (weight_type) {
    case SLM_T_F32: case SLM_T_F16: case SLM_T_BF16:
        return SLM_T_F32;
    case SLM_T_Q4_0: case SLM_T_Q4_1: case SLM_T_Q5_0: case SLM_T_Q5_1: case SLM_T_Q8_0:
        return SLM_T_Q8_0;
    case SLM_T_Q2_K: case SLM_T_Q3_K: case SLM_T_Q4_K: case SLM_T_Q5_K: case SLM_T_Q6_K:
        return SLM_T_Q8_K;
    default:
        return UINT32_MAX;
    }
}

/* ---- half / bfloat16 ---- */

static inline float bits_to_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t f32_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

float slm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in f32 */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31) return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

/* Round to nearest, ties to even; overflow to inf; NaN stays NaN (quiet,
 * top payload bits kept). */
uint16_t slm_f32_to_f16(float f) {
    uint32_t x = f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* >= 65520 rounds to inf */
    if (ax < 0x38800000u) {
        /* below the smallest normal half (2^-14): a subnormal half or zero.
         * value / 2^-24 = mant * 2^(e - 126) */
        uint32_t e = ax >> 23;
        if (e < 102) return sign; /* < 2^-25: rounds to zero */
        uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t r = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r); /* r == 0x400 is the smallest normal: correct */
    }
    uint32_t r = (ax - 0x38000000u) >> 13; /* rebias 127 -> 15 */
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++; /* carry may bump the exponent: fine */
    return (uint16_t)(sign | r);
}

float slm_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

uint16_t slm_f32_to_bf16(float f) {
    uint32_t x = f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}
