/* AVX-512 (F, BW, VL, DQ, VNNI) kernels; chosen when the CPU has all five.
 * Here: Q8_0, Q4_0, Q5_0 (with several-rows kernels), Q4_K, Q5_K, Q6_K and
 * the activation quantizers; every other type keeps its AVX2 kernel. Tiles
 * (several rows x several tokens, for prompt processing) for Q8_0, Q4_0,
 * Q5_0, Q4_K and Q6_K: see the notes at each.
 *
 * 32-blocks: vpdpbusd (u8 x s8, sums of 4 into int32) on 512-bit vectors,
 * two blocks per vector. K-quants: vpmaddubsw then vpdpwssd (x int16 scale,
 * accumulate) on 256-bit vectors, which measured at least as fast as 512-bit
 * forms on Zen 5 (see the notes at each). Signed weights are made unsigned
 * by an offset that is taken back out through sums of x: sum (w+o) x -
 * o sum x. Scales are applied per block in f32 lanes; lanes are summed once
 * at the end, so results differ from the scalar kernel only by f32
 * summation order.
 *
 * All loads are unaligned (blocks of 22 or 34 bytes sit anywhere). */
#include "quant/quant_internal.h"

#include <immintrin.h>

/* ---- helpers ---- */

/* 32 bytes at p and at p + stride, as one vector */
static inline __m512i load2x32(const uint8_t *p, size_t stride) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p)),
                              _mm256_loadu_si256((const __m256i *)(p + stride)), 1);
}

/* f16 at p + k*stride, k = 0..3, as 4 floats */
static inline __m128 f16x4(const uint8_t *p, size_t stride) {
    uint64_t v = (uint64_t)slm_rd_u16(p) | (uint64_t)slm_rd_u16(p + stride) << 16 |
                 (uint64_t)slm_rd_u16(p + 2 * stride) << 32 | (uint64_t)slm_rd_u16(p + 3 * stride) << 48;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)v));
}

static inline float f16s(const uint8_t *p) { return _cvtsh_ss(slm_rd_u16(p)); }

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* lanes 0-7 get scale s[0], 8-15 s[1] (IDX01) or s[2], s[3] (IDX23) */
#define IDX01 _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
#define IDX23 _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2)

/* ---- 32-blocks (Q8_0, Q4_0, Q5_0) x Q8_0 ----
 *
 * Weights are made unsigned, u = q + o (o = 128, 8, 16), and vpdpbusd sums
 * u x over 4 bytes per int32 lane, starting from -o * (sum of x over those
 * 4 bytes) so that the lane ends at sum q x. Two blocks fill a vector: lanes
 * 0-7 the first, 8-15 the second; per-block scales dw*dx are spread over
 * their 8 lanes by a permute.
 *
 * For several rows, x is prepared once per chunk of CHUNK_PAIRS block pairs
 * (its vectors, the offset sums, its scales as f32) and used by every row;
 * each row is still read front to back (the prefetchers keep streaming). */

enum { B_Q8_0, B_Q4_0, B_Q5_0 };
#define CHUNK_PAIRS 64 /* 128 blocks = 4096 elements; 16 KB of stack */

static inline size_t w_bytes(int kind) { return kind == B_Q8_0 ? Q8_0_BYTES : kind == B_Q4_0 ? Q4_0_BYTES : Q5_0_BYTES; }
static inline char w_off(int kind) { return kind == B_Q8_0 ? (char)0x80 : kind == B_Q4_0 ? 8 : 16; }

/* Nibbles of two blocks' qs[16] (at p, p + stride) as 64 unsigned bytes:
 * [lo(b0), hi(b0), lo(b1), hi(b1)] = elements 0..31 of b0, then of b1. */
static inline __m512i nibbles2(const uint8_t *p, size_t stride) {
    __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                        _mm_loadu_si128((const __m128i *)(p + stride)), 1);
    __m512i z = _mm512_permutexvar_epi64(_mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0), _mm512_castsi256_si512(q));
    z = _mm512_srlv_epi16(z, _mm512_set_epi64(0x0004000400040004ll, 0x0004000400040004ll, 0, 0,
                                              0x0004000400040004ll, 0x0004000400040004ll, 0, 0));
    return _mm512_and_si512(z, _mm512_set1_epi8(15));
}
static inline __m256i nibbles1(const uint8_t *p) {
    __m128i q = _mm_loadu_si128((const __m128i *)p);
    __m256i z = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    return _mm256_and_si256(z, _mm256_set1_epi8(15));
}

