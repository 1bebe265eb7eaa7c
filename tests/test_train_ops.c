/* The training engine's ops (src/train): the GEMM in all its stride forms
 * against a naive double product; every backward against central finite
 * differences of an independent double-precision forward written here; and
 * forward + backward against PyTorch's float64 autograd
 * (tests/fixtures/train/ops.txt, scripts/gen_train_fixtures.py). The whole
 * model is checked in test_train_engine.c. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "testlib.h"
#include "quant/quant.h"
#include "train/dequant.h"
#include "train/gemm.h"
#include "train/ops_train.h"

static uint64_t rng = 0x1234567ull;
static double urand(void) {   /* [-1, 1) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}
static float *frand_vec(size_t n, double scale) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = (float)(urand() * scale);
    return v;
}
static double *to_d(const float *x, size_t n) {
    double *d = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
/* max |a-b| / max(1, max|b|) */
static double rel_err(const float *a, const double *b, size_t n) {
    double e = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= e)) e = d;   /* NaN sticks */
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return e / (m > 1 ? m : 1);
}

static slm_pool *pool1, *pool2;
static float *pack;

/* ---- GEMM ------------------------------------------------------------------- */

static void gemm_case(slm_pool *pool, int M, int N, int K, int form, float alpha, bool acc) {
    /* form 0: A row-major, B row-major; 1: B = Wᵀ (forward); 2: A = dYᵀ (weight grad); 3: both transposed */
    float *a = frand_vec((size_t)M * K, 1), *b = frand_vec((size_t)K * N, 1), *c = frand_vec((size_t)M * N, 1);
    double *ref = malloc((size_t)M * N * sizeof(double));
    long rsa = form & 2 ? 1 : K, csa = form & 2 ? M : 1, rsb = form & 1 ? 1 : N, csb = form & 1 ? K : 1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)a[i * rsa + k * csa] * b[k * rsb + j * csb];
            ref[(size_t)i * N + j] = (acc ? c[(size_t)i * N + j] : 0.0) + alpha * s;
        }
    float *c0 = malloc((size_t)M * N * sizeof(float));
    memcpy(c0, c, (size_t)M * N * sizeof(float));
    tg_gemm(pool, pack, M, N, K, alpha, a, rsa, csa, b, rsb, csb, c, N, acc);
    double e = rel_err(c, ref, (size_t)M * N);
    /* B packed ahead, as the weights are: panels of K blocks */
    float *bp = malloc(tg_bp_floats(K, N) * sizeof(float));
    for (int pc = 0; pc < K; pc += TG_KC)
        tg_pack_b(K - pc < TG_KC ? K - pc : TG_KC, N, b + (size_t)pc * rsb, rsb, csb, tg_bp_panel(bp, K, N, pc, 0));
    tg_gemm_bp(pool, pack, M, N, K, alpha, a, rsa, csa, bp, c0, N, acc);
    double e2 = rel_err(c0, ref, (size_t)M * N);
    CHECKF(e2 < 2e-6 * sqrt(K + 1.0), "gemm_bp %s M%d N%d K%d form %d: rel err %g", tg_kernel_name(), M, N, K, form, e2);
    free(bp); free(c0);
    CHECKF(e < 2e-6 * sqrt(K + 1.0), "gemm %s M%d N%d K%d form %d acc %d: rel err %g", tg_kernel_name(), M, N, K, form,
           acc, e);
    free(a); free(b); free(c); free(ref);
}

static void test_gemm(void) {
    static const int shapes[][3] = { { 1, 1, 1 }, { 12, 32, 256 }, { 13, 33, 7 }, { 5, 100, 300 }, { 300, 70, 513 },
                                     { 257, 65, 40 }, { 40, 2100, 64 }, { 16, 16, 600 } };
    for (int kset = 0; kset < 2; kset++) {
        tg_force_portable(kset == 1);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int form = 0; form < 4; form++)
                gemm_case(s % 2 ? pool2 : pool1, shapes[s][0], shapes[s][1], shapes[s][2], form,
                          form == 3 ? 0.5f : 1.0f, s % 3 == 1);
    }
    tg_force_portable(false);
    /* threads split C only: 1 and 2 workers give identical bits */
    int M = 200, N = 300, K = 170;
    float *a = frand_vec((size_t)M * K, 1), *b = frand_vec((size_t)K * N, 1);
    float *c1 = calloc((size_t)M * N, 4), *c2 = calloc((size_t)M * N, 4);
    tg_gemm(pool1, pack, M, N, K, 1, a, K, 1, b, 1, K, c1, N, false);
    tg_gemm(pool2, pack, M, N, K, 1, a, K, 1, b, 1, K, c2, N, false);
    CHECK(memcmp(c1, c2, (size_t)M * N * 4) == 0);
    free(a); free(b); free(c1); free(c2);
}

