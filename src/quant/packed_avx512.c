/* Q8_0, Q4_0 and Q5_0 weights kept in a "16 rows per vector" layout, made
 * once when a model opens instead of per call.
 *
 * Why: a matrix-vector product over GGUF blocks needs, per 2 blocks of one
 * row, unpacking, a vpdpbusd, a convert, a scale permute and an fma: the
 * work, not memory, set the pace (Q8_0: about 36 GB/s from L2 on Zen 4, less
 * than DRAM streams). Here one vpdpbusd serves 16 rows, the int32 lanes end
 * holding whole 32-element dot products of 16 rows, and the f32 work is paid
 * once per 16 rows x 32 elements: decoding becomes memory-bound and a few
 * tokens (batched decoding) share every weight load.
 *
 * Layout, per group of 16 rows (the last one zero-padded), nb = cols / 32,
 * u = q + o the unsigned weights (o = 128, 8, 16), as vpdpbusd wants them:
 *   nb x 16 f16: block b's scales, lane r = row r's d, padded to a
 *                multiple of 64 bytes (first: the scales of a block are then
 *                read after the prefetches ahead of the stream reached them);
 *   nb x QB bytes of block data:
 *     Q8_0 (QB 512): 8 vectors, lane r of vector j = u of elements 4j..4j+3
 *                    of row r (pack16_avx512.h);
 *     Q4_0 (QB 256): 4 vectors, lane r of vector k = bytes 4k..4k+3 of row
 *                    r's qs: low nibbles elements 4k.., high ones 16+4k..,
 *                    so vector k gives the Q8_0 layout's vectors k and k+4
 *                    with an and and a shift;
 *     Q5_0 (QB 320): those 4 vectors, then 8 masks of 64 bits: bit 4r+i of
 *                    mask j = the fifth bit of element 4j+i of row r;
 * Q4_0 and Q5_0 take exactly the bytes of their GGUF blocks; Q8_0 too.
 * The dot of row r with a token's block is sum u x - o sum x: the second
 * term is the token's, computed once per call as the int32 sums' start.
 *
 * Results equal the scalar kernel up to f32 summation order. */
#include "quant/pack16_avx512.h"
#include "quant/quant_internal.h"

#include <immintrin.h>
#include <stdbool.h>

#define GROUP 16
#define TP 8    /* tokens per register pass */
#define CB 128  /* blocks per prepared column chunk (4096 elements) */
/* Software prefetch: the hardware prefetchers alone keep too few lines in
 * flight for one core streaming from DRAM, and on Zen 4 a single prefetch
 * per line is not enough either (requests are dropped when the queues are
 * full): every line is asked for PACKED_PF_TIMES times, at 1..TIMES x
 * PACKED_PF_BYTES ahead. Measured on the 262144 x 640 Q8_0 head, one
 * thread, huge pages: once at 16 KB 19 GB/s, at 8/16/24 KB 25 GB/s, at
 * 4..20 KB 30 GB/s (the streaming read bandwidth of bench/membw.c). */
#ifndef PACKED_PF_BYTES
#define PACKED_PF_BYTES 4096
#endif
#ifndef PACKED_PF_TIMES
#define PACKED_PF_TIMES 5
#endif

static inline size_t block_data(int kind) { return kind == K_Q8_0 ? 512 : kind == K_Q4_0 ? 256 : 320; }

/* a group: its scales first (padded to 64 bytes), then its block data */
static size_t scale_bytes(int64_t nb) { return ((size_t)nb * 32 + 63) & ~(size_t)63; }
static size_t group_bytes(int kind, int64_t nb) { return scale_bytes(nb) + (size_t)nb * block_data(kind); }

/* ---- packing ---- */

