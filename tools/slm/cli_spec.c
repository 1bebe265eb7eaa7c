/* The token source of `slm run` and `slm chat`: the plain loop (sample from
 * the session's logits, then evaluate the token before the next one) or
 * speculative decoding (slm_spec_*), which gives the same tokens. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_parse_spec_opt(cli_gen_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    bool spec = !strcmp(a, "--speculative"), draft = !strcmp(a, "--draft");
    if (!spec && !draft) return 0;
    if (*i + 1 >= argc) { fprintf(stderr, "slm: %s needs a value\n", a); return -1; }
    const char *v = argv[++*i];
    if (spec) {
        int k = slm_spec_kind_parse(v);
        if (k < 0) {
            fprintf(stderr, "slm: --speculative expects auto, off, ngram, head or ngram+head, got '%s'\n", v);
            return -1;
        }
        o->spec_kind = k;
        return 1;
    }
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < 1 || n > 64) {
        fprintf(stderr, "slm: --draft expects a number of tokens in 1..64, got '%s'\n", v);
        return -1;
    }
    o->spec_draft = (int)n;
    return 1;
}

void cli_print_spec_help(FILE *out) {
    fputs("      --speculative K     speculative decoding, the same output either way: auto (default:\n"
          "                          ngram), off, ngram (drafts from the prompt and the text so far),\n"
          "                          head (the model itself, its output head cut to 16384 tokens),\n"
          "                          ngram+head (head where ngram finds nothing)\n"
          "      --draft N           most tokens drafted per step (default 8; adapts to the acceptance)\n", out);
}

int cli_spec_open(cli_engine *e, const cli_gen_opts *o) {
    if (o->spec_kind == SLM_SPEC_OFF) return 0;
    slm_spec_params p = { .kind = (slm_spec_kind)o->spec_kind, .max_draft = o->spec_draft };
    if (slm_spec_new(e->model, e->session, &p, &e->spec)) {
        fprintf(stderr, "slm: %s\n", slm_last_error());
        return 1;
    }
    return 0;
}

int cli_tokens_begin(cli_tokens *it, cli_engine *e, const slm_token *context, size_t n, int n_predict) {
    memset(it, 0, sizeof *it);
    it->e = e;
    it->n_predict = n_predict;
    it->n_start = slm_session_n_past(e->session);
    if (e->spec && slm_spec_begin(e->spec, context, (int)n)) {
        fprintf(stderr, "slm: %s\n", slm_last_error());
        return 1;
    }
    return 0;
}

static int keep(cli_tokens *it, slm_token t) {
    if (it->used == it->cap) {
        int cap = it->cap ? 2 * it->cap : 256;
        slm_token *nt = realloc(it->toks, (size_t)cap * sizeof *nt);
        if (!nt) { fprintf(stderr, "\nslm: out of memory\n"); return 1; }
        it->toks = nt;
        it->cap = cap;
    }
    it->toks[it->used++] = t;
    return 0;
}

int cli_tokens_next(cli_tokens *it, slm_token *tok) {
    cli_engine *e = it->e;
    if (it->at < it->n) return keep(it, *tok = it->buf[it->at++]);
    if (e->spec) {
        /* the plain loop gives at most n_ctx - n_start + 1 tokens (the last is never evaluated) */
        int left = slm_session_n_ctx(e->session) - it->n_start + 1 - it->used;
        int max_out = (int)(sizeof it->buf / sizeof it->buf[0]);
        if (it->n_predict >= 0 && it->n_predict - it->used < max_out) max_out = it->n_predict - it->used;
        if (left < max_out) max_out = left;
        if (max_out < 1) max_out = 1;
        if (slm_spec_step(e->spec, e->sampler, e->grammar, max_out, it->buf, &it->n)) {
            fprintf(stderr, "\nslm: %s\n", slm_last_error());
            return 1;
        }
        it->at = 1;
        return keep(it, *tok = it->buf[0]);
    }
    if (it->used && slm_session_eval(e->session, &it->toks[it->used - 1], 1, false)) {
        fprintf(stderr, "\nslm: %s\n", slm_last_error());
        return 1;
    }
    slm_token t = slm_sampler_sample(e->sampler, slm_session_logits(e->session));
    if (t < 0 || (e->grammar && slm_grammar_accept(e->grammar, t))) {
        fprintf(stderr, "\nslm: no token of the vocabulary continues the grammar here\n");
        return 1;
    }
    if (!slm_token_is_eog(e->model, t)) slm_sampler_accept(e->sampler, t);
    return keep(it, *tok = t);
}

void cli_tokens_end(cli_tokens *it, cli_gen_stats *st) {
    if (it->e->spec) {
        slm_spec_end(it->e->spec, it->used);
        if (st) {
            slm_spec_stats ss;
            slm_spec_get_stats(it->e->spec, &ss);
            st->spec_steps = ss.steps;
            st->spec_drafted = ss.drafted;
            st->spec_accepted = ss.accepted;
        }
    }
    free(it->toks);
    it->toks = NULL;
}
