/* slm_chat_tokenize: a conversation in the model's chat format, as tokens in
 * which only the format's own markup can be control tokens. Whatever the
 * messages say stays text: a message holding "<end_of_turn>\n<start_of_turn>
 * model\n" can neither forge a turn at inference nor teach a control token
 * in fine-tuning (llama.cpp and HF transformers draw the same line).
 *
 * The conversation is rendered twice: as it is, and with every content
 * swapped for a marker no text holds. Lining the two up tells, for each
 * byte of the real rendering, whether the template wrote it or a message
 * did (a content is found as it is or trimmed at one or both ends, which is
 * all that common templates do to it). The template's text is cut at its
 * control tokens; every run of text between two control tokens, template
 * text and contents alike, is tokenized without special tokens, as one
 * piece. For contents free of control-token text this gives the same tokens
 * as tokenizing the rendering with special tokens; for the others, those
 * bytes stay text. A template that does more to contents (changes their
 * case, say) falls back to tokenizing the rendering with special tokens and
 * refuses contents that hold control-token text.
 *
 * With `assistant` asked for, each assistant turn is located by rendering
 * the conversation's prefixes (up to the turn with the generation prompt,
 * and through it without): its span runs from the end of the generation
 * prompt to the end of the turn, trailing whitespace excluded. Tokenization
 * is also cut at the spans' bounds, so a turn's tokens are those of its own
 * text, as generation produced them. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/status.h"
#include "slm.h"

typedef struct {
    slm_token *v;
    uint8_t *flag;
    size_t n, cap;
} tokvec;

typedef struct {
    char *p;
    size_t n, cap;
} strbuf;

/* The tokens being built, the text waiting to be tokenized, and the flag
 * the tokens of the current stretch get. */
typedef struct {
    const slm_model *m;
    tokvec out;
    strbuf plain;
    uint8_t flag;
} builder;

static bool tv_push(tokvec *t, const slm_token *x, size_t n, uint8_t flag) {
    if (t->n + n > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->n + n) cap *= 2;
        slm_token *v = realloc(t->v, cap * sizeof *v);
        if (!v) return false;
        t->v = v;
        uint8_t *f = realloc(t->flag, cap);
        if (!f) return false;
        t->flag = f;
        t->cap = cap;
    }
    memcpy(t->v + t->n, x, n * sizeof *x);
    memset(t->flag + t->n, flag, n);
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

static slm_status nomem(void) { return slm_fail(SLM_ERR_NOMEM, "out of memory"); }

/* A control token: no text of its own, only its special spelling. */
static bool is_control(const slm_model *m, slm_token t) {
    return slm_token_to_bytes(m, t, false, NULL, 0) == 0 && slm_token_to_bytes(m, t, true, NULL, 0) > 0;
}

/* Tokenizes s[0..len) (special tokens parsed or not) onto the output. */
static slm_status push_text(builder *b, const char *s, size_t len, bool special) {
    if (!len) return SLM_OK;
    slm_token *t = NULL;
    size_t n = 0;
    slm_status st = slm_tokenize(b->m, s, len, false, special, &t, &n);
    if (st) return st;
    bool ok = tv_push(&b->out, t, n, b->flag);
    free(t);
    return ok ? SLM_OK : nomem();
}

/* The pending text, tokenized as plain text. */
static slm_status flush(builder *b) {
    slm_status st = push_text(b, b->plain.p, b->plain.n, false);
    b->plain.n = 0;
    return st;
}

/* Template text: its control tokens are emitted as they are, the text
 * between them joins the pending plain text. */
static slm_status template_text(builder *b, const char *s, size_t len) {
    if (!len) return SLM_OK;
    slm_token *t = NULL;
    size_t n = 0;
    slm_status st = slm_tokenize(b->m, s, len, false, true, &t, &n);
    if (st) return st;
    size_t at = 0;
    for (size_t i = 0; i < n && !st; i++) {
        if (!is_control(b->m, t[i])) continue;
        char piece[256];
        size_t pl = slm_token_to_bytes(b->m, t[i], true, piece, sizeof piece);
        const char *hit = NULL;
        if (pl <= sizeof piece)
            for (size_t p = at; p + pl <= len && !hit; p++)
                if (!memcmp(s + p, piece, pl)) hit = s + p;
        /* the tokenizer cut the token from s, so it is there */
        if (!hit) { st = slm_fail(SLM_ERR_INVALID_ARG, "chat: control token %d not found in the template's text", (int)t[i]); break; }
        size_t pos = (size_t)(hit - s);
        if (!sb_add(&b->plain, s + at, pos - at)) { st = nomem(); break; }
        st = flush(b);
        if (!st && !tv_push(&b->out, &t[i], 1, b->flag)) st = nomem();
        at = pos + pl;
    }
    free(t);
    if (!st && !sb_add(&b->plain, s + at, len - at)) st = nomem();
    return st;
}

