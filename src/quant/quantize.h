/* Float -> block quantization for every weight type the dequantizer knows,
 * with optional per-element importance weights, plus the rules that pick a
 * type per tensor for the named mixes ("q4_k_m", ...).
 *
 * Every block format here is fitted by weighted least squares: for each
 * block the quantizer searches a small grid of candidate scales (and mins),
 * rounds, solves for the best scale (and min) given the rounded integers,
 * and keeps the candidate with the lowest weighted squared error
 * sum_i w_i (x_i - dequant_i)^2. The weights come from the caller (see
 * slm_quant_weights); with an importance matrix they make the columns that
 * matter most to the activations come out most accurate. */
#ifndef SLM_QUANT_QUANTIZE_H
#define SLM_QUANT_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant/quant.h"

/* True for the types slm_quantize_row can produce: F32, F16, BF16, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. */
bool slm_can_quantize(uint32_t type);

/* The weights the block search uses for one row x (n values): with an
 * importance vector imp (per column, e.g. mean squared activation),
 * w_i = imp_i * sqrt(s2 + x_i^2); without, w_i = s2 + x_i^2; s2 is the
 * mean of x^2 over the row. Small values still count (s2), large ones a
 * little more: an error on a large weight moves the output most. */
void slm_quant_weights(const float *x, const float *imp, float *w, int64_t n);

/* Quantizes one row of n values (n a multiple of the type's block size) to
 * dst (slm_row_bytes(type, n) bytes). w: per-element weights (n values) or
 * NULL for plain least squares. Returns false for a type it cannot produce
 * or a bad n. Deterministic; no allocation. */
bool slm_quantize_row(uint32_t type, const float *x, const float *w, void *dst, int64_t n);
/* The same with an importance vector imp (n values, one per column: the
 * mean squared activation it meets) instead of weights. The weights are
 * formed here, per type: w_i = imp_i for the 32-value types, and
 * slm_quant_weights' imp_i * sqrt(s2 + x_i^2) for the K-quants (each the
 * better of the two on Gemma 3 270M, docs/QUANTIZATION.md); w is scratch
 * for n floats. The block search may also clip a block's extreme values
 * when that lowers the weighted error (quant_fit.c says why only here).
 * Returns false where slm_quantize_row would, or for a NULL imp or w. */
bool slm_quantize_row_imp(uint32_t type, const float *x, const float *imp, float *w, void *dst, int64_t n);

/* ---- block fitters (quant_fit.c), shared by the legacy and K formats ---- */

/* Symmetric: x ~ d*q, q integer in [qmin, qmax] (qmin < 0 < qmax). Writes
 * q, returns d (0 when the block is all zeros). n_grid candidate scales
 * are tried around the one that maps the largest |x| to qmin; with clip
 * (and weights), scales that clip the largest values are tried too. */
float slm_fit_sym(int n, const float *x, const float *w, int qmin, int qmax, int n_grid, bool clip, int8_t *q);
/* Affine: x ~ d*q + m, q in [0, qmax]. With min_nonpos, m is kept <= 0 (the
 * K-quants store -m as an unsigned min). Writes q, *d (>= 0) and *m. clip
 * as for slm_fit_sym. */
void slm_fit_affine(int n, const float *x, const float *w, int qmax, bool min_nonpos, int n_grid, bool clip,
                    uint8_t *q, float *d, float *m);
/* Non-negative values v ~ d*q, q in [0, qmax] (scales of sub-blocks). */
float slm_fit_unsigned(int n, const float *v, const float *w, int qmax, uint8_t *q);

/* K-quant blocks (quantize_k.c): one 256-value super-block each; clip as
 * for slm_fit_sym. */
void slm_quantize_block_q2_k(const float *x, const float *w, bool clip, uint8_t *dst);
void slm_quantize_block_q3_k(const float *x, const float *w, bool clip, uint8_t *dst);
void slm_quantize_block_q4_k(const float *x, const float *w, bool clip, uint8_t *dst);
void slm_quantize_block_q5_k(const float *x, const float *w, bool clip, uint8_t *dst);
void slm_quantize_block_q6_k(const float *x, const float *w, bool clip, uint8_t *dst);

/* ---- mixes (quant_mix.c) ---- */

typedef struct slm_mix {
    const char *name;       /* "q4_k_m" */
    uint32_t base;          /* the type most 2-D weights get */
    uint32_t file_type;     /* llama.cpp's general.file_type number */
} slm_mix;

/* NULL for an unknown name (case-insensitive). */
const slm_mix *slm_mix_find(const char *name);
/* The i-th mix, NULL past the end. */
const slm_mix *slm_mix_at(int i);

/* What the mix rules need to know about one tensor. */
typedef struct slm_tensor_role {
    const char *name;       /* GGUF tensor name, e.g. "blk.3.attn_v.weight" */
    int n_dims;
    uint64_t ne[4];
    int n_layer;            /* block count of the model (0 if unknown) */
    int n_gqa;              /* query heads per KV head (1 if unknown) */
    bool has_output;        /* the model has its own output.weight (head not tied) */
} slm_tensor_role;

/* The type the mix gives this tensor, after the row-length fallback
 * (documented in docs/QUANTIZATION.md). */
uint32_t slm_mix_choose(const slm_mix *mix, const slm_tensor_role *t);
/* The type a K-quant falls back to when the row length is not a multiple of
 * 256 (and F16 when it is not a multiple of 32 either); other types map to
 * themselves when the row fits their block, else to F16. */
uint32_t slm_type_fallback(uint32_t type, uint64_t row_len);

#endif
