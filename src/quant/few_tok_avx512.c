/* AVX-512 VNNI tiles for a few tokens (2..7: batched decoding of a few
 * sequences): rows x tokens, reading the stored GGUF blocks as they are.
 *
 * The one-row kernels of vec_dot_avx512.c spend most of their work on the
 * weights (nibble unpacking, scale decoding, f16 conversions), and only a
 * few multiplies per 32 elements on the token. Here every weight block is
 * unpacked once per row and then multiplied with each token in turn, so a
 * token costs only its multiply-adds. The token count is a compile-time
 * constant in each instance (NT = 2..7), so the per-token accumulators live
 * in registers and every per-token loop is unrolled.
 *
 * 32-blocks (Q8_0, Q4_0, Q5_0) x Q8_0: as in vec_dot_avx512.c, two blocks
 * fill a 512-bit vector and vpdpbusd sums (q + o) x over 4 bytes per int32
 * lane, starting from -o * (sum of x over those bytes). The tokens' vectors,
 * those starting sums and their block scales (spread over the 8 lanes of
 * their block) are prepared once per call, per chunk of columns, and serve
 * every row of the tile; per token and block pair that leaves vpdpbusd,
 * a convert, the scale product and an fma.
 *
 * K-quants x Q8_K, 256-bit (Zen 4 runs 512-bit forms at half rate): per
 * token, vpdpbusd sums the unsigned weights (0..63) times x over 4 bytes
 * into int32 lanes that stay within int16 (4 * 63 * 127 < 32768), vpackssdw
 * packs two vectors' sums (two sub-blocks) into one, and one vpdpwssd
 * multiplies them by their scales and accumulates: 3 multiplies per 64
 * elements where vpmaddubsw + vpdpwssd needed 4 (measured ~8% faster per
 * token on Zen 4). Two int32 chains per token keep a pair of tokens from
 * being bound by latency. Q6_K's offset of 32 starts the int32 sums at
 * -32 * sum(scale * bsum); Q4_K / Q5_K's mins are taken out in f32 with the
 * super-block's dmin, per token.
 *
 * Results equal the scalar kernel up to f32 summation order. All loads are
 * unaligned (blocks of 22, 34, 144 ... bytes sit at any address). */
#include "quant/quant_internal.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stdlib.h>

#define AI static inline __attribute__((always_inline))
#define FEW_MAX (SLM_FEW_TOK - 1)

static inline float f16s(const uint8_t *p) { return _cvtsh_ss(slm_rd_u16(p)); }

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- 32-blocks x Q8_0 ---- */

enum { F_Q8_0, F_Q4_0, F_Q5_0 };
/* block pairs prepared at once: 3 vectors per token and pair, so 7 tokens
 * x 16 pairs = 21 KB of stack (L1) */
#define PAIRS 16

static inline size_t kind_bytes(int kind) { return kind == F_Q8_0 ? Q8_0_BYTES : kind == F_Q4_0 ? Q4_0_BYTES : Q5_0_BYTES; }
static inline int kind_off(int kind) { return kind == F_Q8_0 ? 128 : kind == F_Q4_0 ? 8 : 16; }

/* The unsigned weights (q + o) of the block at wb, in element order. */
AI __m256i unpack_one(int kind, const uint8_t *wb) {
    if (kind == F_Q8_0)
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(wb + 2)), _mm256_set1_epi8((char)0x80));
    const uint8_t *qs = wb + (kind == F_Q4_0 ? 2 : 6);
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i u = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1),
                                 _mm256_set1_epi8(15));
    if (kind == F_Q5_0) u = _mm256_mask_add_epi8(u, (__mmask32)slm_rd_u32(wb + 2), u, _mm256_set1_epi8(16));
    return u;
}

/* The blocks at wb and wb + bytes: bytes 0-31 the first, 32-63 the second. */
AI __m512i unpack_pair(int kind, const uint8_t *wb) {
    const size_t bb = kind_bytes(kind);
    if (kind == F_Q8_0) {
        __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(wb + 2))),
                                       _mm256_loadu_si256((const __m256i *)(wb + bb + 2)), 1);
        return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
    }
    const int qo = kind == F_Q4_0 ? 2 : 6;
    __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(wb + qo))),
                                        _mm_loadu_si128((const __m128i *)(wb + bb + qo)), 1);
    /* [q0 q1] -> [q0 q0>>4 q1 q1>>4] */
    __m512i z = _mm512_permutexvar_epi64(_mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0), _mm512_castsi256_si512(q));
    z = _mm512_srlv_epi16(z, _mm512_set_epi64(4 * 0x0001000100010001ll, 4 * 0x0001000100010001ll, 0, 0,
                                              4 * 0x0001000100010001ll, 4 * 0x0001000100010001ll, 0, 0));
    __m512i u = _mm512_and_si512(z, _mm512_set1_epi8(15));
    if (kind == F_Q5_0) {
        __mmask64 h = (__mmask64)slm_rd_u32(wb + 2) | (__mmask64)slm_rd_u32(wb + bb + 2) << 32;
        u = _mm512_mask_add_epi8(u, h, u, _mm512_set1_epi8(16));
    }
    return u;
}

