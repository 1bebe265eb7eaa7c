/* Element-wise and row ops of training, forward and backward: RMSNorm, RoPE,
 * the gated activations, and the chunked cross-entropy. Attention is in
 * attn_train.c. */
#include "train/ops_train.h"

#include <math.h>
#include <string.h>

#include "train/gemm.h"
#include "train/vec.h"

/* ---- SIMD pick for vec.h ------------------------------------------------ */

static float vmax_portable(const float *x, int n) {
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static float vexp_sum_portable(float *x, int n, float m) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    return s;
}

static void gelu_mul_fwd_portable(float *y, const float *g, const float *u, size_t n);
static void gelu_mul_bwd_portable(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n);
static void silu_mul_fwd_portable(float *y, const float *g, const float *u, size_t n);
static void silu_mul_bwd_portable(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n);
typedef void (*gate_fwd_fn)(float *, const float *, const float *, size_t);
typedef void (*gate_bwd_fn)(float *, float *, const float *, const float *, const float *, size_t);
static gate_fwd_fn g_gelu_fwd = gelu_mul_fwd_portable, g_silu_fwd = silu_mul_fwd_portable;
static gate_bwd_fn g_gelu_bwd = gelu_mul_bwd_portable, g_silu_bwd = silu_mul_bwd_portable;
static float (*g_vmax)(const float *, int) = vmax_portable;
static float (*g_vexp_sum)(float *, int, float) = vexp_sum_portable;

__attribute__((constructor)) static void vec_pick(void) {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        g_vmax = tr_vmax_avx512;
        g_vexp_sum = tr_vexp_sum_avx512;
        g_gelu_fwd = tr_gelu_mul_fwd_avx512;
        g_gelu_bwd = tr_gelu_mul_bwd_avx512;
        g_silu_fwd = tr_silu_mul_fwd_avx512;
        g_silu_bwd = tr_silu_mul_bwd_avx512;
    }
#endif
}

#if !((defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__))
float tr_vmax_avx512(const float *x, int n) { return vmax_portable(x, n); }
float tr_vexp_sum_avx512(float *x, int n, float m) { return vexp_sum_portable(x, n, m); }
void tr_gelu_mul_fwd_avx512(float *y, const float *g, const float *u, size_t n) { gelu_mul_fwd_portable(y, g, u, n); }
void tr_gelu_mul_bwd_avx512(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n) {
    gelu_mul_bwd_portable(dg, du, dy, g, u, n);
}
void tr_silu_mul_fwd_avx512(float *y, const float *g, const float *u, size_t n) { silu_mul_fwd_portable(y, g, u, n); }
void tr_silu_mul_bwd_avx512(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n) {
    silu_mul_bwd_portable(dg, du, dy, g, u, n);
}
#endif

float tr_vmax(const float *x, int n) { return g_vmax(x, n); }
float tr_vexp_sum(float *x, int n, float m) { return g_vexp_sum(x, n, m); }

/* ---- RMSNorm ------------------------------------------------------------ */

void tr_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int rows, int n, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
        float s = (float)(1.0 / sqrt(ss / n + eps));
        rstd[r] = s;
        if (w) for (int i = 0; i < n; i++) yr[i] = xr[i] * s * w[i];
        else for (int i = 0; i < n; i++) yr[i] = xr[i] * s;
    }
}

/* y = w * x * s, s = (mean(x²)+eps)^-1/2:
 * dx = s * (w*dy) - s³/n * x * sum(w*dy*x), dw += dy * x * s */
void tr_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rstd, const float *w,
                    int rows, int n) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n, *dyr = dy + (size_t)r * n;
        float *dxr = dx + (size_t)r * n;
        float s = rstd[r];
        double dot = 0;
        for (int i = 0; i < n; i++) dot += (double)dyr[i] * (w ? w[i] : 1.0f) * xr[i];
        float k = (float)(dot * s * s * s / n);
        for (int i = 0; i < n; i++) {
            float g = dyr[i];
            if (dw) dw[i] += g * xr[i] * s;
            dxr[i] = s * g * (w ? w[i] : 1.0f) - k * xr[i];
        }
    }
}

/* ---- RoPE --------------------------------------------------------------- */

