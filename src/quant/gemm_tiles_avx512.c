/* AVX-512 VNNI tiles for prompt processing's matrix products (several rows
 * x several tokens): Q8_0, Q4_0, Q5_0 against Q8_0 activations, Q4_K and
 * Q6_K against Q8_K.
 *
 * Layout: the 16 int32 lanes of a vector are 16 weight ROWS. A group of 16
 * rows is unpacked once per call into that layout, 32 elements at a time:
 * vector j holds bytes 4j..4j+3 of each row's 32 (unsigned) weights. One
 * token's 32 elements then cost 8 vpdpbusd, each taking the token's bytes
 * 4j..4j+3 as a broadcast, and the int32 lanes end holding whole 32-element
 * dot products of 16 rows. Only then is f32 work done: one convert and one
 * fma per 16 rows x 32 elements, so the integer units, not the f32 ones, set
 * the pace (the two-blocks-per-vector layout of vec_dot_avx512.c needed a
 * convert and two f32 ops per vpdpbusd). The tokens' bytes are first copied
 * side by side (8 tokens per group) so one pointer addresses them all, and
 * the result of a group is a contiguous run of out: one masked store.
 *
 * 32-blocks: weights are made unsigned, u = q + o (o = 128, 8, 16), as
 * vpdpbusd wants its first operand; sum u x = sum q x + o sum x, and o sum x
 * depends on the token's block only: it is computed once per call and
 * starts each block's int32 sums at -o sum x. The K-quants: see their notes.
 *
 * Results equal the scalar kernel up to f32 summation order. */
#include "quant/pack16_avx512.h"
#include "quant/quant_internal.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>


#define KCH 32    /* blocks per packed chunk: 32 x 640 B = 20 KB of stack */
#define TSUP 128  /* tokens prepared at once */
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
        transpose16x8(R, p->w[b]);
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

/* Every tile's end: NT rows of 16 sums (lanes masked by m) stored to out,
 * or added to it after the first chunk of blocks. */
static inline __attribute__((always_inline)) void store_tile(const int NT, const __m512 *acc, float *out, size_t os,
                                                             __mmask16 m, bool first) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; t++) {
        float *o = out + (size_t)t * os;
        __m512 v = first ? acc[t] : _mm512_add_ps(acc[t], _mm512_maskz_loadu_ps(m, o));
        _mm512_mask_storeu_ps(o, m, v);
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
    store_tile(NT, acc, out, os, m, first);
}

/* Per-thread scratch, allocated on a thread's first prompt tile and freed
 * when the thread ends: the packed 16-row group (~20 KB) and the prepared
 * tokens of a TSUP set (~160 KB), too large for the stacks of callers'
 * threads or for static TLS. NULL if out of memory (callers then fall back
 * to the single-row kernels). */
#define SCRATCH_PACK 24576
#define SCRATCH_X 167936
static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;
static bool g_scratch_ok;
static void scratch_key_init(void) { g_scratch_ok = pthread_key_create(&g_scratch_key, free) == 0; }
static uint8_t *tile_scratch(void) {
    pthread_once(&g_scratch_once, scratch_key_init);
    if (!g_scratch_ok) return NULL;
    uint8_t *p = pthread_getspecific(g_scratch_key);
    if (!p) {
        p = aligned_alloc(64, SCRATCH_PACK + SCRATCH_X);
        if (p && pthread_setspecific(g_scratch_key, p) != 0) {
            free(p);
            p = NULL;
        }
    }
    return p;
}

/* Rows too few tokens for tiles, or no scratch: one-row kernels per token. */
static inline __attribute__((always_inline)) void gemm_by_rows(uint32_t type, const uint8_t *w, size_t ws, int nrows, const uint8_t *x, size_t xs, int ntok,
                         int64_t n, float *out, size_t os) {
    for (int t = 0; t < ntok; t++) slm_vec_dot_rows(type, w, ws, nrows, x + (size_t)t * xs, n, out + (size_t)t * os);
}

/* The one driver of every type's tiles (a macro, so that each type's TILE
 * and its constant token counts inline as before): for each set of TSUP
 * tokens and each chunk of KCHUNK blocks of BLOCK elements, PREP readies
 * the tokens' blocks (XT, in the scratch after the pack), then each group
 * of 16 rows is packed by PACK (PT) and multiplied with TT tokens at a time,
 * the last 1..7 tokens by a tile of that width. The first chunk stores,
 * later ones add. Needs w, ws, nrows, x, xs, ntok, n, out, os and scr. */
