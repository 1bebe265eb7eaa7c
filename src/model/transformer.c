/* The forward pass of the generic decoder-only transformer. One function
 * walks the layers with plain calls; what differs between architectures is
 * read from the slm_arch description. */
#include "model/transformer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "quant/quant.h"
#include "train/adapter.h"

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

slm_status fwd_init(slm_fwd *f, const struct slm_model *m, slm_pool *pool, int n_ctx, bool precise) {
    memset(f, 0, sizeof *f);
    const slm_config *c = &m->cfg;
    f->m = m;
    f->pool = pool;
    f->n_ctx = n_ctx;
    f->precise = precise;
    size_t kv_row = (size_t)c->n_head_kv * c->head_dim, vv_row = (size_t)c->n_head_kv * c->head_dim_v;
    size_t U = SLM_UBATCH;
    /* calloc of a large block maps zero pages lazily: the cache costs memory
     * only as it fills. */
    f->k_cache = calloc((size_t)c->n_layer * n_ctx * kv_row, sizeof(float));
    f->v_cache = calloc((size_t)c->n_layer * n_ctx * vv_row, sizeof(float));
    f->h = malloc(U * c->n_embd * sizeof(float));
    f->xn = malloc(U * c->n_embd * sizeof(float));
    f->q = malloc(U * c->n_head * c->head_dim * sizeof(float));
    f->k = malloc(U * kv_row * sizeof(float));
    f->v = malloc(U * vv_row * sizeof(float));
    f->att = malloc(U * c->n_head * c->head_dim_v * sizeof(float));
    f->o = malloc(U * c->n_embd * sizeof(float));
    f->gate = malloc(U * c->n_ff * sizeof(float));
    f->up = malloc(U * c->n_ff * sizeof(float));
    f->scores = malloc((size_t)slm_pool_size(pool) * (c->n_head / c->n_head_kv) * n_ctx * sizeof(float));
    f->rope_cos = malloc(2 * U * (c->n_rot / 2) * sizeof(float));
    f->rope_sin = malloc(2 * U * (c->n_rot / 2) * sizeof(float));
    f->last_hidden = malloc(c->n_embd * sizeof(float));
    size_t xq = 0;
    for (int il = 0; il < c->n_layer; il++) {
        const slm_layer *L = &m->layers[il];
        const slm_mat *mats[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (int i = 0; i < 7; i++) xq = max_sz(xq, op_matmul_scratch(mats[i], (int)U));
    }
    xq = max_sz(xq, op_matmul_scratch(&m->output, (int)U));
    f->xq = malloc(xq);
    if (precise) {
        int widest = c->n_embd > c->n_ff ? c->n_embd : c->n_ff;
        if (c->n_head * c->head_dim_v > widest) widest = c->n_head * c->head_dim_v;
        f->rowbuf = malloc((size_t)slm_pool_size(pool) * widest * sizeof(float));
    }
    if (!f->k_cache || !f->v_cache || !f->h || !f->xn || !f->q || !f->k || !f->v || !f->att || !f->o ||
        !f->gate || !f->up || !f->scores || !f->rope_cos || !f->rope_sin || !f->last_hidden || !f->xq || (precise && !f->rowbuf)) {
        fwd_free(f);
        return slm_fail(SLM_ERR_NOMEM, "out of memory allocating a context of %d tokens", n_ctx);
    }
    return SLM_OK;
}

void fwd_free(slm_fwd *f) {
    void *bufs[] = { f->k_cache, f->v_cache, f->h, f->xn, f->q, f->k, f->v, f->att, f->o, f->gate,
                     f->up, f->scores, f->rope_cos, f->rope_sin, f->last_hidden, f->xq, f->rowbuf, f->lora_tmp };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    memset(f, 0, sizeof *f);
}

void fwd_set_observer(slm_fwd *f, const slm_fwd_observer *obs) { f->observer = obs; }

static void matmul(slm_fwd *f, const slm_mat *w, const float *x, int n, float *y) {
    if (f->observer && f->observer->matmul_input) f->observer->matmul_input(f->observer->ctx, w, x, n);
    if (f->precise) op_matmul_precise(f->pool, w, x, n, y, f->rowbuf);
    else op_matmul_ex(f->pool, w, x, n, y, f->xq, f->row_exact);
    if (f->lora) adapter_apply(f, w, x, n, y);
}

/* ---- attention --------------------------------------------------------- */

typedef struct {
    slm_fwd *f;
    const slm_layer *L;
    int il, n;
    const fwd_row *rows;   /* each row's own sequence (KV cache) and position */
} attn_job;

/* Each worker takes a share of the (token, KV head) pairs. The query heads
 * that share a KV head (GQA) are handled together, so each cached key and
 * value row is read once for all of them. Keys and values come from the
 * cache, which already holds this chunk's own positions. */
static void attn_worker(void *ctx, int ith, int nth) {
    const attn_job *j = ctx;
    slm_fwd *f = j->f;
    const slm_config *c = &f->m->cfg;
    int hd = c->head_dim, hdv = c->head_dim_v, group = c->n_head / c->n_head_kv;
    size_t kv_row = (size_t)c->n_head_kv * hd, vv_row = (size_t)c->n_head_kv * hdv;
    float *sc = f->scores + (size_t)ith * group * f->n_ctx;
    /* interleaved: a causal row's cost grows with its position */
    for (long w = ith; w < (long)j->n * c->n_head_kv; w += nth) {
        int t = (int)(w / c->n_head_kv), kvh = (int)(w % c->n_head_kv);
        const slm_fwd *seq = j->rows[t].seq;
        const float *kc = seq->k_cache + (size_t)j->il * seq->n_ctx * kv_row;
        const float *vc = seq->v_cache + (size_t)j->il * seq->n_ctx * vv_row;
        int pos = j->rows[t].pos;
        /* a local layer sees the last `sliding_window` positions, itself included */
        int start = j->L->swa && pos - c->sliding_window + 1 > 0 ? pos - c->sliding_window + 1 : 0;
        int cnt = pos - start + 1;
        const float *q0 = f->q + ((size_t)t * c->n_head + (size_t)kvh * group) * hd;
        float *out0 = f->att + ((size_t)t * c->n_head + (size_t)kvh * group) * hdv;
        op_attn_group(q0, group, hd, hdv, kc + (size_t)start * kv_row + (size_t)kvh * hd, kv_row,
                      vc + (size_t)start * vv_row + (size_t)kvh * hdv, vv_row, cnt, c->attn_scale, out0, sc);
    }
}

/* ---- one chunk through all layers --------------------------------------- */

static void rope_heads(const slm_fwd *f, float *x, int n_heads, int n, const float *cosb, const float *sinb) {
    const slm_config *c = &f->m->cfg;
    int half = c->n_rot / 2;
    for (int t = 0; t < n; t++)
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)t * n_heads + h) * c->head_dim;
            if (f->m->arch->rope == SLM_ROPE_NEOX) op_rope_neox(v, cosb + t * half, sinb + t * half, c->n_rot);
            else op_rope_norm(v, cosb + t * half, sinb + t * half, c->n_rot);
        }
}