/* The tokens' side of one chunk of block pairs. */
typedef struct {
    __m512i xv[FEW_MAX][PAIRS];   /* the two blocks' int8 */
    __m512i negc[FEW_MAX][PAIRS]; /* -o * sums of x over each 4 bytes */
    __m512 dx[FEW_MAX][PAIRS];    /* block scales, lanes 0-7 and 8-15 */
} xprep;

/* Blocks [c0, c0 + cn) of nt tokens; an odd last block pairs with zeros. */
static void prep_chunk(int kind, const uint8_t *x, size_t xs, int nt, int64_t c0, int cn, xprep *p) {
    const __m512i off = _mm512_set1_epi8((char)kind_off(kind));
    for (int t = 0; t < nt; t++)
        for (int i = 0; 2 * i < cn; i++) {
            const uint8_t *xb = x + (size_t)t * xs + (size_t)(c0 + 2 * i) * Q8_0_BYTES;
            const bool two = 2 * i + 1 < cn;
            __m256i lo = _mm256_loadu_si256((const __m256i *)(xb + 2));
            __m256i hi = two ? _mm256_loadu_si256((const __m256i *)(xb + Q8_0_BYTES + 2)) : _mm256_setzero_si256();
            __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            p->xv[t][i] = v;
            p->negc[t][i] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, v));
            p->dx[t][i] = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(f16s(xb)),
                                               _mm512_set1_ps(two ? f16s(xb + Q8_0_BYTES) : 0.f));
        }
}

AI void few32(const int NT, int kind, const uint8_t *w, size_t ws, int nrows, const uint8_t *x, size_t xs,
              int64_t nb, float *out, size_t os) {
    const size_t bb = kind_bytes(kind);
    const __m512i idx01 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    xprep p;
    if (nb == 0)
        for (int t = 0; t < NT; t++)
            for (int r = 0; r < nrows; r++) out[(size_t)t * os + r] = 0.f;
    for (int64_t c0 = 0; c0 < nb; c0 += 2 * PAIRS) {
        const int cn = nb - c0 < 2 * PAIRS ? (int)(nb - c0) : 2 * PAIRS;
        const int full = cn / 2;
        prep_chunk(kind, x, xs, NT, c0, cn, &p);
        for (int r = 0; r < nrows; r++) {
            const uint8_t *wc = w + (size_t)r * ws + (size_t)c0 * bb;
            __m512 acc[FEW_MAX];
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
            for (int i = 0; i <= full; i++) {
                const uint8_t *wb = wc + (size_t)(2 * i) * bb;
                __m512i u;
                uint32_t d2;
                if (i < full) {
                    u = unpack_pair(kind, wb);
                    d2 = (uint32_t)slm_rd_u16(wb) | (uint32_t)slm_rd_u16(wb + bb) << 16;
                } else if (cn & 1) {
                    u = _mm512_zextsi256_si512(unpack_one(kind, wb));
                    d2 = slm_rd_u16(wb);
                } else {
                    break;
                }
                __m512 dw = _mm512_permutexvar_ps(idx01, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128((int)d2))));
#pragma GCC unroll 8
                for (int t = 0; t < NT; t++) {
                    __m512i s = _mm512_dpbusd_epi32(p.negc[t][i], u, p.xv[t][i]);
                    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, p.dx[t][i]), acc[t]);
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) {
                float v = _mm512_reduce_add_ps(acc[t]);
                if (c0 == 0) out[(size_t)t * os + r] = v;
                else out[(size_t)t * os + r] += v;
            }
        }
    }
}

/* ---- Q4_K / Q5_K x Q8_K ---- */

