/* Batches: n sequences sharing one thread pool and one set of forward
 * scratch, evaluated together by fwd_eval_rows. */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "base/threadpool.h"
#include "engine/engine.h"
#include "model/transformer.h"

struct slm_batch {
    const slm_model *model;
    slm_pool *pool;
    slm_fwd work;          /* scratch of the joint pass (its own cache stays unused) */
    slm_fwd *seqs;         /* n_seq caches */
    int *n_past;
    float *logits;         /* [n_seq][n_vocab]: each sequence's last logits */
    float *out;            /* [n_seq][n_vocab]: a pass's logits in item order */
    int n_seq, n_ctx;
    /* per-call arrays, grown as needed so that steady decoding never allocates */
    int32_t *tokens;
    fwd_row *rows;
    int rows_cap;
    int *want;
    unsigned char *seen;
};

slm_status slm_batch_new(const slm_model *model, const slm_batch_params *params, slm_batch **out) {
    *out = NULL;
    if (!params) return slm_fail(SLM_ERR_INVALID_ARG, "batch: params are NULL");
    int n_seq = params->n_seq, n_ctx = params->n_ctx, n_threads = params->n_threads;
    if (n_seq < 1 || n_seq > 1024) return slm_fail(SLM_ERR_INVALID_ARG, "batch: n_seq %d must be in 1..1024", n_seq);
    if (n_ctx < 0 || n_threads < 0)
        return slm_fail(SLM_ERR_INVALID_ARG, "context size and thread count must not be negative");
    if (n_ctx == 0) n_ctx = model->cfg.n_ctx_train < 4096 ? model->cfg.n_ctx_train : 4096;
    if (n_ctx > model->cfg.n_ctx_train)
        return slm_fail(SLM_ERR_INVALID_ARG, "context size %d exceeds the model's training context %d", n_ctx,
                        model->cfg.n_ctx_train);
    if (n_threads == 0) n_threads = slm_cpu_count();
    slm_batch *b = calloc(1, sizeof *b);
    if (!b) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    b->model = model;
    b->n_seq = n_seq;
    b->n_ctx = n_ctx;
    size_t V = (size_t)model->cfg.n_vocab;
    b->seqs = calloc((size_t)n_seq, sizeof *b->seqs);
    b->n_past = calloc((size_t)n_seq, sizeof *b->n_past);
    b->logits = calloc((size_t)n_seq * V, sizeof(float));
    b->out = malloc((size_t)n_seq * V * sizeof(float));
    b->want = malloc((size_t)n_seq * sizeof *b->want);
    b->seen = calloc((size_t)n_seq, 1);
    slm_status st = SLM_OK;
    if (!b->seqs || !b->n_past || !b->logits || !b->out || !b->want || !b->seen)
        st = slm_fail(SLM_ERR_NOMEM, "out of memory for %d sequences", n_seq);
    if (!st) st = slm_pool_new(n_threads, &b->pool);
    if (!st) st = fwd_init(&b->work, model, b->pool, n_ctx, params->precise);
    for (int i = 0; !st && i < n_seq; i++) st = fwd_init(&b->seqs[i], model, b->pool, n_ctx, params->precise);
    if (st) { slm_batch_free(b); return st; }
    *out = b;
    return SLM_OK;
}

void slm_batch_free(slm_batch *b) {
    if (!b) return;
    if (b->work.m) fwd_free(&b->work);
    for (int i = 0; b->seqs && i < b->n_seq; i++)
        if (b->seqs[i].m) fwd_free(&b->seqs[i]);
    if (b->pool) slm_pool_free(b->pool);
    free(b->seqs);
    free(b->n_past);
    free(b->logits);
    free(b->out);
    free(b->tokens);
    free(b->rows);
    free(b->want);
    free(b->seen);
    free(b);
}

int slm_batch_n_seq(const slm_batch *b) { return b->n_seq; }
slm_fwd *slm_batch_fwd(slm_batch *b) { return &b->work; }
int slm_batch_n_ctx(const slm_batch *b) { return b->n_ctx; }
int slm_batch_n_past(const slm_batch *b, int seq) { return seq >= 0 && seq < b->n_seq ? b->n_past[seq] : 0; }

