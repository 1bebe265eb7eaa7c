/* Forward with kept activations and backward of the generic transformer
 * (the same model as src/model/transformer.c, in f32 throughout). What a
 * family changes is read from slm_arch, as the inference pass does. */
#include "train/train_internal.h"

#include <math.h>
#include <string.h>

#include "base/status.h"
#include "quant/quant.h"
#include "train/dequant.h"
#include "train/gemm.h"
#include "train/ops_train.h"

/* ---- weights ---------------------------------------------------------------- */

typedef struct {
    const slm_mat *m;
    long r0;
    int n;
    float *dst;
} deq_job;

static void deq_worker(void *ctx, int ith, int nth) {
    const deq_job *j = ctx;
    long lo, hi;
    slm_split_range(j->n, ith, nth, &lo, &hi);
    for (long r = lo; r < hi; r++)
        tr_dequant_row(j->m->type, j->m->data + (size_t)(j->r0 + r) * j->m->row_bytes, j->dst + (size_t)r * j->m->cols,
                           j->m->cols);
}

const float *tr_weight_rows(slm_trainer *t, const tr_w *w, long r0, int n, float *buf) {
    if (w->f32) return w->f32 + (size_t)r0 * w->n_in;
    deq_job j = { w->mat, r0, n, buf };
    if (n >= 64) slm_pool_run(t->pool, deq_worker, &j);
    else deq_worker(&j, 0, 1);
    return buf;
}

/* Rows [r0, r0 + n) of a weight as packed GEMM operands (bf: of x·Wᵀ, bb:
 * of dy·W; either NULL), straight from the dequantizer (or the f32 master),
 * 32 rows at a time through a small per-worker buffer that stays in cache. */
typedef struct {
    slm_trainer *t;
    const tr_w *w;
    long r0;
    int n;
    float *bf, *bb;
} packw_job;

static void packw_worker(void *ctx, int ith, int nth) {
    const packw_job *j = ctx;
    const tr_w *w = j->w;
    int ni = w->n_in;
    long ng = (j->n + TG_NR - 1) / TG_NR, g0, g1;
    slm_split_range(ng, ith, nth, &g0, &g1);
    float *tmp = j->t->deq_tmp + (size_t)ith * TG_NR * j->t->deq_tmp_cols;
    for (long g = g0; g < g1; g++) {
        int r = (int)(g * TG_NR), nr = j->n - r < TG_NR ? j->n - r : TG_NR;
        const float *src;
        if (w->f32) {
            src = w->f32 + (size_t)(j->r0 + r) * ni;
        } else {
            for (int i = 0; i < nr; i++)
                tr_dequant_row(w->mat->type, w->mat->data + (size_t)(j->r0 + r + i) * w->mat->row_bytes,
                               tmp + (size_t)i * ni, ni);
            src = tmp;
        }
        tr_pack_rows(src, ni, j->n, ni, r, nr, j->bf, j->bb);
    }
}

static void pack_weight(slm_trainer *t, const tr_w *w, long r0, int n, float *bf, float *bb) {
    packw_job j = { t, w, r0, n, bf, bb };
    slm_pool_run(t->pool, packw_worker, &j);
}

typedef struct {
    slm_trainer *t;
    const tr_w *w;
} head_ctx;

static const float *head_rows(void *ctx, long r0, int n, float *buf) {
    head_ctx *h = ctx;
    return tr_weight_rows(h->t, h->w, r0, n, buf);
}

static void head_pack(void *ctx, long v0, int n, float *bf, float *bb) {
    head_ctx *h = ctx;
    pack_weight(h->t, h->w, v0, n, bf, bb);
}

/* ---- LoRA dropout: a counter-based hash, so the backward (and a recomputed
 * forward) regenerate the forward's mask without storing it ---------------- */

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* dst = x * mask / (1 - p); with dst NULL, y += src * mask / (1 - p) instead */
static void dropout_apply(const slm_trainer *t, int il, int tgt, const float *src, float *dst, float *y, size_t n) {
    float p = t->p.dropout, keep_scale = 1.0f / (1.0f - p);
    uint64_t key = mix64(t->p.seed ^ mix64(t->calls * 0x9E3779B97F4A7C15ull + (uint64_t)il * 16 + (uint64_t)tgt + 1));
    uint64_t thr = (uint64_t)((double)p * 18446744073709551616.0);
    for (size_t i = 0; i < n; i++) {
        float k = mix64(key + i * 0x9E3779B97F4A7C15ull) >= thr ? keep_scale : 0.0f;
        if (dst) dst[i] = src[i] * k;
        else y[i] += src[i] * k;
    }
}