/* u of the blocks at wb and wb + w_bytes */
static inline __m512i w_pair(int kind, const uint8_t *wb) {
    if (kind == B_Q8_0) return _mm512_xor_si512(load2x32(wb + 2, Q8_0_BYTES), _mm512_set1_epi8((char)0x80));
    if (kind == B_Q4_0) return nibbles2(wb + 2, Q4_0_BYTES);
    __m512i u = nibbles2(wb + 6, Q5_0_BYTES);
    __mmask64 h = (__mmask64)slm_rd_u32(wb + 2) | (__mmask64)slm_rd_u32(wb + 2 + Q5_0_BYTES) << 32;
    return _mm512_mask_add_epi8(u, h, u, _mm512_set1_epi8(16));
}
/* u of the block at wb */
static inline __m256i w_one(int kind, const uint8_t *wb) {
    if (kind == B_Q8_0)
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(wb + 2)), _mm256_set1_epi8((char)0x80));
    if (kind == B_Q4_0) return nibbles1(wb + 2);
    __m256i u = nibbles1(wb + 6);
    return _mm256_mask_add_epi8(u, (__mmask32)slm_rd_u32(wb + 2), u, _mm256_set1_epi8(16));
}

/* Software prefetch for the multi-row kernel: a matrix-vector product streams
 * its rows from DRAM (the Gemma 3 head: 168 MB per token), and the hardware
 * prefetchers alone keep too few lines in flight for one core (measured on
 * the 262144 x 640 Q8_0 head, Zen 4: ~19 GB/s without, ~27 GB/s with). Each
 * step of 4 blocks asks for the 3 lines DOT32_PF_BYTES ahead into L2; the
 * matrix's last bytes are not prefetched past. */
#ifndef DOT32_PF_BYTES
#define DOT32_PF_BYTES 16384
#endif

static inline void dot32_rows(int kind, const uint8_t *w, size_t stride, int nrows, const uint8_t *x,
                              int64_t nb, float *out) {
    const size_t wb_ = w_bytes(kind);
    const __m512i off = _mm512_set1_epi8(w_off(kind));
    const __m256i off8 = _mm256_set1_epi8(w_off(kind));
    __m512i xv[CHUNK_PAIRS], negc[CHUNK_PAIRS];
    float dx[2 * CHUNK_PAIRS];
    const uint8_t *wend = w + (size_t)(nrows - 1) * stride + (size_t)nb * wb_;
    for (int r = 0; r < nrows; r++) out[r] = 0.f;
    for (int64_t c0 = 0; c0 < nb; c0 += 2 * CHUNK_PAIRS) {
        const int64_t cn = nb - c0 < 2 * CHUNK_PAIRS ? nb - c0 : 2 * CHUNK_PAIRS;
        const uint8_t *xc = x + c0 * Q8_0_BYTES;
        for (int64_t p = 0; p < cn / 2; p++) {
            xv[p] = load2x32(xc + 2 * p * Q8_0_BYTES + 2, Q8_0_BYTES);
            negc[p] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, xv[p]));
        }
        for (int64_t i = 0; i < cn; i++) dx[i] = f16s(xc + i * Q8_0_BYTES);
        for (int r = 0; r < nrows; r++) {
            const uint8_t *wc = w + (size_t)r * stride + c0 * wb_;
            __m512 acc = _mm512_setzero_ps();
            int64_t i = 0;
            for (; i + 4 <= cn; i += 4) {
                const uint8_t *wb = wc + i * wb_;
                if (wb + DOT32_PF_BYTES + 128 < wend) {
                    _mm_prefetch((const char *)(wb + DOT32_PF_BYTES), _MM_HINT_T1);
                    _mm_prefetch((const char *)(wb + DOT32_PF_BYTES + 64), _MM_HINT_T1);
                    _mm_prefetch((const char *)(wb + DOT32_PF_BYTES + 128), _MM_HINT_T1);
                }
                __m512i r0 = _mm512_dpbusd_epi32(negc[i / 2], w_pair(kind, wb), xv[i / 2]);
                __m512i r1 = _mm512_dpbusd_epi32(negc[i / 2 + 1], w_pair(kind, wb + 2 * wb_), xv[i / 2 + 1]);
                __m512 sc = _mm512_castps128_ps512(_mm_mul_ps(f16x4(wb, wb_), _mm_loadu_ps(dx + i)));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r0), _mm512_permutexvar_ps(IDX01, sc), acc);
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r1), _mm512_permutexvar_ps(IDX23, sc), acc);
            }
            __m256 acc8 = _mm256_setzero_ps();
            for (; i < cn; i++) {
                const uint8_t *wb = wc + i * wb_;
                __m256i xb = _mm256_loadu_si256((const __m256i *)(xc + i * Q8_0_BYTES + 2));
                __m256i c = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), off8, xb));
                __m256i d = _mm256_dpbusd_epi32(c, w_one(kind, wb), xb);
                acc8 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(f16s(wb) * dx[i]), acc8);
            }
            out[r] += _mm512_reduce_add_ps(acc) + hsum256(acc8);
        }
    }
}

