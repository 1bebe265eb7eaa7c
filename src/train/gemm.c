/* The blocked GEMM driver: packing, loops, threading. See gemm.h. */
#include "train/gemm.h"

#include <string.h>

static tg_ukernel_fn g_kernel = tg_ukernel_portable;
static const char *g_name = "portable";
static bool g_have_avx512;

__attribute__((constructor)) static void tg_pick(void) {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        g_have_avx512 = true;
        g_kernel = tg_ukernel_avx512;
        g_name = "avx512";
    }
#endif
}

const char *tg_kernel_name(void) { return g_name; }

void tg_force_portable(bool on) {
    g_kernel = on || !g_have_avx512 ? tg_ukernel_portable : tg_ukernel_avx512;
    g_name = on || !g_have_avx512 ? "portable" : "avx512";
}

#if !((defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__))
void tg_ukernel_avx512(int kc, float alpha, const float *ap, const float *bp, float *c, long ldc, bool acc) {
    tg_ukernel_portable(kc, alpha, ap, bp, c, ldc, acc);
}
void tg_pack_a_rows_avx512(int mc, int kc, const float *a, long rsa, float *dst) { (void)mc; (void)kc; (void)a; (void)rsa; (void)dst; }
void tg_pack_b_cols_avx512(int kc, int nc, const float *b, long csb, float *dst) { (void)kc; (void)nc; (void)b; (void)csb; (void)dst; }
void tg_pack_b_rows_avx512(int kc, int nc, const float *b, long rsb, float *dst) { (void)kc; (void)nc; (void)b; (void)rsb; (void)dst; }
#endif

void tg_ukernel_portable(int kc, float alpha, const float *ap, const float *bp, float *c, long ldc, bool acc) {
    float t[TG_MR][TG_NR];
    memset(t, 0, sizeof t);
    for (int k = 0; k < kc; k++) {
        const float *a = ap + (size_t)k * TG_MR, *b = bp + (size_t)k * TG_NR;
        for (int i = 0; i < TG_MR; i++) {
            float ai = a[i];
            for (int j = 0; j < TG_NR; j++) t[i][j] += ai * b[j];
        }
    }
    for (int i = 0; i < TG_MR; i++)
        for (int j = 0; j < TG_NR; j++) c[i * ldc + j] = (acc ? c[i * ldc + j] : 0.0f) + alpha * t[i][j];
}

/* A[i0.., k0..] (mc x kc) into panels of MR rows, each [k][MR], zero-padded. */
static void pack_a(int mc, int kc, const float *a, long rsa, long csa, float *dst) {
    if (csa == 1 && g_kernel == tg_ukernel_avx512) {
        tg_pack_a_rows_avx512(mc, kc, a, rsa, dst);
        return;
    }
    for (int p = 0; p < mc; p += TG_MR) {
        int mr = mc - p < TG_MR ? mc - p : TG_MR;
        float *d = dst + (size_t)p * kc;
        if (csa == 1) {
            for (int i = 0; i < mr; i++) {
                const float *s = a + (size_t)(p + i) * rsa;
                for (int k = 0; k < kc; k++) d[(size_t)k * TG_MR + i] = s[k];
            }
            for (int i = mr; i < TG_MR; i++)
                for (int k = 0; k < kc; k++) d[(size_t)k * TG_MR + i] = 0.0f;
        } else {
            for (int k = 0; k < kc; k++) {
                const float *s = a + (size_t)p * rsa + (size_t)k * csa;
                float *dk = d + (size_t)k * TG_MR;
                int i = 0;
                for (; i < mr; i++) dk[i] = s[(size_t)i * rsa];
                for (; i < TG_MR; i++) dk[i] = 0.0f;
            }
        }
    }
}

/* B[k0.., j0..] (kc x nc) into panels of NR columns, each [k][NR], zero-padded. */
void tg_pack_b(int kc, int nc, const float *b, long rsb, long csb, float *dst) {
    if (rsb == 1 && csb != 1 && g_kernel == tg_ukernel_avx512) {
        tg_pack_b_cols_avx512(kc, nc, b, csb, dst);
        return;
    }
    if (csb == 1 && g_kernel == tg_ukernel_avx512) {
        tg_pack_b_rows_avx512(kc, nc, b, rsb, dst);
        return;
    }
    for (int p = 0; p < nc; p += TG_NR) {
        int nr = nc - p < TG_NR ? nc - p : TG_NR;
        float *d = dst + (size_t)p * kc;
        if (csb == 1) {
            for (int k = 0; k < kc; k++) {
                const float *s = b + (size_t)k * rsb + p;
                float *dk = d + (size_t)k * TG_NR;
                memcpy(dk, s, (size_t)nr * sizeof(float));
                for (int j = nr; j < TG_NR; j++) dk[j] = 0.0f;
            }
        } else {
            /* columns are rows of the source (B = Wᵀ): transpose in blocks */
            for (int j = 0; j < nr; j++) {
                const float *s = b + (size_t)(p + j) * csb;
                if (rsb == 1)
                    for (int k = 0; k < kc; k++) d[(size_t)k * TG_NR + j] = s[k];
                else
                    for (int k = 0; k < kc; k++) d[(size_t)k * TG_NR + j] = s[(size_t)k * rsb];
            }
            for (int j = nr; j < TG_NR; j++)
                for (int k = 0; k < kc; k++) d[(size_t)k * TG_NR + j] = 0.0f;
        }
    }
}