/* ---- linear layers -------------------------------------------------------------- */

static void add_bias(float *y, const float *b, int T, int n) {
    if (!b) return;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += b[i];
}

/* y = x Wᵀ + b (+ s B (A drop(x))); xa keeps A drop(x) */
static void lin_fwd(slm_trainer *t, int il, int tgt, const float *x, int T, float *y, float *xa, const float *bias,
                    bool train) {
    const tr_w *w = &t->layers[il].lin[tgt];
    int ni = w->n_in, no = w->n_out;
    pack_weight(t, w, 0, no, t->wbuf, NULL);
    tg_gemm_bp(t->pool, t->pack, T, no, ni, 1.0f, x, ni, 1, t->wbuf, y, no, false);
    add_bias(y, bias, T, no);
    if (!w->lora) return;
    const lora_mat *l = w->lora;
    const float *xin = x;
    if (train && t->p.dropout > 0) {
        dropout_apply(t, il, tgt, x, t->xdrop, NULL, (size_t)T * ni);
        xin = t->xdrop;
    }
    tg_gemm(t->pool, t->pack, T, l->rank, ni, 1.0f, xin, ni, 1, l->a, 1, ni, xa, l->rank, false);
    tg_gemm(t->pool, t->pack, T, no, l->rank, t->lora_scale, xa, l->rank, 1, l->b, 1, l->rank, y, no, true);
}

/* dx (+)= dy W (+ the LoRA path); dW += dyᵀ x (full); db += sum dy; dA, dB (LoRA) */
static void lin_bwd(slm_trainer *t, int il, int tgt, const float *x, int T, const float *dy, float *dx, bool dx_acc,
                    const float *xa, float *gbias) {
    const tr_w *w = &t->layers[il].lin[tgt];
    int ni = w->n_in, no = w->n_out;
    if (dx) {
        pack_weight(t, w, 0, no, NULL, t->wbuf);
        tg_gemm_bp(t->pool, t->pack, T, ni, no, 1.0f, dy, no, 1, t->wbuf, dx, ni, dx_acc);
    }
    if (w->grad) tg_gemm(t->pool, t->pack, no, ni, T, 1.0f, dy, 1, no, x, ni, 1, w->grad, ni, true);
    if (gbias)
        for (int r = 0; r < T; r++)
            for (int i = 0; i < no; i++) gbias[i] += dy[(size_t)r * no + i];
    if (!w->lora) return;
    const lora_mat *l = w->lora;
    int rk = l->rank;
    float s = t->lora_scale, *dxa = t->ltmp;
    const float *xin = x;
    bool drop = t->p.dropout > 0;
    if (drop) {
        dropout_apply(t, il, tgt, x, t->xdrop, NULL, (size_t)T * ni);
        xin = t->xdrop;
    }
    tg_gemm(t->pool, t->pack, no, rk, T, s, dy, 1, no, xa, rk, 1, w->gb, rk, true);
    tg_gemm(t->pool, t->pack, T, rk, no, s, dy, no, 1, l->b, rk, 1, dxa, rk, false);
    tg_gemm(t->pool, t->pack, rk, ni, T, 1.0f, dxa, 1, rk, xin, ni, 1, w->ga, ni, true);
    if (!dx) return;
    if (!drop) {
        tg_gemm(t->pool, t->pack, T, ni, rk, 1.0f, dxa, rk, 1, l->a, ni, 1, dx, ni, true);
    } else {
        tg_gemm(t->pool, t->pack, T, ni, rk, 1.0f, dxa, rk, 1, l->a, ni, 1, t->htmp, ni, false);
        dropout_apply(t, il, tgt, t->htmp, NULL, dx, (size_t)T * ni);
    }
}

/* ---- one layer ------------------------------------------------------------------ */

static const float *rope_tab(const slm_trainer *t, const float *base, bool swa) {
    return base + (swa ? (size_t)t->p.max_seq * (t->m->cfg.n_rot / 2) : 0);
}

static tr_attn layer_attn(const slm_trainer *t, int il, int T) {
    const slm_config *c = &t->m->cfg;
    return (tr_attn){ T, c->n_head, c->n_head_kv, c->head_dim, c->head_dim_v,
                      t->layers[il].swa ? c->sliding_window : 0, c->attn_scale };
}

static void gate_fwd(const slm_trainer *t, float *y, const float *g, const float *u, size_t n) {
    tr_gate_fwd_par(t->pool, t->m->arch->act == SLM_ACT_GELU_TANH, y, g, u, n);
}