/* ---- where the contents are -------------------------------------------------- */

static bool ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* A content as a template may print it: v = 0 as it is, 1 trimmed at both
 * ends (Jinja's |trim), 2 at the start only, 3 at the end only. */
static void content_variant(const char *c, int v, const char **s, size_t *n) {
    size_t len = strlen(c), a = 0;
    if (v == 1 || v == 2)
        while (a < len && ws(c[a])) a++;
    if (v == 1 || v == 3)
        while (len > a && ws(c[len - 1])) len--;
    *s = c + a;
    *n = len - a;
}

typedef struct {
    size_t start, len;
    bool content;
} span;

typedef struct {
    span *v;
    size_t n, cap;
} spanvec;

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

/* Lines the marked rendering up with the real one, cutting the real one
 * into template spans and content spans. 1: they line up; 0: the template
 * does something else with contents; -1: out of memory. */
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
        /* the template's text that follows this content, up to the next marker */
        const char *nx = strstr(p, tag);
        size_t nl = nx ? (size_t)(nx - p) : strlen(p);
        const char *c = msgs[idx].content ? msgs[idx].content : "";
        bool found = false;
        for (int v = 0; v < 4 && !found; v++) {
            const char *cs;
            size_t cn;
            content_variant(c, v, &cs, &cn);
            if (r + cn + nl <= rl && !memcmp(real + r, cs, cn) && !memcmp(real + r + cn, p, nl) &&
                (nx || r + cn + nl == rl)) {
                if (!span_push(sv, r, cn, true)) return -1;
                r += cn;
                found = true;
            }
        }
        if (!found) return 0;
    }
}

/* The marked rendering (NULL when the template will not take the markers
 * or no marker unique to this conversation was found). */
static slm_status render_marked(const slm_model *m, const slm_chat_message *msgs, size_t n, bool gen,
                                const char *real, char *tag, size_t tag_cap, char **marked) {
    *marked = NULL;
    static atomic_uint counter;   /* several threads render at once in slm serve */
    unsigned long long seed = (unsigned long long)time(NULL) ^ ((unsigned long long)(uintptr_t)tag << 7);
    bool unique = false;
    for (int attempt = 0; attempt < 8 && !unique; attempt++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull + atomic_fetch_add(&counter, 1);
        snprintf(tag, tag_cap, "SLMCONTENT%016llxN", seed);
        unique = !strstr(real, tag);
        for (size_t i = 0; i < n && unique; i++)
            if (msgs[i].content && strstr(msgs[i].content, tag)) unique = false;
    }
    if (!unique) return SLM_OK;
    slm_chat_message *mm = calloc(n ? n : 1, sizeof *mm);
    char (*marks)[96] = calloc(n ? n : 1, sizeof *marks);
    if (!mm || !marks) { free(mm); free(marks); return nomem(); }
    for (size_t i = 0; i < n; i++) {
        snprintf(marks[i], sizeof marks[i], "%s%zu#", tag, i);
        mm[i] = (slm_chat_message){ msgs[i].role, marks[i] };
    }
    /* a template that refuses the markers counts as one that transforms contents */
    if (slm_chat_format(m, mm, n, gen, marked) != SLM_OK) *marked = NULL;
    free(mm);
    free(marks);
    return SLM_OK;
}

/* ---- assistant turns ------------------------------------------------------------ */

/* Bounds of the assistant turns in the real rendering: cuts[2k] where turn
 * k starts, cuts[2k + 1] where it ends. */
static slm_status find_turns(const slm_model *m, const slm_chat_message *msgs, size_t n, const char *real,
                             size_t **cuts, size_t *n_cuts) {
    *cuts = NULL;
    *n_cuts = 0;
    size_t n_assist = 0, real_len = strlen(real), done = 0;
    for (size_t i = 0; i < n; i++) n_assist += !strcmp(msgs[i].role, "assistant");
    if (!n_assist) return SLM_OK;
    size_t *c = malloc(2 * n_assist * sizeof *c), k = 0;
    if (!c) return nomem();
    slm_status st = SLM_OK;
    for (size_t i = 0; i < n && !st; i++) {
        if (strcmp(msgs[i].role, "assistant")) continue;
        char *pre = NULL, *upto = NULL;
        st = slm_chat_format(m, msgs, i, true, &pre);
        if (!st) st = slm_chat_format(m, msgs, i + 1, false, &upto);
        if (!st) {
            size_t a = strlen(pre), e = strlen(upto);
            if (a > e || strncmp(pre, upto, a) || e > real_len || strncmp(upto, real, e) || a < done) {
                st = slm_fail(SLM_ERR_UNSUPPORTED, "the chat template does not render the conversation's prefixes "
                                                   "as prefixes of the whole, so the assistant turns cannot be located");
            } else {
                while (e > a && ws(upto[e - 1])) e--;
                c[k++] = a;
                c[k++] = e;
                done = e;
            }
        }
        free(pre);
        free(upto);
    }
    if (st) { free(c); return st; }
    *cuts = c;
    *n_cuts = k;
    return SLM_OK;
}

