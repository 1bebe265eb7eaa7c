/* The math a transformer needs, on the CPU. Activations are f32 rows; weights
 * are views into the model file in any type that src/quant knows. */
#ifndef SLM_OPS_H
#define SLM_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "base/threadpool.h"

/* A 2-D weight: `rows` rows of `cols` elements, row r at data + r*row_bytes. */
typedef struct slm_mat {
    uint32_t type;
    int64_t rows, cols;
    size_t row_bytes;
    const uint8_t *data;
} slm_mat;

/* Bytes of scratch op_matmul needs for n_tok activation rows of W. */
size_t op_matmul_scratch(const slm_mat *w, int n_tok);
/* y[t][r] = sum_c W[r][c] * x[t][c] for n_tok rows of x (stride W.cols) into
 * y (stride W.rows). `scratch` holds the quantized activations. */
void op_matmul(slm_pool *pool, const slm_mat *w, const float *x, int n_tok, float *y, void *scratch);

/* The same product with f32 activations: each weight row is dequantized once
 * (into rowbuf: nth rows of W.cols floats) and dotted in f32 with every
 * activation row. Slower, but free of the 8-bit activation rounding of
 * op_matmul: the "precise" mode that the golden tests hold to the reference. */
void op_matmul_precise(slm_pool *pool, const slm_mat *w, const float *x, int n_tok, float *y, float *rowbuf);

/* out = x / rms(x) * w (w NULL: no weight). out may alias x. */
void op_rmsnorm(float *out, const float *x, const float *w, int n, float eps);

/* cos/sin for rotating pairs at position pos: theta_i = pos * base^(-2i/n_rot). */
void op_rope_table(float *cos_out, float *sin_out, int n_rot, int pos, float base);
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

#endif
