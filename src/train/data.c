/* Training data reader (see data.h). */
#include "train/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "eval/json.h"

/* ---- growing token buffer ---------------------------------------------------- */

typedef struct {
    int32_t *tok;
    uint8_t *mask;
    int n, cap;
} tokbuf;

static bool tb_add(tokbuf *b, const int32_t *t, size_t n, uint8_t scored) {
    if (n == 0) return true;
    if (n > (size_t)(1 << 28) || (size_t)b->n + n > (size_t)(1 << 28)) return false;
    if (b->n + (int)n > b->cap) {
        int cap = b->cap ? b->cap : 256;
        while (cap < b->n + (int)n) cap *= 2;
        int32_t *nt = realloc(b->tok, sizeof(int32_t) * cap);
        if (!nt) return false;
        b->tok = nt;
        uint8_t *nm = realloc(b->mask, cap);
        if (!nm) return false;
        b->mask = nm;
        b->cap = cap;
    }
    memcpy(b->tok + b->n, t, sizeof(int32_t) * n);
    memset(b->mask + b->n, scored, n);
    b->n += (int)n;
    return true;
}

/* Tokenizes text[0..len) and appends it. The raw shapes ({"text"}, and
 * {"prompt", "completion"} without chat) may spell the model's markup, so
 * control-token strings in them become control tokens. */
static slm_status tb_text(tokbuf *b, const slm_model *m, const char *text, size_t len, bool add_bos, uint8_t scored) {
    if (len == 0 && !add_bos) return SLM_OK;
    slm_token *t = NULL;
    size_t n = 0;
    slm_status st = slm_tokenize(m, text, len, add_bos, true, &t, &n);
    if (st) return st;
    if (!tb_add(b, t, n, scored)) st = slm_fail(SLM_ERR_NOMEM, "out of memory");
    free(t);
    return st;
}

/* ---- the result set ------------------------------------------------------------ */

void train_data_free(train_data *d) {
    for (int i = 0; i < d->n; i++) { free(d->ex[i].tokens); free(d->ex[i].mask); }
    free(d->ex);
    memset(d, 0, sizeof *d);
}

/* Takes b's buffers as a new example (length limits applied). */
static slm_status add_example(train_data *d, tokbuf *b, int line, const train_data_params *p) {
    if (b->n > p->seq) {
        if (!p->truncate) {
            if (d->n_skipped < TRAIN_DATA_MAX_LINES) d->skipped_lines[d->n_skipped] = line;
            d->n_skipped++;
            free(b->tok), free(b->mask);
            memset(b, 0, sizeof *b);
            return SLM_OK;
        }
        if (d->n_truncated < TRAIN_DATA_MAX_LINES) d->truncated_lines[d->n_truncated] = line;
        d->n_truncated++;
        b->n = p->seq;
    }
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 64;
        train_example *ne = realloc(d->ex, sizeof *ne * cap);
        if (!ne) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        d->ex = ne;
        d->cap = cap;
    }
    train_example *e = &d->ex[d->n++];
    e->tokens = b->tok;
    e->mask = b->mask;
    e->n = b->n;
    e->line = line;
    d->n_tokens += b->n;
    for (int i = 1; i < b->n; i++) d->n_scored += b->mask[i] != 0;
    memset(b, 0, sizeof *b);
    return SLM_OK;
}

/* ---- the three JSONL shapes ------------------------------------------------------ */

/* A conversation: the whole rendering, with each assistant turn (its content
 * and end-of-turn marker) scored. Contents are plain text: control-token
 * strings written in a message stay text (slm_chat_tokenize). */
static slm_status conv_tokens(const slm_model *m, const slm_chat_message *msgs, size_t n, tokbuf *b, char *why,
                              size_t why_cap) {
    slm_token *t = NULL;
    uint8_t *scored = NULL;
    size_t k = 0;
    slm_status st = slm_chat_tokenize(m, msgs, n, false, &t, &scored, &k);
    if (st) return st;
    bool any = false;
    for (size_t i = 0; i < n; i++) any |= !strcmp(msgs[i].role, "assistant");
    if (!any) {
        snprintf(why, why_cap, "the conversation has no assistant message, so nothing would be learned");
        st = SLM_ERR_INVALID_ARG;
    }
    for (size_t i = 0, j; !st && i < k; i = j) {   /* runs of equal flags */
        for (j = i; j < k && scored[j] == scored[i]; j++) {}
        if (!tb_add(b, t + i, j - i, scored[i])) st = slm_fail(SLM_ERR_NOMEM, "out of memory");
    }
    free(t);
    free(scored);
    return st;
}