static void layer_fwd(slm_trainer *t, int il, int T, const float *x, float *out, tr_acts *a, bool train) {
    const slm_config *c = &t->m->cfg;
    const slm_arch *ar = t->m->arch;
    const tr_layer *L = &t->layers[il];
    int E = c->n_embd, Hq = c->n_head, Hkv = c->n_head_kv, D = c->head_dim;
    bool neox = ar->rope == SLM_ROPE_NEOX;
    tr_rmsnorm_fwd_par(t->pool, a->xn1, a->r1, x, L->vec[V_ATTN_NORM].w, T, E, c->eps);
    float *qd = ar->qk_norm ? a->qlin : a->q, *kd = ar->qk_norm ? a->klin : a->k;
    lin_fwd(t, il, LORA_Q, a->xn1, T, qd, a->xa[LORA_Q], L->vec[V_BQ].w, train);
    lin_fwd(t, il, LORA_K, a->xn1, T, kd, a->xa[LORA_K], L->vec[V_BK].w, train);
    lin_fwd(t, il, LORA_V, a->xn1, T, a->v, a->xa[LORA_V], L->vec[V_BV].w, train);
    if (ar->qk_norm) {
        tr_rmsnorm_fwd_par(t->pool, a->q, a->rq, a->qlin, L->vec[V_Q_NORM].w, T * Hq, D, c->eps);
        tr_rmsnorm_fwd_par(t->pool, a->k, a->rk, a->klin, L->vec[V_K_NORM].w, T * Hkv, D, c->eps);
    }
    const float *cs = rope_tab(t, t->rope_cos, L->swa), *sn = rope_tab(t, t->rope_sin, L->swa);
    tr_rope_fwd(a->q, T, Hq, D, c->n_rot, neox, cs, sn);
    tr_rope_fwd(a->k, T, Hkv, D, c->n_rot, neox, cs, sn);
    tr_attn as = layer_attn(t, il, T);
    tr_attn_fwd(t->pool, &as, a->q, a->k, a->v, a->att, a->lse, t->attn_scratch, t->pack);
    lin_fwd(t, il, LORA_O, a->att, T, a->olin, a->xa[LORA_O], L->vec[V_BO].w, train);
    const float *o = a->olin;
    if (ar->post_norms) {
        tr_rmsnorm_fwd_par(t->pool, t->dtmp, a->rpo, a->olin, L->vec[V_POST_ATTN].w, T, E, c->eps);
        o = t->dtmp;
    }
    for (size_t i = 0; i < (size_t)T * E; i++) a->hmid[i] = x[i] + o[i];
    tr_rmsnorm_fwd_par(t->pool, a->xn2, a->r2, a->hmid, L->vec[V_FFN_NORM].w, T, E, c->eps);
    lin_fwd(t, il, LORA_GATE, a->xn2, T, a->gate, a->xa[LORA_GATE], NULL, train);
    lin_fwd(t, il, LORA_UP, a->xn2, T, a->up, a->xa[LORA_UP], NULL, train);
    gate_fwd(t, a->act, a->gate, a->up, (size_t)T * c->n_ff);
    lin_fwd(t, il, LORA_DOWN, a->act, T, a->dlin, a->xa[LORA_DOWN], NULL, train);
    o = a->dlin;
    if (ar->post_norms) {
        tr_rmsnorm_fwd_par(t->pool, t->dtmp, a->rpf, a->dlin, L->vec[V_POST_FFN].w, T, E, c->eps);
        o = t->dtmp;
    }
    for (size_t i = 0; i < (size_t)T * E; i++) out[i] = a->hmid[i] + o[i];
}