/* One row: x is consumed as it is read (preparing it would cost as much as
 * the row itself). */
static inline float dot32_one(int kind, const uint8_t *w, const uint8_t *x, int64_t nb) {
    const size_t wb_ = w_bytes(kind);
    const __m512i off = _mm512_set1_epi8(w_off(kind));
    const __m256i off8 = _mm256_set1_epi8(w_off(kind));
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const uint8_t *wb = w + i * wb_, *xb = x + i * Q8_0_BYTES;
        __m512i x0 = load2x32(xb + 2, Q8_0_BYTES), x1 = load2x32(xb + 2 + 2 * Q8_0_BYTES, Q8_0_BYTES);
        __m512i c0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, x0);
        __m512i c1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, x1);
        __m512i r0 = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w_pair(kind, wb), x0), c0);
        __m512i r1 = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w_pair(kind, wb + 2 * wb_), x1), c1);
        __m512 sc = _mm512_castps128_ps512(_mm_mul_ps(f16x4(wb, wb_), f16x4(xb, Q8_0_BYTES)));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r0), _mm512_permutexvar_ps(IDX01, sc), acc);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r1), _mm512_permutexvar_ps(IDX23, sc), acc);
    }
    __m256 acc8 = _mm256_setzero_ps();
    for (; i < nb; i++) {
        const uint8_t *wb = w + i * wb_, *xb = x + i * Q8_0_BYTES;
        __m256i xv = _mm256_loadu_si256((const __m256i *)(xb + 2));
        __m256i c = _mm256_dpbusd_epi32(_mm256_setzero_si256(), off8, xv);
        __m256i d = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), w_one(kind, wb), xv), c);
        acc8 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(f16s(wb) * f16s(xb)), acc8);
    }
    return _mm512_reduce_add_ps(acc) + hsum256(acc8);
}

#define DOT32(name, kind)                                                                          \
    static float dot_##name(const void *row, const void *xq, int64_t n) {                          \
        return dot32_one(kind, row, xq, n / QK);                                                   \
    }                                                                                              \
    static void rows_##name(const void *rows, size_t stride, int nrows, const void *xq, int64_t n, \
                            float *out) {                                                          \
        if (nrows == 1) out[0] = dot32_one(kind, rows, xq, n / QK);                                \
        else dot32_rows(kind, rows, stride, nrows, xq, n / QK, out);                               \
    }
DOT32(q8_0, B_Q8_0)
DOT32(q4_0, B_Q4_0)
DOT32(q5_0, B_Q5_0)

/* ---- tiles of 32-block rows x several tokens (prompt processing) ----
 *
 * Here the activations are the unsigned operand: xu = x + 128 (x ^ 0x80),
 * and the weights stay signed (q - o): sum xu w = sum x w + 128 sum w, and
 * 128 sum w depends on the weight block only, so it is computed once per
 * block pair and shared by all the tokens of a group. Each weight pair is
 * unpacked once per GT tokens; per token it costs one vpdpbusd, a convert
 * and two f32 ops. The tokens' blocks are prepared once per group (xu and
 * per-lane dx) for every row of the tile. */

#define GT 8       /* tokens per group */
#define GCHUNK 32  /* block pairs per chunk: 2048 elements */

typedef struct {
    __m512i xu[GT][GCHUNK];
    __m512 dx[GT][GCHUNK];
} gemm32_xbuf; /* 32 KB */

/* signed weights of two blocks at wb, wb + w_bytes */
static inline __m512i ws_pair(int kind, const uint8_t *wb) {
    if (kind == B_Q8_0) return load2x32(wb + 2, Q8_0_BYTES);
    if (kind == B_Q4_0) return _mm512_sub_epi8(nibbles2(wb + 2, Q4_0_BYTES), _mm512_set1_epi8(8));
    __m512i u = nibbles2(wb + 6, Q5_0_BYTES);
    __mmask64 h = (__mmask64)slm_rd_u32(wb + 2) | (__mmask64)slm_rd_u32(wb + 2 + Q5_0_BYTES) << 32;
    return _mm512_mask_sub_epi8(u, ~h, u, _mm512_set1_epi8(16));
}
/* signed weights of one block, upper half zero */
static inline __m512i ws_one(int kind, const uint8_t *wb) {
    __m256i v;
    if (kind == B_Q8_0) v = _mm256_loadu_si256((const __m256i *)(wb + 2));
    else if (kind == B_Q4_0) v = _mm256_sub_epi8(nibbles1(wb + 2), _mm256_set1_epi8(8));
    else {
        __m256i u = nibbles1(wb + 6);
        v = _mm256_mask_sub_epi8(u, ~(__mmask32)slm_rd_u32(wb + 2), u, _mm256_set1_epi8(16));
    }
    return _mm512_zextsi256_si512(v);
}

