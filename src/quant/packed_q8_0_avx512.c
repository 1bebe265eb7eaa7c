/* Q8_0 weights kept in the AVX-512 "16 rows per vector" layout of
 * pack16_avx512.h, made once when a model opens instead of per call.
 *
 * Why: a matrix-vector product over GGUF Q8_0 blocks needs, per 2 blocks of
 * one row, a vpdpbusd plus a convert, a scale permute and an fma: the f32
 * work, not memory, set the pace (about 36 GB/s from L2 on Zen 4, less than
 * the DRAM can stream). Here one vpdpbusd serves 16 rows, the int32 lanes end
 * holding whole 32-element dot products, and a convert and an fma are paid
 * once per 16 rows x 32 elements: decoding becomes memory-bound and a few
 * tokens (batched decoding) share every weight load.
 *
 * Layout, per group of 16 rows (the last one zero-padded) and nb = cols / 32:
 *   nb x 512 bytes: block b's 8 vectors (lane r of vector j = bytes 4j..4j+3
 *                   of row r's block, plus 128, as unsigned bytes);
 *   nb x 16 f16:    block b's scales, lane r = row r's d;
 *   padding to a multiple of 64 bytes, so every group starts aligned.
 * The dot of row r with a token's block is sum (q+128) x - 128 sum x: the
 * second term is the token's, computed once per call and used as the int32
 * sums' starting value.
 *
 * Results equal the scalar kernel up to f32 summation order. */
#include "quant/pack16_avx512.h"
#include "quant/quant_internal.h"

#include <immintrin.h>
#include <stdbool.h>

#define GROUP 16
#define TP 8    /* tokens per register pass */
#define CB 128  /* blocks per prepared column chunk (4096 elements) */
/* Software prefetch distance: the hardware prefetchers alone keep too few
 * lines in flight for one core streaming from DRAM. */
#ifndef PACKED_PF_BYTES
#define PACKED_PF_BYTES 8192
#endif

static size_t group_bytes(int64_t nb) {
    size_t b = (size_t)nb * 512 + (size_t)nb * 32;
    return (b + 63) & ~(size_t)63;
}

static size_t packed_bytes(int64_t rows, int64_t cols) {
    return group_bytes(cols / QK) * (size_t)((rows + GROUP - 1) / GROUP);
}

static void pack_groups(const void *rows, size_t stride, int64_t nrows, int64_t cols, int64_t g0, int64_t g1,
                        void *packed) {
    const int64_t nb = cols / QK;
    const size_t gb = group_bytes(nb);
    for (int64_t g = g0; g < g1; g++) {
        uint8_t *dst = (uint8_t *)packed + (size_t)g * gb;
        uint16_t *sc = (uint16_t *)(dst + (size_t)nb * 512);
        int64_t r0 = g * GROUP;
        int nr = (int)(nrows - r0 < GROUP ? nrows - r0 : GROUP);
        const uint8_t *w = (const uint8_t *)rows + (size_t)r0 * stride;
        for (int64_t b = 0; b < nb; b++) {
            __m256i R[GROUP];
            for (int r = 0; r < GROUP; r++) {
                if (r < nr) {
                    const uint8_t *wb = w + (size_t)r * stride + (size_t)b * Q8_0_BYTES;
                    R[r] = unpack_u(K_Q8_0, wb);
                    sc[b * GROUP + r] = slm_rd_u16(wb);
                } else {
                    R[r] = _mm256_set1_epi8((char)0x80); /* q = 0 */
                    sc[b * GROUP + r] = 0;
                }
            }
            __m512i v[8];
            transpose16x8(R, v);
            /* written once, read much later: streaming stores skip reading
             * the lines in first (a third less memory traffic) */
            for (int j = 0; j < 8; j++) _mm512_stream_si512((__m512i *)(dst + (size_t)b * 512 + 64 * j), v[j]);
        }
        size_t used = (size_t)nb * 544;
        if (gb > used) memset(dst + used, 0, gb - used);
    }
    _mm_sfence(); /* the streaming stores are visible before anyone reads the copy */
}