/* the pair (a, b) -> (a c - b s, a s + b c), or its transpose (sign -1) */
static void rope_apply(float *x, int T, int H, int D, int n_rot, bool neox, const float *cosb, const float *sinb,
                       float sign) {
    int half = n_rot / 2;
    for (int t = 0; t < T; t++) {
        const float *cs = cosb + (size_t)t * half, *sn = sinb + (size_t)t * half;
        for (int h = 0; h < H; h++) {
            float *v = x + ((size_t)t * H + h) * D;
            for (int i = 0; i < half; i++) {
                int ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
                float a = v[ia], b = v[ib], c = cs[i], s = sign * sn[i];
                v[ia] = a * c - b * s;
                v[ib] = a * s + b * c;
            }
        }
    }
}

void tr_rope_fwd(float *x, int T, int H, int D, int n_rot, bool neox, const float *cosb, const float *sinb) {
    rope_apply(x, T, H, D, n_rot, neox, cosb, sinb, 1.0f);
}

void tr_rope_bwd(float *dx, int T, int H, int D, int n_rot, bool neox, const float *cosb, const float *sinb) {
    rope_apply(dx, T, H, D, n_rot, neox, cosb, sinb, -1.0f);
}

/* ---- gated activations -------------------------------------------------- */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

static void gelu_mul_fwd_portable(float *y, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = g[i];
        y[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x))) * u[i];
    }
}

static void gelu_mul_bwd_portable(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = g[i], t = tanhf(GELU_K * (x + GELU_C * x * x * x));
        float gelu = 0.5f * x * (1.0f + t);
        float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
        float dyi = dy[i], ui = u[i];
        du[i] = dyi * gelu;
        dg[i] = dyi * ui * d;
    }
}

static void silu_mul_fwd_portable(float *y, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void silu_mul_bwd_portable(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = g[i], s = 1.0f / (1.0f + expf(-x));
        float dyi = dy[i], ui = u[i];
        du[i] = dyi * x * s;
        dg[i] = dyi * ui * s * (1.0f + x * (1.0f - s));
    }
}

void tr_gelu_mul_fwd(float *y, const float *g, const float *u, size_t n) { g_gelu_fwd(y, g, u, n); }
void tr_gelu_mul_bwd(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n) {
    g_gelu_bwd(dg, du, dy, g, u, n);
}
void tr_silu_mul_fwd(float *y, const float *g, const float *u, size_t n) { g_silu_fwd(y, g, u, n); }
void tr_silu_mul_bwd(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n) {
    g_silu_bwd(dg, du, dy, g, u, n);
}
void tr_gate_force_portable(bool on) {
    bool a = false;
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    a = !on && __builtin_cpu_supports("avx512f");
#endif
    g_gelu_fwd = a ? tr_gelu_mul_fwd_avx512 : gelu_mul_fwd_portable;
    g_gelu_bwd = a ? tr_gelu_mul_bwd_avx512 : gelu_mul_bwd_portable;
    g_silu_fwd = a ? tr_silu_mul_fwd_avx512 : silu_mul_fwd_portable;
    g_silu_bwd = a ? tr_silu_mul_bwd_avx512 : silu_mul_bwd_portable;
}

/* ---- the same over the pool ------------------------------------------------ */

typedef struct {
    bool gelu, bwd;
    float *y, *dg, *du;
    const float *g, *u, *dy;
    size_t n;
} gate_job;

static void gate_worker(void *ctx, int ith, int nth) {
    const gate_job *j = ctx;
    long lo, hi;
    slm_split_range((long)((j->n + 15) / 16), ith, nth, &lo, &hi);
    size_t a = (size_t)lo * 16, b = (size_t)hi * 16 < j->n ? (size_t)hi * 16 : j->n;
    if (b <= a) return;
    if (!j->bwd) (j->gelu ? g_gelu_fwd : g_silu_fwd)(j->y + a, j->g + a, j->u + a, b - a);
    else (j->gelu ? g_gelu_bwd : g_silu_bwd)(j->dg + a, j->du + a, j->dy + a, j->g + a, j->u + a, b - a);
}

void tr_gate_fwd_par(slm_pool *pool, bool gelu, float *y, const float *g, const float *u, size_t n) {
    gate_job j = { gelu, false, y, NULL, NULL, g, u, NULL, n };
    slm_pool_run(pool, gate_worker, &j);
}