static inline void gemm32_prep(const uint8_t *x, size_t xs, int nt, int64_t cn, gemm32_xbuf *xb) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int t = 0; t < nt; t++) {
        const uint8_t *xt = x + (size_t)t * xs;
        for (int64_t p = 0; p < (cn + 1) / 2; p++) {
            const uint8_t *b = xt + 2 * p * Q8_0_BYTES;
            __m256i lo = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(b + 2)), flip), hi = flip;
            float d0 = f16s(b), d1 = 0.f;
            if (2 * p + 1 < cn) {
                hi = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(b + Q8_0_BYTES + 2)), flip);
                d1 = f16s(b + Q8_0_BYTES);
            }
            xb->xu[t][p] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            xb->dx[t][p] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(d0)), _mm256_set1_ps(d1), 1);
        }
    }
}

/* 8 vectors -> their 8 sums */
static inline __m256 hsum8x16(const __m512 *a) {
    __m256 h[8];
    for (int i = 0; i < 8; i++)
        h[i] = _mm256_add_ps(_mm512_castps512_ps256(a[i]), _mm512_extractf32x8_ps(a[i], 1));
    __m256 s01 = _mm256_hadd_ps(h[0], h[1]), s23 = _mm256_hadd_ps(h[2], h[3]);
    __m256 s45 = _mm256_hadd_ps(h[4], h[5]), s67 = _mm256_hadd_ps(h[6], h[7]);
    __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
    /* s0123 = [a0 a1 a2 a3 (lo halves) | a0 a1 a2 a3 (hi halves)] */
    __m256 lo = _mm256_permute2f128_ps(s0123, s4567, 0x20), hi = _mm256_permute2f128_ps(s0123, s4567, 0x31);
    return _mm256_add_ps(lo, hi);
}

/* rows r and r + 1 (NR = 2) or r alone (NR = 1) against NT tokens */
static inline __attribute__((always_inline)) void gemm32_rows(int kind, const int NR, const int NT, const uint8_t *wr,
                                                              size_t ws, int64_t cn, const gemm32_xbuf *xb,
                                                              float *out, size_t os, bool first) {
    const size_t wb_ = w_bytes(kind);
    const __m512i c128 = _mm512_set1_epi8((char)0x80);
    const int64_t np = cn / 2;
    __m512 acc[2][GT];
#pragma GCC unroll 2
    for (int k = 0; k < NR; k++)
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) acc[k][t] = _mm512_setzero_ps();
    for (int64_t p = 0; p <= np; p++) {
        __m512i wv[2], negc[2];
        __m512 dw[2];
        if (p < np) {
#pragma GCC unroll 2
            for (int k = 0; k < NR; k++) {
                const uint8_t *wb = wr + (size_t)k * ws + 2 * p * wb_;
                wv[k] = ws_pair(kind, wb);
                dw[k] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(f16s(wb))), _mm256_set1_ps(f16s(wb + wb_)), 1);
            }
        } else {
            if (!(cn & 1)) break;
#pragma GCC unroll 2
            for (int k = 0; k < NR; k++) {
                const uint8_t *wb = wr + (size_t)k * ws + 2 * p * wb_;
                wv[k] = ws_one(kind, wb);
                dw[k] = _mm512_set1_ps(f16s(wb));
            }
        }
#pragma GCC unroll 2
        for (int k = 0; k < NR; k++)
            negc[k] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), c128, wv[k]));
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) {
            __m512i xv = xb->xu[t][p];
            __m512 dx = xb->dx[t][p];
#pragma GCC unroll 2
            for (int k = 0; k < NR; k++) {
                __m512i d = _mm512_dpbusd_epi32(negc[k], xv, wv[k]);
                acc[k][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(dw[k], dx), acc[k][t]);
            }
        }
    }
#pragma GCC unroll 2
    for (int k = 0; k < NR; k++) {
        float s[GT];
        if (NT == GT) _mm256_storeu_ps(s, hsum8x16(acc[k]));
        else
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) s[t] = _mm512_reduce_add_ps(acc[k][t]);
        for (int t = 0; t < NT; t++) {
            float *o = out + (size_t)t * os + k;
            *o = first ? s[t] : *o + s[t];
        }
    }
}