#define GEMM_TILES(PT, XT, KCHUNK, BLOCK, PREP, PACK, TILE)                                                      \
    do {                                                                                                         \
        const int64_t nblk = n / (BLOCK);                                                                        \
        PT *p = (PT *)scr;                                                                                       \
        XT (*xp)[KCHUNK] = (XT (*)[KCHUNK])(scr + SCRATCH_PACK);                                                 \
        for (int ts = 0; ts < ntok; ts += TSUP) {                                                                \
            const int nts = ntok - ts < TSUP ? ntok - ts : TSUP;                                                 \
            const uint8_t *xt = x + (size_t)ts * xs;                                                             \
            float *ot = out + (size_t)ts * os;                                                                   \
            for (int64_t b0 = 0; b0 < nblk; b0 += KCHUNK) {                                                      \
                const int nb = nblk - b0 < KCHUNK ? (int)(nblk - b0) : KCHUNK;                                   \
                PREP(xt, xs, nts, b0, nb, xp);                                                                   \
                for (int r0 = 0; r0 < nrows; r0 += 16) {                                                         \
                    const int nr = nrows - r0 < 16 ? nrows - r0 : 16;                                            \
                    const __mmask16 m = (__mmask16)((1u << nr) - 1);                                             \
                    PACK(w + (size_t)r0 * ws, ws, nr, b0, nb, p);                                                \
                    int t = 0;                                                                                   \
                    for (; t + TT <= nts; t += TT) TILE(TT, p, nb, xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); \
                    switch (nts - t) {                                                                           \
                    case 7: TILE(7, p, nb, xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;         \
                    case 6: TILE(6, p, nb, xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;         \
                    case 5: TILE(5, p, nb, xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;         \
                    case 4: TILE(4, p, nb, xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;         \
                    case 3: TILE(3, p, nb, xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;         \
                    case 2: TILE(2, p, nb, xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;         \
                    case 1: TILE(1, p, nb, xp[t / TT], ot + (size_t)t * os + r0, os, m, b0 == 0); break;         \
                    default: break;                                                                              \
                    }                                                                                            \
                }                                                                                                \
            }                                                                                                    \
        }                                                                                                        \
    } while (0)

/* Q8_0 / Q4_0 / Q5_0 (kind K_*): the 32-element blocks */
#define PREP_32(...) prep_tokens(kind, __VA_ARGS__)
#define PACK_32(...) pack_rows(kind, __VA_ARGS__)
static void gemm32v(int kind, uint32_t type, const uint8_t *w, size_t ws, int nrows, const uint8_t *x, size_t xs,
                    int ntok, int64_t n, float *out, size_t os) {
    uint8_t *scr = tile_scratch();
    if (!scr) { gemm_by_rows(type, w, ws, nrows, x, xs, ntok, n, out, os); return; }
    GEMM_TILES(pack16, xblk, KCH, QK, PREP_32, PACK_32, tile);
}

static void gemm_q8_0(const void *rows, size_t stride, int nrows, const void *xq, size_t xs, int ntok, int64_t n,
                      float *out, size_t os) {
    gemm32v(K_Q8_0, SLM_T_Q8_0, rows, stride, nrows, xq, xs, ntok, n, out, os);
}
static void gemm_q4_0(const void *rows, size_t stride, int nrows, const void *xq, size_t xs, int ntok, int64_t n,
                      float *out, size_t os) {
    gemm32v(K_Q4_0, SLM_T_Q4_0, rows, stride, nrows, xq, xs, ntok, n, out, os);
}
static void gemm_q5_0(const void *rows, size_t stride, int nrows, const void *xq, size_t xs, int ntok, int64_t n,
                      float *out, size_t os) {
    gemm32v(K_Q5_0, SLM_T_Q5_0, rows, stride, nrows, xq, xs, ntok, n, out, os);
}

/* ---- Q4_K x Q8_K ----
 *
 * The same row layout, per 32-element sub-block j of a super-block: 8
 * vpdpbusd of the nibbles (0..15, unsigned as they are) with the token's
 * bytes, then one fma scales the int32 sums by d * sc_j (per row, f32).
 * The min term, -dmin sum_j m_j xs_j with xs_j the token's sum over
 * sub-block j (from its bsums), comes from 4 vpdpwssd of int16 pairs
 * (m_2i, m_2i+1) x (xs_2i, xs_2i+1). */

#define KCHK 4 /* super-blocks per packed chunk: 4 x 4.9 KB */
/* Below this many tokens, unpacking a 16-row group costs more than the
 * single-row kernels once per token (the scale decoding is per row). */
#define K_MIN_TOK 4

typedef struct {
    __m512i w[KCHK][8][8]; /* [super-block][sub-block j][step s] */
    __m512 dsc[KCHK][8];   /* lane r: d * sc_j of row r */
    __m512i mp[KCHK][4];   /* lane r: int16 pair (m_2i, m_2i+1) of row r */
    __m512 ndmin[KCHK];    /* lane r: -dmin of row r */
} packk;

typedef struct {
    uint8_t q[TT][QK_K];
    int32_t xsp[TT][4]; /* int16 pairs (xs_2i, xs_2i+1) */
    int32_t bsp[TT][8]; /* the bsums as int16 pairs (bsum_2i, bsum_2i+1) */
    float dx[TT];
} xblkk;


static void pack_q4k(const uint8_t *w, size_t ws, int nr, int64_t b0, int nb, packk *p) {
    uint64_t sc64[16], m64[16]; /* the 8 six-bit scales / mins of each row, one per byte */
    float dv[16], ndmin[16];
    __m256i R[8][16];
    const __m256i m15 = _mm256_set1_epi8(15);
    const __m512i ff = _mm512_set1_epi64(0xff);
    for (int b = 0; b < nb; b++) {
        for (int r = 0; r < 16; r++) {
            if (r >= nr) {
                for (int j = 0; j < 8; j++) R[j][r] = _mm256_setzero_si256();
                sc64[r] = m64[r] = 0;
                dv[r] = ndmin[r] = 0.f;
                continue;
            }
            const uint8_t *wb = w + (size_t)r * ws + (size_t)(b0 + b) * Q4_K_BYTES;
            dv[r] = _cvtsh_ss(slm_rd_u16(wb));
            ndmin[r] = -_cvtsh_ss(slm_rd_u16(wb + 2));
            /* slm_k4_scale_min for all 8 sub-blocks at once */
            const uint32_t u0 = slm_rd_u32(wb + Q4_K_SC), u1 = slm_rd_u32(wb + Q4_K_SC + 4), u2 = slm_rd_u32(wb + Q4_K_SC + 8);
            sc64[r] = (uint64_t)(u0 & 0x3f3f3f3fu) | (uint64_t)((u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u)) << 32;
            m64[r] = (uint64_t)(u1 & 0x3f3f3f3fu) | (uint64_t)(((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u)) << 32;
            for (int i = 0; i < 4; i++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(wb + Q4_K_QS + 32 * i));
                R[2 * i][r] = _mm256_and_si256(q, m15);
                R[2 * i + 1][r] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m15);
            }
        }
        const __m512i S0 = _mm512_loadu_si512(sc64), S1 = _mm512_loadu_si512(sc64 + 8);
        const __m512i M0 = _mm512_loadu_si512(m64), M1 = _mm512_loadu_si512(m64 + 8);
        const __m512 D = _mm512_loadu_ps(dv);
        for (int j = 0; j < 8; j++) {
            transpose16x8(R[j], p->w[b][j]);
            const __m512i sh = _mm512_set1_epi64(8 * j);
            __m512i sj = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_and_si512(_mm512_srlv_epi64(S0, sh), ff))),
                                            _mm512_cvtepi64_epi32(_mm512_and_si512(_mm512_srlv_epi64(S1, sh), ff)), 1);
            p->dsc[b][j] = _mm512_mul_ps(_mm512_cvtepi32_ps(sj), D);
        }
        for (int i = 0; i < 4; i++) {
            const __m512i sh = _mm512_set1_epi64(16 * i), sh8 = _mm512_set1_epi64(16 * i + 8);
            /* (m_2i, m_2i+1) -> int16 pair: m_2i | m_2i+1 << 16 */
            __m512i v0 = _mm512_or_si512(_mm512_and_si512(_mm512_srlv_epi64(M0, sh), ff),
                                         _mm512_slli_epi64(_mm512_and_si512(_mm512_srlv_epi64(M0, sh8), ff), 16));
            __m512i v1 = _mm512_or_si512(_mm512_and_si512(_mm512_srlv_epi64(M1, sh), ff),
                                         _mm512_slli_epi64(_mm512_and_si512(_mm512_srlv_epi64(M1, sh8), ff), 16));
            p->mp[b][i] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(v0)), _mm512_cvtepi64_epi32(v1), 1);
        }
        p->ndmin[b] = _mm512_loadu_ps(ndmin);
    }
}

