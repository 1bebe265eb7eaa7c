/* Every tensor type in one place: block layouts, scalar reference
 * (de)quantization and dot products, and the fast kernels chosen once from
 * the CPU's features. The scalar reference stays; tests hold every fast
 * kernel to it. */
#ifndef SLM_QUANT_H
#define SLM_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* type ids, block sizes and bytes, slm_type_get, slm_row_bytes */
#include "base/tensor_type.h"

/* half <-> float */
float slm_f16_to_f32(uint16_t h);
uint16_t slm_f32_to_f16(float f);
float slm_bf16_to_f32(uint16_t h);
/* Round to nearest even; NaN stays a (quiet) NaN. */
uint16_t slm_f32_to_bf16(float f);

/* Scalar reference: n must be a multiple of the block size. */
void slm_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);
/* Reference dot product of a stored row with f32 x: dequantize, then sum in
 * double. Slow; for tests and as the ground truth of the fast kernels. */
double slm_dot_ref(uint32_t type, const void *row, const float *x, int64_t n);

/* Fast path. A weight type's dot product runs against the activations
 * quantized to its partner type (`vec_type`: Q8_0 for the 32-blocks, Q8_K
 * for the K-quants, F32 for the float types). */
uint32_t slm_vec_type(uint32_t weight_type);
/* Quantizes n f32 activations into the partner type's blocks
 * (slm_row_bytes(vec_type, n) bytes; F32 is a copy). */
void slm_quantize_act(uint32_t vec_type, const float *x, void *dst, int64_t n);
/* Dot product of a stored row with activations already in vec_type.
 * Dispatches to the best kernel for this CPU. Here and in slm_quantize_act
 * n must be a whole number of blocks: anything else aborts (a shape bug).
 * No alignment is required of row or xq. */
float slm_vec_dot(uint32_t weight_type, const void *row, const void *xq, int64_t n);
/* The same, forced to the portable scalar kernel (for tests). */
float slm_vec_dot_scalar(uint32_t weight_type, const void *row, const void *xq, int64_t n);

/* Several rows at once: out[r] = slm_vec_dot(weight_type, rows + r*row_stride,
 * xq, n) for 0 <= r < nrows (nrows >= 0). Kernels may prepare xq once for all
 * the rows (AVX-512 does for Q8_0, Q4_0, Q5_0: about 15-25% less work per
 * row); rows are still read in order, front to back. Results equal nrows
 * single calls up to f32 summation order. Prefer it to a loop of
 * slm_vec_dot when a thread owns a range of rows. */
void slm_vec_dot_rows(uint32_t weight_type, const void *rows, size_t row_stride, int nrows,
                      const void *xq, int64_t n, float *out);

/* A tile of rows against several activation rows (prompt processing):
 * out[t*out_stride + r] = dot(rows + r*row_stride, xq + t*xq_stride) for
 * 0 <= r < nrows, 0 <= t < ntok (nrows, ntok >= 0; xq rows in vec_type).
 * Kernels unpack each weight block once for several tokens (AVX-512: Q8_0,
 * Q4_0, Q5_0, Q4_K, Q6_K); other types loop over slm_vec_dot_rows. Results
 * equal the single dots up to f32 summation order. */
void slm_gemm_tile(uint32_t weight_type, const void *rows, size_t row_stride, int nrows,
                   const void *xq, size_t xq_stride, int ntok, int64_t n, float *out, size_t out_stride);
/* The same through the portable scalar kernel (a loop of slm_vec_dot_scalar). */
void slm_gemm_tile_scalar(uint32_t weight_type, const void *rows, size_t row_stride, int nrows,
                          const void *xq, size_t xq_stride, int ntok, int64_t n, float *out,
                          size_t out_stride);

/* ---- Weights repacked once for this CPU ----
 * Some kernel sets read a type faster from a layout of their own than from
 * GGUF blocks (AVX-512: Q8_0, Q4_0, Q5_0 in groups of SLM_PACK_GROUP rows,
 * see packed_avx512.c). A matrix is packed when the model opens and the
 * products then read only the packed copy. Pack and use under one kernel
 * set (slm_cpu_set_kernels belongs before any model is opened). */
#define SLM_PACK_GROUP 16
/* Bytes of the packed form of a rows x cols matrix; 0 when the active
 * kernel set has none for the type (then the others must not be called). */
size_t slm_packed_size(uint32_t weight_type, int64_t rows, int64_t cols);
/* Packs the groups [g0, g1) (rows 16*g0 ..) of the matrix into `packed`
 * (slm_packed_size bytes, 64-byte aligned); disjoint ranges may be packed by
 * different threads. */
void slm_pack_groups(uint32_t weight_type, const void *rows, size_t row_stride, int64_t nrows, int64_t cols,
                     int64_t g0, int64_t g1, void *packed);
/* slm_gemm_tile on the packed form: rows [r0, r0 + nrows), r0 a multiple of
 * SLM_PACK_GROUP, r0 + nrows <= the matrix's rows, any ntok >= 1. */
void slm_packed_tile(uint32_t weight_type, const void *packed, int64_t cols, int64_t r0, int nrows,
                     const void *xq, size_t xq_stride, int ntok, float *out, size_t out_stride);

/* The kernel set chosen at start-up: "scalar", "avx2", "avx512", "neon". */
const char *slm_kernels_name(void);

#endif