/* y[t] += b for n rows of width w; nothing when the layer has no bias. */
static void add_bias(float *y, const float *b, int n, int w) {
    if (!b) return;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < w; i++) y[(size_t)t * w + i] += b[i];
}

/* RoPE frequency divisors for a sequence whose cache holds n_ctx positions:
 * Llama 3's fixed ones, or Phi-3's long set once the context exceeds the
 * original training length (llama.cpp's rule), else its short set. */
static const float *rope_factors(const struct slm_model *m, int n_ctx) {
    if (m->rope_freqs) return m->rope_freqs;
    if (!m->rope_factors_long) return NULL;
    return n_ctx > m->cfg.n_ctx_orig ? m->rope_factors_long : m->rope_factors_short;
}

static void norm_rows(float *out, const float *x, const float *w, int rows, int n, float eps) {
    for (int r = 0; r < rows; r++) op_rmsnorm(out + (size_t)r * n, x + (size_t)r * n, w, n, eps);
}

/* Row t of the chunk is tokens[t] of sequence rows[t].seq at position rows[t].pos:
 * the matrix products run once over all rows, only the KV write and the
 * attention are per row (a single sequence passes itself for every row). */
static void eval_chunk(slm_fwd *f, const int32_t *tokens, const fwd_row *rows, int n) {
    const struct slm_model *m = f->m;
    const slm_config *c = &m->cfg;
    const slm_arch *a = m->arch;
    int E = c->n_embd, half = c->n_rot / 2;
    size_t kv_row = (size_t)c->n_head_kv * c->head_dim, vv_row = (size_t)c->n_head_kv * c->head_dim_v;

    /* embeddings */
    float escale = a->embed_scale ? sqrtf((float)E) : 1.0f;
    for (int t = 0; t < n; t++) {
        float *h = f->h + (size_t)t * E;
        slm_dequantize_row(m->tok_embd.type, m->tok_embd.data + (size_t)tokens[t] * m->tok_embd.row_bytes, h, E);
        for (int i = 0; i < E; i++) h[i] *= escale;
    }
    /* RoPE tables for both bases: [0] global, [1] local */
    for (int t = 0; t < n; t++) {
        const float *ff = rope_factors(m, rows[t].seq->n_ctx);
        op_rope_table_ext(f->rope_cos + t * half, f->rope_sin + t * half, c->n_rot, rows[t].pos, c->rope_base,
                          ff, c->rope_freq_scale, c->rope_attn_factor);
        /* Gemma-style local layers (own base) are not scaled; where every
         * layer is local (Mistral's window) they share the global scaling */
        bool own = a->swa_period > 0;
        op_rope_table_ext(f->rope_cos + (SLM_UBATCH + t) * half, f->rope_sin + (SLM_UBATCH + t) * half,
                          c->n_rot, rows[t].pos, c->rope_base_swa, own ? NULL : ff,
                          own ? 1.0f : c->rope_freq_scale, own ? 1.0f : c->rope_attn_factor);
    }

    for (int il = 0; il < c->n_layer; il++) {
        const slm_layer *L = &m->layers[il];
        /* attention */
        norm_rows(f->xn, f->h, L->attn_norm, n, E, c->eps);
        matmul(f, &L->wq, f->xn, n, f->q);
        matmul(f, &L->wk, f->xn, n, f->k);
        matmul(f, &L->wv, f->xn, n, f->v);
        add_bias(f->q, L->bq, n, c->n_head * c->head_dim);
        add_bias(f->k, L->bk, n, (int)kv_row);
        add_bias(f->v, L->bv, n, (int)vv_row);
        if (a->qk_norm) {
            norm_rows(f->q, f->q, L->q_norm, n * c->n_head, c->head_dim, c->eps);
            norm_rows(f->k, f->k, L->k_norm, n * c->n_head_kv, c->head_dim, c->eps);
        }
        const float *cosb = f->rope_cos + (L->swa ? SLM_UBATCH * half : 0);
        const float *sinb = f->rope_sin + (L->swa ? SLM_UBATCH * half : 0);
        rope_heads(f, f->q, c->n_head, n, cosb, sinb);
        rope_heads(f, f->k, c->n_head_kv, n, cosb, sinb);
        for (int t = 0; t < n; t++) {
            slm_fwd *seq = rows[t].seq;
            size_t at = (size_t)il * seq->n_ctx + rows[t].pos;
            memcpy(seq->k_cache + at * kv_row, f->k + (size_t)t * kv_row, kv_row * sizeof(float));
            memcpy(seq->v_cache + at * vv_row, f->v + (size_t)t * vv_row, vv_row * sizeof(float));
        }
        attn_job aj = { f, L, il, n, rows };
        slm_pool_run(f->pool, attn_worker, &aj);
        matmul(f, &L->wo, f->att, n, f->o);
        add_bias(f->o, L->bo, n, E);
        if (a->post_norms) norm_rows(f->o, f->o, L->post_attn_norm, n, E, c->eps);
        for (size_t i = 0; i < (size_t)n * E; i++) f->h[i] += f->o[i];

        /* feed-forward */
        norm_rows(f->xn, f->h, L->ffn_norm, n, E, c->eps);
        matmul(f, &L->w_gate, f->xn, n, f->gate);
        matmul(f, &L->w_up, f->xn, n, f->up);
        if (a->act == SLM_ACT_GELU_TANH) op_gelu_tanh_mul(f->gate, f->up, n * c->n_ff);
        else op_silu_mul(f->gate, f->up, n * c->n_ff);
        matmul(f, &L->w_down, f->gate, n, f->o);
        if (a->post_norms) norm_rows(f->o, f->o, L->post_ffn_norm, n, E, c->eps);
        for (size_t i = 0; i < (size_t)n * E; i++) f->h[i] += f->o[i];
        if (f->observer && f->observer->layer_output) f->observer->layer_output(f->observer->ctx, il, f->h, n, rows);
    }
    norm_rows(f->xn, f->h, m->output_norm, n, E, c->eps);
}

