/* Forward ops that keep what their backward needs, and the backward of each
 * (llm.c style: one backward beside each forward). Rows are f32, row-major.
 * Every backward ADDS into parameter gradients (dw, db) and, unless said
 * otherwise, WRITES the input gradient. */
#ifndef SLM_TRAIN_OPS_TRAIN_H
#define SLM_TRAIN_OPS_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/threadpool.h"

/* RMSNorm of `rows` rows of n: y = x * rstd * w, rstd = 1/sqrt(mean(x²)+eps)
 * (kept per row for the backward). y may alias x. */
void tr_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int rows, int n, float eps);
/* dx = d/dx given dy (dx may alias dy), dw += (NULL: not wanted). x and rstd
 * are the forward's input and kept scales. */
void tr_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rstd, const float *w,
                    int rows, int n);

/* RoPE over T tokens of H heads of D (rotating the first n_rot dims): in place
 * forward, and its transpose (the backward) in place on the gradient. cosb,
 * sinb: [T][n_rot/2] tables as op_rope_table_ext makes them. */
void tr_rope_fwd(float *x, int T, int H, int D, int n_rot, bool neox, const float *cosb, const float *sinb);
void tr_rope_bwd(float *dx, int T, int H, int D, int n_rot, bool neox, const float *cosb, const float *sinb);

/* Gated activations: y = act(g) * u; backward writes dg and du. */
void tr_gelu_mul_fwd(float *y, const float *g, const float *u, size_t n);
void tr_gelu_mul_bwd(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n);
void tr_silu_mul_fwd(float *y, const float *g, const float *u, size_t n);
void tr_silu_mul_bwd(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n);

/* Tests: the portable gate kernels instead of the SIMD ones. */
void tr_gate_force_portable(bool on);

/* The gates and RMSNorm split over the pool's workers (element or row
 * ranges). The RMSNorm backward's dw partial sums go to part (nth x n
 * floats) and are added into dw in worker order. */
void tr_gate_fwd_par(slm_pool *pool, bool gelu, float *y, const float *g, const float *u, size_t n);
void tr_gate_bwd_par(slm_pool *pool, bool gelu, float *dg, float *du, const float *dy, const float *g, const float *u,
                     size_t n);
void tr_rmsnorm_fwd_par(slm_pool *pool, float *y, float *rstd, const float *x, const float *w, int rows, int n,
                        float eps);
void tr_rmsnorm_bwd_par(slm_pool *pool, float *dx, float *dw, const float *dy, const float *x, const float *rstd,
                        const float *w, int rows, int n, float *part);

/* Grouped-query causal attention over one sequence of T tokens.
 * q [T][Hq][D], k [T][Hkv][D], v [T][Hkv][Dv], y [T][Hq][Dv], lse [T][Hq];
 * query i sees keys max(0, i-window+1)..i (window 0: all of 0..i). */
typedef struct tr_attn {
    int T, Hq, Hkv, D, Dv, window;
    float scale;
} tr_attn;
/* Scratch floats the attention needs per worker (its S/dP blocks and its
 * dK/dV partial sums), and the packing area too (gemm.h). */
size_t tr_attn_scratch_floats(const tr_attn *a);
/* `scratch`: nth * tr_attn_scratch_floats floats; `pack`: nth GEMM packing areas. */
void tr_attn_fwd(slm_pool *pool, const tr_attn *a, const float *q, const float *k, const float *v, float *y,
                 float *lse, float *scratch, float *pack);
/* Writes dq, dk, dv from dy and the forward's q, k, v, y, lse. */
void tr_attn_bwd(slm_pool *pool, const tr_attn *a, const float *q, const float *k, const float *v, const float *y,
                 const float *lse, const float *dy, float *dq, float *dk, float *dv, float *scratch, float *pack);

/* Rows of a row-major f32 weight (row length m, row stride ld) into the
 * packed B operands (gemm.h) of y = x·Wᵀ (bf: K = m, N = n_total) and of
 * dx = dy·W (bb: K = n_total, N = m); either may be NULL. The rows are one
 * group: nr <= TG_NR rows starting at row r0, a multiple of TG_NR, of a
 * matrix of n_total rows; w points at row r0. */
void tr_pack_rows(const float *w, long ld, int n_total, int m, int r0, int nr, float *bf, float *bb);

/* Chunked cross-entropy over a vocabulary too large to hold T x V logits.
 * The head comes chunk by chunk from packw, as packed B operands (rows v0..
 * v0+n: bf for the logits, K = E, N = n; bb, when asked, for the gradient,
 * K = n, N = E); single rows (the targets) from rows, which may fill buf
 * (E floats) and returns where the f32 row is. */
typedef const float *(*tr_rows_fn)(void *ctx, long r0, int n, float *buf);
typedef void (*tr_packw_fn)(void *ctx, long v0, int n, float *bf, float *bb);
typedef struct tr_ce {
    slm_pool *pool;
    float *pack;            /* GEMM packing areas, one per worker */
    int R, E;               /* scored rows, width */
    long V;                 /* vocabulary */
    int chunk;              /* head rows per chunk */
    tr_rows_fn rows;
    tr_packw_fn packw;
    void *rows_ctx;
    float *bf, *bb;         /* tg_bp_floats(E, chunk) and tg_bp_floats(chunk, E) */
    float *rowbuf;          /* E */
    float *zbuf;            /* R x chunk logits */
} tr_ce;
/* loss[r] = logsumexp(h[r]·Wᵀ) - h[r]·W[target[r]]. With dh (R x E) non-NULL
 * also dh = d(sum of losses)/dh (written); with dw non-NULL (V x E) adds
 * d(sum of losses)/dW into it. gbuf: R x E scratch when dh is wanted and dw
 * is not (the one-pass online form), m/s: 2R floats. */
void tr_ce_run(const tr_ce *c, const float *h, const int32_t *target, double *loss, float *dh, float *dw,
               float *gbuf, float *ms);

/* Scratch floats tr_ce_run needs beyond its buffers: none; size helpers. */
size_t tr_ce_zbuf_floats(int R, int chunk);

#endif
