/* AVX-512 dequantization of the types the default models store most
 * weights in (Q8_0, Q5_0): the frozen base is dequantized every step, twice.
 * Same products as the scalar reference (q * d in f32), so same bits. */
#include "train/dequant.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

#include "quant/quant.h"

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

bool tr_dequant_row_avx512(uint32_t type, const void *src, float *dst, int64_t n) {
    if (type == SLM_T_Q8_0) row_q8_0(src, dst, n);
    else if (type == SLM_T_Q5_0) row_q5_0(src, dst, n);
    else return false;
    return true;
}
#endif