static inline __attribute__((always_inline)) void gemm32_group(int kind, const int NT, const uint8_t *w, size_t ws,
                                                               int nrows, int64_t cn, const gemm32_xbuf *xb,
                                                               float *out, size_t os, bool first) {
    int r = 0;
    for (; r + 2 <= nrows; r += 2) gemm32_rows(kind, 2, NT, w + (size_t)r * ws, ws, cn, xb, out + r, os, first);
    if (r < nrows) gemm32_rows(kind, 1, NT, w + (size_t)r * ws, ws, cn, xb, out + r, os, first);
}

static inline void gemm32(int kind, const uint8_t *w, size_t ws, int nrows, const uint8_t *x, size_t xs, int ntok,
                          int64_t nb, float *out, size_t os) {
    gemm32_xbuf xb;
    const size_t wb_ = w_bytes(kind);
    for (int64_t c0 = 0; c0 < nb; c0 += 2 * GCHUNK) {
        const int64_t cn = nb - c0 < 2 * GCHUNK ? nb - c0 : 2 * GCHUNK;
        const uint8_t *wc = w + c0 * wb_;
        for (int t0 = 0; t0 < ntok; t0 += GT) {
            const int nt = ntok - t0 < GT ? ntok - t0 : GT;
            gemm32_prep(x + (size_t)t0 * xs + c0 * Q8_0_BYTES, xs, nt, cn, &xb);
            float *o = out + (size_t)t0 * os;
            switch (nt) {
            case 8: gemm32_group(kind, 8, wc, ws, nrows, cn, &xb, o, os, c0 == 0); break;
            case 7: gemm32_group(kind, 7, wc, ws, nrows, cn, &xb, o, os, c0 == 0); break;
            case 6: gemm32_group(kind, 6, wc, ws, nrows, cn, &xb, o, os, c0 == 0); break;
            case 5: gemm32_group(kind, 5, wc, ws, nrows, cn, &xb, o, os, c0 == 0); break;
            case 4: gemm32_group(kind, 4, wc, ws, nrows, cn, &xb, o, os, c0 == 0); break;
            case 3: gemm32_group(kind, 3, wc, ws, nrows, cn, &xb, o, os, c0 == 0); break;
            case 2: gemm32_group(kind, 2, wc, ws, nrows, cn, &xb, o, os, c0 == 0); break;
            default: gemm32_group(kind, 1, wc, ws, nrows, cn, &xb, o, os, c0 == 0); break;
            }
        }
    }
}

#define GEMM32(name, kind)                                                                            \
    static void gemm_##name(const void *rows, size_t stride, int nrows, const void *xq, size_t xs,    \
                            int ntok, int64_t n, float *out, size_t os) {                             \
        gemm32(kind, rows, stride, nrows, xq, xs, ntok, n / QK, out, os);                             \
    }
GEMM32(q8_0, B_Q8_0)
GEMM32(q4_0, B_Q4_0)
GEMM32(q5_0, B_Q5_0)

/* ---- K-quants x Q8_K ---- */

/* Q4_K / Q5_K at 256 bits with vpdpwssd. Three 512-bit forms (scales by
 * word permute, by in-lane byte shuffle, and this one widened) measured no
 * faster on Zen 5: the work per super-block is dominated by unpacking, not by
 * the multiplies. */
static inline float k45_dot(const uint8_t *w, const uint8_t *x, int64_t nb, bool five) {
    const size_t bytes = five ? Q5_K_BYTES : Q4_K_BYTES;
    const int qs_off = five ? Q5_K_QS : Q4_K_QS;
    const __m256i m15 = _mm256_set1_epi8(15), sixteen = _mm256_set1_epi8(16);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, w += bytes, x += Q8_K_BYTES) {
        float dx = slm_rd_f32(x);
        float d = f16s(w) * dx, dmin = f16s(w + 2) * dx;
        const uint8_t *s = w + 4;
        uint32_t u0 = slm_rd_u32(s), u1 = slm_rd_u32(s + 4), u2 = slm_rd_u32(s + 8);
        uint32_t sc[2] = { u0 & 0x3f3f3f3fu, (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u) };
        uint32_t m[2] = { u1 & 0x3f3f3f3fu, ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u) };
        __m128i m8 = _mm_cvtsi64_si128((long long)((uint64_t)m[0] | (uint64_t)m[1] << 32));
        __m256i mdup = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        __m256i bs = _mm256_loadu_si256((const __m256i *)(x + Q8_K_BSUMS));
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(bs, mdup)), _mm256_set1_ps(dmin), accm);
        __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(w + Q5_K_QH)) : _mm256_setzero_si256();
        const uint8_t *scb = (const uint8_t *)sc;
        __m256i isum = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(w + qs_off + 32 * i));
            __m256i lo = _mm256_and_si256(q, m15), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m15);
            if (five) {
                lo = _mm256_mask_add_epi8(lo, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * i)))), lo, sixteen);
                hi = _mm256_mask_add_epi8(hi, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * i + 1)))), hi, sixteen);
            }
            __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(x + Q8_K_QS + 64 * i)));
            __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + Q8_K_QS + 64 * i + 32)));
            isum = _mm256_dpwssd_epi32(isum, plo, _mm256_set1_epi16(scb[2 * i]));
            isum = _mm256_dpwssd_epi32(isum, phi, _mm256_set1_epi16(scb[2 * i + 1]));
        }
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), acc);
    }
    return hsum256(acc) - hsum256(accm);
}

