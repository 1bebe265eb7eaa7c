/* Per-ISA versions of ops.h functions, selected once in ops_cpu.c. */
#ifndef SLM_OPS_ISA_H
#define SLM_OPS_ISA_H

void op_axpy_f32_avx512(float *y, float a, const float *x, int n);
void op_gelu_tanh_mul_avx512(float *x, const float *up, int n);

#endif
