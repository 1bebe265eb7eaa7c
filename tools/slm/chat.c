/* slm chat: a multi-turn conversation in the model's own chat format. Each
 * turn the whole conversation is rendered with slm_chat_format (the file's
 * chat template, or Gemma's built-in one) and tokenized; only the tokens
 * after the longest prefix already in the KV cache are evaluated, and the
 * cache is cut back to that prefix when the text diverges from it. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void chat_help(FILE *out) {
    fputs("usage: slm chat [options]\n"
          "Reads a user message per line from stdin and answers in the model's chat format\n"
          "(the chat template in the model file; Gemma's turns for Gemma files without one).\n"
          "/exit or Ctrl-D ends; /reset forgets the conversation. -n bounds each answer (default 512).\n\n"
          "  -s, --system TEXT       a system message at the start of the conversation\n", out);
    cli_print_gen_help(out);
}

/* Reads one line (without its newline); NULL at end of input. */
static char *read_line(FILE *in) {
    size_t cap = 256, n = 0;
    char *buf = malloc(cap);
    int ch = EOF;
    while (buf && (ch = fgetc(in)) != EOF && ch != '\n') {
        if (n + 1 == cap) { char *nb = realloc(buf, cap *= 2); if (!nb) { free(buf); return NULL; } buf = nb; }
        buf[n++] = (char)ch;
    }
    if (!buf || (n == 0 && ch == EOF)) { free(buf); return NULL; }
    buf[n] = '\0';
    return buf;
}

typedef struct conversation {
    slm_chat_message *msg;   /* role strings are literals; content is malloc'd */
    size_t n, cap;
    size_t keep;             /* leading messages /reset keeps (the system message) */
} conversation;

static int conv_push(conversation *c, const char *role, char *content) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        slm_chat_message *m = realloc(c->msg, cap * sizeof *m);
        if (!m) return 1;
        c->msg = m;
        c->cap = cap;
    }
    c->msg[c->n].role = role;
    c->msg[c->n++].content = content;
    return 0;
}

static void conv_truncate(conversation *c, size_t n) {
    while (c->n > n) free((char *)c->msg[--c->n].content);
}

/* The tokens the KV cache holds, in order (a copy of what was evaluated). */
typedef struct cached { slm_token *v; size_t n, cap; } cached;

static int cached_push(cached *c, const slm_token *t, size_t n) {
    if (c->n + n > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        while (cap < c->n + n) cap *= 2;
        slm_token *v = realloc(c->v, cap * sizeof *v);
        if (!v) return 1;
        c->v = v;
        c->cap = cap;
    }
    memcpy(c->v + c->n, t, n * sizeof *t);
    c->n += n;
    return 0;
}

/* Renders and tokenizes the conversation with the assistant's turn opened. */
static int render(cli_engine *e, const conversation *c, slm_token **toks, size_t *n) {
    /* what the user types is text: only the template's markup becomes control tokens */
    if (slm_chat_tokenize(e->model, c->msg, c->n, true, toks, NULL, n)) {
        fprintf(stderr, "slm chat: %s\n", slm_last_error());
        return 1;
    }
    return 0;
}

/* Appends bytes to a growable string; 1 when out of memory. */
static int text_add(char **s, size_t *n, size_t *cap, const char *p, size_t l) {
    if (*n + l + 1 > *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        while (nc < *n + l + 1) nc *= 2;
        char *ns = realloc(*s, nc);
        if (!ns) return 1;
        *s = ns;
        *cap = nc;
    }
    memcpy(*s + *n, p, l);
    *n += l;
    (*s)[*n] = '\0';
    return 0;
}

/* One assistant turn: evaluates toks[keep..], then samples and streams the
 * answer. *answer gets the text printed (malloc'd). Returns 0 or 1. */
static int answer_turn(cli_engine *e, cached *kv, const slm_token *toks, size_t n, size_t keep,
                       int n_predict, char **answer, cli_gen_stats *st) {
    memset(st, 0, sizeof *st);
    st->last = -1;
    slm_session_truncate(e->session, (int)keep);
    kv->n = keep;
    double t0 = cli_now_ms();
    for (size_t i = keep; i < n; i++) slm_sampler_accept(e->sampler, toks[i]);
    if (slm_session_eval(e->session, toks + keep, (int)(n - keep), false) || cached_push(kv, toks + keep, n - keep)) {
        fprintf(stderr, "slm chat: %s\n", slm_last_error());
        return 1;
    }
    st->n_prompt = (int)(n - keep);
    double t1 = cli_now_ms();
    st->t_prompt_ms = t1 - t0;
    int n_ctx = slm_session_n_ctx(e->session);
    if (e->grammar) slm_grammar_reset(e->grammar);   /* each answer is one document */
    slm_detok dt;
    slm_detok_init(&dt);
    char piece[256], text[512];
    size_t an = 0, acap = 0;
    *answer = NULL;
    if (text_add(answer, &an, &acap, "", 0)) return 1;
    cli_tokens it;
    if (cli_tokens_begin(&it, e, toks, n, n_predict)) return 1;
    int rc = 0;
    for (int i = 0; n_predict < 0 || i < n_predict; i++) {
        slm_token tok;
        if (cli_tokens_next(&it, &tok)) { rc = 1; break; }
        if (i == 0) st->t_first_ms = cli_now_ms() - t0;
        st->last = tok;
        if (slm_token_is_eog(e->model, tok)) { st->hit_eog = true; break; }
        st->n_gen++;
        size_t pl = slm_token_to_bytes(e->model, tok, false, piece, sizeof piece);
        if (pl > sizeof piece) pl = sizeof piece;
        size_t w = slm_detok_push(&dt, piece, pl, text, sizeof text);
        fwrite(text, 1, w, stdout);
        fflush(stdout);
        if (text_add(answer, &an, &acap, text, w)) { rc = 1; break; }
        /* the plain loop has evaluated n + i positions here */
        if ((int)n + i >= n_ctx) { st->ctx_full = true; break; }
    }
    /* the session holds every used token but the last */
    if (!rc && it.used > 1 && cached_push(kv, it.toks, (size_t)it.used - 1)) rc = 1;
    cli_tokens_end(&it, st);
    if (rc) return 1;
    size_t w = slm_detok_flush(&dt, text, sizeof text);
    fwrite(text, 1, w, stdout);
    fflush(stdout);
    if (text_add(answer, &an, &acap, text, w)) return 1;
    st->t_gen_ms = cli_now_ms() - t1;
    if (e->grammar && !slm_grammar_can_end(e->grammar)) {
        st->truncated = true;
        fprintf(stderr, "\nslm chat: answer truncated: it stopped (%s) before the grammar was complete\n",
                st->ctx_full ? "context full" : "token limit");
    }
    return 0;
}