static void prep_k(const uint8_t *x, size_t xs, int nt, int64_t b0, int nb, xblkk (*xp)[KCHK]) {
    for (int t = 0; t < nt; t++)
        for (int b = 0; b < nb; b++) {
            const uint8_t *xb = x + (size_t)t * xs + (size_t)(b0 + b) * Q8_K_BYTES;
            xblkk *d = &xp[t / TT][b];
            memcpy(d->q[t % TT], xb + Q8_K_QS, QK_K);
            memcpy(d->bsp[t % TT], xb + Q8_K_BSUMS, 32);
            for (int i = 0; i < 4; i++) {
                int s0 = slm_rd_i16(xb + Q8_K_BSUMS + 8 * i) + slm_rd_i16(xb + Q8_K_BSUMS + 8 * i + 2);
                int s1 = slm_rd_i16(xb + Q8_K_BSUMS + 8 * i + 4) + slm_rd_i16(xb + Q8_K_BSUMS + 8 * i + 6);
                d->xsp[t % TT][i] = (int32_t)(((uint32_t)s0 & 0xffffu) | (uint32_t)s1 << 16);
            }
            d->dx[t % TT] = slm_rd_f32(xb);
        }
}

static inline __attribute__((always_inline)) void tile_k(const int NT, const packk *p, int nb, const xblkk *xg,
                                                         float *out, size_t os, __mmask16 m, bool first) {
    __m512 acc[TT];
#pragma GCC unroll 8
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512 sb[TT];
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) sb[t] = _mm512_setzero_ps();
        for (int j = 0; j < 8; j++) {
            __m512i is[TT];
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) is[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int s = 0; s < 8; s++) {
                const __m512i wv = _mm512_load_si512(&p->w[b][j][s]);
#pragma GCC unroll 8
                for (int t = 0; t < NT; t++)
                    is[t] = _mm512_dpbusd_epi32(is[t], wv, _mm512_set1_epi32((int)slm_rd_u32(xg[b].q[t] + 32 * j + 4 * s)));
            }
            const __m512 dsc = p->dsc[b][j];
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) sb[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[t]), dsc, sb[t]);
        }
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) {
            __m512i mi = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) mi = _mm512_dpwssd_epi32(mi, p->mp[b][i], _mm512_set1_epi32(xg[b].xsp[t][i]));
            sb[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mi), p->ndmin[b], sb[t]);
            acc[t] = _mm512_fmadd_ps(sb[t], _mm512_set1_ps(xg[b].dx[t]), acc[t]);
        }
    }
    store_tile(NT, acc, out, os, m, first);
}

