/* Attention for training, memory-efficient: the forward keeps only the
 * output and each row's logsumexp; the backward recomputes the scores of one
 * block of query rows at a time (never a T x T matrix per head for all
 * layers). Work items are (query head, block of QB query rows); each worker
 * runs its items with single-threaded GEMMs. The K/V gradients of items that
 * share a KV head are summed in per-worker buffers and reduced in worker
 * order, with a fixed assignment of items to workers: the result depends on
 * the thread count, never on timing. */
#include "train/ops_train.h"

#include <math.h>
#include <string.h>

#include "train/gemm.h"
#include "train/vec.h"

#define QB 128

static int n_blocks(const tr_attn *a) { return (a->T + QB - 1) / QB; }

size_t tr_attn_scratch_floats(const tr_attn *a) {
    size_t kv = (size_t)a->T * a->Hkv * (a->D + a->Dv);
    return 2 * (size_t)QB * a->T + kv + (size_t)n_blocks(a) * a->Hq + 64;
}

/* keys [j0, i1) of the block [i0, i1) */
static int block_j0(const tr_attn *a, int i0) {
    return a->window > 0 && i0 - a->window + 1 > 0 ? i0 - a->window + 1 : 0;
}

/* Items (block-major, heads inside) -> owner workers: longest-first greedy
 * on the block's key count, deterministic for a given nth. Written into
 * worker 0's scratch tail (an int per item). */
static int *assign_items(const tr_attn *a, float *scratch, int nth) {
    int nb = n_blocks(a), n = nb * a->Hq;
    int *owner = (int *)(scratch + 2 * (size_t)QB * a->T + (size_t)a->T * a->Hkv * (a->D + a->Dv));
    double load[64] = { 0 };
    if (nth > 64) nth = 64;
    for (int x = n - 1; x >= 0; x--) {     /* later blocks see more keys */
        int b = x / a->Hq, i0 = b * QB, i1 = i0 + QB < a->T ? i0 + QB : a->T;
        double cost = (double)(i1 - i0) * (i1 - block_j0(a, i0));
        int best = 0;
        for (int w = 1; w < nth; w++) if (load[w] < load[best]) best = w;
        load[best] += cost;
        owner[x] = best;
    }
    return owner;
}

/* scores of rows [i0, i1) against keys [j0, i1), masked rows get -inf */
static void scores(const tr_attn *a, const float *q, const float *k, int h, int i0, int i1, int j0, float *S,
                   float *pack) {
    int kvh = h / (a->Hq / a->Hkv), nk = i1 - j0;
    long qs = (long)a->Hq * a->D, ks = (long)a->Hkv * a->D;
    tg_gemm_st(i1 - i0, nk, a->D, a->scale, q + (size_t)i0 * qs + (size_t)h * a->D, qs, 1,
               k + (size_t)j0 * ks + (size_t)kvh * a->D, 1, ks, S, nk, false, pack);
}

/* the valid keys of query i, as columns of its row: [lo, hi) */
static void row_range(const tr_attn *a, int i, int j0, int *lo, int *hi) {
    int first = a->window > 0 && i - a->window + 1 > 0 ? i - a->window + 1 : 0;
    *lo = first - j0;
    *hi = i + 1 - j0;
}

typedef struct {
    const tr_attn *a;
    const float *q, *k, *v, *y, *lse, *dy;
    float *yo, *lse_o, *dq, *dk, *dv;
    float *scratch, *pack;
    size_t sfl;
    const int *owner;
} attn_job;

static void fwd_worker(void *ctx, int ith, int nth) {
    const attn_job *j = ctx;
    const tr_attn *a = j->a;
    float *S = j->scratch + (size_t)ith * j->sfl, *pack = j->pack + (size_t)ith * TG_PACK_FLOATS;
    long ys = (long)a->Hq * a->Dv, vs = (long)a->Hkv * a->Dv;
    int nb = n_blocks(a), group = a->Hq / a->Hkv;
    for (int it = 0; it < nb * a->Hq; it++) {
        if (j->owner[it] != ith) continue;
        int b = it / a->Hq, h = it % a->Hq, i0 = b * QB, i1 = i0 + QB < a->T ? i0 + QB : a->T;
        int j0 = block_j0(a, i0), nk = i1 - j0;
        scores(a, j->q, j->k, h, i0, i1, j0, S, pack);
        for (int i = i0; i < i1; i++) {
            float *row = S + (size_t)(i - i0) * nk;
            int lo, hi;
            row_range(a, i, j0, &lo, &hi);
            float m = tr_vmax(row + lo, hi - lo);
            float sum = tr_vexp_sum(row + lo, hi - lo, m);
            float inv = 1.0f / sum;
            for (int c = 0; c < lo; c++) row[c] = 0.0f;
            for (int c = lo; c < hi; c++) row[c] *= inv;
            for (int c = hi; c < nk; c++) row[c] = 0.0f;
            j->lse_o[(size_t)i * a->Hq + h] = m + logf(sum);
        }
        tg_gemm_st(i1 - i0, a->Dv, nk, 1.0f, S, nk, 1, j->v + (size_t)j0 * vs + (size_t)(h / group) * a->Dv, vs, 1,
                   j->yo + (size_t)i0 * ys + (size_t)h * a->Dv, ys, false, pack);
    }
}

void tr_attn_fwd(slm_pool *pool, const tr_attn *a, const float *q, const float *k, const float *v, float *y,
                 float *lse, float *scratch, float *pack) {
    attn_job j = { a, q, k, v, NULL, NULL, NULL, y, lse, NULL, NULL, NULL, scratch, pack, tr_attn_scratch_floats(a),
                   assign_items(a, scratch, slm_pool_size(pool)) };
    slm_pool_run(pool, fwd_worker, &j);
}

