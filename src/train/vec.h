/* Row helpers of the training ops that want SIMD (softmax pieces), chosen at
 * run time like the GEMM kernel. */
#ifndef SLM_TRAIN_VEC_H
#define SLM_TRAIN_VEC_H

/* max of x[0..n) (n >= 1) */
float tr_vmax(const float *x, int n);
/* x[i] = e^(x[i] - m) in place; returns the sum (m >= every x[i]) */
float tr_vexp_sum(float *x, int n, float m);

#include <stddef.h>

float tr_vmax_avx512(const float *x, int n);
void tr_gelu_mul_fwd_avx512(float *y, const float *g, const float *u, size_t n);
void tr_gelu_mul_bwd_avx512(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n);
void tr_silu_mul_fwd_avx512(float *y, const float *g, const float *u, size_t n);
void tr_silu_mul_bwd_avx512(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n);
float tr_vexp_sum_avx512(float *x, int n, float m);

#endif