/* 16 rows of 4 dwords (p + r*stride) -> 4 vectors, lane r of out[k] = dword k of row r */
static inline void transpose16x4(const uint8_t *p, size_t stride, int nr, __m512i out[4]) {
    uint32_t t[4][GROUP];
    for (int r = 0; r < GROUP; r++)
        for (int k = 0; k < 4; k++) t[k][r] = r < nr ? slm_rd_u32(p + (size_t)r * stride + 4 * k) : 0x88888888u;
    for (int k = 0; k < 4; k++) out[k] = _mm512_loadu_si512(t[k]);
}

static void pack_block(int kind, const uint8_t *wb, size_t stride, int nr, uint8_t *dst, uint16_t *sc) {
    for (int r = 0; r < GROUP; r++) sc[r] = r < nr ? slm_rd_u16(wb + (size_t)r * stride) : 0;
    if (kind == K_Q8_0) {
        __m256i R[GROUP];
        for (int r = 0; r < GROUP; r++)
            R[r] = r < nr ? unpack_u(K_Q8_0, wb + (size_t)r * stride) : _mm256_set1_epi8((char)0x80);
        __m512i v[8];
        transpose16x8(R, v);
        /* written once, read much later: streaming stores skip reading the
         * lines in first (a third less memory traffic) */
        for (int j = 0; j < 8; j++) _mm512_stream_si512((__m512i *)(dst + 64 * j), v[j]);
        return;
    }
    __m512i v[4];
    transpose16x4(wb + (kind == K_Q4_0 ? 2 : 6), stride, nr, v);
    for (int k = 0; k < 4; k++) _mm512_stream_si512((__m512i *)(dst + 64 * k), v[k]);
    if (kind == K_Q5_0) {
        uint64_t m[8] = { 0 };
        for (int r = 0; r < nr; r++) {
            uint32_t qh = slm_rd_u32(wb + (size_t)r * stride + 2);
            for (int j = 0; j < 8; j++) m[j] |= (uint64_t)((qh >> (4 * j)) & 15u) << (4 * r);
        }
        _mm512_stream_si512((__m512i *)(dst + 256), _mm512_loadu_si512(m));
    }
}

static void pack_kind(int kind, const void *rows, size_t stride, int64_t nrows, int64_t cols, int64_t g0, int64_t g1,
                      void *packed) {
    const int64_t nb = cols / QK;
    const size_t gb = group_bytes(kind, nb), qb = block_data(kind), bb = kind_bytes(kind);
    for (int64_t g = g0; g < g1; g++) {
        uint8_t *grp = (uint8_t *)packed + (size_t)g * gb, *dst = grp + scale_bytes(nb);
        uint16_t *sc = (uint16_t *)grp;
        int64_t r0 = g * GROUP;
        int nr = (int)(nrows - r0 < GROUP ? nrows - r0 : GROUP);
        const uint8_t *w = (const uint8_t *)rows + (size_t)r0 * stride;
        for (int64_t b = 0; b < nb; b++) pack_block(kind, w + (size_t)b * bb, stride, nr, dst + (size_t)b * qb, sc + b * GROUP);
        size_t used = (size_t)nb * 32;
        if (scale_bytes(nb) > used) memset(grp + used, 0, scale_bytes(nb) - used);
    }
    _mm_sfence(); /* the streaming stores are visible before anyone reads the copy */
}

/* ---- products ---- */

/* one token's column chunk, prepared once per call */
typedef struct {
    const uint8_t *x;    /* the token's Q8_0 row, at the chunk's first block */
    int32_t negc[CB];    /* -o * sum of the block's int8 */
    float dx[CB];        /* the block's scale */
} xtok;

static void prep_token(int kind, const uint8_t *x, int nb, xtok *p) {
    const __m256i ones = _mm256_set1_epi8(1);
    const int o = kind_off(kind);
    p->x = x;
    for (int b = 0; b < nb; b++) {
        const uint8_t *xb = x + (size_t)b * Q8_0_BYTES;
        __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, _mm256_loadu_si256((const __m256i *)(xb + 2)));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
        p->negc[b] = -o * _mm_cvtsi128_si32(s4);
        p->dx[b] = _cvtsh_ss(slm_rd_u16(xb));
    }
}

