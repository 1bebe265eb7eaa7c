/* Private to the AVX-512 files of src/quant: the "16 rows per vector"
 * layout that the prompt tiles (gemm_tiles_avx512.c) build per call and the
 * packed Q8_0 weights (packed_avx512.c) keep for good. Vector j of a
 * 32-element block holds, in int32 lane r, bytes 4j..4j+3 of row r's block
 * made unsigned (q + o: o = 128, 8, 16 for Q8_0, Q4_0, Q5_0), as vpdpbusd
 * wants its first operand. */
#ifndef SLM_PACK16_AVX512_H
#define SLM_PACK16_AVX512_H

#include <immintrin.h>

#include "quant/quant_internal.h"

enum { K_Q8_0, K_Q4_0, K_Q5_0 };

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

/* 16 rows of 8 dwords -> 8 vectors, lane r of out[j] = dword j of row r.
 * V[h][a] lane L = dwords 4h..4h+3 of row 4L + a, then a 4 x 4 transpose
 * inside each 128-bit lane. */
static inline void transpose16x8(const __m256i R[16], __m512i out[8]) {
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
        out[4 * h + 0] = _mm512_unpacklo_epi64(t0, t2);
        out[4 * h + 1] = _mm512_unpackhi_epi64(t0, t2);
        out[4 * h + 2] = _mm512_unpacklo_epi64(t1, t3);
        out[4 * h + 3] = _mm512_unpackhi_epi64(t1, t3);
    }
}

#endif
