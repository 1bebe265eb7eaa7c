/* AVX-512 versions of the f32 element-wise ops that dominate prompt
 * processing after the matrix products: the attention's value accumulation
 * (axpy) and the GELU gate. Built with AVX-512 flags; ops_cpu.c calls them
 * only when the CPU has AVX-512F. */
#include <immintrin.h>

#include "ops/exp_avx512.h"
#include "ops/ops_isa.h"

void op_axpy_f32_avx512(float *y, float a, const float *x, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i),
                                                        _mm512_maskz_loadu_ps(m, y + i)));
    }
}

/* e^x, the argument clamped to [-88, 88] */
static inline __m512 exp_ps(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-88.0f)), _mm512_set1_ps(88.0f));
    return slm_exp_in_range_avx512(x);
}

/* x = 0.5 x (1 + tanh(k (x + 0.044715 x^3))) * up, with
 * 1 + tanh(u) = 2 - 2 / (e^(2u) + 1). */
static inline __m512 gelu_gate(__m512 v, __m512 u) {
    const __m512 k = _mm512_set1_ps(0.7978845608028654f);
    __m512 inner = _mm512_mul_ps(k, _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), v),
                                                    _mm512_mul_ps(v, v), v));
    __m512 e = exp_ps(_mm512_add_ps(inner, inner));
    __m512 one_plus_tanh = _mm512_sub_ps(_mm512_set1_ps(2.0f),
                                         _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), one_plus_tanh), u);
}

void op_gelu_tanh_mul_avx512(float *x, const float *up, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, gelu_gate(_mm512_loadu_ps(x + i), _mm512_loadu_ps(up + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, gelu_gate(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, up + i)));
    }
}

/* RMSNorm with the sum of squares in double, 8 lanes at a time (the scalar
 * version's precision, without its one-element-per-step loop). */
void op_rmsnorm_avx512(float *out, const float *x, const float *w, int n, float eps) {
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512d a = _mm512_cvtps_pd(_mm256_loadu_ps(x + i)), b = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
        acc0 = _mm512_fmadd_pd(a, a, acc0);
        acc1 = _mm512_fmadd_pd(b, b, acc1);
    }
    double ss = _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
    for (int k = i; k < n; k++) ss += (double)x[k] * x[k];
    const float scale = (float)(1.0 / __builtin_sqrt(ss / n + eps));
    const __m512 vs = _mm512_set1_ps(scale);
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), vs);
        _mm512_storeu_ps(out + i, w ? _mm512_mul_ps(v, _mm512_loadu_ps(w + i)) : v);
    }
    for (; i < n; i++) out[i] = w ? x[i] * scale * w[i] : x[i] * scale;
}
