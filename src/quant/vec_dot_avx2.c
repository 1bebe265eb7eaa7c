/* AVX2 + FMA + F16C kernels for every weight type and for the activation
 * quantizers; chosen when the CPU has AVX2 and FMA (F16C comes with them on
 * every such x86). The AVX-512 set starts from this one.
 *
 * Integer products: vpmaddubsw (u8 x s8, pairs summed into int16, no
 * saturation for |u| <= 128, |x| <= 127 as our quantizers produce) then
 * vpmaddwd against ones or per-group int16 scales. Weights with an offset
 * (Q4_0 -8, Q5_0 -16, Q3_K -4, Q6_K -32) are used unsigned and the offset is
 * taken back out through sums of x. Per-block scales are applied in f32
 * lanes; lanes are summed once at the end.
 *
 * All loads are unaligned (blocks of 18, 22 or 34 bytes sit anywhere). */
#include "quant/quant_internal.h"

#include <immintrin.h>

/* ---- helpers ---- */

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float f16s(const uint8_t *p) { return _cvtsh_ss(slm_rd_u16(p)); }
static inline __m256i loadu256(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* u8 x s8 -> 8 int32 lane sums */
static inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* The 32 nibbles of qs[16]: low nibbles (elements 0-15), then high (16-31). */
static inline __m256i nibbles(const uint8_t *p) {
    __m128i q = _mm_loadu_si128((const __m128i *)p);
    __m256i z = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    return _mm256_and_si256(z, _mm256_set1_epi8(15));
}

/* Byte j = 0x10 if bit j of qh is set, else 0. */
static inline __m256i bits_to_16(uint32_t qh) {
    const __m256i spread = _mm256_setr_epi64x(0, 0x0101010101010101ll, 0x0202020202020202ll, 0x0303030303030303ll);
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel);
    return _mm256_and_si256(v, _mm256_set1_epi8(16));
}

/* ---- float weights x f32 ---- */

static float dot_f32(const void *row, const void *xq, int64_t n) {
    const float *w = row, *x = xq;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += slm_rd_f32((const uint8_t *)(w + i)) * slm_rd_f32((const uint8_t *)(x + i));
    return s;
}

static inline __m256 load_f16x8(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline __m256 load_bf16x8(const uint8_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

#define DOT_HALF(name, load, conv)                                                        \
    static float name(const void *row, const void *xq, int64_t n) {                       \
        const uint8_t *w = row;                                                           \
        const float *x = xq;                                                              \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                       \
        int64_t i = 0;                                                                    \
        for (; i + 32 <= n; i += 32) {                                                    \
            a0 = _mm256_fmadd_ps(load(w + 2 * i), _mm256_loadu_ps(x + i), a0);            \
            a1 = _mm256_fmadd_ps(load(w + 2 * i + 16), _mm256_loadu_ps(x + i + 8), a1);   \
            a2 = _mm256_fmadd_ps(load(w + 2 * i + 32), _mm256_loadu_ps(x + i + 16), a2);  \
            a3 = _mm256_fmadd_ps(load(w + 2 * i + 48), _mm256_loadu_ps(x + i + 24), a3);  \
        }                                                                                 \
        for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load(w + 2 * i), _mm256_loadu_ps(x + i), a0); \
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));   \
        for (; i < n; i++) s += conv(slm_rd_u16(w + 2 * i)) * slm_rd_f32((const uint8_t *)(x + i)); \
        return s;                                                                         \
    }
DOT_HALF(dot_f16, load_f16x8, slm_f16_to_f32)
DOT_HALF(dot_bf16, load_bf16x8, slm_bf16_to_f32)

/* ---- 32-blocks x Q8_0 ---- */

static float dot_q8_0(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t nb = n / QK, i = 0;
    for (; i < nb; i++, w += Q8_0_BYTES, x += Q8_0_BYTES) {
        __m256i qw = loadu256(w + 2), qx = loadu256(x + 2);
        /* |w| (unsigned) times x with w's sign */
        __m256i p = dot_u8s8(_mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
        __m256 s = _mm256_set1_ps(f16s(w) * f16s(x));
        if (i & 1) acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc1);
        else acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

/* sum (u - o) x per int32 lane; maddubs(o, x) is taken off in int16, where
 * both products fit (<= 2 * 31 * 127) */
static inline __m256i dot_off(__m256i u, __m256i x, char o) {
    __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, x), _mm256_maddubs_epi16(_mm256_set1_epi8(o), x));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static float dot_q4_0(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++, w += Q4_0_BYTES, x += Q8_0_BYTES) {
        __m256i p = dot_off(nibbles(w + 2), loadu256(x + 2), 8);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(f16s(w) * f16s(x)), acc);
    }
    return hsum256(acc);
}