/* ---- dequantization: the SIMD rows equal the reference bit for bit ------------------ */

static void test_dequant(void) {
    const uint32_t types[] = { SLM_T_Q8_0, SLM_T_Q5_0, SLM_T_Q4_K, SLM_T_Q6_K };
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint32_t ty = types[ti];
        const slm_type_info *inf = slm_type_get(ty);
        int n = 8 * inf->block_size;
        size_t nb = slm_row_bytes(ty, n);
        uint8_t *raw = malloc(nb);
        for (size_t i = 0; i < nb; i++) raw[i] = (uint8_t)(urand() * 128 + 128);
        if (ty == SLM_T_Q8_0 || ty == SLM_T_Q5_0)
            for (size_t b = 0; b < nb; b += inf->block_bytes) {   /* finite scales */
                uint16_t h = slm_f32_to_f16((float)urand());
                memcpy(raw + b, &h, 2);
            }
        float *a = malloc(n * 4), *r = malloc(n * 4);
        tr_dequant_row(ty, raw, a, n);
        slm_dequantize_row(ty, raw, r, n);
        CHECKF(memcmp(a, r, n * 4) == 0, "dequant %s differs from the reference", inf->name);
        free(raw); free(a); free(r);
    }
}

/* ---- double references ----------------------------------------------------------- */

static void rms_d(double *y, const double *x, const double *w, int rows, int n) {
    for (int r = 0; r < rows; r++) {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += x[r * n + i] * x[r * n + i];
        double s = 1.0 / sqrt(ss / n + 1e-6);
        for (int i = 0; i < n; i++) y[r * n + i] = x[r * n + i] * s * w[i];
    }
}

static void rope_d(double *y, const double *x, const int *pos, int T, int H, int D, bool neox) {
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < D / 2; i++) {
                double th = pos[t] * pow(10000.0, -2.0 * i / D), c = cos(th), s = sin(th);
                int ia = neox ? i : 2 * i, ib = neox ? i + D / 2 : 2 * i + 1;
                const double *v = x + ((size_t)t * H + h) * D;
                double *o = y + ((size_t)t * H + h) * D;
                o[ia] = v[ia] * c - v[ib] * s;
                o[ib] = v[ia] * s + v[ib] * c;
            }
}

