/* f32 matrix products for training: one packed, cache-blocked GEMM that
 * serves the three forms a linear layer needs through strides,
 *   forward   Y  = X · Wᵀ    (A = X,  B = Wᵀ: rsb 1, csb in)
 *   input     dX = dY · W    (A = dY, B = W:  rsb in, csb 1)
 *   weight    dW += dYᵀ · X  (A = dYᵀ: rsa 1, csa out; B = X)
 * and attention's small products. Panels are packed (GotoBLAS/BLIS style)
 * into per-worker buffers of fixed size, so any stride pattern runs the same
 * register-blocked micro-kernel (AVX-512 where the CPU has it). */
#ifndef SLM_TRAIN_GEMM_H
#define SLM_TRAIN_GEMM_H

#include <stdbool.h>
#include <stddef.h>

#include "base/threadpool.h"

/* Register tile and cache blocks (floats). */
#define TG_MR 12
#define TG_NR 32
#define TG_KC 256
#define TG_MC 288
#define TG_NC 512
/* Floats of packing scratch one worker needs. */
#define TG_PACK_FLOATS ((size_t)TG_MC * TG_KC + (size_t)TG_KC * TG_NC + TG_MR * TG_NR)

/* C[M,N] = (acc ? C : 0) + alpha * A[M,K] · B[K,N]. Element (i,k) of A is
 * a[i*rsa + k*csa], (k,j) of B is b[k*rsb + j*csb]; C is row-major with row
 * stride ldc. One thread; `pack` holds TG_PACK_FLOATS floats. */
void tg_gemm_st(int M, int N, int K, float alpha, const float *a, long rsa, long csa, const float *b, long rsb,
                long csb, float *c, long ldc, bool acc, float *pack);

/* The same split over the pool's workers (disjoint blocks of C, so the
 * result does not depend on timing). `pack` holds one TG_PACK_FLOATS area
 * per worker. */
void tg_gemm(slm_pool *pool, float *pack, int M, int N, int K, float alpha, const float *a, long rsa, long csa,
             const float *b, long rsb, long csb, float *c, long ldc, bool acc);

/* ---- B packed ahead ----
 * A weight's operand, packed once (e.g. straight from the dequantizer) and
 * used by one or more products: K x N as K blocks of TG_KC rows, each a row
 * of NR-column panels [k][NR], zero-padded to whole panels. */
static inline int tg_bp_npad(int N) { return (N + TG_NR - 1) / TG_NR * TG_NR; }
static inline size_t tg_bp_floats(int K, int N) { return (size_t)tg_bp_npad(N) * K; }
/* the panel of K block k0 (a multiple of TG_KC) and columns j0.. (a multiple of TG_NR) */
static inline float *tg_bp_panel(float *bp, int K, int N, int k0, int j0) {
    int kc = K - k0 < TG_KC ? K - k0 : TG_KC;
    return bp + (size_t)k0 * tg_bp_npad(N) + (size_t)j0 * kc;
}
/* C = (acc ? C : 0) + alpha * A · B with B packed ahead (see above); over
 * the pool's workers (disjoint column ranges of C). */
void tg_gemm_bp(slm_pool *pool, float *pack, int M, int N, int K, float alpha, const float *a, long rsa, long csa,
                const float *bp, float *c, long ldc, bool acc);
/* Packs kc rows and nc columns of B (element (k, j) at b[k*rsb + j*csb])
 * into the panels of one K block, panel stride kc (pack_b of the driver). */
void tg_pack_b(int kc, int nc, const float *b, long rsb, long csb, float *dst);

/* The kernel set in use ("avx512" or "portable"); tg_force_portable(true)
 * switches to the portable one (tests). */
const char *tg_kernel_name(void);
void tg_force_portable(bool on);

/* micro-kernels: c[MR x NR] (row stride ldc) = (acc ? c : 0) + alpha * the
 * product of one packed A panel ([k][MR]) and one packed B panel ([k][NR]) */
typedef void (*tg_ukernel_fn)(int kc, float alpha, const float *ap, const float *bp, float *c, long ldc, bool acc);
void tg_ukernel_portable(int kc, float alpha, const float *ap, const float *bp, float *c, long ldc, bool acc);
void tg_ukernel_avx512(int kc, float alpha, const float *ap, const float *bp, float *c, long ldc, bool acc);

/* AVX-512 packers for the transposing cases (gemm_avx512.c) */
void tg_pack_a_rows_avx512(int mc, int kc, const float *a, long rsa, float *dst);
void tg_pack_b_cols_avx512(int kc, int nc, const float *b, long csb, float *dst);
void tg_pack_b_rows_avx512(int kc, int nc, const float *b, long rsb, float *dst);

#endif