static void bwd_worker(void *ctx, int ith, int nth) {
    const attn_job *j = ctx;
    const tr_attn *a = j->a;
    float *P = j->scratch + (size_t)ith * j->sfl, *dP = P + (size_t)QB * a->T;
    float *dkp = dP + (size_t)QB * a->T, *dvp = dkp + (size_t)a->T * a->Hkv * a->D;
    float *pack = j->pack + (size_t)ith * TG_PACK_FLOATS;
    long qs = (long)a->Hq * a->D, ks = (long)a->Hkv * a->D, ys = (long)a->Hq * a->Dv, vs = (long)a->Hkv * a->Dv;
    int nb = n_blocks(a), group = a->Hq / a->Hkv;
    memset(dkp, 0, (size_t)a->T * (ks + vs) * sizeof(float));
    for (int it = 0; it < nb * a->Hq; it++) {
        if (j->owner[it] != ith) continue;
        int b = it / a->Hq, h = it % a->Hq, kvh = h / group, i0 = b * QB, i1 = i0 + QB < a->T ? i0 + QB : a->T;
        int j0 = block_j0(a, i0), nk = i1 - j0, nq = i1 - i0;
        const float *qh = j->q + (size_t)i0 * qs + (size_t)h * a->D;
        const float *kh = j->k + (size_t)j0 * ks + (size_t)kvh * a->D;
        const float *vh = j->v + (size_t)j0 * vs + (size_t)kvh * a->Dv;
        const float *dyh = j->dy + (size_t)i0 * ys + (size_t)h * a->Dv;
        const float *yh = j->y + (size_t)i0 * ys + (size_t)h * a->Dv;
        scores(a, j->q, j->k, h, i0, i1, j0, P, pack);
        for (int i = i0; i < i1; i++) {
            float *row = P + (size_t)(i - i0) * nk;
            int lo, hi;
            row_range(a, i, j0, &lo, &hi);
            float l = j->lse[(size_t)i * a->Hq + h];
            for (int c = 0; c < lo; c++) row[c] = 0.0f;
            tr_vexp_sum(row + lo, hi - lo, l);
            for (int c = hi; c < nk; c++) row[c] = 0.0f;
        }
        /* dV += Pᵀ dY */
        tg_gemm_st(nk, a->Dv, nq, 1.0f, P, 1, nk, dyh, ys, 1, dvp + (size_t)j0 * vs + (size_t)kvh * a->Dv, vs, true,
                   pack);
        /* dP = dY Vᵀ; dS = P * (dP - rowsum(dY * Y)) */
        tg_gemm_st(nq, nk, a->Dv, 1.0f, dyh, ys, 1, vh, 1, vs, dP, nk, false, pack);
        for (int r = 0; r < nq; r++) {
            const float *dyr = dyh + (size_t)r * ys, *yr = yh + (size_t)r * ys;
            float di = 0.0f;
            for (int d = 0; d < a->Dv; d++) di += dyr[d] * yr[d];
            float *pr = P + (size_t)r * nk, *dpr = dP + (size_t)r * nk;
            for (int c = 0; c < nk; c++) dpr[c] = pr[c] * (dpr[c] - di);
        }
        /* dQ = scale dS K; dK += scale dSᵀ Q */
        tg_gemm_st(nq, a->D, nk, a->scale, dP, nk, 1, kh, ks, 1, j->dq + (size_t)i0 * qs + (size_t)h * a->D, qs, false,
                   pack);
        tg_gemm_st(nk, a->D, nq, a->scale, dP, 1, nk, qh, qs, 1, dkp + (size_t)j0 * ks + (size_t)kvh * a->D, ks, true,
                   pack);
    }
}

typedef struct {
    const attn_job *j;
    int nth_parts;
} reduce_job;

/* dk, dv = the workers' partial sums, added in worker order */
static void reduce_worker(void *ctx, int ith, int nth) {
    const reduce_job *r = ctx;
    const attn_job *j = r->j;
    const tr_attn *a = j->a;
    size_t ks = (size_t)a->Hkv * a->D, vs = (size_t)a->Hkv * a->Dv, off = 2 * (size_t)QB * a->T;
    long lo, hi;
    slm_split_range(a->T, ith, nth, &lo, &hi);
    for (long t = lo; t < hi; t++) {
        float *dk = j->dk + t * ks, *dv = j->dv + t * vs;
        memset(dk, 0, ks * sizeof(float));
        memset(dv, 0, vs * sizeof(float));
        for (int w = 0; w < r->nth_parts; w++) {
            const float *dkp = j->scratch + (size_t)w * j->sfl + off;
            const float *dvp = dkp + (size_t)a->T * ks;
            for (size_t i = 0; i < ks; i++) dk[i] += dkp[t * ks + i];
            for (size_t i = 0; i < vs; i++) dv[i] += dvp[t * vs + i];
        }
    }
}

void tr_attn_bwd(slm_pool *pool, const tr_attn *a, const float *q, const float *k, const float *v, const float *y,
                 const float *lse, const float *dy, float *dq, float *dk, float *dv, float *scratch, float *pack) {
    attn_job j = { a, q, k, v, y, lse, dy, NULL, NULL, dq, dk, dv, scratch, pack, tr_attn_scratch_floats(a),
                   assign_items(a, scratch, slm_pool_size(pool)) };
    slm_pool_run(pool, bwd_worker, &j);
    reduce_job r = { &j, slm_pool_size(pool) };
    slm_pool_run(pool, reduce_worker, &r);
}
