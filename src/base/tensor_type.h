/* The tensor type table: ggml's type ids as GGUF stores them, each type's
 * block size and bytes per block. A leaf: the GGUF reader and writer take it
 * from here, src/quant builds its kernels on it, and neither includes the
 * other. */
#ifndef SLM_TENSOR_TYPE_H
#define SLM_TENSOR_TYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ggml type ids, as stored in GGUF tensor infos. */
enum slm_type {
    SLM_T_F32 = 0, SLM_T_F16 = 1, SLM_T_Q4_0 = 2, SLM_T_Q4_1 = 3,
    SLM_T_Q5_0 = 6, SLM_T_Q5_1 = 7, SLM_T_Q8_0 = 8, SLM_T_Q8_1 = 9,
    SLM_T_Q2_K = 10, SLM_T_Q3_K = 11, SLM_T_Q4_K = 12, SLM_T_Q5_K = 13,
    SLM_T_Q6_K = 14, SLM_T_Q8_K = 15, SLM_T_BF16 = 30,
};
/* Type ids are below this. */
#define SLM_TYPE_SLOTS 32

#define QK 32      /* elements per block of the simple quants */
#define QK_K 256   /* elements per K-quant super-block */

/* Bytes per block; each matches ggml's block_* struct (field offsets in
 * src/quant/quant_internal.h). */
#define Q4_0_BYTES 18   /* d f16 | qs[16] */
#define Q4_1_BYTES 20   /* d f16 | m f16 | qs[16] */
#define Q5_0_BYTES 22   /* d f16 | qh u32 | qs[16] */
#define Q5_1_BYTES 24   /* d f16 | m f16 | qh u32 | qs[16] */
#define Q8_0_BYTES 34   /* d f16 | qs[32] int8 */
#define Q8_1_BYTES 36   /* d f16 | s f16 (= d * sum qs) | qs[32] int8 */
#define Q2_K_BYTES 84   /* scales[16] | qs[64] | d f16 | dmin f16 */
#define Q3_K_BYTES 110  /* hmask[32] | qs[64] | scales[12] | d f16 */
#define Q4_K_BYTES 144  /* d f16 | dmin f16 | scales[12] | qs[128] */
#define Q5_K_BYTES 176  /* d f16 | dmin f16 | scales[12] | qh[32] | qs[128] */
#define Q6_K_BYTES 210  /* ql[128] | qh[64] | scales[16] int8 | d f16 */
#define Q8_K_BYTES 292  /* d f32 | qs[256] int8 | bsums[16] int16 */

typedef struct slm_type_info {
    const char *name;       /* "q4_K", as ggml spells it */
    int block_size;         /* elements per block */
    size_t block_bytes;     /* bytes per block */
    bool is_weight_type;    /* false for activation-only types (Q8_K, Q8_1) */
} slm_type_info;

/* NULL for an unknown id. */
const slm_type_info *slm_type_get(uint32_t type);
/* Bytes of a row of n elements; 0 if n is not a multiple of the block size
 * or the type is unknown. */
size_t slm_row_bytes(uint32_t type, int64_t n);

#endif
