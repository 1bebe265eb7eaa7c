/* Dequantization for the training engine: the frozen base's rows to f32,
 * through SIMD kernels where this CPU and the type have one, else
 * slm_dequantize_row. Results are bit-identical to slm_dequantize_row. */
#ifndef SLM_TRAIN_DEQUANT_H
#define SLM_TRAIN_DEQUANT_H

#include <stdbool.h>
#include <stdint.h>

void tr_dequant_row(uint32_t type, const void *src, float *dst, int64_t n);
/* Tests: the reference only. */
void tr_dequant_force_reference(bool on);

bool tr_dequant_row_avx512(uint32_t type, const void *src, float *dst, int64_t n);

#endif
