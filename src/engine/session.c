/* Sessions: one sequence's KV cache, thread pool and logits. */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "base/threadpool.h"
#include "engine/spec_engine.h"
#include "engine/engine.h"
#include "model/transformer.h"
#include "quant/quant.h"

struct slm_session {
    const slm_model *model;
    slm_pool *pool;
    slm_fwd fwd;
    int n_ctx, n_past;
    float *logits;           /* n_logits_cap rows of n_vocab */
    size_t n_logits_cap;
    float *last;             /* the last evaluated token's row in logits */
};

slm_status slm_session_new(const slm_model *model, const slm_session_params *params, slm_session **out) {
    *out = NULL;
    int n_ctx = params ? params->n_ctx : 0;
    int n_threads = params ? params->n_threads : 0;
    if (n_ctx < 0 || n_threads < 0)
        return slm_fail(SLM_ERR_INVALID_ARG, "context size and thread count must not be negative");
    if (n_ctx == 0) n_ctx = model->cfg.n_ctx_train < 4096 ? model->cfg.n_ctx_train : 4096;
    if (n_ctx > model->cfg.n_ctx_train)
        return slm_fail(SLM_ERR_INVALID_ARG, "context size %d exceeds the model's training context %d",
                        n_ctx, model->cfg.n_ctx_train);
    if (n_threads == 0) n_threads = slm_cpu_count();
    slm_session *s = calloc(1, sizeof *s);
    if (!s) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    s->model = model;
    s->n_ctx = n_ctx;
    slm_status st = slm_pool_new(n_threads, &s->pool);
    if (!st) st = fwd_init(&s->fwd, model, s->pool, n_ctx, params && params->precise);
    if (!st) {
        s->n_logits_cap = 1;
        s->last = s->logits = calloc((size_t)model->cfg.n_vocab, sizeof(float));
        if (!s->logits) st = slm_fail(SLM_ERR_NOMEM, "out of memory");
    }
    if (st) { slm_session_free(s); return st; }
    *out = s;
    return SLM_OK;
}

void slm_session_free(slm_session *s) {
    if (!s) return;
    if (s->fwd.m) fwd_free(&s->fwd);
    if (s->pool) slm_pool_free(s->pool);
    free(s->logits);
    free(s);
}

int slm_session_n_ctx(const slm_session *s) { return s->n_ctx; }
int slm_session_n_past(const slm_session *s) { return s->n_past; }

void slm_session_truncate(slm_session *s, int n_keep) {
    if (n_keep >= 0 && n_keep < s->n_past) s->n_past = n_keep;
}

slm_status slm_session_eval(slm_session *s, const slm_token *tokens, int n, bool all_logits) {
    int V = s->model->cfg.n_vocab;
    if (n <= 0) return slm_fail(SLM_ERR_INVALID_ARG, "nothing to evaluate");
    if (n > s->n_ctx - s->n_past)
        return slm_fail(SLM_ERR_CONTEXT_FULL, "%d tokens do not fit: %d of the context's %d positions are used",
                        n, s->n_past, s->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return slm_fail(SLM_ERR_INVALID_ARG, "token id %d is outside the vocabulary (0..%d)", tokens[i], V - 1);
    if (all_logits && (size_t)n > s->n_logits_cap) {
        float *nl = realloc(s->logits, (size_t)n * V * sizeof(float));
        if (!nl) return slm_fail(SLM_ERR_NOMEM, "out of memory for %d rows of logits", n);
        s->logits = nl;
        s->n_logits_cap = (size_t)n;
    }
    fwd_eval(&s->fwd, tokens, n, s->n_past, all_logits ? s->logits : NULL, s->logits);
    s->last = all_logits ? s->logits + (size_t)(n - 1) * V : s->logits;
    s->n_past += n;
    return SLM_OK;
}

slm_status slm_session_eval_exact(slm_session *s, const slm_token *tokens, int n) {
    s->fwd.row_exact = true;
    slm_status st = slm_session_eval(s, tokens, n, true);
    s->fwd.row_exact = false;
    return st;
}

slm_status session_eval_hidden(slm_session *s, slm_token tok, float *hidden) {
    if (s->n_past >= s->n_ctx)
        return slm_fail(SLM_ERR_CONTEXT_FULL, "the context's %d positions are used", s->n_ctx);
    if (tok < 0 || tok >= s->model->cfg.n_vocab)
        return slm_fail(SLM_ERR_INVALID_ARG, "token id %d is outside the vocabulary", tok);
    fwd_eval(&s->fwd, &tok, 1, s->n_past, NULL, NULL);
    memcpy(hidden, s->fwd.last_hidden, (size_t)s->model->cfg.n_embd * sizeof(float));
    s->n_past++;
    return SLM_OK;
}

slm_status session_head_exact(slm_session *s, const float *hidden, int n) {
    int V = s->model->cfg.n_vocab;
    if (n <= 0) return slm_fail(SLM_ERR_INVALID_ARG, "no hidden states");
    if ((size_t)n > s->n_logits_cap) {
        float *nl = realloc(s->logits, (size_t)n * V * sizeof(float));
        if (!nl) return slm_fail(SLM_ERR_NOMEM, "out of memory for %d rows of logits", n);
        s->logits = nl;
        s->n_logits_cap = (size_t)n;
    }
    /* at most SLM_UBATCH rows per product: the activation scratch's size */
    s->fwd.row_exact = true;
    for (int done = 0; done < n; done += SLM_UBATCH) {
        int cn = n - done < SLM_UBATCH ? n - done : SLM_UBATCH;
        fwd_head(&s->fwd, hidden + (size_t)done * s->model->cfg.n_embd, cn, s->logits + (size_t)done * V);
    }
    s->fwd.row_exact = false;
    s->last = s->logits + (size_t)(n - 1) * V;
    return SLM_OK;
}

float *slm_session_logits(slm_session *s) { return s->last; }
float *slm_session_logits_all(slm_session *s) { return s->logits; }
slm_fwd *slm_session_fwd(slm_session *s) { return &s->fwd; }

const char *slm_cpu_backend_name(void) { return slm_kernels_name(); }
