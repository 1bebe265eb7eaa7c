/* AVX-512 attention of one token's query heads that share a KV head
 * (op_attn_group; the portable version and the contract are in attn.c).
 *
 * Flash-style: keys are taken in tiles of AK; for each tile the scores of
 * 4 query heads x 4 keys come from 16 f32 accumulators over the head
 * dimension (every key row loaded once for the 4 heads), reduced together
 * by one transposing sum. The softmax is online: a running max and sum per
 * head; the output rows are rescaled when the max grows and accumulate
 * P x V over 64-column slices held in 16 registers, so each output row goes
 * through memory once per tile instead of once per key, and the scores
 * never leave a 256-byte buffer.
 *
 * Lane e of a score vector belongs to head (e & 3), key (e >> 2). */
#include "ops/exp_avx512.h"
#include "ops/ops_isa.h"

#include <immintrin.h>
#include <math.h>
#include <stdbool.h>

#define AK 16 /* keys per tile */

/* e^x for x <= 0; below -87.3 (and -inf, NaN) gives 0. */
static inline __m512 exp_le0(__m512 x) {
    const __mmask16 ok = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    return _mm512_maskz_mov_ps(ok, slm_exp_in_range_avx512(x));
}

/* 16 vectors -> one vector of their sums; element 4L + c is the sum of v[L + 4c] */
static inline __m512 hsum16(const __m512 *v) {
    __m512 s[8], u[4];
    for (int i = 0; i < 8; i++) {
        __m512 lo = _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44);
        __m512 hi = _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE);
        s[i] = _mm512_add_ps(lo, hi); /* lanes 0-1: v[2i], 2-3: v[2i+1] */
    }
    for (int i = 0; i < 4; i++) {
        __m512 lo = _mm512_shuffle_f32x4(s[2 * i], s[2 * i + 1], 0x88);
        __m512 hi = _mm512_shuffle_f32x4(s[2 * i], s[2 * i + 1], 0xDD);
        u[i] = _mm512_add_ps(lo, hi); /* lane L: v[4i + L] */
    }
    __m512 w0 = _mm512_add_ps(_mm512_unpacklo_ps(u[0], u[1]), _mm512_unpackhi_ps(u[0], u[1]));
    __m512 w1 = _mm512_add_ps(_mm512_unpacklo_ps(u[2], u[3]), _mm512_unpackhi_ps(u[2], u[3]));
    __m512d a = _mm512_castps_pd(w0), b = _mm512_castps_pd(w1);
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
}