/* dh: in, the gradient of the layer's output; out, of its input x */
static void layer_bwd(slm_trainer *t, int il, int T, const float *x, const tr_acts *a, float *dh) {
    const slm_config *c = &t->m->cfg;
    const slm_arch *ar = t->m->arch;
    tr_layer *L = &t->layers[il];
    int E = c->n_embd, Hq = c->n_head, Hkv = c->n_head_kv, D = c->head_dim;
    size_t TE = (size_t)T * E;
    bool neox = ar->rope == SLM_ROPE_NEOX;
    /* feed-forward: out = hmid + post(dlin) */
    const float *dd = dh;
    if (ar->post_norms) {
        tr_rmsnorm_bwd_par(t->pool, t->dtmp, L->vec[V_POST_FFN].g, dh, a->dlin, a->rpf, L->vec[V_POST_FFN].w, T, E, t->dw_part);
        dd = t->dtmp;
    }
    lin_bwd(t, il, LORA_DOWN, a->act, T, dd, t->dact, false, a->xa[LORA_DOWN], NULL);
    tr_gate_bwd_par(t->pool, ar->act == SLM_ACT_GELU_TANH, t->dgate, t->dup, t->dact, a->gate, a->up,
                    (size_t)T * c->n_ff);
    lin_bwd(t, il, LORA_GATE, a->xn2, T, t->dgate, t->dxn, false, a->xa[LORA_GATE], NULL);
    lin_bwd(t, il, LORA_UP, a->xn2, T, t->dup, t->dxn, true, a->xa[LORA_UP], NULL);
    tr_rmsnorm_bwd_par(t->pool, t->dxn, L->vec[V_FFN_NORM].g, t->dxn, a->hmid, a->r2, L->vec[V_FFN_NORM].w, T, E, t->dw_part);
    for (size_t i = 0; i < TE; i++) dh[i] += t->dxn[i];
    /* attention: hmid = x + post(olin) */
    dd = dh;
    if (ar->post_norms) {
        tr_rmsnorm_bwd_par(t->pool, t->dtmp, L->vec[V_POST_ATTN].g, dh, a->olin, a->rpo, L->vec[V_POST_ATTN].w, T, E, t->dw_part);
        dd = t->dtmp;
    }
    lin_bwd(t, il, LORA_O, a->att, T, dd, t->datt, false, a->xa[LORA_O], L->vec[V_BO].g);
    tr_attn as = layer_attn(t, il, T);
    tr_attn_bwd(t->pool, &as, a->q, a->k, a->v, a->att, a->lse, t->datt, t->dq, t->dk, t->dv, t->attn_scratch,
                t->pack);
    const float *cs = rope_tab(t, t->rope_cos, L->swa), *sn = rope_tab(t, t->rope_sin, L->swa);
    tr_rope_bwd(t->dq, T, Hq, D, c->n_rot, neox, cs, sn);
    tr_rope_bwd(t->dk, T, Hkv, D, c->n_rot, neox, cs, sn);
    if (ar->qk_norm) {
        tr_rmsnorm_bwd_par(t->pool, t->dq, L->vec[V_Q_NORM].g, t->dq, a->qlin, a->rq, L->vec[V_Q_NORM].w, T * Hq, D, t->dw_part);
        tr_rmsnorm_bwd_par(t->pool, t->dk, L->vec[V_K_NORM].g, t->dk, a->klin, a->rk, L->vec[V_K_NORM].w, T * Hkv, D, t->dw_part);
    }
    /* the first layer's input gradient only feeds the (frozen) embeddings in LoRA mode */
    bool need_dx = t->p.full || il > 0;
    float *dx = need_dx ? t->dxn : NULL;
    lin_bwd(t, il, LORA_Q, a->xn1, T, t->dq, dx, false, a->xa[LORA_Q], L->vec[V_BQ].g);
    lin_bwd(t, il, LORA_K, a->xn1, T, t->dk, dx, true, a->xa[LORA_K], L->vec[V_BK].g);
    lin_bwd(t, il, LORA_V, a->xn1, T, t->dv, dx, true, a->xa[LORA_V], L->vec[V_BV].g);
    if (!need_dx) return;
    tr_rmsnorm_bwd_par(t->pool, t->dxn, L->vec[V_ATTN_NORM].g, t->dxn, x, a->r1, L->vec[V_ATTN_NORM].w, T, E, t->dw_part);
    for (size_t i = 0; i < TE; i++) dh[i] += t->dxn[i];
}

/* ---- the whole model -------------------------------------------------------------- */

/* RoPE frequency divisors, as transformer.c chooses them (the sequence is the context). */
static const float *rope_factors(const struct slm_model *m, int n_ctx) {
    if (m->rope_freqs) return m->rope_freqs;
    if (!m->rope_factors_long) return NULL;
    return n_ctx > m->cfg.n_ctx_orig ? m->rope_factors_long : m->rope_factors_short;
}

static void rope_tables(slm_trainer *t, int n) {
    const struct slm_model *m = t->m;
    const slm_config *c = &m->cfg;
    int half = c->n_rot / 2;
    size_t loc = (size_t)t->p.max_seq * half;
    const float *ff = rope_factors(m, n);
    bool own = m->arch->swa_period > 0;
    for (int p = 0; p < n; p++) {
        op_rope_table_ext(t->rope_cos + (size_t)p * half, t->rope_sin + (size_t)p * half, c->n_rot, p, c->rope_base, ff,
                          c->rope_freq_scale, c->rope_attn_factor);
        op_rope_table_ext(t->rope_cos + loc + (size_t)p * half, t->rope_sin + loc + (size_t)p * half, c->n_rot, p,
                          c->rope_base_swa, own ? NULL : ff, own ? 1.0f : c->rope_freq_scale,
                          own ? 1.0f : c->rope_attn_factor);
    }
}

