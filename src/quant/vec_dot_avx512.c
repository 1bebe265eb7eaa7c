/* AVX-512 (F, BW, VL, DQ, VNNI) kernels; chosen when the CPU has all five.
 * Here: Q8_0, Q4_0, Q5_0 (with several-rows kernels), Q4_K, Q5_K, Q6_K and
 * the activation quantizers; every other type keeps its AVX2 kernel. The
 * tiles (several rows x several tokens, for prompt processing) for Q8_0,
 * Q4_0, Q5_0, Q4_K and Q6_K are in gemm_tiles_avx512.c.
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

/* ---- K-quants x Q8_K ---- */

/* Decoding streams these rows from DRAM; like the packed kernels
 * (packed_avx512.c) every line of a super-block is asked for several times
 * ahead, since Zen 4 drops prefetches when its queues are full. */
#ifndef KQ_PF_BYTES
#define KQ_PF_BYTES 4096
#endif
static inline void prefetch_ahead(const uint8_t *p, int lines) {
#pragma GCC unroll 4
    for (int l = 0; l < lines; l++)
#pragma GCC unroll 5
        for (int k = 1; k <= 5; k++) _mm_prefetch((const char *)p + k * KQ_PF_BYTES + 64 * l, _MM_HINT_T1);
}

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
        prefetch_ahead(w, 3); /* 144 or 176 bytes */
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
        prefetch_ahead(w, 4);
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
    k->dot[SLM_T_Q4_K] = dot_q4_k;
    k->dot[SLM_T_Q5_K] = dot_q5_k;
    k->dot[SLM_T_Q6_K] = dot_q6_k;
    k->quant_q8_0 = quant_q8_0;
    k->quant_q8_k = quant_q8_k;
    slm_kernels_fill_gemm_tiles_avx512(k); /* the prompt tiles: gemm_tiles_avx512.c */
    slm_kernels_fill_packed_avx512(k);     /* 32-blocks repacked at load: packed_avx512.c */
    slm_kernels_fill_few_avx512(k);        /* 2..7 tokens: few_tok_avx512.c */
}