static float dot_q5_0(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++, w += Q5_0_BYTES, x += Q8_0_BYTES) {
        __m256i u = _mm256_or_si256(nibbles(w + 6), bits_to_16(slm_rd_u32(w + 2)));
        __m256i p = dot_off(u, loadu256(x + 2), 16);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(f16s(w) * f16s(x)), acc);
    }
    return hsum256(acc);
}

/* x = d q + m: d dx sum(q x) + m dx sum(x) */
static float dot_q4_1(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++, w += Q4_1_BYTES, x += Q8_0_BYTES) {
        __m256i qx = loadu256(x + 2);
        __m256i p = dot_u8s8(nibbles(w + 4), qx), sx = dot_u8s8(_mm256_set1_epi8(1), qx);
        float dx = f16s(x);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(f16s(w) * dx), acc);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sx), _mm256_set1_ps(f16s(w + 2) * dx), accm);
    }
    return hsum256(_mm256_add_ps(acc, accm));
}

static float dot_q5_1(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++, w += Q5_1_BYTES, x += Q8_0_BYTES) {
        __m256i qx = loadu256(x + 2);
        __m256i u = _mm256_or_si256(nibbles(w + 8), bits_to_16(slm_rd_u32(w + 4)));
        __m256i p = dot_u8s8(u, qx), sx = dot_u8s8(_mm256_set1_epi8(1), qx);
        float dx = f16s(x);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(f16s(w) * dx), acc);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sx), _mm256_set1_ps(f16s(w + 2) * dx), accm);
    }
    return hsum256(_mm256_add_ps(acc, accm));
}

/* ---- K-quants x Q8_K ---- */

/* 16 int16 words: 8 copies of s[g], then 8 of s[g + 1] (s: 16 int8 or u8) */
static inline __m256i scale_pair_i8(__m128i s, int g) {
    __m128i c = _mm_set_epi64x(0x0101010101010101ll * (g + 1), 0x0101010101010101ll * g);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s, c));
}

static inline __m256i bsums(const uint8_t *x) { return loadu256(x + Q8_K_BSUMS); }

static inline void k4_unpack(const uint8_t *s, uint32_t sc[2], uint32_t m[2]) {
    uint32_t u0 = slm_rd_u32(s), u1 = slm_rd_u32(s + 4), u2 = slm_rd_u32(s + 8);
    sc[0] = u0 & 0x3f3f3f3fu;
    sc[1] = (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u);
    m[0] = u1 & 0x3f3f3f3fu;
    m[1] = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u);
}

static inline float k45_dot(const uint8_t *w, const uint8_t *x, int64_t nb, bool five) {
    const size_t bytes = five ? Q5_K_BYTES : Q4_K_BYTES;
    const int qs_off = five ? Q5_K_QS : Q4_K_QS;
    const __m256i m15 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, w += bytes, x += Q8_K_BYTES) {
        float dx = slm_rd_f32(x);
        float d = f16s(w) * dx, dmin = f16s(w + 2) * dx;
        uint32_t sc[2], m[2];
        k4_unpack(w + 4, sc, m);
        __m128i m8 = _mm_cvtsi64_si128((long long)((uint64_t)m[0] | (uint64_t)m[1] << 32));
        __m256i mdup = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(bsums(x), mdup)), _mm256_set1_ps(dmin), accm);
        __m256i qh = five ? loadu256(w + Q5_K_QH) : _mm256_setzero_si256();
        const uint8_t *scb = (const uint8_t *)sc;
        __m256i isum = _mm256_setzero_si256();
        #pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m256i q = loadu256(w + qs_off + 32 * i);
            __m256i lo = _mm256_and_si256(q, m15), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m15);
            if (five) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * i), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * i + 1), one), 4));
            }
            __m256i plo = _mm256_maddubs_epi16(lo, loadu256(x + Q8_K_QS + 64 * i));
            __m256i phi = _mm256_maddubs_epi16(hi, loadu256(x + Q8_K_QS + 64 * i + 32));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(plo, _mm256_set1_epi16(scb[2 * i])));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(phi, _mm256_set1_epi16(scb[2 * i + 1])));
        }
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), acc);
    }
    return hsum256(acc) - hsum256(accm);
}