void tr_gate_bwd_par(slm_pool *pool, bool gelu, float *dg, float *du, const float *dy, const float *g, const float *u,
                     size_t n) {
    gate_job j = { gelu, true, NULL, dg, du, g, u, dy, n };
    slm_pool_run(pool, gate_worker, &j);
}

typedef struct {
    bool bwd;
    float *y, *rstd_out, *dx, *part;
    const float *x, *w, *dy, *rstd;
    int rows, n;
    float eps;
    bool want_dw;
} norm_job;

static void norm_worker(void *ctx, int ith, int nth) {
    const norm_job *j = ctx;
    long lo, hi;
    slm_split_range(j->rows, ith, nth, &lo, &hi);
    size_t o = (size_t)lo * j->n;
    if (!j->bwd) {
        if (hi > lo) tr_rmsnorm_fwd(j->y + o, j->rstd_out + lo, j->x + o, j->w, (int)(hi - lo), j->n, j->eps);
        return;
    }
    float *dw = NULL;
    if (j->want_dw) {
        dw = j->part + (size_t)ith * j->n;
        memset(dw, 0, (size_t)j->n * sizeof(float));
    }
    if (hi > lo) tr_rmsnorm_bwd(j->dx + o, dw, j->dy + o, j->x + o, j->rstd + lo, j->w, (int)(hi - lo), j->n);
}

void tr_rmsnorm_fwd_par(slm_pool *pool, float *y, float *rstd, const float *x, const float *w, int rows, int n,
                        float eps) {
    norm_job j = { false, y, rstd, NULL, NULL, x, w, NULL, NULL, rows, n, eps, false };
    slm_pool_run(pool, norm_worker, &j);
}

void tr_rmsnorm_bwd_par(slm_pool *pool, float *dx, float *dw, const float *dy, const float *x, const float *rstd,
                        const float *w, int rows, int n, float *part) {
    norm_job j = { true, NULL, NULL, dx, part, x, w, dy, rstd, rows, n, 0, dw != NULL };
    slm_pool_run(pool, norm_worker, &j);
    if (!dw) return;
    for (int k = 0; k < slm_pool_size(pool); k++)
        for (int i = 0; i < n; i++) dw[i] += part[(size_t)k * n + i];
}

/* ---- weights as packed B operands ---------------------------------------------- */

void tr_pack_rows(const float *w, long ld, int n_total, int m, int r0, int nr, float *bf, float *bb) {
    if (bf)   /* B = Wᵀ: K = m, N = n_total; these rows are one column panel */
        for (int pc = 0; pc < m; pc += TG_KC) {
            int kc = m - pc < TG_KC ? m - pc : TG_KC;
            tg_pack_b(kc, nr, w + pc, 1, ld, tg_bp_panel(bf, m, n_total, pc, r0));
        }
    if (bb) { /* B = W: K = n_total, N = m; these rows lie in one K block */
        int pc = r0 / TG_KC * TG_KC, k = r0 - pc;
        for (int jr = 0; jr < m; jr += TG_NR) {
            float *d = tg_bp_panel(bb, n_total, m, pc, jr) + (size_t)k * TG_NR;
            int nc = m - jr < TG_NR ? m - jr : TG_NR;
            if (nc == TG_NR) {
                for (int i = 0; i < nr; i++)
                    memcpy(d + (size_t)i * TG_NR, w + (size_t)i * ld + jr, TG_NR * sizeof(float));
            } else {
                for (int i = 0; i < nr; i++) {
                    memcpy(d + (size_t)i * TG_NR, w + (size_t)i * ld + jr, (size_t)nc * sizeof(float));
                    for (int j = nc; j < TG_NR; j++) d[(size_t)i * TG_NR + j] = 0.0f;
                }
            }
        }
    }
}

/* ---- chunked cross-entropy ---------------------------------------------- */

size_t tr_ce_zbuf_floats(int R, int chunk) { return (size_t)R * chunk; }

typedef struct {
    const tr_ce *c;
    float *z, *m, *s, *g;
    const int32_t *target;
    float *zt;
    long v0;
    int n;
    const float *lse;  /* pass 2: exp(z - lse), minus 1 at the target */
} ce_rows_job;

/* per scored row: online max/sum update (pass 1) or normalized probabilities
 * less the one-hot target (pass 2) */