static double gelu_d(double x) { return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double silu_d(double x) { return x / (1 + exp(-x)); }

static void attn_d(double *y, const double *q, const double *k, const double *v, const tr_attn *a) {
    int g = a->Hq / a->Hkv;
    double *p = malloc(a->T * sizeof(double));
    for (int i = 0; i < a->T; i++)
        for (int h = 0; h < a->Hq; h++) {
            int kh = h / g, lo = a->window > 0 && i - a->window + 1 > 0 ? i - a->window + 1 : 0;
            double mx = -INFINITY, sum = 0;
            for (int j = lo; j <= i; j++) {
                double s = 0;
                for (int d = 0; d < a->D; d++) s += q[((size_t)i * a->Hq + h) * a->D + d] * k[((size_t)j * a->Hkv + kh) * a->D + d];
                p[j] = s * a->scale;
                if (p[j] > mx) mx = p[j];
            }
            for (int j = lo; j <= i; j++) sum += (p[j] = exp(p[j] - mx));
            for (int d = 0; d < a->Dv; d++) {
                double o = 0;
                for (int j = lo; j <= i; j++) o += p[j] / sum * v[((size_t)j * a->Hkv + kh) * a->Dv + d];
                y[((size_t)i * a->Hq + h) * a->Dv + d] = o;
            }
        }
    free(p);
}

/* sum over rows of -log softmax(h wᵀ)[target] */
static double ce_d(const double *h, const double *w, const int32_t *tg, int R, int E, int V) {
    double tot = 0;
    double *z = malloc(V * sizeof(double));
    for (int r = 0; r < R; r++) {
        double mx = -INFINITY, s = 0;
        for (int v = 0; v < V; v++) {
            double d = 0;
            for (int e = 0; e < E; e++) d += h[r * E + e] * w[(size_t)v * E + e];
            z[v] = d;
            if (d > mx) mx = d;
        }
        for (int v = 0; v < V; v++) s += exp(z[v] - mx);
        tot += mx + log(s) - z[tg[r]];
    }
    free(z);
    return tot;
}

/* ---- finite differences: L(x) = sum dy * f(x), checked against grad --------------- */

typedef double (*loss_fn)(void *ctx);
/* central differences of L in every coordinate of x (double) vs g */
static double fd_check(loss_fn L, void *ctx, double *x, size_t n, const float *g) {
    double worst = 0, gmax = 1e-3;
    for (size_t i = 0; i < n; i++) if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i], h = 1e-5 * (fabs(x0) > 1 ? fabs(x0) : 1);
        x[i] = x0 + h;
        double lp = L(ctx);
        x[i] = x0 - h;
        double lm = L(ctx);
        x[i] = x0;
        double d = fabs((lp - lm) / (2 * h) - g[i]) / gmax;
        if (d > worst) worst = d;
    }
    return worst;
}
/* the same along a few random directions (big inputs) */
static double fd_dir(loss_fn L, void *ctx, double *x, size_t n, const float *g, int ndir) {
    double worst = 0;
    double *u = malloc(n * sizeof(double)), *x0 = to_d((float[]){ 0 }, 1);
    free(x0);
    double *save = malloc(n * sizeof(double));
    memcpy(save, x, n * sizeof(double));
    for (int k = 0; k < ndir; k++) {
        double gu = 0, gn = 0, h = 1e-4;
        for (size_t i = 0; i < n; i++) { u[i] = urand(); gu += g[i] * u[i]; gn += fabs(g[i] * u[i]); }
        for (size_t i = 0; i < n; i++) x[i] = save[i] + h * u[i];
        double lp = L(ctx);
        for (size_t i = 0; i < n; i++) x[i] = save[i] - h * u[i];
        double lm = L(ctx);
        double d = fabs((lp - lm) / (2 * h) - gu) / (gn > 1e-3 ? gn : 1e-3);
        if (d > worst) worst = d;
    }
    memcpy(x, save, n * sizeof(double));
    free(u); free(save);
    return worst;
}

static double dot_dy(const double *y, const double *dy, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += y[i] * dy[i];
    return s;
}

/* rmsnorm */
typedef struct { double *x, *w, *dy, *y; int R, n; } rms_ctx;
static double rms_loss(void *c_) {
    rms_ctx *c = c_;
    rms_d(c->y, c->x, c->w, c->R, c->n);
    return dot_dy(c->y, c->dy, (size_t)c->R * c->n);
}
static void test_rmsnorm_fd(void) {
    int R = 3, n = 20;
    float *x = frand_vec(R * n, 2), *w = frand_vec(n, 1), *dy = frand_vec(R * n, 1);
    float y[60], rs[3], dx[60], dw[20] = { 0 };
    tr_rmsnorm_fwd(y, rs, x, w, R, n, 1e-6f);
    tr_rmsnorm_bwd(dx, dw, dy, x, rs, w, R, n);
    rms_ctx c = { to_d(x, R * n), to_d(w, n), to_d(dy, R * n), malloc(R * n * sizeof(double)), R, n };
    rms_loss(&c);
    CHECKF(rel_err(y, c.y, R * n) < 1e-6, "rmsnorm forward");
    CHECKF(fd_check(rms_loss, &c, c.x, R * n, dx) < 1e-6, "rmsnorm dx");
    CHECKF(fd_check(rms_loss, &c, c.w, n, dw) < 1e-6, "rmsnorm dw");
    /* in place (dx aliases dy), as the layers call it */
    memcpy(dx, dy, sizeof dx);
    float dw2[20] = { 0 };
    tr_rmsnorm_bwd(dx, dw2, dx, x, rs, w, R, n);
    float dx1[60];
    tr_rmsnorm_bwd(dx1, NULL, dy, x, rs, w, R, n);
    CHECK(memcmp(dx, dx1, sizeof dx) == 0 && memcmp(dw, dw2, sizeof dw) == 0);
    free(x); free(w); free(dy); free(c.x); free(c.w); free(c.dy); free(c.y);
}