static float dot_q4_k(const void *row, const void *xq, int64_t n) { return k45_dot(row, xq, n / QK_K, false); }
static float dot_q5_k(const void *row, const void *xq, int64_t n) { return k45_dot(row, xq, n / QK_K, true); }

static float dot_q6_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    const __m256i m15 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps(), accc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++, w += Q6_K_BYTES, x += Q8_K_BYTES) {
        float d = f16s(w + Q6_K_D) * slm_rd_f32(x);
        __m128i sc = _mm_loadu_si128((const __m128i *)(w + Q6_K_SC));
        __m256i corr = _mm256_madd_epi16(bsums(x), _mm256_cvtepi8_epi16(sc));
        accc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(corr), _mm256_set1_ps(32.f * d), accc);
        __m256i isum = _mm256_setzero_si256();
        #pragma GCC unroll 4
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = loadu256(w + 64 * h), ql1 = loadu256(w + 64 * h + 32);
            __m256i qh = loadu256(w + Q6_K_QH + 32 * h);
            __m256i u[4];
            u[0] = _mm256_or_si256(_mm256_and_si256(ql0, m15), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            u[1] = _mm256_or_si256(_mm256_and_si256(ql1, m15), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m15), _mm256_and_si256(qh, m30));
            u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m15),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            #pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                __m256i p = _mm256_maddubs_epi16(u[k], loadu256(x + Q8_K_QS + 128 * h + 32 * k));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scale_pair_i8(sc, 8 * h + 2 * k)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), acc);
    }
    return hsum256(acc) - hsum256(accc);
}

/* Q2_K: 2-bit u at (qs[32h + l] >> 2s) & 3 for element 128h + 32s + l; group
 * scale low nibble, min high nibble of scales[e / 16] */
static float dot_q2_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++, w += Q2_K_BYTES, x += Q8_K_BYTES) {
        float dx = slm_rd_f32(x);
        float d = f16s(w + Q2_K_D) * dx, dmin = f16s(w + Q2_K_D + 2) * dx;
        __m128i s8 = _mm_loadu_si128((const __m128i *)w);
        __m128i sc = _mm_and_si128(s8, _mm_set1_epi8(15));
        __m128i mn = _mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(15));
        __m256i mins = _mm256_madd_epi16(bsums(x), _mm256_cvtepu8_epi16(mn));
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dmin), accm);
        __m256i isum = _mm256_setzero_si256();
        #pragma GCC unroll 4
        for (int h = 0; h < 2; h++) {
            __m256i q = loadu256(w + Q2_K_QS + 32 * h);
            #pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                __m256i u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
                __m256i p = _mm256_maddubs_epi16(u, loadu256(x + Q8_K_QS + 128 * h + 32 * s));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scale_pair_i8(sc, 8 * h + 2 * s)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), acc);
    }
    return hsum256(acc) - hsum256(accm);
}

/* Q3_K: u = 2 low bits | hmask bit << 2 in 0..7, value u - 4 */
static float dot_q3_k(const void *row, const void *xq, int64_t n) {
    const uint8_t *w = row, *x = xq;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps(), accc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++, w += Q3_K_BYTES, x += Q8_K_BYTES) {
        float d = f16s(w + Q3_K_D) * slm_rd_f32(x);
        /* 16 six-bit scales: low 4 bits are the nibbles of bytes 0-7 (all low
         * nibbles, then all high), the top 2 bits come from bytes 8-11 at
         * shifts 0, 2, 4, 6 for scales 0-3, 4-7, 8-11, 12-15; stored + 32 */
        __m128i s8 = _mm_loadl_epi64((const __m128i *)(w + Q3_K_SC));
        __m128i lo = _mm_and_si128(_mm_unpacklo_epi64(s8, _mm_srli_epi16(s8, 4)), _mm_set1_epi8(15));
        __m128i top = _mm_srlv_epi32(_mm_set1_epi32((int)slm_rd_u32(w + Q3_K_SC + 8)), _mm_setr_epi32(0, 2, 4, 6));
        top = _mm_slli_epi16(_mm_and_si128(top, _mm_set1_epi8(3)), 4);
        __m128i sc = _mm_sub_epi8(_mm_or_si128(lo, top), _mm_set1_epi8(32));
        __m256i corr = _mm256_madd_epi16(bsums(x), _mm256_cvtepi8_epi16(sc));
        accc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(corr), _mm256_set1_ps(4.f * d), accc);
        __m256i hm = loadu256(w);
        __m256i isum = _mm256_setzero_si256();
        #pragma GCC unroll 4
        for (int h = 0; h < 2; h++) {
            __m256i q = loadu256(w + Q3_K_QS + 32 * h);
            #pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + s), one);
                __m256i u = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3), _mm256_slli_epi16(hb, 2));
                __m256i p = _mm256_maddubs_epi16(u, loadu256(x + Q8_K_QS + 128 * h + 32 * s));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scale_pair_i8(sc, 8 * h + 2 * s)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), acc);
    }
    return hsum256(acc) - hsum256(accc);
}

