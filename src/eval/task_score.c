/* Scoring task items with a session: multiple choice by log-likelihood,
 * generation by greedy decoding and exact match. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "eval/json.h"
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

bool task_json_equal(const json_val *a, const json_val *b) {
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case JSON_NULL: return true;
    case JSON_BOOL: return a->b == b->b;
    case JSON_NUM: return a->num == b->num;
    case JSON_STR: return a->len == b->len && !memcmp(a->str, b->str, a->len);
    case JSON_ARR:
        if (a->n != b->n) return false;
        for (size_t i = 0; i < a->n; i++)
            if (!task_json_equal(&a->items[i], &b->items[i])) return false;
        return true;
    case JSON_OBJ:
        if (a->n != b->n) return false;
        for (size_t i = 0; i < a->n; i++) {
            const json_val *bv = ejson_get(b, a->keys[i]);
            if (!bv || !task_json_equal(ejson_get(a, a->keys[i]), bv)) return false;
        }
        return true;
    }
    return false;
}

int task_json_fields(const char *truth, const char *generated, int n_fields, signed char *ok) {
    char err[200];
    json_doc *td = ejson_parse(truth, strlen(truth), err, sizeof err);
    if (!td || ejson_root(td)->kind != JSON_OBJ) { ejson_free(td); return -1; }
    json_doc *gd = ejson_parse(generated, strlen(generated), err, sizeof err);
    const json_val *tv = ejson_root(td), *gv = gd ? ejson_root(gd) : NULL;
    int right = 0;
    for (int k = 0; k < n_fields; k++) {
        const json_val *g = k < (int)tv->n && gv && gv->kind == JSON_OBJ ? ejson_get(gv, tv->keys[k]) : NULL;
        ok[k] = g && task_json_equal(ejson_get(tv, tv->keys[k]), g);
        right += ok[k];
    }
    ejson_free(gd);
    ejson_free(td);
    return right;
}

/* The prompt's tokens: as written (with BOS), or, for a chat item, its
 * messages rendered through the model's chat template. */
static slm_status prompt_tokens(const task_item *it, size_t idx, const slm_model *m, slm_token **toks, size_t *n) {
    if (!it->chat) return slm_tokenize(m, it->text, strlen(it->text), true, true, toks, n);
    slm_chat_message msgs[TASK_MAX_MESSAGES];
    for (int i = 0; i < it->n_msgs; i++) msgs[i] = (slm_chat_message){ it->msg_roles[i], it->msg_texts[i] };
    char *text = NULL;
    slm_status st = slm_chat_format(m, msgs, (size_t)it->n_msgs, true, &text);
    if (st) {
        char why[256];
        snprintf(why, sizeof why, "%s", slm_last_error());
        return slm_fail(st, "item %zu: the chat template: %s", idx, why);
    }
    st = slm_tokenize(m, text, strlen(text), false, true, toks, n);
    free(text);
    return st;
}

static slm_status score_gen(slm_task *t, task_item *it, size_t idx, const slm_model *m, slm_session *s,
                            slm_task_item_result *r) {
    slm_token *prompt = NULL;
    size_t np = 0, len = 0;
    slm_status st = prompt_tokens(it, idx, m, &prompt, &np);
    if (st) return st;
    int n_ctx = slm_session_n_ctx(s);
    if (np + 1 > (size_t)n_ctx) {
        free(prompt);
        return slm_fail(SLM_ERR_CONTEXT_FULL, "item %zu: the prompt takes %zu tokens, the context holds %d", idx, np,
                        n_ctx);
    }
    /* Keep the cached prefix shared with the previous generation item when
     * this session still holds it untouched; at least one token is
     * evaluated, for the logits. */
    size_t keep = 0;
    if (t->prev_prompt && t->prev_session == s && slm_session_n_past(s) == t->prev_n_past) {
        keep = common_prefix(t->prev_prompt, t->n_prev, prompt, np);
        if (keep >= np) keep = np - 1;
    }
    free(t->prev_prompt);
    t->prev_prompt = NULL;
    t->prev_session = NULL;
    slm_session_truncate(s, (int)keep);
    st = slm_session_eval(s, prompt + keep, (int)(np - keep), false);
    if (st) free(prompt);
    else { t->prev_prompt = prompt; t->n_prev = np; }
    if (!st) st = gen_append(t, &len, "", 0);
    int V = slm_vocab_size(m);
    /* "json_schema": greedy among the tokens the schema's grammar allows */
    slm_grammar *g = NULL;
    if (!st && it->gbnf && (st = slm_grammar_new(m, it->gbnf, strlen(it->gbnf), &g))) {
        char why[400];
        snprintf(why, sizeof why, "%s", slm_last_error());
        st = slm_fail(st, "item %zu: json_schema: %s", idx, why);
    }
    for (int k = 0; !st && k < it->max_tokens; k++) {
        float *logits = slm_session_logits(s);
        slm_token tok = slm_argmax(logits, V);
        if (g && !slm_grammar_allows(g, tok)) {
            if (slm_grammar_apply(g, logits) == 0) break;   /* nothing fits: the answer ends here */
            tok = slm_argmax(logits, V);
        }
        if (g && slm_grammar_accept(g, tok)) break;
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
        if (g && slm_grammar_must_end(g)) break;     /* the document is complete */
        st = slm_session_eval(s, &tok, 1, false);
    }
    slm_grammar_free(g);
    if (st) return st;
    t->prev_session = s;
    t->prev_n_past = slm_session_n_past(s);
    size_t ga, gl = trimmed(t->gen_buf, &ga);
    r->correct = false;
    for (int j = 0; j < it->n_strs; j++) {
        size_t aa, al = trimmed(it->strs[j], &aa);
        if (al == gl && !memcmp(it->strs[j] + aa, t->gen_buf + ga, gl)) r->correct = true;
    }
    r->correct_norm = r->correct;
    r->generated = t->gen_buf;
    if (it->n_fields) {
        r->n_fields = it->n_fields;
        r->fields_right = task_json_fields(it->strs[0], t->gen_buf, it->n_fields, it->field_ok);
        if (r->fields_right < 0) return slm_fail(SLM_ERR_FORMAT, "item %zu: the answer is not a JSON object", idx);
    }
    return SLM_OK;
}

slm_status slm_task_score(slm_task *t, size_t i, const slm_model *model, slm_session *s, double *ll,
                          slm_task_item_result *r) {
    memset(r, 0, sizeof *r);
    if (i >= t->n) return slm_fail(SLM_ERR_INVALID_ARG, "item %zu does not exist (%zu items)", i, t->n);
    task_item *it = &t->items[i];
    r->is_mc = it->is_mc;
    r->answer = it->is_mc ? it->answer : -1;
    if (it->is_mc) t->prev_session = NULL;   /* the cache will hold something else */
    slm_status st = it->is_mc ? score_mc(it, i, model, s, ll, r) : score_gen(t, it, i, model, s, r);
    if (st) return st;
    it->correct = r->correct;
    it->correct_norm = r->correct_norm;
    return SLM_OK;
}