/* rope */
typedef struct { double *x, *dy, *y; int *pos, T, H, D; bool neox; } rope_ctx;
static double rope_loss(void *c_) {
    rope_ctx *c = c_;
    rope_d(c->y, c->x, c->pos, c->T, c->H, c->D, c->neox);
    return dot_dy(c->y, c->dy, (size_t)c->T * c->H * c->D);
}
static void rope_tabs(float *cs, float *sn, const int *pos, int T, int D, float base) {
    for (int t = 0; t < T; t++) op_rope_table_ext(cs + t * D / 2, sn + t * D / 2, D, pos[t], base, NULL, 1, 1);
}
static void test_rope_fd(void) {
    int T = 4, H = 2, D = 8, pos[4] = { 0, 3, 7, 100 };
    size_t n = (size_t)T * H * D;
    float cs[16], sn[16];
    rope_tabs(cs, sn, pos, T, D, 10000);
    for (int neox = 0; neox < 2; neox++) {
        float *x = frand_vec(n, 1), *dy = frand_vec(n, 1), y[64], dx[64];
        memcpy(y, x, n * 4);
        tr_rope_fwd(y, T, H, D, D, neox, cs, sn);
        memcpy(dx, dy, n * 4);
        tr_rope_bwd(dx, T, H, D, D, neox, cs, sn);
        rope_ctx c = { to_d(x, n), to_d(dy, n), malloc(n * sizeof(double)), pos, T, H, D, neox };
        rope_loss(&c);
        CHECKF(rel_err(y, c.y, n) < 1e-6, "rope forward (neox %d)", neox);
        CHECKF(fd_check(rope_loss, &c, c.x, n, dx) < 1e-6, "rope dx (neox %d)", neox);
        free(x); free(dy); free(c.x); free(c.dy); free(c.y);
    }
}

/* gates */
typedef struct { double *g, *u, *dy; size_t n; bool gelu; } gate_ctx;
static double gate_loss(void *c_) {
    gate_ctx *c = c_;
    double s = 0;
    for (size_t i = 0; i < c->n; i++) s += (c->gelu ? gelu_d(c->g[i]) : silu_d(c->g[i])) * c->u[i] * c->dy[i];
    return s;
}
static void test_gates_fd(void) {
    size_t n = 61;   /* a masked tail in the SIMD kernels */
    for (int k = 0; k < 4; k++) {
        int gelu = k & 1;
        tr_gate_force_portable(k >= 2);
        float *g = frand_vec(n, 4), *u = frand_vec(n, 2), *dy = frand_vec(n, 1), y[64], dg[64], du[64];
        if (gelu) { tr_gelu_mul_fwd(y, g, u, n); tr_gelu_mul_bwd(dg, du, dy, g, u, n); }
        else { tr_silu_mul_fwd(y, g, u, n); tr_silu_mul_bwd(dg, du, dy, g, u, n); }
        gate_ctx c = { to_d(g, n), to_d(u, n), to_d(dy, n), n, gelu };
        double yd[64];
        for (size_t i = 0; i < n; i++) yd[i] = (gelu ? gelu_d(c.g[i]) : silu_d(c.g[i])) * c.u[i];
        CHECKF(rel_err(y, yd, n) < 1e-6, "gate forward (gelu %d, portable %d)", gelu, k >= 2);
        CHECKF(fd_check(gate_loss, &c, c.g, n, dg) < 1e-5, "gate dg (gelu %d)", gelu);
        CHECKF(fd_check(gate_loss, &c, c.u, n, du) < 1e-6, "gate du (gelu %d)", gelu);
        free(g); free(u); free(dy); free(c.g); free(c.u); free(c.dy);
    }
    tr_gate_force_portable(false);
}

