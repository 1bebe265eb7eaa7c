/* The trainer: parameters (LoRA A/B, or f32 masters of every weight), their
 * gradients and AdamW moments in one arena, activation and scratch memory,
 * the optimizer step and the optimizer state. The forward and backward
 * passes are in train_model.c. */
#include "train/train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "quant/quant.h"
#include "train/gemm.h"
#include "train/ops_train.h"

void train_default_params(train_params *p) {
    memset(p, 0, sizeof *p);
    p->rank = 16;
    p->alpha = 32.0f;
    p->targets = LORA_TARGETS_DEFAULT;
    p->max_seq = 512;
    p->seed = 42;
    p->beta1 = 0.9f;
    p->beta2 = 0.999f;
    p->eps = 1e-8f;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* the gguf tensor whose data holds p, or -1 */
static int tensor_of(const gguf_file *f, const void *p) {
    const uint8_t *b = p;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const uint8_t *d = f->tensors[i].data;
        if (b >= d && b < d + f->tensors[i].nbytes) return (int)i;
    }
    return -1;
}

static int64_t tensor_elems(const gguf_tensor *t) {
    return (int64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
}

static void bind_layers(slm_trainer *t) {
    const struct slm_model *m = t->m;
    const slm_config *c = &m->cfg;
    for (int il = 0; il < c->n_layer; il++) {
        const slm_layer *L = &m->layers[il];
        tr_layer *T = &t->layers[il];
        const slm_mat *mats[LORA_N_TARGETS] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (int i = 0; i < LORA_N_TARGETS; i++) {
            T->lin[i].mat = mats[i];
            T->lin[i].n_in = (int)mats[i]->cols;
            T->lin[i].n_out = (int)mats[i]->rows;
        }
        const float *vs[V_N] = { L->attn_norm, L->q_norm, L->k_norm, L->post_attn_norm, L->ffn_norm,
                                 L->post_ffn_norm, L->bq, L->bk, L->bv, L->bo };
        for (int i = 0; i < V_N; i++) T->vec[i].w = vs[i];
        T->swa = L->swa;
    }
    t->embd.mat = &m->tok_embd;
    t->embd.n_in = (int)m->tok_embd.cols;
    t->embd.n_out = (int)m->tok_embd.rows;
    t->head.mat = &m->output;
    t->head.n_in = (int)m->output.cols;
    t->head.n_out = (int)m->output.rows;
    t->tied = m->output.data == m->tok_embd.data;
    t->out_norm.w = m->output_norm;
}

/* ---- parameters --------------------------------------------------------- */

static slm_status add_seg(slm_trainer *t, size_t n, bool decay, int gi, size_t *cap) {
    if (t->n_segs == (int)*cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        tr_seg *s = realloc(t->segs, nc * sizeof *s);
        if (!s) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        t->segs = s;
        *cap = nc;
    }
    t->segs[t->n_segs++] = (tr_seg){ t->n_par, n, decay, gi };
    t->n_par += n;
    return SLM_OK;
}

/* Full mode: one segment per stored tensor the model uses. */
static int seg_of_tensor(const slm_trainer *t, int gi) {
    for (int s = 0; s < t->n_segs; s++) if (t->segs[s].gguf_index == gi) return s;
    return -1;
}

static slm_status plan_full(slm_trainer *t, size_t *cap) {
    const gguf_file *f = t->m->gguf;
    const slm_config *c = &t->m->cfg;
    /* every pointer the forward reads, in a fixed order */
    size_t np = 3 + (size_t)c->n_layer * (LORA_N_TARGETS + V_N), k = 0;
    const void **ptrs = malloc(np * sizeof *ptrs);
    if (!ptrs) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    ptrs[k++] = t->embd.mat->data;
    ptrs[k++] = t->head.mat->data;
    ptrs[k++] = t->out_norm.w;
    for (int il = 0; il < c->n_layer; il++) {
        for (int i = 0; i < LORA_N_TARGETS; i++) ptrs[k++] = t->layers[il].lin[i].mat->data;
        for (int i = 0; i < V_N; i++) ptrs[k++] = t->layers[il].vec[i].w;
    }
    slm_status st = SLM_OK;
    for (size_t i = 0; i < k && st == SLM_OK; i++) {
        if (!ptrs[i]) continue;
        int gi = tensor_of(f, ptrs[i]);
        if (gi < 0) {
            st = slm_fail(SLM_ERR_FORMAT, "a model weight lies outside the file's tensors");
            break;
        }
        if (seg_of_tensor(t, gi) >= 0) continue;
        const gguf_tensor *gt = &f->tensors[gi];
        st = add_seg(t, (size_t)tensor_elems(gt), gt->ne[1] > 1, gi, cap);
    }
    free(ptrs);
    return st;
}

static slm_status plan_lora(slm_trainer *t, size_t *cap) {
    const slm_config *c = &t->m->cfg;
    int r = t->p.rank;
    t->lora = (lora_adapter){ c->n_layer, r, t->p.alpha, t->p.targets, NULL };
    t->lora.mats = calloc((size_t)c->n_layer * LORA_N_TARGETS, sizeof(lora_mat));
    if (!t->lora.mats) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    for (int il = 0; il < c->n_layer; il++)
        for (int i = 0; i < LORA_N_TARGETS; i++) {
            if (!(t->p.targets & (1u << i))) continue;
            const tr_w *w = &t->layers[il].lin[i];
            slm_status st = add_seg(t, (size_t)r * w->n_in, true, -1, cap);
            if (!st) st = add_seg(t, (size_t)w->n_out * r, true, -1, cap);
            if (st) return st;
        }
    return SLM_OK;
}

/* Points every tr_w / tr_v at its slice of the arena. */
static void bind_params(slm_trainer *t) {
    const gguf_file *f = t->m->gguf;
    const slm_config *c = &t->m->cfg;
    if (!t->p.full) {
        int s = 0, r = t->p.rank;
        for (int il = 0; il < c->n_layer; il++)
            for (int i = 0; i < LORA_N_TARGETS; i++) {
                if (!(t->p.targets & (1u << i))) continue;
                tr_w *w = &t->layers[il].lin[i];
                lora_mat *lm = &t->lora.mats[(size_t)il * LORA_N_TARGETS + i];
                *lm = (lora_mat){ r, w->n_in, w->n_out, t->par + t->segs[s].off, t->par + t->segs[s + 1].off };
                w->lora = lm;
                w->ga = t->grad + t->segs[s].off;
                w->gb = t->grad + t->segs[s + 1].off;
                s += 2;
            }
        return;
    }
#define MASTER(ptr, out_w, out_g)                                                        \
    do {                                                                                       \
        int gi_ = tensor_of(f, ptr), s_ = seg_of_tensor(t, gi_);                               \
        const gguf_tensor *gt_ = &f->tensors[gi_];                                             \
        size_t row_ = (size_t)((const uint8_t *)(ptr) - (const uint8_t *)gt_->data) /          \
                      slm_row_bytes(gt_->type, (int64_t)gt_->ne[0]);                           \
        size_t o_ = t->segs[s_].off + row_ * gt_->ne[0];                                       \
        out_w = t->par + o_;                                                                   \
        out_g = t->grad + o_;                                                                  \
    } while (0)
    tr_w *ws[2] = { &t->embd, &t->head };
    for (int i = 0; i < 2; i++) MASTER(ws[i]->mat->data, ws[i]->f32, ws[i]->grad);
    float *w_, *g_;
    MASTER(t->out_norm.w, w_, g_);
    t->out_norm = (tr_v){ w_, g_ };
    for (int il = 0; il < c->n_layer; il++) {
        tr_layer *L = &t->layers[il];
        for (int i = 0; i < LORA_N_TARGETS; i++) MASTER(L->lin[i].mat->data, L->lin[i].f32, L->lin[i].grad);
        for (int i = 0; i < V_N; i++) {
            if (!L->vec[i].w) continue;
            MASTER(L->vec[i].w, w_, g_);
            L->vec[i] = (tr_v){ w_, g_ };
        }
    }
#undef MASTER
}

/* Full mode: the masters start as the stored weights, dequantized. */
static void load_masters(slm_trainer *t) {
    const gguf_file *f = t->m->gguf;
    for (int s = 0; s < t->n_segs; s++) {
        const gguf_tensor *gt = &f->tensors[t->segs[s].gguf_index];
        int64_t cols = (int64_t)gt->ne[0], rows = tensor_elems(gt) / cols;
        size_t rb = slm_row_bytes(gt->type, cols);
        for (int64_t r = 0; r < rows; r++)
            slm_dequantize_row(gt->type, (const uint8_t *)gt->data + (size_t)r * rb, t->par + t->segs[s].off + r * cols,
                               cols);
    }
}

/* PEFT's init: A ~ U(-1/sqrt(n_in), 1/sqrt(n_in)) (kaiming_uniform_ with
 * a = sqrt(5)), B = 0. */
static void init_lora(slm_trainer *t) {
    uint64_t s = t->p.seed ^ 0x4C6F5241ull;
    for (int i = 0; i < t->lora.n_layer * LORA_N_TARGETS; i++) {
        lora_mat *lm = &t->lora.mats[i];
        if (!lm->a) continue;
        double bound = 1.0 / sqrt((double)lm->n_in);
        for (size_t k = 0; k < (size_t)lm->rank * lm->n_in; k++) {
            double u = (double)(splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
            lm->a[k] = (float)((2.0 * u - 1.0) * bound);
        }
        memset(lm->b, 0, (size_t)lm->n_out * lm->rank * sizeof(float));
    }
}

/* ---- activations and scratch -------------------------------------------- */

static size_t act_floats_tok(const slm_trainer *t) {
    const slm_config *c = &t->m->cfg;
    size_t E = c->n_embd, QD = (size_t)c->n_head * c->head_dim, KD = (size_t)c->n_head_kv * c->head_dim;
    size_t VD = (size_t)c->n_head_kv * c->head_dim_v, OD = (size_t)c->n_head * c->head_dim_v, F = c->n_ff;
    size_t n = 5 * E + 2 * QD + 2 * KD + VD + OD + 3 * F + 4 + 2 * (size_t)c->n_head + c->n_head_kv;
    if (!t->p.full)
        for (int i = 0; i < LORA_N_TARGETS; i++) if (t->p.targets & (1u << i)) n += t->p.rank;
    return n;
}

static void carve_acts(slm_trainer *t, tr_acts *a, float *mem) {
    const slm_config *c = &t->m->cfg;
    size_t T = t->p.max_seq, E = c->n_embd, QD = (size_t)c->n_head * c->head_dim, KD = (size_t)c->n_head_kv * c->head_dim;
    size_t VD = (size_t)c->n_head_kv * c->head_dim_v, OD = (size_t)c->n_head * c->head_dim_v, F = c->n_ff;
    float *p = mem;
#define TAKE(field, w) (a->field = p, p += T * (w))
    TAKE(xn1, E); TAKE(qlin, QD); TAKE(klin, KD); TAKE(q, QD); TAKE(k, KD); TAKE(v, VD); TAKE(att, OD);
    TAKE(olin, E); TAKE(hmid, E); TAKE(xn2, E); TAKE(gate, F); TAKE(up, F); TAKE(act, F); TAKE(dlin, E);
    TAKE(r1, 1); TAKE(rq, c->n_head); TAKE(rk, c->n_head_kv); TAKE(lse, c->n_head); TAKE(rpo, 1); TAKE(r2, 1);
    TAKE(rpf, 1);
    for (int i = 0; i < LORA_N_TARGETS; i++) {
        a->xa[i] = NULL;
        if (!t->p.full && (t->p.targets & (1u << i))) TAKE(xa[i], t->p.rank);
    }
#undef TAKE
}

static size_t max_in(const struct slm_model *m) {
    const slm_config *c = &m->cfg;
    size_t w = c->n_embd;
    if ((size_t)c->n_ff > w) w = c->n_ff;
    if ((size_t)c->n_head * c->head_dim_v > w) w = (size_t)c->n_head * c->head_dim_v;
    return w;
}

static size_t wbuf_need(const slm_trainer *t) {
    const slm_config *c = &t->m->cfg;
    size_t w = tg_bp_floats(c->n_embd, t->ce_chunk);
    for (int il = 0; il < c->n_layer; il++)
        for (int i = 0; i < LORA_N_TARGETS; i++) {
            int ni = t->layers[il].lin[i].n_in, no = t->layers[il].lin[i].n_out;
            size_t s = tg_bp_floats(ni, no), s2 = tg_bp_floats(no, ni);
            if (s > w) w = s;
            if (s2 > w) w = s2;
        }
    return w;
}

static tr_attn attn_shape(const slm_trainer *t, int T) {
    const slm_config *c = &t->m->cfg;
    return (tr_attn){ T, c->n_head, c->n_head_kv, c->head_dim, c->head_dim_v, 0, c->attn_scale };
}

static slm_status alloc_all(slm_trainer *t) {
    const slm_config *c = &t->m->cfg;
    size_t T = t->p.max_seq, E = c->n_embd, F = c->n_ff, MI = max_in(t->m);
    size_t QD = (size_t)c->n_head * c->head_dim, KD = (size_t)c->n_head_kv * c->head_dim;
    size_t VD = (size_t)c->n_head_kv * c->head_dim_v, OD = (size_t)c->n_head * c->head_dim_v;
    t->par = malloc(t->n_par * sizeof(float));
    t->grad = calloc(t->n_par, sizeof(float));
    t->adam_m = calloc(t->n_par, sizeof(float));
    t->adam_v = calloc(t->n_par, sizeof(float));
    t->act_floats_tok = act_floats_tok(t);
    t->n_acts = t->p.checkpoint ? 1 : c->n_layer;
    t->acts = calloc(t->n_acts, sizeof(tr_acts));
    t->act_mem = malloc((size_t)t->n_acts * T * t->act_floats_tok * sizeof(float));
    t->hs = malloc((size_t)(c->n_layer + 1) * T * E * sizeof(float));
    t->wbuf_floats = wbuf_need(t);
    t->wbuf = malloc(t->wbuf_floats * sizeof(float));
    t->wbuf2_floats = tg_bp_floats(t->ce_chunk, c->n_embd);
    t->wbuf2 = malloc(t->wbuf2_floats * sizeof(float));
    t->deq_tmp_cols = (int)(MI > E ? MI : E);
    t->deq_tmp = malloc((size_t)t->nth * TG_NR * t->deq_tmp_cols * sizeof(float));
    t->rowbuf = malloc(E * sizeof(float));
    t->pack = malloc((size_t)t->nth * TG_PACK_FLOATS * sizeof(float));
    tr_attn as = attn_shape(t, (int)T);
    t->attn_scratch = malloc((size_t)t->nth * tr_attn_scratch_floats(&as) * sizeof(float));
    size_t half = (size_t)c->n_rot / 2;
    t->rope_cos = malloc(2 * T * half * sizeof(float));
    t->rope_sin = malloc(2 * T * half * sizeof(float));
    size_t rank = t->p.full ? 0 : (size_t)t->p.rank;
    float **bufs[] = { &t->dh, &t->dxn, &t->dtmp, &t->datt, &t->dq, &t->dk, &t->dv, &t->dgate, &t->dup, &t->dact,
                       &t->ltmp, &t->xdrop, &t->htmp, &t->ce_g, &t->ce_h, &t->ce_dh, &t->ce_ms, &t->ce_rstd,
                       &t->ce_z };
    size_t sizes[] = { T * E, T * E, T * E, T * OD, T * QD, T * KD, T * VD, T * F, T * F, T * F, T * (rank + 1), T * MI,
                       T * MI, T * E, T * E, T * E, 2 * T, T, tr_ce_zbuf_floats((int)T, t->ce_chunk) };
    bool ok = t->par && t->grad && t->adam_m && t->adam_v && t->acts && t->act_mem && t->hs && t->wbuf && t->pack &&
              t->wbuf2 && t->deq_tmp && t->rowbuf &&
              t->attn_scratch && t->rope_cos && t->rope_sin;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        t->bwd_floats += sizes[i];
        *bufs[i] = malloc(sizes[i] * sizeof(float));
        ok = ok && *bufs[i];
    }
    t->dw_part = malloc((size_t)t->nth * (E > (size_t)c->head_dim ? E : (size_t)c->head_dim) * sizeof(float));
    ok = ok && t->dw_part;
    t->ce_rows = malloc(T * sizeof(int));
    t->ce_tgt = malloc(T * sizeof(int32_t));
    t->ce_loss = malloc(T * sizeof(double));
    if (!ok || !t->ce_rows || !t->ce_tgt || !t->ce_loss)
        return slm_fail(SLM_ERR_NOMEM, "out of memory allocating the trainer (see trainer_memory_plan)");
    for (int i = 0; i < t->n_acts; i++) carve_acts(t, &t->acts[i], t->act_mem + (size_t)i * T * t->act_floats_tok);
    return SLM_OK;
}

slm_status trainer_new(const struct slm_model *m, const train_params *p, slm_trainer **out) {
    *out = NULL;
    if (!m || !p) return slm_fail(SLM_ERR_INVALID_ARG, "trainer_new: no model or parameters");
    if (p->max_seq < 2) return slm_fail(SLM_ERR_INVALID_ARG, "max_seq must be at least 2 (got %d)", p->max_seq);
    if (!p->full && (p->rank < 1 || p->rank > 4096))
        return slm_fail(SLM_ERR_INVALID_ARG, "LoRA rank must be in 1..4096 (got %d)", p->rank);
    if (!p->full && (p->targets == 0 || (p->targets & ~(unsigned)LORA_TARGETS_DEFAULT)))
        return slm_fail(SLM_ERR_INVALID_ARG, "LoRA targets 0x%x: need a non-empty subset of 0x7f", p->targets);
    if (!(p->dropout >= 0.0f && p->dropout < 1.0f))
        return slm_fail(SLM_ERR_INVALID_ARG, "LoRA dropout must be in [0, 1) (got %g)", p->dropout);
    if (!(p->beta1 >= 0 && p->beta1 < 1 && p->beta2 >= 0 && p->beta2 < 1 && p->eps > 0 && p->weight_decay >= 0))
        return slm_fail(SLM_ERR_INVALID_ARG, "AdamW: need 0 <= beta1, beta2 < 1, eps > 0, weight_decay >= 0");
    const slm_config *c = &m->cfg;
    if (c->n_head % c->n_head_kv || c->n_rot > c->head_dim || c->n_rot % 2)
        return slm_fail(SLM_ERR_UNSUPPORTED, "trainer: unsupported head layout");
    slm_trainer *t = calloc(1, sizeof *t);
    if (!t) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    t->m = m;
    t->p = *p;
    if (t->p.n_threads <= 0) t->p.n_threads = slm_cpu_count();
    t->lora_scale = p->full ? 0.0f : p->alpha / p->rank;
    t->ce_chunk = 2048;
    slm_status st = slm_pool_new(t->p.n_threads, &t->pool);
    if (st) { free(t); return st; }
    t->nth = slm_pool_size(t->pool);
    t->layers = calloc(c->n_layer, sizeof(tr_layer));
    if (!t->layers) { trainer_free(t); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
    bind_layers(t);
    size_t cap = 0;
    st = p->full ? plan_full(t, &cap) : plan_lora(t, &cap);
    if (!st) st = alloc_all(t);
    if (st) { trainer_free(t); return st; }
    bind_params(t);
    if (p->full) load_masters(t);
    else init_lora(t);
    *out = t;
    return SLM_OK;
}

void trainer_free(slm_trainer *t) {
    if (!t) return;
    if (t->pool) slm_pool_free(t->pool);
    void *bufs[] = { t->layers, t->lora.mats, t->segs, t->par, t->grad, t->adam_m, t->adam_v, t->acts, t->act_mem,
                     t->hs, t->wbuf, t->wbuf2, t->deq_tmp, t->rowbuf, t->pack, t->attn_scratch, t->rope_cos, t->rope_sin, t->dh, t->dxn, t->dtmp,
                     t->datt, t->dq, t->dk, t->dv, t->dgate, t->dup, t->dact, t->ltmp, t->xdrop, t->htmp, t->ce_z,
                     t->ce_g, t->ce_h, t->ce_dh, t->ce_ms, t->ce_rstd, t->dw_part, t->ce_rows, t->ce_tgt, t->ce_loss };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(t);
}

lora_adapter *trainer_lora(slm_trainer *t) { return t->p.full ? NULL : &t->lora; }

void trainer_lora_grads(slm_trainer *t, int layer, int target, const float **ga, const float **gb) {
    *ga = *gb = NULL;
    if (t->p.full || layer < 0 || layer >= t->m->cfg.n_layer || target < 0 || target >= LORA_N_TARGETS) return;
    const tr_w *w = &t->layers[layer].lin[target];
    if (!w->lora) return;
    *ga = w->ga;
    *gb = w->gb;
}

slm_status trainer_accumulate(slm_trainer *t, const int32_t *tokens, const uint8_t *loss_mask, int n,
                              double *loss_sum, int *n_scored) {
    return tr_run(t, tokens, loss_mask, n, true, loss_sum, n_scored);
}

slm_status trainer_eval_loss(slm_trainer *t, const int32_t *tokens, const uint8_t *loss_mask, int n,
                             double *loss_sum, int *n_scored) {
    return tr_run(t, tokens, loss_mask, n, false, loss_sum, n_scored);
}