static const char *str_member(const json_val *o, const char *key, char *why, size_t cap, bool *bad) {
    const json_val *v = ejson_get(o, key);
    if (!v) { snprintf(why, cap, "missing \"%s\"", key); *bad = true; return NULL; }
    if (v->kind != JSON_STR) { snprintf(why, cap, "\"%s\" must be a string", key); *bad = true; return NULL; }
    return v->str;
}

static slm_status parse_line(const slm_model *m, const json_val *root, const train_data_params *p, tokbuf *b,
                             char *why, size_t cap) {
    bool bad = false;
    if (root->kind != JSON_OBJ) { snprintf(why, cap, "expected a JSON object"); return SLM_ERR_FORMAT; }
    const json_val *msgs = ejson_get(root, "messages");
    if (msgs) {
        if (msgs->kind != JSON_ARR || msgs->n == 0) { snprintf(why, cap, "\"messages\" must be a non-empty array"); return SLM_ERR_FORMAT; }
        slm_chat_message *cm = calloc(msgs->n, sizeof *cm);
        if (!cm) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < msgs->n && !bad; i++) {
            const json_val *mv = &msgs->items[i];
            if (mv->kind != JSON_OBJ) { snprintf(why, cap, "messages[%zu] must be an object", i); bad = true; break; }
            cm[i].role = str_member(mv, "role", why, cap, &bad);
            if (!bad) cm[i].content = str_member(mv, "content", why, cap, &bad);
            if (bad) {
                char inner[200];
                snprintf(inner, sizeof inner, "%s", why);
                snprintf(why, cap, "messages[%zu]: %s", i, inner);
            } else if (strcmp(cm[i].role, "system") && strcmp(cm[i].role, "user") && strcmp(cm[i].role, "assistant")) {
                snprintf(why, cap, "messages[%zu]: unknown role \"%.40s\" (system, user or assistant)", i, cm[i].role);
                bad = true;
            }
        }
        slm_status st = bad ? SLM_ERR_FORMAT : conv_tokens(m, cm, msgs->n, b, why, cap);
        free(cm);
        return st;
    }
    const json_val *pr = ejson_get(root, "prompt");
    if (pr || ejson_get(root, "completion")) {
        const char *prompt = str_member(root, "prompt", why, cap, &bad);
        const char *comp = bad ? NULL : str_member(root, "completion", why, cap, &bad);
        if (bad) return SLM_ERR_FORMAT;
        if (!*comp) { snprintf(why, cap, "\"completion\" is empty, so nothing would be learned"); return SLM_ERR_INVALID_ARG; }
        if (p->chat) {
            slm_chat_message cm[2] = { { "user", prompt }, { "assistant", comp } };
            return conv_tokens(m, cm, 2, b, why, cap);
        }
        slm_status st = tb_text(b, m, prompt, strlen(prompt), true, 0);
        if (!st) st = tb_text(b, m, comp, strlen(comp), false, 1);
        int32_t eos = slm_token_eos(m);
        if (!st && eos >= 0 && !tb_add(b, &eos, 1, 1)) st = slm_fail(SLM_ERR_NOMEM, "out of memory");
        return st;
    }
    if (ejson_get(root, "text")) {
        const char *text = str_member(root, "text", why, cap, &bad);
        if (bad) return SLM_ERR_FORMAT;
        if (!*text) { snprintf(why, cap, "\"text\" is empty"); return SLM_ERR_INVALID_ARG; }
        return tb_text(b, m, text, strlen(text), true, 1);
    }
    snprintf(why, cap, "an example needs \"messages\", \"prompt\" + \"completion\", or \"text\"");
    return SLM_ERR_FORMAT;
}

