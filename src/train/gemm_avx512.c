/* The AVX-512 micro-kernel: a 12 x 32 tile of C in 24 zmm accumulators; per
 * k, two loads of the B panel and 12 broadcasts of the A panel feed 24 FMAs. */
#include "train/gemm.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <immintrin.h>

#define ROW(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
#define FMA(i)                                    \
    {                                             \
        __m512 ai = _mm512_set1_ps(ap[i]);        \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0); \
        c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1); \
    }
#define STORE(i)                                                                           \
    {                                                                                      \
        float *ci = c + (i) * ldc;                                                         \
        if (acc) {                                                                         \
            _mm512_storeu_ps(ci, _mm512_fmadd_ps(va, c##i##0, _mm512_loadu_ps(ci)));       \
            _mm512_storeu_ps(ci + 16, _mm512_fmadd_ps(va, c##i##1, _mm512_loadu_ps(ci + 16))); \
        } else {                                                                           \
            _mm512_storeu_ps(ci, _mm512_mul_ps(va, c##i##0));                              \
            _mm512_storeu_ps(ci + 16, _mm512_mul_ps(va, c##i##1));                         \
        }                                                                                  \
    }

void tg_ukernel_avx512(int kc, float alpha, const float *ap, const float *bp, float *c, long ldc, bool acc) {
    ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7) ROW(8) ROW(9) ROW(10) ROW(11)
    /* the C tile is read (or written) after the loop: fetch it now */
    for (int i = 0; i < TG_MR; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
    }
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        _mm_prefetch((const char *)(bp + 8 * TG_NR), _MM_HINT_T0);
        FMA(0) FMA(1) FMA(2) FMA(3) FMA(4) FMA(5) FMA(6) FMA(7) FMA(8) FMA(9) FMA(10) FMA(11)
        ap += TG_MR;
        bp += TG_NR;
    }
    __m512 va = _mm512_set1_ps(alpha);
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5) STORE(6) STORE(7) STORE(8) STORE(9) STORE(10) STORE(11)
}
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
/* ---- packing with in-register 16 x 16 transposes ---------------------------
 * Four butterfly stages: stage b swaps the off-diagonal b x b blocks of
 * every 2b x 2b block (rows i and i|b exchange their columns c|b and c). */
static __m512i g_lo[4], g_hi[4];

static void make_idx(void) {
    for (int s = 0; s < 4; s++) {
        int b = 8 >> s;
        int lo[16], hi[16];
        for (int p = 0; p < 16; p++) {
            lo[p] = (p & b) ? 16 + (p - b) : p;   /* row i:    r_i[p] or r_{i|b}[p-b] */
            hi[p] = (p & b) ? 16 + p : p + b;     /* row i|b:  r_i[p+b] or r_{i|b}[p] */
        }
        g_lo[s] = _mm512_loadu_si512(lo);
        g_hi[s] = _mm512_loadu_si512(hi);
    }
}

/* only where the CPU has AVX-512 (the dispatcher never calls these elsewhere) */
__attribute__((constructor)) static void tg_idx_init(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) make_idx();
}

static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
#pragma GCC unroll 4
    for (int s = 0; s < 4; s++) {
        int b = 8 >> s;
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            if (i & b) continue;
            __m512 x = r[i], y = r[i | b];
            r[i] = _mm512_permutex2var_ps(x, g_lo[s], y);
            r[i | b] = _mm512_permutex2var_ps(x, g_hi[s], y);
        }
    }
}

/* A (mc x kc) with unit column stride into [k][MR] panels */
void tg_pack_a_rows_avx512(int mc, int kc, const float *a, long rsa, float *dst) {
    for (int p = 0; p < mc; p += TG_MR) {
        int mr = mc - p < TG_MR ? mc - p : TG_MR;
        float *d = dst + (size_t)p * kc;
        for (int k0 = 0; k0 < kc; k0 += 16) {
            int kn = kc - k0 < 16 ? kc - k0 : 16;
            __mmask16 km = (__mmask16)((1u << kn) - 1);
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = i < mr ? _mm512_maskz_loadu_ps(km, a + (size_t)(p + i) * rsa + k0) : _mm512_setzero_ps();
            transpose16(r);
#pragma GCC unroll 16
            for (int kk = 0; kk < 16; kk++)
                if (kk < kn) _mm512_mask_storeu_ps(d + (size_t)(k0 + kk) * TG_MR, 0x0FFF, r[kk]);
        }
    }
}

/* B (kc x nc) whose columns are contiguous rows of the source (B = Wᵀ:
 * B(k, j) = b[j*csb + k]) into [k][NR] panels */
void tg_pack_b_cols_avx512(int kc, int nc, const float *b, long csb, float *dst) {
    for (int p = 0; p < nc; p += TG_NR) {
        float *d = dst + (size_t)p * kc;
        for (int h = 0; h < TG_NR; h += 16) {
            int nj = nc - p - h;
            if (nj > 16) nj = 16;
            for (int k0 = 0; k0 < kc; k0 += 16) {
                int kn = kc - k0 < 16 ? kc - k0 : 16;
                __mmask16 km = (__mmask16)((1u << kn) - 1);
                __m512 r[16];
#pragma GCC unroll 16
                for (int j = 0; j < 16; j++)
                    r[j] = j < nj ? _mm512_maskz_loadu_ps(km, b + (size_t)(p + h + j) * csb + k0) : _mm512_setzero_ps();
                transpose16(r);
#pragma GCC unroll 16
                for (int kk = 0; kk < 16; kk++)
                    if (kk < kn) _mm512_storeu_ps(d + (size_t)(k0 + kk) * TG_NR + h, r[kk]);
            }
        }
    }
}
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
/* B (kc x nc) with unit column stride into [k][NR] panels: plain copies */
void tg_pack_b_rows_avx512(int kc, int nc, const float *b, long rsb, float *dst) {
    for (int p = 0; p < nc; p += TG_NR) {
        float *d = dst + (size_t)p * kc;
        int nr = nc - p < TG_NR ? nc - p : TG_NR;
        if (nr == TG_NR) {
            for (int k = 0; k < kc; k++) {
                const float *s = b + (size_t)k * rsb + p;
                _mm512_storeu_ps(d + (size_t)k * TG_NR, _mm512_loadu_ps(s));
                _mm512_storeu_ps(d + (size_t)k * TG_NR + 16, _mm512_loadu_ps(s + 16));
            }
        } else {
            __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
            __mmask16 m1 = (__mmask16)(nr <= 16 ? 0 : (1u << (nr - 16)) - 1);
            for (int k = 0; k < kc; k++) {
                const float *s = b + (size_t)k * rsb + p;
                _mm512_storeu_ps(d + (size_t)k * TG_NR, _mm512_maskz_loadu_ps(m0, s));
                _mm512_storeu_ps(d + (size_t)k * TG_NR + 16, _mm512_maskz_loadu_ps(m1, s + 16));
            }
        }
    }
}
#endif
