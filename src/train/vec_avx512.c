/* AVX-512 softmax pieces for the training ops (see vec.h). */
#include "train/vec.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <math.h>

#include "ops/exp_avx512.h"

float tr_vmax_avx512(const float *x, int n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    if (i < n) m = _mm512_mask_max_ps(m, (__mmask16)((1u << (n - i)) - 1), m, _mm512_maskz_loadu_ps((__mmask16)((1u << (n - i)) - 1), x + i));
    return _mm512_reduce_max_ps(m);
}

float tr_vexp_sum_avx512(float *x, int n, float m) {
    __m512 vm = _mm512_set1_ps(m), lo = _mm512_set1_ps(-87.0f), s = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = slm_exp_in_range_avx512(_mm512_max_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), lo));
        _mm512_storeu_ps(x + i, e);
        s = _mm512_add_ps(s, e);
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 e = slm_exp_in_range_avx512(_mm512_max_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm), lo));
        _mm512_mask_storeu_ps(x + i, k, e);
        s = _mm512_mask_add_ps(s, k, s, e);
    }
    return _mm512_reduce_add_ps(s);
}
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
/* ---- gated activations ------------------------------------------------------ */

static inline __m512 exp_clamped(__m512 x) {
    return slm_exp_in_range_avx512(_mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(87.0f)));
}

/* tanh(k (x + c x³)) = 1 - 2 / (e^(2 inner) + 1) */
static inline __m512 gelu_tanh_inner(__m512 x) {
    __m512 inner = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f),
                                 _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), x), _mm512_mul_ps(x, x), x));
    __m512 e = exp_clamped(_mm512_add_ps(inner, inner));
    return _mm512_sub_ps(_mm512_set1_ps(1.0f), _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
}

/* 16 elements a step, the last ones masked */
#define TAIL_LOOP(n, ...)                                                          \
    for (size_t i = 0; i < (n); i += 16) {                                         \
        __mmask16 m = (n) - i >= 16 ? 0xFFFF : (__mmask16)((1u << ((n) - i)) - 1); \
        __VA_ARGS__                                                                \
    }

void tr_gelu_mul_fwd_avx512(float *y, const float *g, const float *u, size_t n) {
    TAIL_LOOP(n, {
        __m512 x = _mm512_maskz_loadu_ps(m, g + i), t = gelu_tanh_inner(x);
        __m512 gl = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1.0f), t));
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(gl, _mm512_maskz_loadu_ps(m, u + i)));
    })
}

void tr_gelu_mul_bwd_avx512(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    TAIL_LOOP(n, {
        __m512 x = _mm512_maskz_loadu_ps(m, g + i), t = gelu_tanh_inner(x);
        __m512 opt = _mm512_add_ps(one, t);
        __m512 gl = _mm512_mul_ps(_mm512_mul_ps(half, x), opt);
        /* d = 0.5 (1 + t) + 0.5 x (1 - t²) k (1 + 3 c x²) */
        __m512 poly = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f),
                                    _mm512_fmadd_ps(_mm512_set1_ps(3.0f * 0.044715f), _mm512_mul_ps(x, x), one));
        __m512 d = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_fnmadd_ps(t, t, one)), poly,
                                   _mm512_mul_ps(half, opt));
        __m512 vdy = _mm512_maskz_loadu_ps(m, dy + i), vu = _mm512_maskz_loadu_ps(m, u + i);
        _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(vdy, gl));
        _mm512_mask_storeu_ps(dg + i, m, _mm512_mul_ps(_mm512_mul_ps(vdy, vu), d));
    })
}

void tr_silu_mul_fwd_avx512(float *y, const float *g, const float *u, size_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    TAIL_LOOP(n, {
        __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp_clamped(_mm512_sub_ps(_mm512_setzero_ps(), x))));
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_mul_ps(x, s), _mm512_maskz_loadu_ps(m, u + i)));
    })
}

void tr_silu_mul_bwd_avx512(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    TAIL_LOOP(n, {
        __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp_clamped(_mm512_sub_ps(_mm512_setzero_ps(), x))));
        __m512 vdy = _mm512_maskz_loadu_ps(m, dy + i), vu = _mm512_maskz_loadu_ps(m, u + i);
        /* silu' = s (1 + x (1 - s)) */
        __m512 d = _mm512_mul_ps(s, _mm512_fmadd_ps(x, _mm512_sub_ps(one, s), one));
        _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(vdy, _mm512_mul_ps(x, s)));
        _mm512_mask_storeu_ps(dg + i, m, _mm512_mul_ps(_mm512_mul_ps(vdy, vu), d));
    })
}
#endif