static float dot_q4_k(const void *row, const void *xq, int64_t n) { return k45_dot(row, xq, n / QK_K, false); }
static float dot_q5_k(const void *row, const void *xq, int64_t n) { return k45_dot(row, xq, n / QK_K, true); }

/* Q6_K: u = 4 bits of ql | 2 bits of qh << 4 in 0..63, value u - 32.
 * At 256 bits: measured faster on Zen 5 than a 512-bit form (which needs
 * cross-lane word permutes for the 16 scales); vpdpwssd folds the scale
 * multiply and the add. */
static inline __m256i scale_pair_i8(__m128i s, int g) {
    __m128i c = _mm_set_epi64x(0x0101010101010101ll * (g + 1), 0x0101010101010101ll * g);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s, c));
}

static float dot_q6_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    const __m256i m15 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps(), accc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++, w += Q6_K_BYTES, x += Q8_K_BYTES) {
        float d = f16s(w + Q6_K_D) * slm_rd_f32(x);
        __m128i sc = _mm_loadu_si128((const __m128i *)(w + Q6_K_SC));
        __m256i corr = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(x + Q8_K_BSUMS)), _mm256_cvtepi8_epi16(sc));
        accc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(corr), _mm256_set1_ps(32.f * d), accc);
        __m256i isum = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)(w + 64 * h));
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(w + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(w + Q6_K_QH + 32 * h));
            __m256i u[4];
            u[0] = _mm256_or_si256(_mm256_and_si256(ql0, m15), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            u[1] = _mm256_or_si256(_mm256_and_si256(ql1, m15), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m15), _mm256_and_si256(qh, m30));
            u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m15),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                __m256i p = _mm256_maddubs_epi16(u[k], _mm256_loadu_si256((const __m256i *)(x + Q8_K_QS + 128 * h + 32 * k)));
                isum = _mm256_dpwssd_epi32(isum, p, scale_pair_i8(sc, 8 * h + 2 * k));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), acc);
    }
    return hsum256(acc) - hsum256(accc);
}

/* ---- tiles of K-quant rows x several tokens ----
 *
 * The weights are the unsigned operand as in the single-row kernels, so the
 * Q8_K rows are read as they are. Each 64-element stretch of a super-block
 * is unpacked once into a 512-bit vector (elements in x's order) with its
 * int16 scales spread over the lanes, then every token of the group takes
 * vpmaddubsw + vpdpwssd on it. Per token and super-block the int32 lanes are
 * scaled once in f32; Q4_K's min term goes through the bsums, Q6_K's -32
 * offset is folded into the integer sum (same scale) by one vpdpwssd. */

#define KGT 8 /* tokens per group */
/* word shift counts: a in the low 256 bits, b in the high */
#define K6_SH42 _mm512_set_epi64(0x0002000200020002ll, 0x0002000200020002ll, 0x0002000200020002ll, 0x0002000200020002ll, \
                                 0x0004000400040004ll, 0x0004000400040004ll, 0x0004000400040004ll, 0x0004000400040004ll)
#define K6_SH02 _mm512_set_epi64(0x0002000200020002ll, 0x0002000200020002ll, 0x0002000200020002ll, 0x0002000200020002ll, \
                                 0, 0, 0, 0)