/* lane e gets the max / sum over the lanes of head e & 3 */
static inline __m512 fold_max(__m512 a) {
    a = _mm512_max_ps(a, _mm512_shuffle_f32x4(a, a, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm512_max_ps(a, _mm512_shuffle_f32x4(a, a, _MM_SHUFFLE(2, 3, 0, 1)));
}
static inline __m512 fold_add(__m512 a) {
    a = _mm512_add_ps(a, _mm512_shuffle_f32x4(a, a, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm512_add_ps(a, _mm512_shuffle_f32x4(a, a, _MM_SHUFFLE(2, 3, 0, 1)));
}

/* 4 heads (q rows hd apart, out rows hdv apart) against keys/values 0..cnt-1 */
static void attn4(const float *q, int hd, int hdv, const float *k, size_t ks, const float *v, size_t vs, int cnt,
                  float scale, float *out) {
    float sc[AK * 4] __attribute__((aligned(64)));
    __m512 m = _mm512_set1_ps(-INFINITY), l = _mm512_setzero_ps();
    for (int h = 0; h < 4; h++)
        for (int d = 0; d < hdv; d += 16) _mm512_storeu_ps(out + (size_t)h * hdv + d, _mm512_setzero_ps());
    for (int k0 = 0; k0 < cnt; k0 += AK) {
        const int nk = cnt - k0 < AK ? cnt - k0 : AK;
        /* scores */
        __m512 tmax = _mm512_set1_ps(-INFINITY);
        for (int i = 0; i < AK; i += 4) {
            if (i >= nk) {
                _mm512_store_ps(sc + 4 * i, _mm512_set1_ps(-INFINITY));
                continue;
            }
            const float *kr[4];
            for (int kk = 0; kk < 4; kk++) {
                int idx = k0 + i + kk < cnt ? k0 + i + kk : cnt - 1;
                kr[kk] = k + (size_t)idx * ks;
            }
            __m512 acc[16];
            for (int a = 0; a < 16; a++) acc[a] = _mm512_setzero_ps();
            for (int d = 0; d < hd; d += 16) {
                __m512 kv0 = _mm512_loadu_ps(kr[0] + d), kv1 = _mm512_loadu_ps(kr[1] + d);
                __m512 kv2 = _mm512_loadu_ps(kr[2] + d), kv3 = _mm512_loadu_ps(kr[3] + d);
#pragma GCC unroll 4
                for (int h = 0; h < 4; h++) {
                    __m512 qv = _mm512_loadu_ps(q + (size_t)h * hd + d);
                    acc[4 * h + 0] = _mm512_fmadd_ps(qv, kv0, acc[4 * h + 0]);
                    acc[4 * h + 1] = _mm512_fmadd_ps(qv, kv1, acc[4 * h + 1]);
                    acc[4 * h + 2] = _mm512_fmadd_ps(qv, kv2, acc[4 * h + 2]);
                    acc[4 * h + 3] = _mm512_fmadd_ps(qv, kv3, acc[4 * h + 3]);
                }
            }
            /* acc[4h + kk] lands in element 4 kk + h */
            __m512 s = _mm512_mul_ps(hsum16(acc), _mm512_set1_ps(scale));
            if (nk - i < 4) s = _mm512_mask_blend_ps((__mmask16)((1u << (4 * (nk - i))) - 1), _mm512_set1_ps(-INFINITY), s);
            _mm512_store_ps(sc + 4 * i, s);
            tmax = _mm512_max_ps(tmax, s);
        }
        /* online softmax: new max, rescale factor of what came before */
        const __m512 mnew = _mm512_max_ps(m, fold_max(tmax));
        const __m512 corr = exp_le0(_mm512_sub_ps(m, mnew));
        m = mnew;
        __m512 psum = _mm512_setzero_ps();
        for (int i = 0; i < nk; i += 4) {
            __m512 p = exp_le0(_mm512_sub_ps(_mm512_load_ps(sc + 4 * i), m));
            _mm512_store_ps(sc + 4 * i, p);
            psum = _mm512_add_ps(psum, p);
        }
        l = _mm512_fmadd_ps(l, corr, fold_add(psum));
        /* out = out * corr + P V, 64 columns at a time */
        __m512 ch[4];
        for (int h = 0; h < 4; h++) ch[h] = _mm512_permutexvar_ps(_mm512_set1_epi32(h), corr);
        for (int dc = 0; dc < hdv; dc += 64) {
            __m512 o[4][4];
#pragma GCC unroll 4
            for (int h = 0; h < 4; h++)
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++)
                    o[h][c] = _mm512_mul_ps(_mm512_loadu_ps(out + (size_t)h * hdv + dc + 16 * c), ch[h]);
            for (int i = 0; i < nk; i++) {
                const float *vr = v + (size_t)(k0 + i) * vs + dc;
                __m512 v0 = _mm512_loadu_ps(vr), v1 = _mm512_loadu_ps(vr + 16);
                __m512 v2 = _mm512_loadu_ps(vr + 32), v3 = _mm512_loadu_ps(vr + 48);
#pragma GCC unroll 4
                for (int h = 0; h < 4; h++) {
                    __m512 p = _mm512_set1_ps(sc[4 * i + h]);
                    o[h][0] = _mm512_fmadd_ps(p, v0, o[h][0]);
                    o[h][1] = _mm512_fmadd_ps(p, v1, o[h][1]);
                    o[h][2] = _mm512_fmadd_ps(p, v2, o[h][2]);
                    o[h][3] = _mm512_fmadd_ps(p, v3, o[h][3]);
                }
            }
#pragma GCC unroll 4
            for (int h = 0; h < 4; h++)
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) _mm512_storeu_ps(out + (size_t)h * hdv + dc + 16 * c, o[h][c]);
        }
    }
    float lv[16];
    _mm512_storeu_ps(lv, l);
    for (int h = 0; h < 4; h++) {
        const __m512 inv = _mm512_set1_ps(1.f / lv[h]);
        for (int d = 0; d < hdv; d += 16)
            _mm512_storeu_ps(out + (size_t)h * hdv + d, _mm512_mul_ps(_mm512_loadu_ps(out + (size_t)h * hdv + d), inv));
    }
}

bool op_attn_group_avx512(const float *q, int group, int hd, int hdv, const float *k, size_t k_stride,
                          const float *v, size_t v_stride, int cnt, float scale, float *out) {
    if (group % 4 != 0 || hd % 16 != 0 || hdv % 64 != 0 || cnt <= 0) return false;
    for (int g = 0; g < group; g += 4)
        attn4(q + (size_t)g * hd, hd, hdv, k, k_stride, v, v_stride, cnt, scale, out + (size_t)g * hdv);
    return true;
}