AI void few_k45(const int NT, bool five, const uint8_t *w, size_t ws, int nrows, const uint8_t *x, size_t xs,
                int64_t nb, float *out, size_t os) {
    const size_t bytes = five ? Q5_K_BYTES : Q4_K_BYTES;
    const int qs_off = five ? Q5_K_QS : Q4_K_QS;
    const __m256i m15 = _mm256_set1_epi8(15), sixteen = _mm256_set1_epi8(16);
    for (int r = 0; r < nrows; r++) {
        const uint8_t *wr = w + (size_t)r * ws;
        __m256 acc[FEW_MAX];
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *wb = wr + (size_t)b * bytes, *xb = x + (size_t)b * Q8_K_BYTES;
            const __m256 d = _mm256_set1_ps(f16s(wb)), dmin = _mm256_set1_ps(f16s(wb + 2));
            const uint8_t *s = wb + 4;
            uint32_t u0 = slm_rd_u32(s), u1 = slm_rd_u32(s + 4), u2 = slm_rd_u32(s + 8);
            uint32_t sc[2] = { u0 & 0x3f3f3f3fu, (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u) };
            uint32_t m[2] = { u1 & 0x3f3f3f3fu, ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u) };
            __m128i m8 = _mm_cvtsi64_si128((long long)((uint64_t)m[0] | (uint64_t)m[1] << 32));
            const __m256i mdup = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
            /* scale j as int16 in word j: broadcasts below take it from here */
            const __m128i sc16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)((uint64_t)sc[0] | (uint64_t)sc[1] << 32)));
            __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(wb + Q5_K_QH)) : _mm256_setzero_si256();
            __m256i ia[FEW_MAX], ib[FEW_MAX];
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) ia[t] = ib[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(wb + qs_off + 32 * i));
                __m256i lo = _mm256_and_si256(q, m15), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m15);
                if (five) {
                    lo = _mm256_mask_add_epi8(lo, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * i)))), lo, sixteen);
                    hi = _mm256_mask_add_epi8(hi, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * i + 1)))), hi, sixteen);
                }
                /* words 0-3 scale 2i, 4-7 scale 2i+1 in each 128-bit lane: the
                 * layout of packs(lo sums, hi sums) */
                const __m256i sp = _mm256_permutexvar_epi16(
                    _mm256_set_epi16(2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i, 2 * i, 2 * i, 2 * i,
                                     2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i, 2 * i, 2 * i, 2 * i),
                    _mm256_castsi128_si256(sc16));
#pragma GCC unroll 8
                for (int t = 0; t < NT; t++) {
                    const uint8_t *xq = xb + (size_t)t * xs + Q8_K_QS + 64 * i;
                    __m256i a = _mm256_dpbusd_epi32(_mm256_setzero_si256(), lo, _mm256_loadu_si256((const __m256i *)xq));
                    __m256i c = _mm256_dpbusd_epi32(_mm256_setzero_si256(), hi, _mm256_loadu_si256((const __m256i *)(xq + 32)));
                    if (i & 1) ib[t] = _mm256_dpwssd_epi32(ib[t], _mm256_packs_epi32(a, c), sp);
                    else ia[t] = _mm256_dpwssd_epi32(ia[t], _mm256_packs_epi32(a, c), sp);
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) {
                const uint8_t *xt = xb + (size_t)t * xs;
                __m256 mins = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(xt + Q8_K_BSUMS)), mdup));
                __m256 f = _mm256_fmsub_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(ia[t], ib[t])), d, _mm256_mul_ps(mins, dmin));
                acc[t] = _mm256_fmadd_ps(f, _mm256_set1_ps(slm_rd_f32(xt)), acc[t]);
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) out[(size_t)t * os + r] = hsum256(acc[t]);
    }
}

/* ---- Q6_K x Q8_K ---- */

/* The int16 scales for packs(a, c) of two vectors' sums, a over scales g,
 * g + 1 and c over g + 2, g + 3 (16 elements each): words 0-3 g, 4-7 g + 2,
 * 8-11 g + 1, 12-15 g + 3. */
static inline __m256i scale_quad(__m128i s, int g) {
    __m128i c = _mm_set_epi32(0x01010101 * (g + 3), 0x01010101 * (g + 1), 0x01010101 * (g + 2), 0x01010101 * g);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s, c));
}