static inline __attribute__((always_inline)) void gemm_k_group(bool six, const int NT, const uint8_t *w, size_t ws,
                                                               int nrows, const uint8_t *x, size_t xs, int64_t nb,
                                                               float *out, size_t os) {
    const size_t bytes = six ? Q6_K_BYTES : Q4_K_BYTES;
    const __m512i m15 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    for (int r = 0; r < nrows; r++) {
        const uint8_t *wr = w + (size_t)r * ws;
        __m512 acc[KGT];
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *wb = wr + b * bytes;
            const uint8_t *xb = x + b * Q8_K_BYTES;
            __m512i isum[KGT];
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) isum[t] = _mm512_setzero_si512();
            __m512i sc16; /* int16 scales in the low lanes */
            __m256i mdup = _mm256_setzero_si256();
            float d, dmin = 0.f;
            if (!six) {
                d = f16s(wb);
                dmin = f16s(wb + 2);
                const uint8_t *sp = wb + Q4_K_SC;
                uint32_t u0 = slm_rd_u32(sp), u1 = slm_rd_u32(sp + 4), u2 = slm_rd_u32(sp + 8);
                uint64_t sc = (uint64_t)(u0 & 0x3f3f3f3fu) |
                              (uint64_t)((u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u)) << 32;
                uint64_t m = (uint64_t)(u1 & 0x3f3f3f3fu) |
                             (uint64_t)(((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u)) << 32;
                sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
                __m128i m8 = _mm_cvtsi64_si128((long long)m);
                mdup = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
            } else {
                d = f16s(wb + Q6_K_D);
                sc16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wb + Q6_K_SC))));
                /* -32 * sum_g sc_g bsum_g, folded into isum */
                __m512i c = _mm512_zextsi256_si512(_mm256_mullo_epi16(_mm512_castsi512_si256(sc16), _mm256_set1_epi16(-32)));
#pragma GCC unroll 8
                for (int t = 0; t < NT; t++)
                    isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_zextsi256_si512(_mm256_loadu_si256(
                                                               (const __m256i *)(xb + (size_t)t * xs + Q8_K_BSUMS))), c);
            }
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                __m512i u, scv;
                if (!six) {
                    __m256i q = _mm256_loadu_si256((const __m256i *)(wb + Q4_K_QS + 32 * v));
                    u = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), m15);
                    scv = _mm512_permutexvar_epi16(_mm512_inserti64x4(_mm512_set1_epi16((short)(2 * v)),
                                                                      _mm256_set1_epi16((short)(2 * v + 1)), 1), sc16);
                } else {
                    const int h = v >> 1;
                    __m512i ql = _mm512_loadu_si512((const void *)(wb + 64 * h));
                    __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(wb + Q6_K_QH + 32 * h)));
                    if ((v & 1) == 0)
                        u = _mm512_or_si512(_mm512_and_si512(ql, m15),
                                            _mm512_and_si512(_mm512_sllv_epi16(qh, K6_SH42), m30));
                    else
                        u = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m15),
                                            _mm512_and_si512(_mm512_srlv_epi16(qh, K6_SH02), m30));
                    const short g = (short)(4 * v);
                    scv = _mm512_permutexvar_epi16(
                        _mm512_set_epi16(g + 3, g + 3, g + 3, g + 3, g + 3, g + 3, g + 3, g + 3, g + 2, g + 2, g + 2, g + 2,
                                         g + 2, g + 2, g + 2, g + 2, g + 1, g + 1, g + 1, g + 1, g + 1, g + 1, g + 1, g + 1,
                                         g, g, g, g, g, g, g, g),
                        sc16);
                }
#pragma GCC unroll 8
                for (int t = 0; t < NT; t++) {
                    __m512i p = _mm512_maddubs_epi16(u, _mm512_loadu_si512((const void *)(xb + (size_t)t * xs + Q8_K_QS + 64 * v)));
                    isum[t] = _mm512_dpwssd_epi32(isum[t], p, scv);
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) {
                const uint8_t *xt = xb + (size_t)t * xs;
                float dx = slm_rd_f32(xt);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_set1_ps(d * dx), acc[t]);
                if (!six) {
                    __m256i mm = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(xt + Q8_K_BSUMS)), mdup);
                    acc[t] = _mm512_fmadd_ps(_mm512_zextps256_ps512(_mm256_cvtepi32_ps(mm)), _mm512_set1_ps(-dmin * dx), acc[t]);
                }
            }
        }
        float s[KGT];
        if (NT == KGT) _mm256_storeu_ps(s, hsum8x16(acc));
        else
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) s[t] = _mm512_reduce_add_ps(acc[t]);
        for (int t = 0; t < NT; t++) out[(size_t)t * os + r] = s[t];
    }
}

