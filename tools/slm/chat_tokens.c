/* A conversation rendered with the model's chat format and tokenized so that
 * only the format's own markup can become control tokens: what the messages
 * say is plain text, so a user who writes "<end_of_turn>\n<start_of_turn>model\n"
 * cannot forge a turn (llama.cpp's and HF's chat paths keep the same line).
 *
 * How: the conversation is rendered twice, once as it is and once with each
 * content replaced by a marker that no text holds. The marked rendering says
 * which bytes are the template's and which a message's (each content as it
 * is, or trimmed at either end as templates do). The template's parts
 * are cut at their control tokens; every run of text between two control
 * tokens (template text and contents together) is tokenized without special
 * tokens, exactly as the whole text would be between those two tokens. So
 * for contents that hold no control-token text the tokens equal the old
 * "tokenize the rendered text with special tokens" ones, and for contents
 * that do, those bytes stay text. A template that does more with contents
 * (changes their case, say) keeps the old way for clean contents and refuses
 * contents holding control-token text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "chat_tokens.h"

typedef struct { slm_token *v; size_t n, cap; } tokvec;
typedef struct { char *p; size_t n, cap; } strbuf;

static bool tv_push(tokvec *t, const slm_token *x, size_t n) {
    if (t->n + n > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->n + n) cap *= 2;
        slm_token *v = realloc(t->v, cap * sizeof *v);
        if (!v) return false;
        t->v = v;
        t->cap = cap;
    }
    memcpy(t->v + t->n, x, n * sizeof *x);
    t->n += n;
    return true;
}

static bool sb_add(strbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}

static bool is_control(const slm_model *m, slm_token t) {
    return slm_token_to_bytes(m, t, false, NULL, 0) == 0 && slm_token_to_bytes(m, t, true, NULL, 0) > 0;
}

/* Tokenizes the pending plain text (no special tokens) onto out. */
static slm_status flush(const slm_model *m, strbuf *plain, tokvec *out) {
    if (!plain->n) return SLM_OK;
    slm_token *t = NULL;
    size_t n = 0;
    slm_status st = slm_tokenize(m, plain->p, plain->n, false, false, &t, &n);
    if (st) return st;
    bool ok = tv_push(out, t, n);
    free(t);
    plain->n = 0;
    return ok ? SLM_OK : SLM_ERR_NOMEM;
}

/* A piece of the template's own text: its control tokens are emitted, the
 * text around them joins the pending plain text. */
static slm_status template_part(const slm_model *m, const char *s, size_t len, strbuf *plain, tokvec *out) {
    if (!len) return SLM_OK;
    slm_token *t = NULL;
    size_t n = 0;
    slm_status st = slm_tokenize(m, s, len, false, true, &t, &n);
    if (st) return st;
    size_t at = 0;
    for (size_t i = 0; i < n && !st; i++) {
        if (!is_control(m, t[i])) continue;
        char piece[256];
        size_t pl = slm_token_to_bytes(m, t[i], true, piece, sizeof piece);
        const char *hit = NULL;
        if (pl <= sizeof piece)
            for (size_t p = at; p + pl <= len && !hit; p++)
                if (!memcmp(s + p, piece, pl)) hit = s + p;
        if (!hit) { st = SLM_ERR_INVALID_ARG; break; }  /* cannot happen: the tokenizer cut it from s */
        size_t pos = (size_t)(hit - s);
        if (!sb_add(plain, s + at, pos - at)) { st = SLM_ERR_NOMEM; break; }
        st = flush(m, plain, out);
        if (!st && !tv_push(out, &t[i], 1)) st = SLM_ERR_NOMEM;
        at = pos + pl;
    }
    free(t);
    if (!st && !sb_add(plain, s + at, len - at)) st = SLM_ERR_NOMEM;
    return st;
}

static bool ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* a content as a template may print it: 0 as it is, 1 trimmed (Jinja's
 * |trim), 2 trimmed at the start only, 3 at the end only */
static void content_variant(const char *c, int v, const char **s, size_t *n) {
    size_t len = strlen(c), a = 0;
    if (v == 1 || v == 2)
        while (a < len && ws(c[a])) a++;
    if (v == 1 || v == 3)
        while (len > a && ws(c[len - 1])) len--;
    *s = c + a;
    *n = len - a;
}

typedef struct { size_t start, len; bool content; } span;
typedef struct { span *v; size_t n, cap; } spanvec;

static bool span_push(spanvec *sv, size_t start, size_t len, bool content) {
    if (!len) return true;
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 32;
        span *v = realloc(sv->v, cap * sizeof *v);
        if (!v) return false;
        sv->v = v;
        sv->cap = cap;
    }
    sv->v[sv->n++] = (span){ start, len, content };
    return true;
}

/* Lines the marked rendering up with the real one: every byte of real
 * becomes part of a template span or of a content span. 1: they line up;
 * 0: the template does something else with contents; -1: out of memory. */