slm_status tr_run(slm_trainer *t, const int32_t *tokens, const uint8_t *loss_mask, int n, bool backward,
                  double *loss_sum, int *n_scored) {
    const struct slm_model *m = t->m;
    const slm_config *c = &m->cfg;
    int E = c->n_embd, NL = c->n_layer;
    *loss_sum = 0;
    *n_scored = 0;
    if (!tokens || n < 1 || n > t->p.max_seq)
        return slm_fail(SLM_ERR_INVALID_ARG, "sequence of %d tokens: need 1..%d (max_seq)", n, t->p.max_seq);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return slm_fail(SLM_ERR_INVALID_ARG, "token %d at position %d is outside the vocabulary (%d)", tokens[i], i,
                            c->n_vocab);
    int R = 0;
    for (int i = 0; i + 1 < n; i++)
        if (!loss_mask || loss_mask[i + 1]) {
            t->ce_rows[R] = i;
            t->ce_tgt[R++] = tokens[i + 1];
        }
    if (R == 0) return SLM_OK;  /* nothing scored: no loss, no gradient */
    if (backward) t->calls++;
    bool train = backward;
    rope_tables(t, n);
    /* embeddings */
    float escale = m->arch->embed_scale ? sqrtf((float)E) : 1.0f;
    size_t TS = (size_t)t->p.max_seq * E;
    for (int i = 0; i < n; i++) {
        float *h = t->hs + (size_t)i * E;
        if (t->embd.f32) memcpy(h, t->embd.f32 + (size_t)tokens[i] * E, E * sizeof(float));
        else tr_dequant_row(m->tok_embd.type, m->tok_embd.data + (size_t)tokens[i] * m->tok_embd.row_bytes, h, E);
        for (int k = 0; k < E; k++) h[k] *= escale;
    }
    bool keep = backward && !t->p.checkpoint;
    double t0 = tr_now();
    for (int il = 0; il < NL; il++)
        layer_fwd(t, il, n, t->hs + il * TS, t->hs + (il + 1) * TS, &t->acts[keep ? il : 0], train);
    double t1 = tr_now();
    t->times[0] += t1 - t0;
    /* final norm of the scored rows, then the loss */
    const float *hl = t->hs + NL * TS;
    for (int r = 0; r < R; r++)
        tr_rmsnorm_fwd(t->ce_h + (size_t)r * E, t->ce_rstd + r, hl + (size_t)t->ce_rows[r] * E, t->out_norm.w, 1, E,
                       c->eps);
    head_ctx hc = { t, &t->head };
    tr_ce ce = { t->pool, t->pack, R, E, c->n_vocab, t->ce_chunk, head_rows, head_pack, &hc, t->wbuf, t->wbuf2,
                 t->rowbuf, t->ce_z };
    tr_ce_run(&ce, t->ce_h, t->ce_tgt, t->ce_loss, backward ? t->ce_dh : NULL, backward ? t->head.grad : NULL,
              t->ce_g, t->ce_ms);
    double sum = 0;
    for (int r = 0; r < R; r++) sum += t->ce_loss[r];
    *loss_sum = sum;
    *n_scored = R;
    if (!backward) {
        t->times[1] += tr_now() - t1;
        return SLM_OK;
    }
    float *dh = t->dh;
    memset(dh, 0, (size_t)n * E * sizeof(float));
    for (int r = 0; r < R; r++) {
        size_t row = (size_t)t->ce_rows[r] * E;
        tr_rmsnorm_bwd(dh + row, t->out_norm.g, t->ce_dh + (size_t)r * E, hl + row, t->ce_rstd + r, t->out_norm.w, 1, E);
    }
    double t2 = tr_now();
    t->times[1] += t2 - t1;
    for (int il = NL - 1; il >= 0; il--) {
        tr_acts *a = &t->acts[keep ? il : 0];
        if (!keep) layer_fwd(t, il, n, t->hs + il * TS, t->hs + (il + 1) * TS, a, true);
        layer_bwd(t, il, n, t->hs + il * TS, a, dh);
    }
    if (t->embd.grad)
        for (int i = 0; i < n; i++) {
            float *g = t->embd.grad + (size_t)tokens[i] * E;
            for (int k = 0; k < E; k++) g[k] += escale * dh[(size_t)i * E + k];
        }
    t->times[2] += tr_now() - t2;
    if (!isfinite(sum)) return slm_fail(SLM_ERR_INVALID_ARG, "the loss is not finite");
    return SLM_OK;
}