static inline __m512i bcast4(const uint8_t *p) { return _mm512_set1_epi32((int)slm_rd_u32(p)); }

/* block data at q -> the 8 vectors of u in the Q8_0 layout */
static inline __attribute__((always_inline)) void load_u(const int kind, const uint8_t *q, __m512i w[8]) {
    if (kind == K_Q8_0) {
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) w[j] = _mm512_load_si512((const __m512i *)(q + 64 * j));
        return;
    }
    const __m512i m15 = _mm512_set1_epi8(15);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        __m512i v = _mm512_load_si512((const __m512i *)(q + 64 * k));
        w[k] = _mm512_and_si512(v, m15);
        w[k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m15);
    }
    if (kind == K_Q5_0) {
        const __m512i sixteen = _mm512_set1_epi8(16);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            uint64_t bits;
            memcpy(&bits, q + 256 + 8 * j, 8);
            __mmask64 h = _cvtu64_mask64(bits);
            w[j] = _mm512_mask_add_epi8(w[j], h, w[j], sixteen);
        }
    }
}

/* NT prepared tokens x one group, blocks [0, nb) of the chunk whose block
 * data start at q and scales at s: adds into acc[t] (lane r = row r). */
static inline __attribute__((always_inline)) void group_pass(const int kind, const int NT, const uint8_t *q,
                                                             const uint16_t *s, int nb, const xtok *xt, __m512 *acc) {
    const size_t qb = block_data(kind);
    for (int b = 0; b < nb; b++) {
        const uint8_t *qbk = q + (size_t)b * qb;
        /* the stream runs on through the scales and the next group; a
         * prefetch past the end of the copy is dropped, never a fault */
#if PACKED_PF_BYTES > 0
#pragma GCC unroll 8
        for (size_t l = 0; l < qb / 64; l++)
#pragma GCC unroll 8
            for (int k = 1; k <= PACKED_PF_TIMES; k++)
                _mm_prefetch((const char *)qbk + k * PACKED_PF_BYTES + 64 * l, _MM_HINT_T1);
#endif
        __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(s + (size_t)b * GROUP)));
        __m512i w[8];
        load_u(kind, qbk, w);
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) {
            const uint8_t *xb = xt[t].x + (size_t)b * Q8_0_BYTES + 2;
            /* two chains of four: the adds are not all in one dependency line */
            __m512i a0 = _mm512_set1_epi32(xt[t].negc[b]), a1 = _mm512_setzero_si512();
            a0 = _mm512_dpbusd_epi32(a0, w[0], bcast4(xb));
            a1 = _mm512_dpbusd_epi32(a1, w[1], bcast4(xb + 4));
            a0 = _mm512_dpbusd_epi32(a0, w[2], bcast4(xb + 8));
            a1 = _mm512_dpbusd_epi32(a1, w[3], bcast4(xb + 12));
            a0 = _mm512_dpbusd_epi32(a0, w[4], bcast4(xb + 16));
            a1 = _mm512_dpbusd_epi32(a1, w[5], bcast4(xb + 20));
            a0 = _mm512_dpbusd_epi32(a0, w[6], bcast4(xb + 24));
            a1 = _mm512_dpbusd_epi32(a1, w[7], bcast4(xb + 28));
            __m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(xt[t].dx[b]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, a1)), sc, acc[t]);
        }
    }
}

static inline __attribute__((always_inline)) void group_any(const int kind, int nt, const uint8_t *q, const uint16_t *s,
                                                            int nb, const xtok *xt, __m512 *acc) {
    switch (nt) {
    case 1: group_pass(kind, 1, q, s, nb, xt, acc); break;
    case 2: group_pass(kind, 2, q, s, nb, xt, acc); break;
    case 3: group_pass(kind, 3, q, s, nb, xt, acc); break;
    case 4: group_pass(kind, 4, q, s, nb, xt, acc); break;
    case 5: group_pass(kind, 5, q, s, nb, xt, acc); break;
    case 6: group_pass(kind, 6, q, s, nb, xt, acc); break;
    case 7: group_pass(kind, 7, q, s, nb, xt, acc); break;
    default: group_pass(kind, 8, q, s, nb, xt, acc); break;
    }
}