/* attention */
typedef struct { double *q, *k, *v, *dy, *y; tr_attn a; } attn_ctx;
static double attn_loss(void *c_) {
    attn_ctx *c = c_;
    attn_d(c->y, c->q, c->k, c->v, &c->a);
    return dot_dy(c->y, c->dy, (size_t)c->a.T * c->a.Hq * c->a.Dv);
}
static void attn_case(slm_pool *pool, tr_attn a, bool full_fd) {
    size_t nq = (size_t)a.T * a.Hq * a.D, nk = (size_t)a.T * a.Hkv * a.D, nv = (size_t)a.T * a.Hkv * a.Dv;
    size_t ny = (size_t)a.T * a.Hq * a.Dv;
    float *q = frand_vec(nq, 1.5), *k = frand_vec(nk, 1.5), *v = frand_vec(nv, 1), *dy = frand_vec(ny, 1);
    float *y = malloc(ny * 4), *lse = malloc((size_t)a.T * a.Hq * 4), *dq = malloc(nq * 4), *dk = malloc(nk * 4),
          *dv = malloc(nv * 4);
    float *scr = malloc((size_t)slm_pool_size(pool) * tr_attn_scratch_floats(&a) * 4);
    tr_attn_fwd(pool, &a, q, k, v, y, lse, scr, pack);
    tr_attn_bwd(pool, &a, q, k, v, y, lse, dy, dq, dk, dv, scr, pack);
    attn_ctx c = { to_d(q, nq), to_d(k, nk), to_d(v, nv), to_d(dy, ny), malloc(ny * sizeof(double)), a };
    attn_loss(&c);
    CHECKF(rel_err(y, c.y, ny) < 1e-5, "attention forward T%d W%d", a.T, a.window);
    double eq = full_fd ? fd_check(attn_loss, &c, c.q, nq, dq) : fd_dir(attn_loss, &c, c.q, nq, dq, 3);
    double ek = full_fd ? fd_check(attn_loss, &c, c.k, nk, dk) : fd_dir(attn_loss, &c, c.k, nk, dk, 3);
    double ev = full_fd ? fd_check(attn_loss, &c, c.v, nv, dv) : fd_dir(attn_loss, &c, c.v, nv, dv, 3);
    CHECKF(eq < 1e-4 && ek < 1e-4 && ev < 1e-4, "attention grads T%d Hq%d Hkv%d W%d threads %d: %g %g %g", a.T, a.Hq,
           a.Hkv, a.window, slm_pool_size(pool), eq, ek, ev);
    free(q); free(k); free(v); free(dy); free(y); free(lse); free(dq); free(dk); free(dv); free(scr);
    free(c.q); free(c.k); free(c.v); free(c.dy); free(c.y);
}
static void test_attn_fd(void) {
    attn_case(pool1, (tr_attn){ 6, 4, 2, 8, 8, 0, 0.35f }, true);
    attn_case(pool2, (tr_attn){ 7, 2, 1, 4, 6, 3, 0.5f }, true);
    /* several query blocks (128 rows each), the window inside and across them, 2 workers */
    attn_case(pool2, (tr_attn){ 300, 4, 1, 16, 16, 0, 0.25f }, false);
    attn_case(pool2, (tr_attn){ 290, 2, 2, 8, 8, 100, 0.3f }, false);
    attn_case(pool1, (tr_attn){ 140, 3, 1, 8, 8, 130, 0.3f }, false);
}

