/* Private to src/quant: byte offsets of every block layout, unaligned
 * little-endian loads, scale unpacking shared by the scalar reference and the
 * SIMD files, and the kernel table the dispatcher fills at start-up.
 *
 * Blocks are read through byte pointers and memcpy, never through structs:
 * GGUF blocks of 18, 22 or 34 bytes sit at any address. */
#ifndef SLM_QUANT_INTERNAL_H
#define SLM_QUANT_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "quant/quant.h"

/* ---- Block layouts: field offsets (the bytes per block, Qx_BYTES, are in
 * base/tensor_type.h); each matches ggml's block_* struct. ---- */
/* Q2_K: scales[16] (lo nibble scale, hi nibble min) | qs[64] | d f16 | dmin f16 */
#define Q2_K_QS 16
#define Q2_K_D 80
/* Q3_K: hmask[32] | qs[64] | scales[12] | d f16 */
#define Q3_K_QS 32
#define Q3_K_SC 96
#define Q3_K_D 108
/* Q4_K: d f16 | dmin f16 | scales[12] | qs[128] */
#define Q4_K_SC 4
#define Q4_K_QS 16
/* Q5_K: d f16 | dmin f16 | scales[12] | qh[32] | qs[128] */
#define Q5_K_SC 4
#define Q5_K_QH 16
#define Q5_K_QS 48
/* Q6_K: ql[128] | qh[64] | scales[16] int8 | d f16 */
#define Q6_K_QH 128
#define Q6_K_SC 192
#define Q6_K_D 208
/* Q8_K: d f32 | qs[256] int8 | bsums[16] int16 (sum of each 16 qs) */
#define Q8_K_QS 4
#define Q8_K_BSUMS 260

/* Activation blocks with max |x| below this quantize to all zeros (d = 0):
 * keeps 1/d finite, so every kernel rounds the same way. (A Q8_0 scale this
 * small is 0 in f16 anyway.) */
#define SLM_ACT_TINY 0x1p-100f

static inline uint16_t slm_rd_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t slm_rd_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline float slm_rd_f32(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }
static inline int16_t slm_rd_i16(const uint8_t *p) { int16_t v; memcpy(&v, p, 2); return v; }
static inline float slm_rd_f16(const uint8_t *p) { return slm_f16_to_f32(slm_rd_u16(p)); }

/* Q4_K / Q5_K: 6-bit scale and min of sub-block j (0..7) from scales[12]. */
static inline void slm_k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q3_K: the 16 signed scales (stored + 32) from scales[12]. */
static inline void slm_k3_scales(const uint8_t *s, int8_t out[16]) {
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? (s[i] & 15) : (s[i - 8] >> 4);
        int hi = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
        out[i] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

/* ---- Kernel table (SLM_TYPE_SLOTS entries: base/tensor_type.h) ---- */
/* Below this many tokens slm_gemm_tile uses the `few` kernels (or one-row
 * products per token), from it on the `gemm` ones. */
#define SLM_FEW_TOK 8

/* Dot product of one stored row (n elements) with activations in vec_type. */
typedef float (*slm_dot_fn)(const void *row, const void *xq, int64_t n);
/* out[r] = dot(rows + r*stride, xq) for r < nrows. */
typedef void (*slm_dot_rows_fn)(const void *rows, size_t stride, int nrows,
                                const void *xq, int64_t n, float *out);
/* out[t*out_stride + r] = dot(rows + r*stride, xq + t*xq_stride). */
typedef void (*slm_gemm_fn)(const void *rows, size_t stride, int nrows, const void *xq, size_t xq_stride,
                            int ntok, int64_t n, float *out, size_t out_stride);
/* Quantizes n floats (a multiple of the block size) into dst. */
typedef void (*slm_quant_fn)(const float *x, void *dst, int64_t n);

/* A kernel set's own layout for a weight type (see slm_packed_size in
 * quant.h); all NULL where it has none. */
typedef struct {
    size_t (*bytes)(int64_t rows, int64_t cols);
    void (*pack)(const void *rows, size_t stride, int64_t nrows, int64_t cols, int64_t g0, int64_t g1,
                 void *packed);
    void (*tile)(const void *packed, int64_t cols, int64_t r0, int nrows, const void *xq, size_t xq_stride,
                 int ntok, float *out, size_t out_stride);
} slm_packed_kernels;

typedef struct slm_kernels {
    const char *name;
    slm_dot_fn dot[SLM_TYPE_SLOTS];
    slm_dot_rows_fn rows[SLM_TYPE_SLOTS]; /* NULL: loop over dot */
    slm_gemm_fn gemm[SLM_TYPE_SLOTS];     /* NULL: loop over rows / dot */
    /* Tiles for a few tokens (1 < ntok < SLM_FEW_TOK, batched decoding):
     * read the stored layout as it is, unpacking each weight block once for
     * all the tokens (gemm repacks rows per call, which only pays for many
     * tokens). NULL: a loop of rows per token. */
    slm_gemm_fn few[SLM_TYPE_SLOTS];
    slm_packed_kernels packed[SLM_TYPE_SLOTS];
    slm_quant_fn quant_q8_0;
    slm_quant_fn quant_q8_k;
} slm_kernels;

/* A kernel set by name ("scalar", "avx2", "avx512", "neon"); NULL if this
 * CPU cannot run it. For tests and benchmarks. */
const slm_kernels *slm_kernels_get(const char *name);
void slm_kernels_dot_rows(const slm_kernels *k, uint32_t type, const void *rows, size_t row_stride,
                          int nrows, const void *xq, int64_t n, float *out);

void slm_kernels_gemm_tile(const slm_kernels *k, uint32_t type, const void *rows, size_t row_stride,
                           int nrows, const void *xq, size_t xq_stride, int ntok, int64_t n, float *out,
                           size_t out_stride);

/* Scalar kernels (vec_dot_scalar.c, quant_act.c). */
void slm_kernels_fill_scalar(slm_kernels *k);
void slm_quantize_q8_0_scalar(const float *x, void *dst, int64_t n);
void slm_quantize_q8_k_scalar(const float *x, void *dst, int64_t n);
void slm_quantize_q8_1_scalar(const float *x, void *dst, int64_t n);

/* ISA files override the entries they implement. */
#if defined(__x86_64__) || defined(_M_X64)
void slm_kernels_fill_avx2(slm_kernels *k);
void slm_kernels_fill_avx512(slm_kernels *k);
/* the prompt tiles of gemm_tiles_avx512.c (fill_avx512 calls it) */
void slm_kernels_fill_gemm_tiles_avx512(slm_kernels *k);
/* the few-token tiles of few_tok_avx512.c (fill_avx512 calls it) */
void slm_kernels_fill_few_avx512(slm_kernels *k);
/* the packed Q8_0 layout of packed_avx512.c (fill_avx512 calls it) */
void slm_kernels_fill_packed_avx512(slm_kernels *k);
#endif
#if defined(__aarch64__)
void slm_kernels_fill_neon(slm_kernels *k);
#endif

#endif