/* ---- the two ways through -------------------------------------------------------- */

/* The lined-up spans, cut also at cuts[] (where the flag toggles). */
static slm_status by_spans(builder *b, const char *real, const spanvec *sv, const size_t *cuts, size_t n_cuts) {
    slm_status st = SLM_OK;
    size_t ci = 0;
    for (size_t i = 0; !st && i < sv->n; i++) {
        size_t at = sv->v[i].start, end = at + sv->v[i].len;
        while (!st && at < end) {
            while (ci < n_cuts && cuts[ci] <= at) {   /* a bound here: what came before is tokenized apart */
                st = flush(b);
                b->flag = (uint8_t)(ci % 2 == 0);
                ci++;
            }
            size_t stop = ci < n_cuts && cuts[ci] < end ? cuts[ci] : end;
            if (st) break;
            if (sv->v[i].content) st = sb_add(&b->plain, real + at, stop - at) ? SLM_OK : nomem();
            else st = template_text(b, real + at, stop - at);
            at = stop;
        }
    }
    return st ? st : flush(b);   /* bounds at the very end change nothing */
}

/* The rendering tokenized with special tokens, between the cuts; contents
 * that would turn into control tokens are refused. */
static slm_status by_special(builder *b, const slm_chat_message *msgs, size_t n, const char *real, const size_t *cuts,
                             size_t n_cuts) {
    slm_status st = SLM_OK;
    for (size_t i = 0; !st && i < n; i++) {
        const char *c = msgs[i].content ? msgs[i].content : "";
        slm_token *t = NULL;
        size_t k = 0;
        st = slm_tokenize(b->m, c, strlen(c), false, true, &t, &k);
        for (size_t j = 0; !st && j < k; j++)
            if (is_control(b->m, t[j]))
                st = slm_fail(SLM_ERR_INVALID_ARG, "message %zu holds the text of a control token, which this "
                                                   "model's chat template cannot keep as plain text", i);
        free(t);
    }
    size_t at = 0, len = strlen(real);
    for (size_t ci = 0; !st && ci <= n_cuts; ci++) {
        size_t stop = ci < n_cuts ? cuts[ci] : len;
        st = push_text(b, real + at, stop - at, true);
        b->flag = (uint8_t)(ci % 2 == 0);
        at = stop;
    }
    return st;
}

slm_status slm_chat_tokenize(const slm_model *m, const slm_chat_message *msgs, size_t n, bool add_generation_prompt,
                             slm_token **tokens, uint8_t **assistant, size_t *n_tokens) {
    if (!tokens || !n_tokens) return slm_fail(SLM_ERR_INVALID_ARG, "slm_chat_tokenize: no output");
    *tokens = NULL;
    *n_tokens = 0;
    if (assistant) *assistant = NULL;
    if (!m || (n && !msgs)) return slm_fail(SLM_ERR_INVALID_ARG, "slm_chat_tokenize: no model or no messages");
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role) return slm_fail(SLM_ERR_INVALID_ARG, "slm_chat_tokenize: message %zu has no role", i);
    char *real = NULL, *marked = NULL, tag[48];
    size_t *cuts = NULL, n_cuts = 0;
    builder b = { .m = m };
    spanvec sv = { 0 };
    slm_status st = slm_chat_format(m, msgs, n, add_generation_prompt, &real);
    if (!st && assistant) st = find_turns(m, msgs, n, real, &cuts, &n_cuts);
    if (!st) st = render_marked(m, msgs, n, add_generation_prompt, real, tag, sizeof tag, &marked);
    int lined_up = 0;
    if (!st && marked) {
        lined_up = match_spans(marked, real, tag, msgs, n, &sv);
        if (lined_up < 0) st = nomem();
    }
    if (!st) st = lined_up ? by_spans(&b, real, &sv, cuts, n_cuts) : by_special(&b, msgs, n, real, cuts, n_cuts);
    free(b.plain.p);
    free(sv.v);
    free(cuts);
    free(real);
    free(marked);
    if (st) {
        free(b.out.v);
        free(b.out.flag);
        return st;
    }
    if (!b.out.v) {   /* nothing rendered: still hand back buffers the caller may free */
        b.out.v = malloc(sizeof *b.out.v);
        b.out.flag = malloc(1);
        if (!b.out.v || !b.out.flag) { free(b.out.v); free(b.out.flag); return nomem(); }
    }
    *tokens = b.out.v;
    *n_tokens = b.out.n;
    if (assistant) *assistant = b.out.flag;
    else free(b.out.flag);
    return SLM_OK;
}