/* one token's column chunk, prepared once per call */
typedef struct {
    const uint8_t *x;    /* the token's Q8_0 row, at the chunk's first block */
    int32_t negc[CB];    /* -128 * sum of the block's int8 */
    float dx[CB];        /* the block's scale */
} xtok;

static void prep_token(const uint8_t *x, int nb, xtok *p) {
    const __m256i ones = _mm256_set1_epi8(1);
    p->x = x;
    for (int b = 0; b < nb; b++) {
        const uint8_t *xb = x + (size_t)b * Q8_0_BYTES;
        __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, _mm256_loadu_si256((const __m256i *)(xb + 2)));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
        p->negc[b] = -128 * _mm_cvtsi128_si32(s4);
        p->dx[b] = _cvtsh_ss(slm_rd_u16(xb));
    }
}

static inline __m512i bcast4(const uint8_t *p) { return _mm512_set1_epi32((int)slm_rd_u32(p)); }

/* NT prepared tokens x one group, blocks [0, nb) of the chunk whose packed
 * vectors start at q and scales at s: adds into acc[t] (lane r = row r). */
static inline __attribute__((always_inline)) void group_pass(const int NT, const uint8_t *q, const uint16_t *s,
                                                             int nb, const xtok *xt, __m512 *acc) {
    for (int b = 0; b < nb; b++) {
        const __m512i *W = (const __m512i *)(q + (size_t)b * 512);
        /* the stream runs on through the scales and the next group; a
         * prefetch past the end of the copy is dropped, never a fault */
#pragma GCC unroll 8
        for (int l = 0; l < 8; l++) _mm_prefetch((const char *)W + PACKED_PF_BYTES + 64 * l, _MM_HINT_T1);
        __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(s + (size_t)b * GROUP)));
        __m512i w[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) w[j] = _mm512_load_si512(W + j);
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

/* Rows [r0, r0 + nrows) (r0 a multiple of 16) x ntok tokens. Column chunks
 * of CB blocks, token passes of TP: out is written by the first chunk and
 * added to by the others. */
static void packed_tile(const void *packed, int64_t cols, int64_t r0, int nrows, const void *xq, size_t xs,
                        int ntok, float *out, size_t os) {
    const int64_t nb = cols / QK;
    const size_t gb = group_bytes(nb);
    const uint8_t *x = xq;
    xtok xt[TP];
    for (int64_t c0 = 0; c0 < nb; c0 += CB) {
        const int cn = (int)(nb - c0 < CB ? nb - c0 : CB);
        for (int t0 = 0; t0 < ntok; t0 += TP) {
            const int nt = ntok - t0 < TP ? ntok - t0 : TP;
            for (int t = 0; t < nt; t++) prep_token(x + (size_t)(t0 + t) * xs + (size_t)c0 * Q8_0_BYTES, cn, &xt[t]);
            for (int rr = 0; rr < nrows; rr += GROUP) {
                const uint8_t *g = (const uint8_t *)packed + (size_t)((r0 + rr) / GROUP) * gb;
                const uint8_t *q = g + (size_t)c0 * 512;
                const uint16_t *s = (const uint16_t *)(g + (size_t)nb * 512) + (size_t)c0 * GROUP;
                __m512 acc[TP];
                for (int t = 0; t < TP; t++) acc[t] = _mm512_setzero_ps();
                switch (nt) {
                case 1: group_pass(1, q, s, cn, xt, acc); break;
                case 2: group_pass(2, q, s, cn, xt, acc); break;
                case 3: group_pass(3, q, s, cn, xt, acc); break;
                case 4: group_pass(4, q, s, cn, xt, acc); break;
                case 5: group_pass(5, q, s, cn, xt, acc); break;
                case 6: group_pass(6, q, s, cn, xt, acc); break;
                case 7: group_pass(7, q, s, cn, xt, acc); break;
                default: group_pass(8, q, s, cn, xt, acc); break;
                }
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

void slm_kernels_fill_packed_avx512(slm_kernels *k) {
    k->packed[SLM_T_Q8_0] = (slm_packed_kernels){ packed_bytes, pack_groups, packed_tile };
}
