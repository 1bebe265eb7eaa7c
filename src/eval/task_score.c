/* Scoring task items with a session: multiple choice by log-likelihood,
 * generation by greedy decoding and exact match. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "eval/task.h"

#define SCORE_PIECE 64   /* rows of logits asked for per call */

/* Tokens shared by the starts of a and b. */
static size_t common_prefix(const slm_token *a, size_t na, const slm_token *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

/* Sum of log P(whole[p..n) | whole[0..p)) where the cache already holds
 * whole[0..keep), keep < p. Evaluated in pieces so the logits stay small. */
static slm_status choice_ll(slm_session *s, const slm_model *m, const slm_token *whole, size_t n, size_t keep,
                            size_t p, double *ll) {
    int V = slm_vocab_size(m);
    slm_session_truncate(s, (int)keep);
    *ll = 0;
    for (size_t pos = keep; pos < n - 1; pos += SCORE_PIECE) {
        int cnt = (int)(n - 1 - pos < SCORE_PIECE ? n - 1 - pos : SCORE_PIECE);
        slm_status st = slm_session_eval(s, whole + pos, cnt, true);
        if (st) return st;
        const float *rows = slm_session_logits_all(s);
        for (int r = 0; r < cnt; r++)
            if (pos + r + 1 >= p) *ll += slm_log_softmax_at(rows + (size_t)r * V, V, whole[pos + r + 1]);
    }
    return SLM_OK;
}

static slm_status score_mc(task_item *it, size_t idx, const slm_model *m, slm_session *s, double *ll_out,
                           slm_task_item_result *r) {
    slm_token *ctx = NULL, *prev = NULL;   /* the context's tokens, the previous choice's */
    const slm_token *cached = NULL;        /* what the cache holds: n_cached tokens of ctx or prev */
    size_t nc = 0, n_cached = 0;
    size_t tlen = strlen(it->text);
    slm_status st = slm_tokenize(m, it->text, tlen, true, false, &ctx, &nc);
    if (st) return st;
    int n_ctx = slm_session_n_ctx(s);
    double best = 0, best_norm = 0;
    slm_session_truncate(s, 0);
    if (nc > (size_t)n_ctx)
        st = slm_fail(SLM_ERR_CONTEXT_FULL, "item %zu: the context takes %zu tokens, the session holds %d", idx, nc,
                      n_ctx);
    else if (nc > 1 && !(st = slm_session_eval(s, ctx, (int)nc - 1, false))) {
        cached = ctx;
        n_cached = nc - 1;
    }
    for (int c = 0; !st && c < it->n_strs; c++) {
        size_t clen = strlen(it->strs[c]), nw = 0;
        char *joined = malloc(tlen + clen + 1);
        if (!joined) { st = slm_fail(SLM_ERR_NOMEM, "out of memory"); break; }
        memcpy(joined, it->text, tlen);
        memcpy(joined + tlen, it->strs[c], clen + 1);
        slm_token *w = NULL;
        st = slm_tokenize(m, joined, tlen + clen, true, false, &w, &nw);
        free(joined);
        if (st) break;
        /* The choice's tokens are those after the longest prefix shared with
         * the context alone (a merge across the boundary moves it back). */
        size_t p = common_prefix(ctx, nc, w, nw);
        if (p < 1) p = 1;
        if (nw > (size_t)n_ctx)
            st = slm_fail(SLM_ERR_CONTEXT_FULL, "item %zu: context and choice %d take %zu tokens, the session holds %d",
                          idx, c, nw, n_ctx);
        else if (p >= nw)
            st = slm_fail(SLM_ERR_INVALID_ARG, "item %zu: choice %d adds no token", idx, c);
        if (st) { free(w); break; }
        size_t keep = common_prefix(cached, n_cached, w, nw);
        if (keep > p - 1) keep = p - 1;
        double ll = 0;
        st = choice_ll(s, m, w, nw, keep, p, &ll);
        free(prev);
        prev = w;
        cached = w;
        n_cached = st ? 0 : nw - 1;
        if (st) break;
        double norm = ll / (double)clen;
        if (ll_out) ll_out[c] = ll;
        if (c == 0 || ll > best) { best = ll; r->pred = c; }
        if (c == 0 || norm > best_norm) { best_norm = norm; r->pred_norm = c; }
    }
    free(prev);
    free(ctx);
    if (st) return st;
    r->answer = it->answer;
    r->correct = r->pred == it->answer;
    r->correct_norm = r->pred_norm == it->answer;
    return SLM_OK;
}

static slm_status gen_append(slm_task *t, size_t *len, const char *b, size_t n) {
    if (*len + n + 1 > t->gen_cap) {
        size_t cap = (*len + n + 1) * 2;
        char *nb = realloc(t->gen_buf, cap);
        if (!nb) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        t->gen_buf = nb;
        t->gen_cap = cap;
    }
    memcpy(t->gen_buf + *len, b, n);
    *len += n;
    t->gen_buf[*len] = 0;
    return SLM_OK;
}

/* Length of s without leading and trailing ASCII white space, from *start. */
static size_t trimmed(const char *s, size_t *start) {
    size_t a = 0, b = strlen(s);
    while (a < b && isspace((unsigned char)s[a])) a++;
    while (b > a && isspace((unsigned char)s[b - 1])) b--;
    *start = a;
    return b - a;
}

static slm_status score_gen(slm_task *t, task_item *it, size_t idx, const slm_model *m, slm_session *s,
                            slm_task_item_result *r) {
    slm_token *prompt = NULL;
    size_t np = 0, len = 0;
    slm_status st = slm_tokenize(m, it->text, strlen(it->text), true, true, &prompt, &np);
    if (st) return st;
    int n_ctx = slm_session_n_ctx(s);
    if (np + 1 > (size_t)n_ctx) {
        free(prompt);
        return slm_fail(SLM_ERR_CONTEXT_FULL, "item %zu: the prompt takes %zu tokens, the context holds %d", idx, np,
                        n_ctx);
    }
    slm_session_truncate(s, 0);
    st = slm_session_eval(s, prompt, (int)np, false);
    free(prompt);
    if (!st) st = gen_append(t, &len, "", 0);
    int V = slm_vocab_size(m);
    for (int k = 0; !st && k < it->max_tokens; k++) {
        slm_token tok = slm_argmax(slm_session_logits(s), V);
        if (slm_token_is_eog(m, tok)) break;
        char piece[256];
        size_t n = slm_token_to_bytes(m, tok, false, piece, sizeof piece);
        if ((st = gen_append(t, &len, piece, n < sizeof piece ? n : sizeof piece))) break;
        char *cut = NULL;
        for (int j = 0; j < it->n_stops; j++) {
            char *hit = strstr(t->gen_buf, it->stops[j]);
            if (hit && (!cut || hit < cut)) cut = hit;
        }
        if (cut) { *cut = 0; break; }
        if (slm_session_n_past(s) >= n_ctx) break;   /* the context is full: the answer ends here */
        st = slm_session_eval(s, &tok, 1, false);
    }
    if (st) return st;
    size_t ga, gl = trimmed(t->gen_buf, &ga);
    r->correct = false;
    for (int j = 0; j < it->n_strs; j++) {
        size_t aa, al = trimmed(it->strs[j], &aa);
        if (al == gl && !memcmp(it->strs[j] + aa, t->gen_buf + ga, gl)) r->correct = true;
    }
    r->correct_norm = r->correct;
    r->generated = t->gen_buf;
    return SLM_OK;
}

slm_status slm_task_score(slm_task *t, size_t i, const slm_model *model, slm_session *s, double *ll,
                          slm_task_item_result *r) {
    memset(r, 0, sizeof *r);
    if (i >= t->n) return slm_fail(SLM_ERR_INVALID_ARG, "item %zu does not exist (%zu items)", i, t->n);
    task_item *it = &t->items[i];
    r->is_mc = it->is_mc;
    r->answer = it->is_mc ? it->answer : -1;
    slm_status st = it->is_mc ? score_mc(it, i, model, s, ll, r) : score_gen(t, it, i, model, s, r);
    if (st) return st;
    it->correct = r->correct;
    it->correct_norm = r->correct_norm;
    return SLM_OK;
}