/* the register tiles of one packed A block (mc x kc) times one packed B
 * block (kc x nc) into C */
static void block_kernels(int mc, int nc, int kc, float alpha, const float *pa, const float *pb, float *c, long ldc,
                          bool ac, float *tile) {
    tg_ukernel_fn kern = g_kernel;
    /* the B micro-panel (kc x NR) stays in L1 while the A panels stream
     * from L2 (measured faster here than the other way round) */
    int n_ir = (mc + TG_MR - 1) / TG_MR;
    size_t lines = (size_t)kc * TG_NR / 16, per = (lines + n_ir - 1) / n_ir;
    for (int jr = 0; jr < nc; jr += TG_NR) {
        int nr = nc - jr < TG_NR ? nc - jr : TG_NR;
        const float *bp = pb + (size_t)jr * kc;
        /* the next B micro-panel comes from memory (a weight packed ahead is
         * megabytes): fetch a share of it during each kernel of this one */
        const float *next = jr + TG_NR < nc ? bp + (size_t)TG_NR * kc : NULL;
        for (int ir = 0; ir < mc; ir += TG_MR) {
            int mr = mc - ir < TG_MR ? mc - ir : TG_MR;
            const float *ap = pa + (size_t)ir * kc;
            float *cc = c + (size_t)ir * ldc + jr;
            if (next) {
                size_t l0 = (size_t)(ir / TG_MR) * per, l1 = l0 + per < lines ? l0 + per : lines;
                for (size_t l = l0; l < l1; l++) __builtin_prefetch(next + l * 16, 0, 3);
            }
            if (mr == TG_MR && nr == TG_NR) {
                kern(kc, alpha, ap, bp, cc, ldc, ac);
            } else {
                kern(kc, alpha, ap, bp, tile, TG_NR, false);
                for (int i = 0; i < mr; i++)
                    for (int j = 0; j < nr; j++)
                        cc[(size_t)i * ldc + j] = (ac ? cc[(size_t)i * ldc + j] : 0.0f) + tile[i * TG_NR + j];
            }
        }
    }
}

void tg_gemm_st(int M, int N, int K, float alpha, const float *a, long rsa, long csa, const float *b, long rsb,
                long csb, float *c, long ldc, bool acc, float *pack) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!acc)
            for (int i = 0; i < M; i++) memset(c + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    float *pa = pack, *pb = pack + (size_t)TG_MC * TG_KC, *tile = pb + (size_t)TG_KC * TG_NC;
    if (M <= TG_MC) {
        /* the usual case (M is a token count): A is packed once per K
         * block and every B block passes over it. Each element of C still
         * sums its K blocks in increasing order. */
        for (int pc = 0; pc < K; pc += TG_KC) {
            int kc = K - pc < TG_KC ? K - pc : TG_KC;
            pack_a(M, kc, a + (size_t)pc * csa, rsa, csa, pa);
            for (int jc = 0; jc < N; jc += TG_NC) {
                int nc = N - jc < TG_NC ? N - jc : TG_NC;
                tg_pack_b(kc, nc, b + (size_t)pc * rsb + (size_t)jc * csb, rsb, csb, pb);
                block_kernels(M, nc, kc, alpha, pa, pb, c + jc, ldc, acc || pc > 0, tile);
            }
        }
        return;
    }
    /* BLIS order: a B block (KC x NC) outside, the A blocks (MC x KC) inside */
    for (int jc = 0; jc < N; jc += TG_NC) {
        int nc = N - jc < TG_NC ? N - jc : TG_NC;
        for (int pc = 0; pc < K; pc += TG_KC) {
            int kc = K - pc < TG_KC ? K - pc : TG_KC;
            tg_pack_b(kc, nc, b + (size_t)pc * rsb + (size_t)jc * csb, rsb, csb, pb);
            for (int ic = 0; ic < M; ic += TG_MC) {
                int mc = M - ic < TG_MC ? M - ic : TG_MC;
                pack_a(mc, kc, a + (size_t)ic * rsa + (size_t)pc * csa, rsa, csa, pa);
                block_kernels(mc, nc, kc, alpha, pa, pb, c + (size_t)ic * ldc + jc, ldc, acc || pc > 0, tile);
            }
        }
    }
}

