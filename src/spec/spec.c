/* Speculative decoding (slm.h, "speculative decoding"): draft k tokens,
 * evaluate the pending token and the draft in one row-exact forward pass,
 * and walk the rows with the caller's sampler as the plain loop would,
 * keeping drafted tokens while the sampled one equals them.
 *
 * State between steps: `pending` is the last token given out, not yet
 * evaluated. A step evaluates [pending, d1..dk] at positions n0..n0+k; row i
 * holds the logits after token i of that list, so the token sampled from it
 * is the one at position n0+i+1. While it equals d(i+1) the draft's KV entry
 * at that position is the model's own; at the first difference the cache is
 * truncated to n0+i+1 positions and the sampled token becomes the new
 * pending one. The cache keeps every position (sliding-window layers only
 * limit how far back attention looks), so truncation is the whole rollback.
 *
 * The restricted-head drafter (head.c) works the other way round: its
 * draft steps are the target's own one-token passes through the layers
 * (their KV entries and hidden states are what the target computes), each
 * followed by a small head; then the full head runs once over all the saved
 * hidden states. Row i is then the logits after buf[i], and its draft
 * buf[i+1] was never evaluated: if the last one is kept it is the pending
 * token.
 *
 * Draft length, per drafter: doubled (up to max_draft) after a step that
 * kept its whole draft, else set to what was kept plus one, so it follows
 * the acceptance. */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "engine/engine.h"
#include "engine/spec_engine.h"
#include "slm.h"
#include "spec/head.h"
#include "spec/ngram.h"

struct slm_spec {
    const slm_model *model;
    slm_session *s;
    slm_spec_params p;
    int n_vocab;
    int32_t *hist;       /* context + every token given out */
    int n_hist, cap_hist;
    int32_t *buf;        /* [pending, draft...] */
    slm_token pending;
    bool have_pending, ended;
    int n_start;         /* the session's n_past at slm_spec_begin */
    int k_ngram, k_head; /* current draft lengths */
    head_draft *head;    /* SLM_SPEC_HEAD, SLM_SPEC_MIXED */
    float *hidden;       /* max_draft hidden states of a head step */
    int n_embd;
    slm_spec_stats st;
};

static const char *const kind_names[] = { "off", "ngram", "head", "ngram+head" };

int slm_spec_kind_parse(const char *name) {
    if (!strcmp(name, "auto")) return SLM_SPEC_NGRAM;
    for (int i = 0; i < (int)(sizeof kind_names / sizeof kind_names[0]); i++)
        if (!strcmp(name, kind_names[i])) return i;
    return -1;
}

const char *slm_spec_kind_name(slm_spec_kind kind) {
    return (unsigned)kind < sizeof kind_names / sizeof kind_names[0] ? kind_names[kind] : "?";
}