int cmd_chat(int argc, char **argv) {
    cli_gen_opts o;
    cli_gen_defaults(&o);
    o.n_predict = 512;
    const char *system = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { chat_help(stdout); return 0; }
        if ((!strcmp(argv[i], "-s") || !strcmp(argv[i], "--system")) && i + 1 < argc) { system = argv[++i]; continue; }
        int r = cli_parse_gen_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r == 0) { fprintf(stderr, "slm chat: unknown option '%s' (see slm chat --help)\n", argv[i]); return 2; }
    }
    cli_engine e;
    if (cli_engine_open(&e, &o)) return 1;
    conversation conv = { 0 };
    cached kv = { 0 };
    int rc = 0;
    if (system) {
        char *s = strdup(system);
        if (!s || conv_push(&conv, "system", s)) { free(s); rc = 1; goto done; }
        conv.keep = 1;
    }
    /* Fail early, before reading input, when the model has no chat format. */
    {
        char *probe = NULL;
        char *hi = strdup("hi");
        if (!hi || conv_push(&conv, "user", hi)) { free(hi); rc = 1; goto done; }
        if (slm_chat_format(e.model, conv.msg, conv.n, true, &probe)) {
            fprintf(stderr, "slm chat: %s\n", slm_last_error());
            rc = 1;
            goto done;
        }
        free(probe);
        conv_truncate(&conv, conv.keep);
    }
    bool tty = isatty(0);
    for (;;) {
        if (tty) { fputs("> ", stdout); fflush(stdout); }
        char *line = read_line(stdin);
        if (!line || !strcmp(line, "/exit")) { free(line); break; }
        if (!strcmp(line, "/reset")) {
            free(line);
            conv_truncate(&conv, conv.keep);
            slm_session_truncate(e.session, 0);
            kv.n = 0;
            slm_sampler_reset(e.sampler);
            continue;
        }
        if (conv_push(&conv, "user", line)) { free(line); rc = 1; break; }
        slm_token *toks = NULL;
        size_t n = 0;
        if (render(&e, &conv, &toks, &n)) { conv_truncate(&conv, conv.n - 1); continue; }
        if ((long)n + 1 > slm_session_n_ctx(e.session)) {
            /* keep the system message and this turn only */
            free(toks);
            toks = NULL;
            char *last = (char *)conv.msg[conv.n - 1].content;
            conv.n--;
            conv_truncate(&conv, conv.keep);
            conv_push(&conv, "user", last);
            if (render(&e, &conv, &toks, &n) || (long)n + 1 > slm_session_n_ctx(e.session)) {
                fprintf(stderr, "slm chat: the message does not fit in the context (%d tokens); it is dropped\n",
                        slm_session_n_ctx(e.session));
                free(toks);
                conv_truncate(&conv, conv.keep);
                continue;
            }
            fprintf(stderr, "slm chat: the context is full; earlier turns are forgotten\n");
        }
        /* longest prefix already in the cache; at least one token is evaluated for fresh logits */
        size_t keep = 0;
        while (keep < n && keep < kv.n && kv.v[keep] == toks[keep]) keep++;
        if (keep == n) keep = n - 1;
        char *answer = NULL;
        cli_gen_stats st;
        int r = answer_turn(&e, &kv, toks, n, keep, o.n_predict, &answer, &st);
        free(toks);
        fputc('\n', stdout);
        if (r) { free(answer); rc = 1; break; }
        if (conv_push(&conv, "assistant", answer)) { free(answer); rc = 1; break; }
        if (o.verbose) {
            cli_print_stats(&st);
            fprintf(stderr, "slm chat: %zu cached tokens reused\n", keep);
        }
    }
done:
    conv_truncate(&conv, 0);
    free(conv.msg);
    free(kv.v);
    cli_engine_close(&e);
    return rc;
}