static void ce_rows_worker(void *ctx, int ith, int nth) {
    const ce_rows_job *j = ctx;
    long lo, hi;
    slm_split_range(j->c->R, ith, nth, &lo, &hi);
    int E = j->c->E;
    for (long r = lo; r < hi; r++) {
        float *z = j->z + (size_t)r * j->n;
        long t = j->target[r];
        if (j->lse) {
            tr_vexp_sum(z, j->n, j->lse[r]);
            if (t >= j->v0 && t < j->v0 + j->n) z[t - j->v0] -= 1.0f;
            continue;
        }
        if (t >= j->v0 && t < j->v0 + j->n) j->zt[r] = z[t - j->v0];
        float mx = tr_vmax(z, j->n), mo = j->m[r];
        float mn = mx > mo ? mx : mo;
        float f = mo == -INFINITY ? 0.0f : expf(mo - mn);
        float sum = tr_vexp_sum(z, j->n, mn);
        j->s[r] = j->s[r] * f + sum;
        j->m[r] = mn;
        if (j->g && f != 1.0f)
            for (int i = 0; i < E; i++) j->g[(size_t)r * E + i] *= f;
    }
}

void tr_ce_run(const tr_ce *c, const float *h, const int32_t *target, double *loss, float *dh, float *dw,
               float *gbuf, float *ms) {
    int R = c->R, E = c->E;
    if (R == 0) return;
    bool online = dh && !dw;
    float *m = ms, *s = ms + R;
    float zt[R];
    for (int r = 0; r < R; r++) { m[r] = -INFINITY; s[r] = 0.0f; zt[r] = 0.0f; }
    if (online) memset(gbuf, 0, (size_t)R * E * sizeof(float));
    /* pass 1: logsumexp of every row (and, online, the unnormalized dh) */
    for (long v0 = 0; v0 < c->V; v0 += c->chunk) {
        int n = (int)(c->V - v0 < c->chunk ? c->V - v0 : c->chunk);
        c->packw(c->rows_ctx, v0, n, c->bf, online ? c->bb : NULL);
        tg_gemm_bp(c->pool, c->pack, R, n, E, 1.0f, h, E, 1, c->bf, c->zbuf, n, false);
        ce_rows_job j = { c, c->zbuf, m, s, online ? gbuf : NULL, target, zt, v0, n, NULL };
        slm_pool_run(c->pool, ce_rows_worker, &j);
        if (online) tg_gemm_bp(c->pool, c->pack, R, E, n, 1.0f, c->zbuf, n, 1, c->bb, gbuf, E, true);
    }
    float lse[R];
    for (int r = 0; r < R; r++) {
        lse[r] = m[r] + logf(s[r]);
        loss[r] = (double)lse[r] - zt[r];
    }
    if (online) {
        for (int r = 0; r < R; r++) {
            const float *wt = c->rows(c->rows_ctx, target[r], 1, c->rowbuf);
            float inv = 1.0f / s[r];
            for (int i = 0; i < E; i++) dh[(size_t)r * E + i] = gbuf[(size_t)r * E + i] * inv - wt[i];
        }
        return;
    }
    if (!dh && !dw) return;
    /* pass 2: probabilities with the final logsumexp, for dW (and dh) */
    if (dh) memset(dh, 0, (size_t)R * E * sizeof(float));
    for (long v0 = 0; v0 < c->V; v0 += c->chunk) {
        int n = (int)(c->V - v0 < c->chunk ? c->V - v0 : c->chunk);
        c->packw(c->rows_ctx, v0, n, c->bf, dh ? c->bb : NULL);
        tg_gemm_bp(c->pool, c->pack, R, n, E, 1.0f, h, E, 1, c->bf, c->zbuf, n, false);
        ce_rows_job j = { c, c->zbuf, m, s, NULL, target, zt, v0, n, lse };
        slm_pool_run(c->pool, ce_rows_worker, &j);
        if (dh) tg_gemm_bp(c->pool, c->pack, R, E, n, 1.0f, c->zbuf, n, 1, c->bb, dh, E, true);
        tg_gemm(c->pool, c->pack, n, E, R, 1.0f, c->zbuf, 1, n, h, E, 1, dw + (size_t)v0 * E, E, true);
    }
}
