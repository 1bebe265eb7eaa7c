/* Per-ISA versions of ops.h functions, selected once in ops_cpu.c. */
#ifndef SLM_OPS_ISA_H
#define SLM_OPS_ISA_H

#include <stdbool.h>
#include <stddef.h>

void op_axpy_f32_avx512(float *y, float a, const float *x, int n);
void op_gelu_tanh_mul_avx512(float *x, const float *up, int n);
void op_rmsnorm_avx512(float *out, const float *x, const float *w, int n, float eps);
/* op_attn_group's tiled kernel; false (nothing done) for shapes it does not take */
bool op_attn_group_avx512(const float *q, int group, int hd, int hdv, const float *k, size_t k_stride,
                          const float *v, size_t v_stride, int cnt, float scale, float *out);

#endif
