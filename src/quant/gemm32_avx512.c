/* AVX-512 VNNI tiles for the 32-element block types (Q8_0, Q4_0, Q5_0)
 * against Q8_0 activations: prompt processing's matrix products.
 *
 * Layout: the 16 int32 lanes of a vector are 16 weight ROWS. A group of 16
 * rows is unpacked once per call into that layout, block by block: vector j
 * of block b holds bytes 4j..4j+3 of each row's 32 (unsigned) weights. One
 * token's block then costs 8 vpdpbusd, each taking the token's 4 bytes
 * 4j..4j+3 as a broadcast memory operand straight from its Q8_0 row, and
 * the int32 lanes end the block holding whole 32-element dot products. Only
 * then is f32 work done: one convert and one fma per 16 rows x 32 elements,
 * so the integer units, not the f32 ones, set the pace (the pair layout of
 * vec_dot_avx512.c needs a convert and two f32 ops per vpdpbusd).
 *
 * Weights are made unsigned, u = q + o (o = 128, 8, 16), as vpdpbusd wants
 * its first operand; sum u x = sum q x + o sum x, and o sum x depends on the
 * token's block only: it is computed once per call (with the block scales
 * as f32) and starts each block's int32 sums at -o sum x. The result of a
 * 16-row group is a contiguous run of out, written with one masked store.
 *
 * Results equal the scalar kernel up to f32 summation order. */
#include "quant/quant_internal.h"

#include <immintrin.h>
#include <stdbool.h>

enum { K_Q8_0, K_Q4_0, K_Q5_0 };

#define KCH 32    /* blocks per packed chunk: 32 x 640 B = 20 KB of stack */
#define TSUP 64   /* tokens prepared at once */
#define TT 8      /* tokens per register tile */

typedef struct {
    __m512i w[KCH][8]; /* [block][step j]: lane r = bytes 4j..4j+3 of row r */
    __m512 dw[KCH];    /* lane r = row r's block scale */
} pack16;

/* one token group's block: the tokens' 32 int8 side by side, so that a tile
 * addresses all of them from one pointer */
typedef struct {
    uint8_t q[TT][32];
    int32_t negc[TT]; /* -o * sum of the token's block */
    float dx[TT];     /* the token's block scale */
} xblk;

/* tokens of a TSUP set, [token group][block] */
static _Thread_local xblk g_xp[TSUP / TT][KCH] __attribute__((aligned(64)));

static inline size_t kind_bytes(int kind) { return kind == K_Q8_0 ? Q8_0_BYTES : kind == K_Q4_0 ? Q4_0_BYTES : Q5_0_BYTES; }
static inline int kind_off(int kind) { return kind == K_Q8_0 ? 128 : kind == K_Q4_0 ? 8 : 16; }

/* the 32 weights of the block at wb, unsigned (q + o), in element order */
static inline __m256i unpack_u(int kind, const uint8_t *wb) {
    if (kind == K_Q8_0)
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(wb + 2)), _mm256_set1_epi8((char)0x80));
    const uint8_t *qs = wb + (kind == K_Q4_0 ? 2 : 6);
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i u = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1),
                                 _mm256_set1_epi8(15));
    if (kind == K_Q5_0) u = _mm256_mask_add_epi8(u, (__mmask32)slm_rd_u32(wb + 2), u, _mm256_set1_epi8(16));
    return u;
}

/* rows [0, nr) of the group (nr <= 16; the rest zero), blocks [b0, b0 + nb) */
static void pack_rows(int kind, const uint8_t *w, size_t ws, int nr, int64_t b0, int nb, pack16 *p) {
    const size_t bb = kind_bytes(kind);
    for (int b = 0; b < nb; b++) {
        __m256i R[16];
        uint16_t d[16];
        for (int r = 0; r < 16; r++) {
            if (r < nr) {
                const uint8_t *wb = w + (size_t)r * ws + (size_t)(b0 + b) * bb;
                R[r] = unpack_u(kind, wb);
                d[r] = slm_rd_u16(wb);
            } else {
                R[r] = _mm256_setzero_si256();
                d[r] = 0;
            }
        }
        p->dw[b] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d));
        /* 16 x 8 dword transpose: V[h][a] lane L = dwords 4h..4h+3 of row 4L + a,
         * then a 4 x 4 transpose inside each 128-bit lane */
        __m512i V[2][4];
        for (int a = 0; a < 4; a++) {
            __m512i y01 = _mm512_inserti64x4(_mm512_castsi256_si512(R[a]), R[4 + a], 1);
            __m512i y23 = _mm512_inserti64x4(_mm512_castsi256_si512(R[8 + a]), R[12 + a], 1);
            V[0][a] = _mm512_shuffle_i32x4(y01, y23, _MM_SHUFFLE(2, 0, 2, 0));
            V[1][a] = _mm512_shuffle_i32x4(y01, y23, _MM_SHUFFLE(3, 1, 3, 1));
        }
        for (int h = 0; h < 2; h++) {
            __m512i t0 = _mm512_unpacklo_epi32(V[h][0], V[h][1]), t1 = _mm512_unpackhi_epi32(V[h][0], V[h][1]);
            __m512i t2 = _mm512_unpacklo_epi32(V[h][2], V[h][3]), t3 = _mm512_unpackhi_epi32(V[h][2], V[h][3]);
            p->w[b][4 * h + 0] = _mm512_unpacklo_epi64(t0, t2);
            p->w[b][4 * h + 1] = _mm512_unpackhi_epi64(t0, t2);
            p->w[b][4 * h + 2] = _mm512_unpacklo_epi64(t1, t3);
            p->w[b][4 * h + 3] = _mm512_unpackhi_epi64(t1, t3);
        }
    }
}