AI void few_q6k(const int NT, const uint8_t *w, size_t ws, int nrows, const uint8_t *x, size_t xs, int64_t nb,
                float *out, size_t os) {
    const __m256i m15 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    for (int r = 0; r < nrows; r++) {
        const uint8_t *wr = w + (size_t)r * ws;
        __m256 acc[FEW_MAX];
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *wb = wr + (size_t)b * Q6_K_BYTES, *xb = x + (size_t)b * Q8_K_BYTES;
            const float d = f16s(wb + Q6_K_D);
            const __m128i sc = _mm_loadu_si128((const __m128i *)(wb + Q6_K_SC));
            /* -32 * scale: the sums start at -32 sum(scale * bsum) */
            const __m256i scn = _mm256_mullo_epi16(_mm256_cvtepi8_epi16(sc), _mm256_set1_epi16(-32));
            __m256i ia[FEW_MAX], ib[FEW_MAX];
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) {
                ia[t] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(xb + (size_t)t * xs + Q8_K_BSUMS)), scn);
                ib[t] = _mm256_setzero_si256();
            }
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m256i ql0 = _mm256_loadu_si256((const __m256i *)(wb + 64 * h));
                __m256i ql1 = _mm256_loadu_si256((const __m256i *)(wb + 64 * h + 32));
                __m256i qh = _mm256_loadu_si256((const __m256i *)(wb + Q6_K_QH + 32 * h));
                __m256i u[4];
                u[0] = _mm256_or_si256(_mm256_and_si256(ql0, m15), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
                u[1] = _mm256_or_si256(_mm256_and_si256(ql1, m15), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
                u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m15), _mm256_and_si256(qh, m30));
                u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m15),
                                       _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
#pragma GCC unroll 2
                for (int k = 0; k < 4; k += 2) {
                    const __m256i sp = scale_quad(sc, 8 * h + 2 * k);
#pragma GCC unroll 8
                    for (int t = 0; t < NT; t++) {
                        const uint8_t *xq = xb + (size_t)t * xs + Q8_K_QS + 128 * h + 32 * k;
                        __m256i a = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u[k], _mm256_loadu_si256((const __m256i *)xq));
                        __m256i c = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u[k + 1], _mm256_loadu_si256((const __m256i *)(xq + 32)));
                        if (h) ib[t] = _mm256_dpwssd_epi32(ib[t], _mm256_packs_epi32(a, c), sp);
                        else ia[t] = _mm256_dpwssd_epi32(ia[t], _mm256_packs_epi32(a, c), sp);
                    }
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) {
                const float dd = d * slm_rd_f32(xb + (size_t)t * xs);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(ia[t], ib[t])), _mm256_set1_ps(dd), acc[t]);
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) out[(size_t)t * os + r] = hsum256(acc[t]);
    }
}

/* ---- one instance per token count ---- */

_Static_assert(FEW_MAX == 7, "one instance per token count below");
/* The dispatcher calls these for 1 < ntok < SLM_FEW_TOK only. */
#define FEW(name, call)                                                                                  \
    static void few_##name(const void *rows, size_t stride, int nrows, const void *xq, size_t xq_stride, \
                           int ntok, int64_t n, float *out, size_t os) {                                 \
        switch (ntok) {                                                                                  \
        case 2: call(2); break;                                                                          \
        case 3: call(3); break;                                                                          \
        case 4: call(4); break;                                                                          \
        case 5: call(5); break;                                                                          \
        case 6: call(6); break;                                                                          \
        case 7: call(7); break;                                                                          \
        default: abort();                                                                                \
        }                                                                                                \
    }
#define CALL_Q8_0(NT) few32(NT, F_Q8_0, rows, stride, nrows, xq, xq_stride, n / QK, out, os)
#define CALL_Q4_0(NT) few32(NT, F_Q4_0, rows, stride, nrows, xq, xq_stride, n / QK, out, os)
#define CALL_Q5_0(NT) few32(NT, F_Q5_0, rows, stride, nrows, xq, xq_stride, n / QK, out, os)
#define CALL_Q4_K(NT) few_k45(NT, false, rows, stride, nrows, xq, xq_stride, n / QK_K, out, os)
#define CALL_Q5_K(NT) few_k45(NT, true, rows, stride, nrows, xq, xq_stride, n / QK_K, out, os)
#define CALL_Q6_K(NT) few_q6k(NT, rows, stride, nrows, xq, xq_stride, n / QK_K, out, os)
FEW(q8_0, CALL_Q8_0)
FEW(q4_0, CALL_Q4_0)
FEW(q5_0, CALL_Q5_0)
FEW(q4_k, CALL_Q4_K)
FEW(q5_k, CALL_Q5_K)
FEW(q6_k, CALL_Q6_K)

void slm_kernels_fill_few_avx512(slm_kernels *k) {
    k->few[SLM_T_Q8_0] = few_q8_0;
    k->few[SLM_T_Q4_0] = few_q4_0;
    k->few[SLM_T_Q5_0] = few_q5_0;
    k->few[SLM_T_Q4_K] = few_q4_k;
    k->few[SLM_T_Q5_K] = few_q5_k;
    k->few[SLM_T_Q6_K] = few_q6_k;
}