typedef struct {
    float *pack;
    int M, N, K;
    float alpha;
    const float *a, *b;
    long rsa, csa, rsb, csb, ldc;
    float *c;
    bool acc, split_n;
} gemm_job;

static void gemm_worker(void *ctx, int ith, int nth) {
    const gemm_job *j = ctx;
    float *pack = j->pack + (size_t)ith * TG_PACK_FLOATS;
    long lo, hi;
    if (j->split_n) {
        slm_split_range((j->N + TG_NR - 1) / TG_NR, ith, nth, &lo, &hi);
        lo *= TG_NR;
        hi = hi * TG_NR < j->N ? hi * TG_NR : j->N;
        if (hi > lo)
            tg_gemm_st(j->M, (int)(hi - lo), j->K, j->alpha, j->a, j->rsa, j->csa, j->b + (size_t)lo * j->csb, j->rsb,
                       j->csb, j->c + lo, j->ldc, j->acc, pack);
    } else {
        slm_split_range((j->M + TG_MR - 1) / TG_MR, ith, nth, &lo, &hi);
        lo *= TG_MR;
        hi = hi * TG_MR < j->M ? hi * TG_MR : j->M;
        if (hi > lo)
            tg_gemm_st((int)(hi - lo), j->N, j->K, j->alpha, j->a + (size_t)lo * j->rsa, j->rsa, j->csa, j->b, j->rsb,
                       j->csb, j->c + (size_t)lo * j->ldc, j->ldc, j->acc, pack);
    }
}

void tg_gemm(slm_pool *pool, float *pack, int M, int N, int K, float alpha, const float *a, long rsa, long csa,
             const float *b, long rsb, long csb, float *c, long ldc, bool acc) {
    int nth = pool ? slm_pool_size(pool) : 1;
    /* too small to share: one worker */
    if (nth == 1 || (double)M * N * K < 1e6) {
        tg_gemm_st(M, N, K, alpha, a, rsa, csa, b, rsb, csb, c, ldc, acc, pack);
        return;
    }
    /* split the dimension with more register tiles per worker */
    bool split_n = (N + TG_NR - 1) / TG_NR >= (M + TG_MR - 1) / TG_MR || N >= 4 * TG_NR * nth;
    gemm_job j = { pack, M, N, K, alpha, a, b, rsa, csa, rsb, csb, ldc, c, acc, split_n };
    slm_pool_run(pool, gemm_worker, &j);
}

/* ---- B packed ahead --------------------------------------------------------- */

typedef struct {
    float *pack;
    int M, N, K;
    float alpha;
    const float *a, *bp;
    long rsa, csa, ldc;
    float *c;
    bool acc;
} bp_job;

static void bp_worker(void *ctx, int ith, int nth) {
    const bp_job *j = ctx;
    float *pa = j->pack + (size_t)ith * TG_PACK_FLOATS, *tile = pa + (size_t)TG_MC * TG_KC + (size_t)TG_KC * TG_NC;
    long lo, hi;
    slm_split_range((j->N + TG_NR - 1) / TG_NR, ith, nth, &lo, &hi);
    lo *= TG_NR;
    hi = hi * TG_NR < j->N ? hi * TG_NR : j->N;
    if (hi <= lo) return;
    for (int ic = 0; ic < j->M; ic += TG_MC) {
        int mc = j->M - ic < TG_MC ? j->M - ic : TG_MC;
        for (int pc = 0; pc < j->K; pc += TG_KC) {
            int kc = j->K - pc < TG_KC ? j->K - pc : TG_KC;
            pack_a(mc, kc, j->a + (size_t)ic * j->rsa + (size_t)pc * j->csa, j->rsa, j->csa, pa);
            for (long jc = lo; jc < hi; jc += TG_NC) {
                int nc = (int)(hi - jc < TG_NC ? hi - jc : TG_NC);
                block_kernels(mc, nc, kc, j->alpha, pa, tg_bp_panel((float *)j->bp, j->K, j->N, pc, (int)jc),
                              j->c + (size_t)ic * j->ldc + jc, j->ldc, j->acc || pc > 0, tile);
            }
        }
    }
}

void tg_gemm_bp(slm_pool *pool, float *pack, int M, int N, int K, float alpha, const float *a, long rsa, long csa,
                const float *bp, float *c, long ldc, bool acc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        tg_gemm_st(M, N, K, alpha, a, rsa, csa, NULL, 0, 0, c, ldc, acc, pack);
        return;
    }
    bp_job j = { pack, M, N, K, alpha, a, bp, rsa, csa, ldc, c, acc };
    if (!pool || (double)M * N * K < 1e6) bp_worker(&j, 0, 1);
    else slm_pool_run(pool, bp_worker, &j);
}