static inline void gemm_k(bool six, const uint8_t *w, size_t ws, int nrows, const uint8_t *x, size_t xs, int ntok,
                          int64_t nb, float *out, size_t os) {
    for (int t0 = 0; t0 < ntok; t0 += KGT) {
        const int nt = ntok - t0 < KGT ? ntok - t0 : KGT;
        const uint8_t *xg = x + (size_t)t0 * xs;
        float *o = out + (size_t)t0 * os;
        switch (nt) {
        case 8: gemm_k_group(six, 8, w, ws, nrows, xg, xs, nb, o, os); break;
        case 7: gemm_k_group(six, 7, w, ws, nrows, xg, xs, nb, o, os); break;
        case 6: gemm_k_group(six, 6, w, ws, nrows, xg, xs, nb, o, os); break;
        case 5: gemm_k_group(six, 5, w, ws, nrows, xg, xs, nb, o, os); break;
        case 4: gemm_k_group(six, 4, w, ws, nrows, xg, xs, nb, o, os); break;
        case 3: gemm_k_group(six, 3, w, ws, nrows, xg, xs, nb, o, os); break;
        case 2: gemm_k_group(six, 2, w, ws, nrows, xg, xs, nb, o, os); break;
        default: gemm_k_group(six, 1, w, ws, nrows, xg, xs, nb, o, os); break;
        }
    }
}

static void gemm_q4_k(const void *rows, size_t stride, int nrows, const void *xq, size_t xs, int ntok, int64_t n,
                      float *out, size_t os) {
    gemm_k(false, rows, stride, nrows, xq, xs, ntok, n / QK_K, out, os);
}
static void gemm_q6_k(const void *rows, size_t stride, int nrows, const void *xq, size_t xs, int ntok, int64_t n,
                      float *out, size_t os) {
    gemm_k(true, rows, stride, nrows, xq, xs, ntok, n / QK_K, out, os);
}

/* ---- activation quantization (same operations as quant_act.c) ---- */

static void quant_q8_0(const float *x, void *dst, int64_t n) {
    uint8_t *y = dst;
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / QK; i++, x += QK, y += Q8_0_BYTES) {
        __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(a, absmask), _mm512_and_ps(b, absmask)));
        float d = amax / 127.f;
        float id = amax >= SLM_ACT_TINY ? 1.f / d : 0.f;
        uint16_t dh = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        memcpy(y, &dh, 2);
        __m512 v = _mm512_set1_ps(id);
        __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, v)), qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, v));
        _mm_storeu_si128((__m128i *)(y + 2), _mm512_cvtsepi32_epi8(qa));
        _mm_storeu_si128((__m128i *)(y + 18), _mm512_cvtsepi32_epi8(qb));
    }
}

static void quant_q8_k(const float *x, void *dst, int64_t n) {
    uint8_t *y = dst;
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, y += Q8_K_BYTES) {
        __m512 m = _mm512_setzero_ps();
        for (int j = 0; j < QK_K; j += 16) m = _mm512_max_ps(m, _mm512_and_ps(_mm512_loadu_ps(x + j), absmask));
        float amax = _mm512_reduce_max_ps(m);
        float iscale = amax >= SLM_ACT_TINY ? 127.f / amax : 0.f;
        float d = iscale != 0.f ? 1.f / iscale : 0.f;
        memcpy(y, &d, 4);
        __m512 v = _mm512_set1_ps(iscale);
        int16_t bsums[16];
        for (int g = 0; g < 16; g++) {
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), v));
            q = _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
            _mm_storeu_si128((__m128i *)(y + Q8_K_QS + 16 * g), _mm512_cvtepi32_epi8(q));
            bsums[g] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        memcpy(y + Q8_K_BSUMS, bsums, sizeof bsums);
    }
}

void slm_kernels_fill_avx512(slm_kernels *k) {
    k->name = "avx512";
    k->dot[SLM_T_Q8_0] = dot_q8_0;
    k->rows[SLM_T_Q8_0] = rows_q8_0;
    k->dot[SLM_T_Q4_0] = dot_q4_0;
    k->rows[SLM_T_Q4_0] = rows_q4_0;
    k->dot[SLM_T_Q5_0] = dot_q5_0;
    k->rows[SLM_T_Q5_0] = rows_q5_0;
    k->gemm[SLM_T_Q8_0] = gemm_q8_0;
    k->gemm[SLM_T_Q4_0] = gemm_q4_0;
    k->gemm[SLM_T_Q5_0] = gemm_q5_0;
    k->dot[SLM_T_Q4_K] = dot_q4_k;
    k->dot[SLM_T_Q5_K] = dot_q5_k;
    k->dot[SLM_T_Q6_K] = dot_q6_k;
    k->gemm[SLM_T_Q4_K] = gemm_q4_k;
    k->gemm[SLM_T_Q6_K] = gemm_q6_k;
    k->quant_q8_0 = quant_q8_0;
    k->quant_q8_k = quant_q8_k;
}
