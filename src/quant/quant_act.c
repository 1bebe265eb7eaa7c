/* Scalar activation quantization: f32 -> Q8_0 / Q8_K / Q8_1 blocks.
 *
 * Per block: amax = max |x|, d = amax / 127, q = round_half_even(x / d) via
 * x * (1/d) (Q8_0, Q8_1) or x * (127/amax) (Q8_K); a block with amax below
 * SLM_ACT_TINY becomes zeros. The SIMD versions do the
 * same operations in the same order and round with the same mode (the FPU's
 * default, nearest-even), so they produce identical bytes; tests check it. */
#include "quant/quant_internal.h"

#include <math.h>

static inline int8_t q8_round(float v) {
    float r = nearbyintf(v); /* default rounding mode: nearest, ties to even */
    if (r > 127.f) r = 127.f;
    if (r < -127.f) r = -127.f;
    if (r != r) r = 0.f; /* NaN input: keep the byte defined */
    return (int8_t)r;
}

void slm_quantize_q8_0_scalar(const float *x, void *dst, int64_t n) {
    uint8_t *y = dst;
    for (int64_t i = 0; i < n / QK; i++, x += QK, y += Q8_0_BYTES) {
        float amax = 0.f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f;
        float id = amax >= SLM_ACT_TINY ? 1.f / d : 0.f;
        uint16_t dh = slm_f32_to_f16(d);
        memcpy(y, &dh, 2);
        for (int j = 0; j < QK; j++) y[2 + j] = (uint8_t)q8_round(x[j] * id);
    }
}

void slm_quantize_q8_1_scalar(const float *x, void *dst, int64_t n) {
    uint8_t *y = dst;
    for (int64_t i = 0; i < n / QK; i++, x += QK, y += Q8_1_BYTES) {
        float amax = 0.f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f;
        float id = amax >= SLM_ACT_TINY ? 1.f / d : 0.f;
        int sum = 0;
        for (int j = 0; j < QK; j++) {
            int8_t q = q8_round(x[j] * id);
            y[4 + j] = (uint8_t)q;
            sum += q;
        }
        uint16_t dh = slm_f32_to_f16(d), sh = slm_f32_to_f16(d * (float)sum);
        memcpy(y, &dh, 2);
        memcpy(y + 2, &sh, 2);
    }
}

void slm_quantize_q8_k_scalar(const float *x, void *dst, int64_t n) {
    uint8_t *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, y += Q8_K_BYTES) {
        float amax = 0.f;
        for (int j = 0; j < QK_K; j++) amax = fmaxf(amax, fabsf(x[j]));
        float iscale = amax >= SLM_ACT_TINY ? 127.f / amax : 0.f;
        float d = iscale != 0.f ? 1.f / iscale : 0.f;
        memcpy(y, &d, 4);
        int8_t *qs = (int8_t *)(y + Q8_K_QS);
        for (int j = 0; j < QK_K; j++) qs[j] = q8_round(x[j] * iscale);
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += qs[16 * g + j];
            int16_t s16 = (int16_t)s;
            memcpy(y + Q8_K_BSUMS + 2 * g, &s16, 2);
        }
    }
}