/* cross-entropy */
typedef struct { double *h, *w; const int32_t *tg; int R, E, V; } ce_ctx;
static double ce_loss(void *c_) {
    ce_ctx *c = c_;
    return ce_d(c->h, c->w, c->tg, c->R, c->E, c->V);
}
typedef struct { const float *w; int E; } rows_ctx;
static const float *plain_rows(void *ctx, long r0, int n, float *buf) {
    (void)n; (void)buf;
    const rows_ctx *r = ctx;
    return r->w + (size_t)r0 * r->E;
}
static void plain_pack(void *ctx, long v0, int n, float *bf, float *bb) {
    const rows_ctx *r = ctx;
    for (int g = 0; g < n; g += TG_NR)
        tr_pack_rows(r->w + (size_t)(v0 + g) * r->E, r->E, n, r->E, g, n - g < TG_NR ? n - g : TG_NR, bf, bb);
}
static void test_ce_fd(void) {
    int R = 5, E = 12, V = 37, chunk = 8;
    int32_t tg[5] = { 0, 36, 8, 7, 20 };
    float *h = frand_vec((size_t)R * E, 1), *w = frand_vec((size_t)V * E, 1);
    float dh1[60], dh2[60], *dw = calloc((size_t)V * E, 4), g[60], ms[10], z[5 * 8], rb[12];
    float *bf = malloc(tg_bp_floats(E, chunk) * 4), *bb = malloc(tg_bp_floats(chunk, E) * 4);
    double l1[5], l2[5];
    rows_ctx rc = { w, E };
    tr_ce ce = { pool2, pack, R, E, V, chunk, plain_rows, plain_pack, &rc, bf, bb, rb, z };
    tr_ce_run(&ce, h, tg, l1, dh1, NULL, g, ms);     /* online */
    tr_ce_run(&ce, h, tg, l2, dh2, dw, g, ms);       /* two passes */
    ce_ctx c = { to_d(h, (size_t)R * E), to_d(w, (size_t)V * E), tg, R, E, V };
    double ref = ce_loss(&c), s1 = 0, s2 = 0;
    for (int r = 0; r < R; r++) { s1 += l1[r]; s2 += l2[r]; }
    CHECKF(fabs(s1 - ref) < 1e-5 * R && fabs(s2 - ref) < 1e-5 * R, "ce loss %g %g vs %g", s1, s2, ref);
    CHECKF(fd_check(ce_loss, &c, c.h, (size_t)R * E, dh1) < 1e-5, "ce dh (online)");
    CHECKF(fd_check(ce_loss, &c, c.h, (size_t)R * E, dh2) < 1e-5, "ce dh (two passes)");
    CHECKF(fd_check(ce_loss, &c, c.w, (size_t)V * E, dw) < 1e-5, "ce dw");
    free(h); free(w); free(dw); free(c.h); free(c.w); free(bf); free(bb);
}

/* ---- PyTorch fixtures ------------------------------------------------------------------ */

typedef struct { char name[64]; int nd; int dims[4]; size_t n; float *v; } fx_tensor;
static fx_tensor fx[128];
static int n_fx;

static bool load_fixtures(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "tensor ", 7) || n_fx == 128) continue;
        fx_tensor *t = &fx[n_fx];
        int off = 0;
        if (sscanf(line + 7, "%63s %d%n", t->name, &t->nd, &off) != 2 || t->nd < 1 || t->nd > 4) break;
        char *p = line + 7 + off;
        t->n = 1;
        for (int i = 0; i < t->nd; i++) { t->dims[i] = (int)strtol(p, &p, 10); t->n *= t->dims[i]; }
        t->v = malloc(t->n * sizeof(float));
        for (size_t i = 0; i < t->n; i++)
            if (fscanf(f, "%f", &t->v[i]) != 1) { fclose(f); return false; }
        n_fx++;
    }
    fclose(f);
    return n_fx > 0;
}
static const fx_tensor *fxt(const char *name) {
    for (int i = 0; i < n_fx; i++) if (!strcmp(fx[i].name, name)) return &fx[i];
    fprintf(stderr, "fixture lacks %s\n", name);
    return NULL;
}
static void fx_cmp(const char *name, const float *got, double tol) {
    const fx_tensor *t = fxt(name);
    if (!t) { CHECK(!"fixture tensor missing"); return; }
    double *d = to_d(t->v, t->n);
    double e = rel_err(got, d, t->n);
    CHECKF(e < tol, "%s vs PyTorch: rel err %g", name, e);
    free(d);
}