void fwd_eval(slm_fwd *f, const int32_t *tokens, int n, int pos0, float *logits_all, float *logits_last) {
    const struct slm_model *m = f->m;
    int E = m->cfg.n_embd, V = m->cfg.n_vocab;
    for (int done = 0; done < n;) {
        int cn = n - done < SLM_UBATCH ? n - done : SLM_UBATCH;
        for (int t = 0; t < cn; t++) f->rows[t] = (fwd_row){ f, pos0 + done + t };
        eval_chunk(f, tokens + done, f->rows, cn);
        if (logits_all)
            matmul(f, &m->output, f->xn, cn, logits_all + (size_t)done * V);
        done += cn;
        if (done == n) memcpy(f->last_hidden, f->xn + (size_t)(cn - 1) * E, E * sizeof(float));
    }
    if (!logits_all && logits_last) matmul(f, &m->output, f->last_hidden, 1, logits_last);
}

void fwd_head(slm_fwd *f, const float *hidden, int n, float *logits) { matmul(f, &f->m->output, hidden, n, logits); }

void fwd_eval_rows(slm_fwd *f, const int32_t *tokens, const fwd_row *rows, int n, const int *want, int n_want,
                   float *logits) {
    const struct slm_model *m = f->m;
    int E = m->cfg.n_embd, V = m->cfg.n_vocab, w = 0;
    for (int done = 0; done < n;) {
        int cn = n - done < SLM_UBATCH ? n - done : SLM_UBATCH;
        eval_chunk(f, tokens + done, rows + done, cn);
        /* pack the wanted rows of this chunk to the front (want is ascending) */
        int k = 0;
        for (; w + k < n_want && want[w + k] < done + cn; k++)
            if (want[w + k] - done != k)
                memmove(f->xn + (size_t)k * E, f->xn + (size_t)(want[w + k] - done) * E, E * sizeof(float));
        /* (op_matmul itself runs a few rows one by one: see MATMUL_GEMM_MIN_TOK) */
        if (k) matmul(f, &m->output, f->xn, k, logits + (size_t)w * V);
        w += k;
        done += cn;
    }
}