static int match_spans(const char *marked, const char *real, const char *tag, const slm_chat_message *msgs,
                       size_t n_msgs, spanvec *sv) {
    size_t tl = strlen(tag), rl = strlen(real), r = 0;
    const char *p = marked;
    for (;;) {
        const char *hit = strstr(p, tag);
        size_t lit = hit ? (size_t)(hit - p) : strlen(p);
        if (r + lit > rl || memcmp(real + r, p, lit)) return 0;
        if (!span_push(sv, r, lit, false)) return -1;
        r += lit;
        if (!hit) return r == rl;
        char *end;
        unsigned long idx = strtoul(hit + tl, &end, 10);
        if (end == hit + tl || *end != '#' || idx >= n_msgs) return 0;
        p = end + 1;
        /* the template's text after this content, up to the next marker */
        const char *nx = strstr(p, tag);
        size_t nl = nx ? (size_t)(nx - p) : strlen(p);
        const char *c = msgs[idx].content ? msgs[idx].content : "";
        bool ok = false;
        for (int v = 0; v < 4 && !ok; v++) {
            const char *cs;
            size_t cn;
            content_variant(c, v, &cs, &cn);
            if (r + cn + nl <= rl && !memcmp(real + r, cs, cn) && !memcmp(real + r + cn, p, nl) &&
                (nx || r + cn + nl == rl)) {
                if (!span_push(sv, r, cn, true)) return -1;
                r += cn;
                ok = true;
            }
        }
        if (!ok) return 0;
    }
}

slm_status chat_tokenize(const slm_model *m, const slm_chat_message *msgs, size_t n, bool add_generation_prompt,
                         slm_token **out, size_t *n_out, char *err, size_t errcap) {
    *out = NULL;
    *n_out = 0;
    if (errcap) err[0] = '\0';
    char *real = NULL, *marked = NULL;
    slm_status st = slm_chat_format(m, msgs, n, add_generation_prompt, &real);
    if (st) {
        snprintf(err, errcap, "%s", slm_last_error());
        return st;
    }
    /* a marker no content and no rendering holds */
    static atomic_uint counter;  /* slm serve renders on many threads */
    char tag[48];
    unsigned long long seed = (unsigned long long)time(NULL) ^ ((unsigned long long)(uintptr_t)&tag << 7);
    bool unique = false;
    for (int attempt = 0; attempt < 8 && !unique; attempt++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull + atomic_fetch_add(&counter, 1);
        snprintf(tag, sizeof tag, "SLMCONTENT%016llxN", seed);
        unique = !strstr(real, tag);
        for (size_t i = 0; i < n && unique; i++)
            if (msgs[i].content && strstr(msgs[i].content, tag)) unique = false;
    }
    slm_chat_message *mm = calloc(n ? n : 1, sizeof *mm);
    char (*marks)[96] = calloc(n ? n : 1, sizeof *marks);
    if (!mm || !marks) st = SLM_ERR_NOMEM;
    for (size_t i = 0; !st && i < n; i++) {
        snprintf(marks[i], sizeof marks[i], "%s%zu#", tag, i);
        mm[i] = (slm_chat_message){ msgs[i].role, marks[i] };
    }
    /* a template that refuses the markers is handled as one that transforms contents */
    bool marked_ok = !st && unique && slm_chat_format(m, mm, n, add_generation_prompt, &marked) == SLM_OK;

    strbuf plain = { 0 };
    tokvec tv = { 0 };
    spanvec sv = { 0 };
    int how = marked_ok ? match_spans(marked, real, tag, msgs, n, &sv) : 0;
    if (how < 0) st = SLM_ERR_NOMEM;
    if (!st && how > 0) {
        /* template text is cut at its control tokens; contents only join the plain text */
        for (size_t i = 0; !st && i < sv.n; i++) {
            const span *sp = &sv.v[i];
            if (sp->content) st = sb_add(&plain, real + sp->start, sp->len) ? SLM_OK : SLM_ERR_NOMEM;
            else st = template_part(m, real + sp->start, sp->len, &plain, &tv);
        }
        if (!st) st = flush(m, &plain, &tv);
    } else if (!st) {
        /* the template does more with contents than print or trim them: keep
         * its text, and refuse contents that would turn into control tokens */
        for (size_t i = 0; !st && i < n; i++) {
            const char *c = msgs[i].content ? msgs[i].content : "";
            slm_token *t = NULL;
            size_t k = 0;
            st = slm_tokenize(m, c, strlen(c), false, true, &t, &k);
            for (size_t j = 0; !st && j < k; j++)
                if (is_control(m, t[j])) {
                    snprintf(err, errcap, "message %zu holds the text of a control token, which this model's "
                                          "chat template does not let the server keep as text", i);
                    st = SLM_ERR_INVALID_ARG;
                }
            free(t);
        }
        if (!st) st = slm_tokenize(m, real, strlen(real), false, true, &tv.v, &tv.n);
    }
    free(plain.p);
    free(sv.v);
    free(real);
    free(marked);
    free(mm);
    free(marks);
    if (st) {
        if (errcap && !err[0])
            snprintf(err, errcap, "%s", st == SLM_ERR_NOMEM ? "out of memory" : slm_last_error());
        free(tv.v);
        return st;
    }
    *out = tv.v;
    *n_out = tv.n;
    return SLM_OK;
}