static void test_fixtures(void) {
    const fx_tensor *x, *w, *dy, *g, *u, *q, *k, *v, *pos, *h, *tg;
    /* rmsnorm */
    if ((x = fxt("rmsnorm.x")) && (w = fxt("rmsnorm.w")) && (dy = fxt("rmsnorm.dy"))) {
        int R = x->dims[0], n = x->dims[1];
        float *y = malloc(x->n * 4), *rs = malloc(R * 4), *dx = malloc(x->n * 4), *dw = calloc(n, 4);
        tr_rmsnorm_fwd(y, rs, x->v, w->v, R, n, 1e-6f);
        tr_rmsnorm_bwd(dx, dw, dy->v, x->v, rs, w->v, R, n);
        fx_cmp("rmsnorm.y", y, 1e-6); fx_cmp("rmsnorm.dx", dx, 1e-6); fx_cmp("rmsnorm.dw", dw, 1e-6);
        free(y); free(rs); free(dx); free(dw);
    } else CHECK(!"rmsnorm fixture");
    /* rope, both pairings */
    for (int neox = 0; neox < 2; neox++) {
        char nm[5][32];
        const char *op = neox ? "rope_neox" : "rope_norm";
        snprintf(nm[0], 32, "%s.x", op); snprintf(nm[1], 32, "%s.pos", op); snprintf(nm[2], 32, "%s.dy", op);
        snprintf(nm[3], 32, "%s.y", op); snprintf(nm[4], 32, "%s.dx", op);
        if (!((x = fxt(nm[0])) && (pos = fxt(nm[1])) && (dy = fxt(nm[2])))) { CHECK(!"rope fixture"); continue; }
        int T = x->dims[0], H = x->dims[1], D = x->dims[2], ip[64];
        for (int t = 0; t < T && t < 64; t++) ip[t] = (int)pos->v[t];
        float *cs = malloc((size_t)T * D / 2 * 4), *sn = malloc((size_t)T * D / 2 * 4), *y = malloc(x->n * 4),
              *dx = malloc(x->n * 4);
        rope_tabs(cs, sn, ip, T, D, 10000);
        memcpy(y, x->v, x->n * 4);
        tr_rope_fwd(y, T, H, D, D, neox, cs, sn);
        memcpy(dx, dy->v, x->n * 4);
        tr_rope_bwd(dx, T, H, D, D, neox, cs, sn);
        fx_cmp(nm[3], y, 1e-5); fx_cmp(nm[4], dx, 1e-5);
        free(cs); free(sn); free(y); free(dx);
    }
    /* gates */
    for (int gelu = 0; gelu < 2; gelu++) {
        const char *op = gelu ? "gelu" : "silu";
        char nm[6][32];
        const char *sf[6] = { "g", "u", "dy", "y", "dg", "du" };
        for (int i = 0; i < 6; i++) snprintf(nm[i], 32, "%s.%s", op, sf[i]);
        if (!((g = fxt(nm[0])) && (u = fxt(nm[1])) && (dy = fxt(nm[2])))) { CHECK(!"gate fixture"); continue; }
        float *y = malloc(g->n * 4), *dg = malloc(g->n * 4), *du = malloc(g->n * 4);
        if (gelu) { tr_gelu_mul_fwd(y, g->v, u->v, g->n); tr_gelu_mul_bwd(dg, du, dy->v, g->v, u->v, g->n); }
        else { tr_silu_mul_fwd(y, g->v, u->v, g->n); tr_silu_mul_bwd(dg, du, dy->v, g->v, u->v, g->n); }
        fx_cmp(nm[3], y, 1e-6); fx_cmp(nm[4], dg, 1e-6); fx_cmp(nm[5], du, 1e-6);
        free(y); free(dg); free(du);
    }
    /* attention */
    const fx_tensor *sc, *wi;
    if ((q = fxt("attn.q")) && (k = fxt("attn.k")) && (v = fxt("attn.v")) && (dy = fxt("attn.dy")) &&
        (sc = fxt("attn.scale")) && (wi = fxt("attn.window"))) {
        tr_attn a = { q->dims[0], q->dims[1], k->dims[1], q->dims[2], v->dims[2], (int)wi->v[0], sc->v[0] };
        float *y = malloc(dy->n * 4), *lse = malloc((size_t)a.T * a.Hq * 4), *dq = malloc(q->n * 4),
              *dk = malloc(k->n * 4), *dv = malloc(v->n * 4);
        float *scr = malloc(2 * tr_attn_scratch_floats(&a) * 4);
        tr_attn_fwd(pool2, &a, q->v, k->v, v->v, y, lse, scr, pack);
        tr_attn_bwd(pool2, &a, q->v, k->v, v->v, y, lse, dy->v, dq, dk, dv, scr, pack);
        fx_cmp("attn.y", y, 1e-5); fx_cmp("attn.dq", dq, 1e-5); fx_cmp("attn.dk", dk, 1e-5); fx_cmp("attn.dv", dv, 1e-5);
        free(y); free(lse); free(dq); free(dk); free(dv); free(scr);
    } else CHECK(!"attention fixture");
    /* cross-entropy: the fixture's loss is the mean over rows */
    if ((h = fxt("ce.h")) && (w = fxt("ce.w")) && (tg = fxt("ce.target"))) {
        int R = h->dims[0], E = h->dims[1], V = w->dims[0], chunk = 7;
        int32_t *t32 = malloc(R * 4);
        for (int r = 0; r < R; r++) t32[r] = (int32_t)tg->v[r];
        float *dh = malloc(h->n * 4), *dw = calloc(w->n, 4), *gb = malloc(h->n * 4), *ms = malloc(2 * R * 4);
        float *bf = malloc(tg_bp_floats(E, chunk) * 4), *bb = malloc(tg_bp_floats(chunk, E) * 4);
        float *rb = malloc(E * 4), *z = malloc((size_t)R * chunk * 4);
        double *l = malloc(R * sizeof(double));
        rows_ctx rc = { w->v, E };
        tr_ce ce = { pool1, pack, R, E, V, chunk, plain_rows, plain_pack, &rc, bf, bb, rb, z };
        tr_ce_run(&ce, h->v, t32, l, dh, dw, gb, ms);
        float loss = 0;
        double s = 0;
        for (int r = 0; r < R; r++) s += l[r];
        loss = (float)(s / R);
        for (size_t i = 0; i < h->n; i++) dh[i] /= R;
        for (size_t i = 0; i < w->n; i++) dw[i] /= R;
        fx_cmp("ce.loss", &loss, 1e-6); fx_cmp("ce.dh", dh, 1e-5); fx_cmp("ce.dw", dw, 1e-5);
        tr_ce_run(&ce, h->v, t32, l, dh, NULL, gb, ms);   /* online form */
        for (size_t i = 0; i < h->n; i++) dh[i] /= R;
        fx_cmp("ce.dh", dh, 1e-5);
        free(t32); free(dh); free(dw); free(gb); free(ms); free(bf); free(bb); free(rb); free(z); free(l);
    } else CHECK(!"ce fixture");
    /* linear: the three GEMM forms */
    if ((x = fxt("linear.x")) && (w = fxt("linear.w")) && (dy = fxt("linear.dy"))) {
        int T = x->dims[0], ni = x->dims[1], no = w->dims[0];
        float *y = malloc((size_t)T * no * 4), *dx = malloc(x->n * 4), *dw = calloc(w->n, 4);
        tg_gemm(pool1, pack, T, no, ni, 1, x->v, ni, 1, w->v, 1, ni, y, no, false);
        tg_gemm(pool1, pack, T, ni, no, 1, dy->v, no, 1, w->v, ni, 1, dx, ni, false);
        tg_gemm(pool1, pack, no, ni, T, 1, dy->v, 1, no, x->v, ni, 1, dw, ni, true);
        fx_cmp("linear.y", y, 1e-6); fx_cmp("linear.dx", dx, 1e-6); fx_cmp("linear.dw", dw, 1e-6);
        free(y); free(dx); free(dw);
    } else CHECK(!"linear fixture");
}

int main(void) {
    if (slm_pool_new(1, &pool1) || slm_pool_new(2, &pool2)) return 1;
    pack = malloc(2 * TG_PACK_FLOATS * sizeof(float));
    test_gemm();
    test_dequant();
    test_rmsnorm_fd();
    test_rope_fd();
    test_gates_fd();
    test_attn_fd();
    test_ce_fd();
    const char *fpath = "tests/fixtures/train/ops.txt";
    CHECKF(load_fixtures(fpath), "cannot read %s (scripts/gen_train_fixtures.py ops writes it)", fpath);
    if (n_fx) test_fixtures();
    for (int i = 0; i < n_fx; i++) free(fx[i].v);
    free(pack);
    slm_pool_free(pool1);
    slm_pool_free(pool2);
    return test_finish();
}