/* A K-quant type's entry point: below K_MIN_TOK tokens (or without scratch)
 * the one-row kernels, else GEMM_TILES with its pack and tile. */
#define GEMM_K(NAME, TYPE, PT, PACK, TILE)                                                                       \
    static void NAME(const void *rows, size_t ws, int nrows, const void *xq, size_t xs, int ntok, int64_t n,     \
                     float *out, size_t os) {                                                                    \
        const uint8_t *w = rows, *x = xq;                                                                        \
        uint8_t *scr = ntok < K_MIN_TOK ? NULL : tile_scratch();                                                 \
        if (!scr) { gemm_by_rows(TYPE, w, ws, nrows, x, xs, ntok, n, out, os); return; }                         \
        GEMM_TILES(PT, xblkk, KCHK, QK_K, prep_k, PACK, TILE);                                                   \
    }

GEMM_K(gemm_q4_k, SLM_T_Q4_K, packk, pack_q4k, tile_k)

/* ---- Q6_K x Q8_K ----
 *
 * Per 32-element group G of a super-block (sub-blocks 2G and 2G+1 of 16):
 * 8 vpdpbusd of the 6-bit values u = q + 32 (unsigned), the first 4 and
 * the last 4 into separate sums, each scaled by d * sc (f32, per row). The
 * -32 offset, -32 d sum_i sc_i bsum_i, comes from 8 vpdpwssd of int16 pairs
 * (sc_2i, sc_2i+1) x (bsum_2i, bsum_2i+1). */

typedef struct {
    __m512i w[KCHK][8][8]; /* [super-block][group G][step s] */
    __m512 dsc[KCHK][16];  /* lane r: d * sc_i of row r */
    __m512i scp[KCHK][8];  /* lane r: int16 pair (sc_2i, sc_2i+1) of row r */
    __m512 nd32[KCHK];     /* lane r: -32 d of row r */
} pack6;

