/* The math a transformer needs, on the CPU. Activations are f32 rows; weights
 * are views into the model file in any type that src/quant knows. */
#ifndef SLM_OPS_H
#define SLM_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/threadpool.h"

/* A 2-D weight: `rows` rows of `cols` elements, row r at data + r*row_bytes. */
typedef struct slm_mat {
    uint32_t type;
    int64_t rows, cols;
    size_t row_bytes;
    const uint8_t *data;
    /* the same rows in this CPU's own layout (slm_pack_groups), or NULL:
     * op_matmul then reads only this copy */
    const void *packed;
} slm_mat;

/* Bytes of scratch op_matmul needs for n_tok activation rows of W. */
size_t op_matmul_scratch(const slm_mat *w, int n_tok);
/* y[t][r] = sum_c W[r][c] * x[t][c] for n_tok rows of x (stride W.cols) into
 * y (stride W.rows). `scratch` holds the quantized activations. */
void op_matmul(slm_pool *pool, const slm_mat *w, const float *x, int n_tok, float *y, void *scratch);
/* The same product, with row_exact: every row of y bit-identical to what
 * op_matmul gives for that activation row alone (n_tok = 1), whatever n_tok
 * and the thread count's split of W's rows (the speculative decoder's
 * verification step needs it). Repacked weights are that already; other
 * types then run the one-token kernels per token over tiles of W that stay
 * in cache, instead of the few-token and GEMM tile kernels. */
void op_matmul_ex(slm_pool *pool, const slm_mat *w, const float *x, int n_tok, float *y, void *scratch,
                  bool row_exact);

/* The same product with f32 activations: each weight row is dequantized once
 * (into rowbuf: nth rows of W.cols floats) and dotted in f32 with every
 * activation row. Slower, but free of the 8-bit activation rounding of
 * op_matmul: the "precise" mode that the golden tests hold to the reference. */
void op_matmul_precise(slm_pool *pool, const slm_mat *w, const float *x, int n_tok, float *y, float *rowbuf);

/* out = x / rms(x) * w (w NULL: no weight). out may alias x. */
void op_rmsnorm(float *out, const float *x, const float *w, int n, float eps);

/* cos/sin for rotating pairs at position pos: theta_i = pos * base^(-2i/n_rot). */
void op_rope_table(float *cos_out, float *sin_out, int n_rot, int pos, float base);
/* The same with the scalings of long-context models: theta_i is multiplied by
 * freq_scale and divided by freq_factors[i] (NULL: none; Llama 3's rope_freqs,
 * Phi-3's long/short factors), and cos/sin are multiplied by mscale. */
void op_rope_table_ext(float *cos_out, float *sin_out, int n_rot, int pos, float base,
                       const float *freq_factors, float freq_scale, float mscale);
/* Rotates pairs (i, i + n_rot/2) of one head ("NEOX" pairing). */
void op_rope_neox(float *x, const float *cosv, const float *sinv, int n_rot);
/* Rotates adjacent pairs (2i, 2i+1) ("normal" pairing). */
void op_rope_norm(float *x, const float *cosv, const float *sinv, int n_rot);

/* In place: x = gelu_tanh(x) * up, and x = silu(x) * up. */
void op_gelu_tanh_mul(float *x, const float *up, int n);
void op_silu_mul(float *x, const float *up, int n);

/* In place softmax over n values. */
void op_softmax(float *x, int n);

/* Dot product and y += a*x of f32 vectors (the attention inner loops). */
float op_dot_f32(const float *a, const float *b, int n);
void op_axpy_f32(float *y, float a, const float *x, int n);

/* Attention of one token: its `group` query heads (q, rows hd apart) that
 * share one KV head, against cnt cached keys k + p*k_stride and values
 * v + p*v_stride (p < cnt, cnt >= 1): out (rows hdv apart) = softmax(scale
 * q k^T) v. scores: group * cnt floats of scratch (the portable path's). */
void op_attn_group(const float *q, int group, int hd, int hdv, const float *k, size_t k_stride, const float *v,
                   size_t v_stride, int cnt, float scale, float *out, float *scores);
/* The same, always through the portable kernel (for tests). */
void op_attn_group_portable(const float *q, int group, int hd, int hdv, const float *k, size_t k_stride,
                            const float *v, size_t v_stride, int cnt, float scale, float *out, float *scores);

#endif