slm_status slm_spec_new(const slm_model *model, slm_session *s, const slm_spec_params *p, slm_spec **out) {
    *out = NULL;
    slm_spec_params q = p ? *p : (slm_spec_params){ .kind = SLM_SPEC_NGRAM };
    if ((unsigned)q.kind > SLM_SPEC_MIXED) return slm_fail(SLM_ERR_INVALID_ARG, "unknown speculative kind %d", q.kind);
    if (q.max_draft == 0) q.max_draft = 8;
    if (q.ngram_min == 0) q.ngram_min = 2;
    if (q.ngram_max == 0) q.ngram_max = 4;
    if (q.head_k == 0) q.head_k = 16384;
    if (q.head_k < 0) return slm_fail(SLM_ERR_INVALID_ARG, "head size %d is negative", q.head_k);
    if (q.max_draft < 0 || q.max_draft > 64)
        return slm_fail(SLM_ERR_INVALID_ARG, "draft length %d is outside 1..64", q.max_draft);
    if (q.ngram_min < 1 || q.ngram_max < q.ngram_min || q.ngram_max > 64)
        return slm_fail(SLM_ERR_INVALID_ARG, "n-gram lengths %d..%d are not within 1..64", q.ngram_min, q.ngram_max);
    slm_spec *sp = calloc(1, sizeof *sp);
    if (!sp) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    slm_model_info info;
    slm_model_get_info(model, &info);
    sp->model = model;
    sp->s = s;
    sp->p = q;
    sp->n_vocab = info.n_vocab;
    sp->n_embd = info.n_embd;
    sp->buf = malloc((size_t)(q.max_draft + 1) * sizeof *sp->buf);
    if (!sp->buf) { slm_spec_free(sp); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
    if (q.kind == SLM_SPEC_HEAD || q.kind == SLM_SPEC_MIXED) {
        sp->hidden = malloc((size_t)q.max_draft * info.n_embd * sizeof(float));
        slm_status st = sp->hidden ? head_draft_new(model, slm_session_fwd(s)->pool, q.head_k, &sp->head)
                                   : slm_fail(SLM_ERR_NOMEM, "out of memory");
        if (st) { slm_spec_free(sp); return st; }
    }
    *out = sp;
    return SLM_OK;
}

void slm_spec_free(slm_spec *sp) {
    if (!sp) return;
    free(sp->hist);
    free(sp->buf);
    free(sp->hidden);
    head_draft_free(sp->head);
    free(sp);
}

static slm_status push_hist(slm_spec *sp, const slm_token *t, int n) {
    if (sp->n_hist + n > sp->cap_hist) {
        int cap = sp->cap_hist ? sp->cap_hist : 256;
        while (cap < sp->n_hist + n) cap *= 2;
        int32_t *h = realloc(sp->hist, (size_t)cap * sizeof *h);
        if (!h) return slm_fail(SLM_ERR_NOMEM, "out of memory for %d tokens of history", cap);
        sp->hist = h;
        sp->cap_hist = cap;
    }
    memcpy(sp->hist + sp->n_hist, t, (size_t)n * sizeof *t);
    sp->n_hist += n;
    return SLM_OK;
}

slm_status slm_spec_begin(slm_spec *sp, const slm_token *context, int n) {
    if (n < 0 || (n > 0 && !context)) return slm_fail(SLM_ERR_INVALID_ARG, "bad context");
    if (slm_session_n_past(sp->s) == 0)
        return slm_fail(SLM_ERR_INVALID_ARG, "the session has evaluated nothing to continue from");
    sp->n_hist = 0;
    sp->have_pending = sp->ended = false;
    sp->n_start = slm_session_n_past(sp->s);
    sp->k_ngram = sp->k_head = sp->p.max_draft < 2 ? sp->p.max_draft : 2;
    memset(&sp->st, 0, sizeof sp->st);
    return push_hist(sp, context, n);
}

/* What the plain loop does with one row of logits. *eog: the token ends
 * generation (not passed to slm_sampler_accept). */
static slm_status take(slm_spec *sp, slm_sampler *smp, slm_grammar *g, float *logits, slm_token *tok, bool *eog) {
    slm_token t = slm_sampler_sample(smp, logits);
    if (t < 0 || (g && slm_grammar_accept(g, t)))
        return slm_fail(SLM_ERR_INVALID_ARG, "no token of the vocabulary continues the grammar here");
    *eog = slm_token_is_eog(sp->model, t);
    if (!*eog) slm_sampler_accept(smp, t);
    *tok = t;
    sp->st.emitted++;
    return push_hist(sp, &t, 1);
}

/* Walks rows 0..nrows-1 of logits (row i: after buf[i], at position n0+i)
 * with the sampler; row i's draft is buf[i+1] where i+1 < nbuf. Gives the
 * sampled tokens, truncates the cache after the last kept one, and returns
 * how many rows were used. */
static slm_status walk(slm_spec *sp, slm_sampler *smp, slm_grammar *g, float *rows, int nrows, int nbuf, int n0,
                       slm_token *out, int *n_out, int *used) {
    for (int i = 0; i < nrows; i++) {
        slm_token y;
        bool eog;
        slm_status st = take(sp, smp, g, rows + (size_t)i * sp->n_vocab, &y, &eog);
        if (st) { slm_session_truncate(sp->s, n0 + i + 1); return st; }
        out[(*n_out)++] = y;
        *used = i + 1;
        bool kept = !eog && i + 1 < nbuf && y == sp->buf[i + 1];
        if (kept) sp->st.accepted++;
        if (kept && i + 1 < nrows) continue;
        /* positions n0..n0+i hold pending and the kept draft */
        slm_session_truncate(sp->s, n0 + i + 1);
        sp->pending = y;
        sp->have_pending = !eog;
        sp->ended = eog;
        break;
    }
    return SLM_OK;
}

/* the next draft length: doubled after a whole draft was kept, else what was kept plus one */
static int next_k(int k, int drafted, int kept, int max) {
    if (kept == drafted) return 2 * k < max ? 2 * k : max;
    return kept + 1;
}

/* A draft of up to k tokens from the restricted head: each draft step is
 * the target's own one-token pass through the layers; then the full head
 * checks every drafted position at once. */
static slm_status head_step(slm_spec *sp, slm_sampler *smp, slm_grammar *g, int k, slm_token *out, int *n_out) {
    const int n0 = slm_session_n_past(sp->s), E = sp->n_embd;
    int ne = 0;
    slm_status st = SLM_OK;
    while (ne < k) {
        if ((st = session_eval_hidden(sp->s, sp->buf[ne], sp->hidden + (size_t)ne * E))) break;
        sp->buf[ne + 1] = head_draft_next(sp->head, sp->hidden + (size_t)ne * E);
        ne++;
        if (slm_token_is_eog(sp->model, sp->buf[ne])) break; /* nothing follows an end */
    }
    if (!st) st = session_head_exact(sp->s, sp->hidden, ne);
    if (st) { slm_session_truncate(sp->s, n0); return st; }
    sp->st.steps++;
    sp->st.drafted += ne;
    int used = 0;
    long before = sp->st.accepted;
    st = walk(sp, smp, g, slm_session_logits_all(sp->s), ne, ne + 1, n0, out, n_out, &used);
    sp->k_head = next_k(sp->k_head, ne, (int)(sp->st.accepted - before), sp->p.max_draft);
    if (sp->k_head < 2) sp->k_head = 2; /* one drafted token would only add the small head to a plain step */
    return st;
}

slm_status slm_spec_step(slm_spec *sp, slm_sampler *smp, slm_grammar *g, int max_out, slm_token *out, int *n_out) {
    *n_out = 0;
    if (max_out < 1) return slm_fail(SLM_ERR_INVALID_ARG, "no room for a token");
    if (sp->ended) return slm_fail(SLM_ERR_INVALID_ARG, "the generation has ended (an end-of-generation token)");
    slm_status st;
    if (!sp->have_pending) {
        /* the first token comes from the logits the caller's evaluation left */
        bool eog;
        if ((st = take(sp, smp, g, slm_session_logits(sp->s), &out[0], &eog))) return st;
        *n_out = 1;
        sp->pending = out[0];
        sp->have_pending = !eog;
        sp->ended = eog;
        return SLM_OK;
    }
    const int n0 = slm_session_n_past(sp->s), room = slm_session_n_ctx(sp->s) - n0;
    if (room < 1)
        return slm_fail(SLM_ERR_CONTEXT_FULL, "the context's %d positions are used", slm_session_n_ctx(sp->s));
    sp->buf[0] = sp->pending;
    int nd = 0;
    if (sp->p.kind == SLM_SPEC_NGRAM || sp->p.kind == SLM_SPEC_MIXED) {
        int k = sp->k_ngram;
        if (k > max_out - 1) k = max_out - 1;
        if (k > room - 1) k = room - 1;
        nd = ngram_draft(sp->hist, sp->n_hist, sp->p.ngram_min, sp->p.ngram_max, k, sp->buf + 1);
    }
    if (!nd && sp->head) {
        /* the head drafter's step gives at most k tokens and evaluates k positions */
        int k = sp->k_head < max_out ? sp->k_head : max_out;
        if (k > room) k = room;
        if (k >= 2) return head_step(sp, smp, g, k, out, n_out);
    }
    /* without a draft this is the plain step itself */
    st = nd ? slm_session_eval_exact(sp->s, sp->buf, nd + 1) : slm_session_eval(sp->s, sp->buf, 1, false);
    if (st) return st;
    sp->st.steps++;
    sp->st.drafted += nd;
    float *rows = nd ? slm_session_logits_all(sp->s) : slm_session_logits(sp->s);
    int used = 0;
    long before = sp->st.accepted;
    st = walk(sp, smp, g, rows, nd + 1, nd + 1, n0, out, n_out, &used);
    if (nd) sp->k_ngram = next_k(sp->k_ngram, nd, (int)(sp->st.accepted - before), sp->p.max_draft);
    return st;
}

void slm_spec_end(slm_spec *sp, int n_used) {
    if (n_used > 0) slm_session_truncate(sp->s, sp->n_start + n_used - 1);
    sp->have_pending = false;
    sp->ended = true;
}

void slm_spec_get_stats(const slm_spec *sp, slm_spec_stats *st) { *st = sp->st; }