static void prep_tokens(int kind, const uint8_t *x, size_t xs, int nt, int64_t b0, int nb, xblk (*xp)[KCH]) {
    const __m256i ones = _mm256_set1_epi8(1);
    const int o = kind_off(kind);
    for (int t = 0; t < nt; t++)
        for (int b = 0; b < nb; b++) {
            const uint8_t *xb = x + (size_t)t * xs + (size_t)(b0 + b) * Q8_0_BYTES;
            xblk *d = &xp[t / TT][b];
            __m256i v = _mm256_loadu_si256((const __m256i *)(xb + 2));
            _mm256_store_si256((__m256i *)d->q[t % TT], v);
            __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, v);
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
            d->negc[t % TT] = -o * _mm_cvtsi128_si32(s4);
            d->dx[t % TT] = _cvtsh_ss(slm_rd_u16(xb));
        }
}

/* NT tokens (t0.. of the prepared set) x one packed group of 16 rows */
static inline __attribute__((always_inline)) void tile(const int NT, const pack16 *p, int nb, const xblk *xg,
                                                       float *out, size_t os, __mmask16 m, bool first) {
    __m512 acc[TT];
#pragma GCC unroll 8
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const __m512i *W = p->w[b];
        const __m512 dw = p->dw[b];
        __m512i is[TT];
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) is[t] = _mm512_set1_epi32(xg[b].negc[t]);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const __m512i wj = _mm512_load_si512(W + j);
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) {
                is[t] = _mm512_dpbusd_epi32(is[t], wj, _mm512_set1_epi32((int)slm_rd_u32(xg[b].q[t] + 4 * j)));
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[t]), _mm512_mul_ps(dw, _mm512_set1_ps(xg[b].dx[t])), acc[t]);
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; t++) {
        float *o = out + (size_t)t * os;
        __m512 v = first ? acc[t] : _mm512_add_ps(acc[t], _mm512_maskz_loadu_ps(m, o));
        _mm512_mask_storeu_ps(o, m, v);
    }
}

static void gemm32v(int kind, const uint8_t *w, size_t ws, int nrows, const uint8_t *x, size_t xs, int ntok,
                    int64_t nblk, float *out, size_t os) {
    pack16 p __attribute__((aligned(64)));
    for (int ts = 0; ts < ntok; ts += TSUP) {
        const int nts = ntok - ts < TSUP ? ntok - ts : TSUP;
        const uint8_t *xt = x + (size_t)ts * xs;
        float *ot = out + (size_t)ts * os;
        for (int64_t b0 = 0; b0 < nblk; b0 += KCH) {
            const int nb = nblk - b0 < KCH ? (int)(nblk - b0) : KCH;
            prep_tokens(kind, xt, xs, nts, b0, nb, g_xp);
            for (int r0 = 0; r0 < nrows; r0 += 16) {
                const int nr = nrows - r0 < 16 ? nrows - r0 : 16;
                const __mmask16 m = (__mmask16)((1u << nr) - 1);
                pack_rows(kind, w + (size_t)r0 * ws, ws, nr, b0, nb, &p);
                int t = 0;
                for (; t + TT <= nts; t += TT) tile(TT, &p, nb, g_xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0);
                switch (nts - t) {
                case 7: tile(7, &p, nb, g_xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;
                case 6: tile(6, &p, nb, g_xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;
                case 5: tile(5, &p, nb, g_xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;
                case 4: tile(4, &p, nb, g_xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;
                case 3: tile(3, &p, nb, g_xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;
                case 2: tile(2, &p, nb, g_xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;
                case 1: tile(1, &p, nb, g_xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;
                default: break;
                }
            }
        }
    }
}

static void gemm_q8_0(const void *rows, size_t stride, int nrows, const void *xq, size_t xs, int ntok, int64_t n,
                      float *out, size_t os) {
    gemm32v(K_Q8_0, rows, stride, nrows, xq, xs, ntok, n / QK, out, os);
}
static void gemm_q4_0(const void *rows, size_t stride, int nrows, const void *xq, size_t xs, int ntok, int64_t n,
                      float *out, size_t os) {
    gemm32v(K_Q4_0, rows, stride, nrows, xq, xs, ntok, n / QK, out, os);
}
static void gemm_q5_0(const void *rows, size_t stride, int nrows, const void *xq, size_t xs, int ntok, int64_t n,
                      float *out, size_t os) {
    gemm32v(K_Q5_0, rows, stride, nrows, xq, xs, ntok, n / QK, out, os);
}

void slm_kernels_fill_gemm32_avx512(slm_kernels *k) {
    k->gemm[SLM_T_Q8_0] = gemm_q8_0;
    k->gemm[SLM_T_Q4_0] = gemm_q4_0;
    k->gemm[SLM_T_Q5_0] = gemm_q5_0;
}
