/* AVX-512 dequantization of the types the default models store their
 * weights in (Q8_0, Q5_0, Q4_K, Q6_K): the frozen base is dequantized every
 * step, twice.
 * Same products as the scalar reference (q * d in f32), so same bits. */
#include "train/dequant.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

#include "quant/quant_internal.h"

static inline float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static void row_q8_0(const uint8_t *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i += 32, b += 34, y += 32) {
        __m512 d = _mm512_set1_ps(f16(b));
        __m128i q0 = _mm_loadu_si128((const __m128i *)(b + 2)), q1 = _mm_loadu_si128((const __m128i *)(b + 18));
        _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d));
    }
}

static void row_q5_0(const uint8_t *b, float *y, int64_t n) {
    const __m128i m4 = _mm_set1_epi8(15), b4 = _mm_set1_epi8(16);
    for (int64_t i = 0; i < n; i += 32, b += 22, y += 32) {
        __m512 d = _mm512_set1_ps(f16(b));
        uint32_t qh;
        memcpy(&qh, b + 2, 4);
        __m128i qs = _mm_loadu_si128((const __m128i *)(b + 6));
        __m128i lo = _mm_and_si128(qs, m4), hi = _mm_and_si128(_mm_srli_epi16(qs, 4), m4);
        /* bit j of qh is the fifth bit of value j (lo: j < 16, hi: j >= 16) */
        lo = _mm_or_si128(lo, _mm_maskz_mov_epi8((__mmask16)(qh & 0xFFFF), b4));
        hi = _mm_or_si128(hi, _mm_maskz_mov_epi8((__mmask16)(qh >> 16), b4));
        lo = _mm_sub_epi8(lo, b4);
        hi = _mm_sub_epi8(hi, b4);
        _mm512_storeu_ps(y, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo))));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi))));
    }
}

/* 16 bytes of 0..255 (as int8 lanes holding small values) to 16 floats */
static inline __m512 bytes_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }

static void row_q4_k(const uint8_t *b, float *y, int64_t n) {
    const __m128i m4 = _mm_set1_epi8(15);
    for (int64_t i = 0; i < n; i += QK_K, b += Q4_K_BYTES) {
        float d = f16(b), dmin = f16(b + 2);
        const uint8_t *qs = b + Q4_K_QS;
        for (int j = 0; j < 8; j++, y += 32) {
            int sc, m;
            slm_k4_scale_min(b + Q4_K_SC, j, &sc, &m);
            __m512 dl = _mm512_set1_ps(d * (float)sc), ml = _mm512_set1_ps(dmin * (float)m);
            const uint8_t *q = qs + 32 * (j >> 1);
            int sh = (j & 1) * 4;
            for (int h = 0; h < 32; h += 16) {
                __m128i v = _mm_and_si128(_mm_srli_epi16(_mm_loadu_si128((const __m128i *)(q + h)), sh), m4);
                _mm512_storeu_ps(y + h, _mm512_sub_ps(_mm512_mul_ps(dl, bytes_ps(v)), ml));
            }
        }
    }
}

static void row_q6_k(const uint8_t *b, float *y, int64_t n) {
    const __m128i m4 = _mm_set1_epi8(15), m2 = _mm_set1_epi8(3), b32 = _mm_set1_epi8(32);
    for (int64_t i = 0; i < n; i += QK_K, b += Q6_K_BYTES) {
        const uint8_t *ql = b, *qh = b + Q6_K_QH;
        const int8_t *sc = (const int8_t *)(b + Q6_K_SC);
        float d = f16(b + Q6_K_D);
        for (int e = 0; e < QK_K; e += 16) {
            int h = e >> 7, k = (e >> 6) & 1, m = e & 63, s = (e >> 5) & 3, l = e & 31;
            __m128i lo = _mm_and_si128(_mm_srli_epi16(_mm_loadu_si128((const __m128i *)(ql + h * 64 + m)), 4 * k), m4);
            __m128i hi = _mm_and_si128(_mm_srli_epi16(_mm_loadu_si128((const __m128i *)(qh + h * 32 + l)), 2 * s), m2);
            __m128i v = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), b32);
            _mm512_storeu_ps(y + e, _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[e >> 4]), bytes_ps(v)));
        }
        y += QK_K;
    }
}

bool tr_dequant_row_avx512(uint32_t type, const void *src, float *dst, int64_t n) {
    if (type == SLM_T_Q8_0) row_q8_0(src, dst, n);
    else if (type == SLM_T_Q5_0) row_q5_0(src, dst, n);
    else if (type == SLM_T_Q4_K) row_q4_k(src, dst, n);
    else if (type == SLM_T_Q6_K) row_q6_k(src, dst, n);
    else return false;
    return true;
}
#endif