static void pack_q6k(const uint8_t *w, size_t ws, int nr, int64_t b0, int nb, pack6 *p) {
    float dsc[16][16], nd32[16];
    int32_t scp[8][16];
    __m256i R[8][16];
    const __m256i m15 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    for (int b = 0; b < nb; b++) {
        for (int r = 0; r < 16; r++) {
            if (r >= nr) {
                for (int g = 0; g < 8; g++) { R[g][r] = _mm256_setzero_si256(); scp[g][r] = 0; }
                for (int i = 0; i < 16; i++) dsc[i][r] = 0.f;
                nd32[r] = 0.f;
                continue;
            }
            const uint8_t *wb = w + (size_t)r * ws + (size_t)(b0 + b) * Q6_K_BYTES;
            const float d = _cvtsh_ss(slm_rd_u16(wb + Q6_K_D));
            const int8_t *sc = (const int8_t *)(wb + Q6_K_SC);
            nd32[r] = -32.f * d;
            for (int i = 0; i < 16; i++) dsc[i][r] = d * (float)sc[i];
            for (int i = 0; i < 8; i++)
                scp[i][r] = (int32_t)(((uint32_t)(int32_t)sc[2 * i] & 0xffffu) | (uint32_t)(int32_t)sc[2 * i + 1] << 16);
            for (int h = 0; h < 2; h++) {
                __m256i ql0 = _mm256_loadu_si256((const __m256i *)(wb + 64 * h));
                __m256i ql1 = _mm256_loadu_si256((const __m256i *)(wb + 64 * h + 32));
                __m256i qh = _mm256_loadu_si256((const __m256i *)(wb + Q6_K_QH + 32 * h));
                R[4 * h + 0][r] = _mm256_or_si256(_mm256_and_si256(ql0, m15), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
                R[4 * h + 1][r] = _mm256_or_si256(_mm256_and_si256(ql1, m15), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
                R[4 * h + 2][r] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m15), _mm256_and_si256(qh, m30));
                R[4 * h + 3][r] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m15),
                                                  _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            }
        }
        for (int g = 0; g < 8; g++) {
            transpose16x8(R[g], p->w[b][g]);
            p->scp[b][g] = _mm512_loadu_si512(scp[g]);
        }
        for (int i = 0; i < 16; i++) p->dsc[b][i] = _mm512_loadu_ps(dsc[i]);
        p->nd32[b] = _mm512_loadu_ps(nd32);
    }
}

static inline __attribute__((always_inline)) void tile_6(const int NT, const pack6 *p, int nb, const xblkk *xg,
                                                         float *out, size_t os, __mmask16 m, bool first) {
    __m512 acc[TT];
#pragma GCC unroll 8
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512 sb[TT];
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) {
            __m512i ci = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) ci = _mm512_dpwssd_epi32(ci, p->scp[b][i], _mm512_set1_epi32(xg[b].bsp[t][i]));
            sb[t] = _mm512_mul_ps(_mm512_cvtepi32_ps(ci), p->nd32[b]);
        }
        for (int g = 0; g < 8; g++) {
#pragma GCC unroll 2
            for (int half = 0; half < 2; half++) {
                __m512i is[TT];
#pragma GCC unroll 8
                for (int t = 0; t < NT; t++) is[t] = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int s = 4 * half; s < 4 * half + 4; s++) {
                    const __m512i wv = _mm512_load_si512(&p->w[b][g][s]);
#pragma GCC unroll 8
                    for (int t = 0; t < NT; t++)
                        is[t] = _mm512_dpbusd_epi32(is[t], wv, _mm512_set1_epi32((int)slm_rd_u32(xg[b].q[t] + 32 * g + 4 * s)));
                }
                const __m512 dsc = p->dsc[b][2 * g + half];
#pragma GCC unroll 8
                for (int t = 0; t < NT; t++) sb[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[t]), dsc, sb[t]);
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) acc[t] = _mm512_fmadd_ps(sb[t], _mm512_set1_ps(xg[b].dx[t]), acc[t]);
    }
    store_tile(NT, acc, out, os, m, first);
}

GEMM_K(gemm_q6_k, SLM_T_Q6_K, pack6, pack_q6k, tile_6)

_Static_assert(sizeof(pack16) <= SCRATCH_PACK && sizeof(packk) <= SCRATCH_PACK && sizeof(pack6) <= SCRATCH_PACK,
               "pack scratch");
_Static_assert(sizeof(xblk[TSUP / TT][KCH]) <= SCRATCH_X && sizeof(xblkk[TSUP / TT][KCHK]) <= SCRATCH_X, "token scratch");

void slm_kernels_fill_gemm_tiles_avx512(slm_kernels *k) {
    k->gemm[SLM_T_Q8_0] = gemm_q8_0;
    k->gemm[SLM_T_Q4_0] = gemm_q4_0;
    k->gemm[SLM_T_Q5_0] = gemm_q5_0;
    k->gemm[SLM_T_Q4_K] = gemm_q4_k;
    k->gemm[SLM_T_Q6_K] = gemm_q6_k;
}