void slm_batch_truncate(slm_batch *b, int seq, int n_keep) {
    if (seq >= 0 && seq < b->n_seq && n_keep >= 0 && n_keep < b->n_past[seq]) b->n_past[seq] = n_keep;
}

float *slm_batch_logits(slm_batch *b, int seq) {
    return seq >= 0 && seq < b->n_seq ? b->logits + (size_t)seq * b->model->cfg.n_vocab : NULL;
}

static slm_status check_items(slm_batch *b, const slm_batch_item *items, int n_items, int *total) {
    int V = b->model->cfg.n_vocab;
    long rows = 0;
    memset(b->seen, 0, (size_t)b->n_seq);
    for (int i = 0; i < n_items; i++) {
        const slm_batch_item *it = &items[i];
        if (it->seq < 0 || it->seq >= b->n_seq)
            return slm_fail(SLM_ERR_INVALID_ARG, "batch: sequence %d is outside 0..%d", it->seq, b->n_seq - 1);
        if (b->seen[it->seq]) return slm_fail(SLM_ERR_INVALID_ARG, "batch: sequence %d appears twice", it->seq);
        b->seen[it->seq] = 1;
        if (it->n <= 0 || !it->tokens) return slm_fail(SLM_ERR_INVALID_ARG, "batch: item %d has no tokens", i);
        if (it->n > b->n_ctx - b->n_past[it->seq])
            return slm_fail(SLM_ERR_CONTEXT_FULL,
                            "%d tokens do not fit sequence %d: %d of the context's %d positions are used", it->n,
                            it->seq, b->n_past[it->seq], b->n_ctx);
        for (int k = 0; k < it->n; k++)
            if (it->tokens[k] < 0 || it->tokens[k] >= V)
                return slm_fail(SLM_ERR_INVALID_ARG, "token id %d is outside the vocabulary (0..%d)", it->tokens[k],
                                V - 1);
        rows += it->n;
    }
    if (rows > (1L << 30)) return slm_fail(SLM_ERR_INVALID_ARG, "batch: too many tokens in one call");
    *total = (int)rows;
    return SLM_OK;
}

slm_status slm_batch_eval(slm_batch *b, const slm_batch_item *items, int n_items) {
    if (n_items <= 0 || !items) return slm_fail(SLM_ERR_INVALID_ARG, "nothing to evaluate");
    if (n_items > b->n_seq) return slm_fail(SLM_ERR_INVALID_ARG, "batch: %d items for %d sequences", n_items, b->n_seq);
    int total = 0;
    slm_status st = check_items(b, items, n_items, &total);
    if (st) return st;
    if (total > b->rows_cap) {
        int32_t *nt = realloc(b->tokens, (size_t)total * sizeof *nt);
        if (nt) b->tokens = nt;
        fwd_row *nr = realloc(b->rows, (size_t)total * sizeof *nr);
        if (nr) b->rows = nr;
        if (!nt || !nr) return slm_fail(SLM_ERR_NOMEM, "out of memory for %d rows", total);
        b->rows_cap = total;
    }
    int r = 0;
    for (int i = 0; i < n_items; i++) {
        const slm_batch_item *it = &items[i];
        for (int k = 0; k < it->n; k++, r++) {
            b->tokens[r] = it->tokens[k];
            b->rows[r] = (fwd_row){ &b->seqs[it->seq], b->n_past[it->seq] + k };
        }
        b->want[i] = r - 1;
    }
    fwd_eval_rows(&b->work, b->tokens, b->rows, total, b->want, n_items, b->out);
    size_t V = (size_t)b->model->cfg.n_vocab;
    for (int i = 0; i < n_items; i++) {
        memcpy(b->logits + (size_t)items[i].seq * V, b->out + (size_t)i * V, V * sizeof(float));
        b->n_past[items[i].seq] += items[i].n;
    }
    return SLM_OK;
}
