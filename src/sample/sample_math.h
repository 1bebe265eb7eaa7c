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
    /* fn = round(x / ln 2) in [-126, 0]: adding and removing 1.5 * 2^23 rounds
     * to an integer (ties to even) in IEEE arithmetic, without a libm call */
    float fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
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

/* The same function on 4 lanes (16-byte vectors: SSE2 / NEON) (GCC/clang vector extensions; plain scalar
 * code elsewhere). Every lane performs exactly the scalar operations, so the
 * results are bit-identical to slm_exp_neg. */
#if defined(__GNUC__)
typedef float slm_v4f __attribute__((vector_size(16)));
typedef int32_t slm_v4i __attribute__((vector_size(16)));

static inline slm_v4f slm_exp_neg_v4(slm_v4f d) {
    slm_v4i ok = d < 87.0f;                 /* -1 where the result is not 0 (false for NaN) */
    d = (slm_v4f)((slm_v4i)d & ok);
    slm_v4f x = -d;
    slm_v4f fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    slm_v4i n = __builtin_convertvector(fn, slm_v4i);
    slm_v4f r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    slm_v4f z = r * r;
    slm_v4f y = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                  + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    slm_v4f scale = (slm_v4f)((n + 127) << 23);
    return (slm_v4f)((slm_v4i)(y * scale) & ok);
}
#endif

/* w[i] = slm_exp_neg((m - l[i]) * inv_t) for i < n. */
static inline void slm_exp_neg_scaled(const float *l, int n, float m, float inv_t, float *w) {
    int i = 0;
#if defined(__GNUC__)
    for (; i + 4 <= n; i += 4) {
        slm_v4f v;
        memcpy(&v, l + i, sizeof v);
        v = slm_exp_neg_v4((m - v) * inv_t);
        memcpy(w + i, &v, sizeof v);
    }
#endif
    for (; i < n; i++) w[i] = slm_exp_neg((m - l[i]) * inv_t);
}

#endif
