/* exp(-d) for the sampler, written out so that the sampled sequence does not
 * depend on the platform's libm: only IEEE single-precision +, -, * and exact
 * bit operations, evaluated in a fixed order (the library is built as ISO C,
 * where GCC does not contract a*b+c into an FMA; clang is told so below).
 * Cephes' expf reduction and polynomial: relative error below 2e-7 (checked
 * against exp() in tests/test_sampler.c). */
#ifndef SLM_SAMPLE_MATH_H
#define SLM_SAMPLE_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* e^-d for d >= 0; +inf (and NaN) give 0, as does d >= 87 (e^-87 < 2e-38). */
static inline float slm_exp_neg(float d) {
    if (!(d < 87.0f)) return 0.0f;
    float x = -d;
    float fn = floorf(x * 1.44269504088896341f + 0.5f); /* round(x / ln 2), in [-126, 0] */
    int n = (int)fn;
    float r = x - fn * 0.693359375f;  /* ln 2 split in two (Cody-Waite) */
    r = r - fn * -2.12194440e-4f;
    float z = r * r;
    float y = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    uint32_t bits = (uint32_t)(n + 127) << 23; /* 2^n, n >= -126: a normal float */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

#endif