static slm_status parse_jsonl(const slm_model *m, const char *name, const char *text, size_t len,
                              const train_data_params *p, train_data *d) {
    size_t pos = 0;
    int line = 0;
    slm_status st = SLM_OK;
    while (pos < len && !st) {
        line++;
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl ? 1 : 0);
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r')) k++;
        if (k == n) continue;   /* blank line */
        char why[300] = "";
        json_doc *doc = ejson_parse(s, n, why, sizeof why);
        if (!doc) {
            char inner[300];
            snprintf(inner, sizeof inner, "%s", why);
            return slm_fail(SLM_ERR_FORMAT, "%s:%d: malformed JSON: %s", name, line, inner);
        }
        tokbuf b = { 0 };
        why[0] = 0;
        st = parse_line(m, ejson_root(doc), p, &b, why, sizeof why);
        ejson_free(doc);
        if (st) {
            char inner[512];
            snprintf(inner, sizeof inner, "%s", why[0] ? why : slm_last_error());
            free(b.tok), free(b.mask);
            return slm_fail(st, "%s:%d: %s", name, line, inner);
        }
        st = add_example(d, &b, line, p);
        free(b.tok), free(b.mask);
    }
    if (!st && d->n == 0)
        st = d->n_skipped ? slm_fail(SLM_ERR_INVALID_ARG, "%s: all %d examples are longer than %d tokens (raise --seq or "
                                     "pass --truncate)", name, d->n_skipped, p->seq)
                          : slm_fail(SLM_ERR_INVALID_ARG, "%s holds no examples", name);
    return st;
}

static slm_status parse_text(const slm_model *m, const char *name, const char *text, size_t len,
                             const train_data_params *p, train_data *d) {
    slm_token *t = NULL;
    size_t n = 0;
    slm_status st = slm_tokenize(m, text, len, false, false, &t, &n);
    if (st) {
        char inner[300];
        snprintf(inner, sizeof inner, "%s", slm_last_error());
        return slm_fail(st, "%s: %s", name, inner);
    }
    int32_t bos = slm_token_bos(m);
    size_t body = (size_t)p->seq - (bos >= 0 ? 1 : 0);
    int w = 0;
    for (size_t at = 0; at < n && !st; at += body) {
        size_t k = n - at < body ? n - at : body;
        if (k < 2 && at > 0) break;   /* a last window of one token teaches nothing */
        tokbuf b = { 0 };
        bool ok = bos < 0 || tb_add(&b, &bos, 1, 0);
        ok = ok && tb_add(&b, t + at, k, 1);
        st = ok ? add_example(d, &b, ++w, p) : slm_fail(SLM_ERR_NOMEM, "out of memory");
        free(b.tok), free(b.mask);
    }
    free(t);
    if (!st && d->n == 0) st = slm_fail(SLM_ERR_INVALID_ARG, "%s holds no text", name);
    return st;
}

slm_status train_data_parse(const slm_model *m, const char *name, const char *text, size_t len,
                            const train_data_params *p, train_data *out) {
    memset(out, 0, sizeof *out);
    if (p->seq < 2) return slm_fail(SLM_ERR_INVALID_ARG, "the sequence length must be at least 2");
    slm_status st = p->jsonl ? parse_jsonl(m, name, text, len, p, out) : parse_text(m, name, text, len, p, out);
    if (st) train_data_free(out);
    return st;
}

slm_status train_data_load(const slm_model *m, const char *path, const train_data_params *p, train_data *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return slm_fail(SLM_ERR_IO, "cannot open %s", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; } else buf = nb;
        }
    }
    bool err = ferror(f);
    fclose(f);
    if (!buf || err) { free(buf); return slm_fail(buf ? SLM_ERR_IO : SLM_ERR_NOMEM, "cannot read %s", path); }
    train_data_params q = *p;
    size_t pl = strlen(path);
    q.jsonl = pl >= 6 && strcmp(path + pl - 6, ".jsonl") == 0;
    slm_status st = train_data_parse(m, path, buf, n, &q, out);
    free(buf);
    return st;
}

slm_status train_data_pack(const train_data *d, const int *order, int n_order, int seq, train_data *out) {
    memset(out, 0, sizeof *out);
    train_data_params p = { .seq = seq };
    tokbuf b = { 0 };
    int first = 0;
    slm_status st = SLM_OK;
    for (int i = 0; i < n_order && !st; i++) {
        const train_example *e = &d->ex[order[i]];
        if (b.n && b.n + e->n > seq) {
            st = add_example(out, &b, first, &p);
            free(b.tok), free(b.mask);
            memset(&b, 0, sizeof b);
        }
        if (st) break;
        if (!b.n) first = e->line;
        if (!tb_add(&b, e->tokens, (size_t)e->n, 0)) { st = slm_fail(SLM_ERR_NOMEM, "out of memory"); break; }
        memcpy(b.mask + b.n - e->n, e->mask, (size_t)e->n);
        b.mask[b.n - e->n] = 0;   /* an example's first token is never predicted from the one before */
    }
    if (!st && b.n) st = add_example(out, &b, first, &p);
    free(b.tok), free(b.mask);
    if (st) train_data_free(out);
    return st;
}