/* ---- activation quantization (same operations as quant_act.c) ---- */

static inline float hmax256(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 32 floats * v, rounded to nearest even, to 32 int8 in order */
static inline __m256i round_pack32(const float *x, __m256 v) {
    __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), v));
    __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), v));
    __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), v));
    __m256i d = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), v));
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d); /* lanes interleaved */
    __m256i q = _mm256_packs_epi16(ab, cd);
    /* packs work per 128-bit lane: dwords come out in order 0,4,1,5,2,6,3,7 */
    q = _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    return _mm256_max_epi8(q, _mm256_set1_epi8(-127));
}

static void quant_q8_0(const float *x, void *dst, int64_t n) {
    uint8_t *y = dst;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / QK; i++, x += QK, y += Q8_0_BYTES) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QK; j += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + j), absmask));
        float amax = hmax256(m);
        float d = amax / 127.f;
        float id = amax >= SLM_ACT_TINY ? 1.f / d : 0.f;
        uint16_t dh = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        memcpy(y, &dh, 2);
        _mm256_storeu_si256((__m256i *)(y + 2), round_pack32(x, _mm256_set1_ps(id)));
    }
}

static void quant_q8_k(const float *x, void *dst, int64_t n) {
    uint8_t *y = dst;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, y += Q8_K_BYTES) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + j), absmask));
        float amax = hmax256(m);
        float iscale = amax >= SLM_ACT_TINY ? 127.f / amax : 0.f;
        float d = iscale != 0.f ? 1.f / iscale : 0.f;
        memcpy(y, &d, 4);
        __m256 v = _mm256_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q = round_pack32(x + j, v);
            _mm256_storeu_si256((__m256i *)(y + Q8_K_QS + j), q);
            /* two group sums of 16: widen to int16, pairwise-add to int32 */
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
            /* s: 8 int32, lanes 0-3 = group 2k's partial sums, 4-7 = group 2k+1's */
            __m128i lo = _mm256_castsi256_si128(s), hi = _mm256_extracti128_si256(s, 1);
            lo = _mm_hadd_epi32(lo, hi);
            lo = _mm_hadd_epi32(lo, lo);
            int16_t g0 = (int16_t)_mm_cvtsi128_si32(lo), g1 = (int16_t)_mm_extract_epi32(lo, 1);
            memcpy(y + Q8_K_BSUMS + 2 * (j / 16), &g0, 2);
            memcpy(y + Q8_K_BSUMS + 2 * (j / 16) + 2, &g1, 2);
        }
    }
}

void slm_kernels_fill_avx2(slm_kernels *k) {
    k->name = "avx2";
    k->dot[SLM_T_F32] = dot_f32;
    k->dot[SLM_T_F16] = dot_f16;
    k->dot[SLM_T_BF16] = dot_bf16;
    k->dot[SLM_T_Q4_0] = dot_q4_0;
    k->dot[SLM_T_Q4_1] = dot_q4_1;
    k->dot[SLM_T_Q5_0] = dot_q5_0;
    k->dot[SLM_T_Q5_1] = dot_q5_1;
    k->dot[SLM_T_Q8_0] = dot_q8_0;
    k->dot[SLM_T_Q2_K] = dot_q2_k;
    k->dot[SLM_T_Q3_K] = dot_q3_k;
    k->dot[SLM_T_Q4_K] = dot_q4_k;
    k->dot[SLM_T_Q5_K] = dot_q5_k;
    k->dot[SLM_T_Q6_K] = dot_q6_k;
    k->quant_q8_0 = quant_q8_0;
    k->quant_q8_k = quant_q8_k;
}