/* Rows [r0, r0 + nrows) (r0 a multiple of 16) x ntok tokens. Column chunks
 * of CB blocks, token passes of TP: out is written by the first chunk and
 * added to by the others. */
static inline __attribute__((always_inline)) void tile_kind(const int kind, const void *packed, int64_t cols,
                                                            int64_t r0, int nrows, const void *xq, size_t xs,
                                                            int ntok, float *out, size_t os) {
    const int64_t nb = cols / QK;
    const size_t gb = group_bytes(kind, nb), qb = block_data(kind);
    const uint8_t *x = xq;
    xtok xt[TP];
    for (int64_t c0 = 0; c0 < nb; c0 += CB) {
        const int cn = (int)(nb - c0 < CB ? nb - c0 : CB);
        for (int t0 = 0; t0 < ntok; t0 += TP) {
            const int nt = ntok - t0 < TP ? ntok - t0 : TP;
            for (int t = 0; t < nt; t++)
                prep_token(kind, x + (size_t)(t0 + t) * xs + (size_t)c0 * Q8_0_BYTES, cn, &xt[t]);
            for (int rr = 0; rr < nrows; rr += GROUP) {
                const uint8_t *g = (const uint8_t *)packed + (size_t)((r0 + rr) / GROUP) * gb;
                const uint8_t *q = g + scale_bytes(nb) + (size_t)c0 * qb;
                const uint16_t *s = (const uint16_t *)g + (size_t)c0 * GROUP;
                __m512 acc[TP];
                for (int t = 0; t < TP; t++) acc[t] = _mm512_setzero_ps();
                group_any(kind, nt, q, s, cn, xt, acc);
                const int left = nrows - rr;
                const __mmask16 m = left >= GROUP ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
                for (int t = 0; t < nt; t++) {
                    float *o = out + (size_t)(t0 + t) * os + rr;
                    __m512 v = c0 ? _mm512_add_ps(acc[t], _mm512_maskz_loadu_ps(m, o)) : acc[t];
                    _mm512_mask_storeu_ps(o, m, v);
                }
            }
        }
    }
}

#define PACKED_KIND(name, kind)                                                                              \
    static size_t bytes_##name(int64_t rows, int64_t cols) {                                                 \
        return group_bytes(kind, cols / QK) * (size_t)((rows + GROUP - 1) / GROUP);                          \
    }                                                                                                        \
    static void pack_##name(const void *rows, size_t stride, int64_t nrows, int64_t cols, int64_t g0,        \
                            int64_t g1, void *packed) {                                                      \
        pack_kind(kind, rows, stride, nrows, cols, g0, g1, packed);                                          \
    }                                                                                                        \
    static void tile_##name(const void *packed, int64_t cols, int64_t r0, int nrows, const void *xq,         \
                            size_t xs, int ntok, float *out, size_t os) {                                    \
        tile_kind(kind, packed, cols, r0, nrows, xq, xs, ntok, out, os);                                     \
    }
PACKED_KIND(q8_0, K_Q8_0)
PACKED_KIND(q4_0, K_Q4_0)
PACKED_KIND(q5_0, K_Q5_0)

void slm_kernels_fill_packed_avx512(slm_kernels *k) {
    k->packed[SLM_T_Q8_0] = (slm_packed_kernels){ bytes_q8_0, pack_q8_0, tile_q8_0 };
    k->packed[SLM_T_Q4_0] = (slm_packed_kernels){ bytes_q4_0, pack_q4_0, tile_q4_0 };
    k->packed[SLM_T_Q5_0] = (slm_packed_kernels){ bytes_q5_0, pack_q5_0, tile_q5_0 };
}
