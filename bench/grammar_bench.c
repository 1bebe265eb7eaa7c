/* Cost of grammar-constrained decoding (issue 17, docs/STRUCTURED.md).
 *
 * One process, one model, one prompt: rounds alternate an unconstrained and
 * a JSON-Schema-constrained generation of up to N tokens from the same
 * prompt. Per token it times the forward pass (wall clock) and the sampling
 * step (sampler + grammar check, mask when needed, grammar advance; wall
 * clock and the calling thread's CPU time, which other processes on a busy
 * machine do not inflate). The overhead is the extra sampling time of the
 * constrained runs over the unconstrained decode time per token.
 *
 * build: cmake --build BUILD --target grammar_bench
 * usage: grammar_bench MODEL SCHEMA.json [N=64] [ROUNDS=3] [THREADS=2] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slm.h"

static double now_ms(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *read_file(const char *p, size_t *len) {
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    if (b) b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

typedef struct { double eval_ms, samp_wall, samp_cpu; int n; } acc;

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: grammar_bench MODEL SCHEMA.json [N] [ROUNDS] [THREADS]\n"); return 2; }
    int N = argc > 3 ? atoi(argv[3]) : 64, rounds = argc > 4 ? atoi(argv[4]) : 3, nt = argc > 5 ? atoi(argv[5]) : 2;
    size_t slen;
    char *schema = read_file(argv[2], &slen);
    slm_model *m;
    if (!schema || slm_model_open(argv[1], &m)) { fprintf(stderr, "cannot open: %s\n", slm_last_error()); return 1; }
    slm_session_params sp = {.n_ctx = 1024, .n_threads = nt};
    slm_session *s;
    slm_grammar *g;
    double tb = now_ms(CLOCK_MONOTONIC);
    if (slm_session_new(m, &sp, &s) || slm_grammar_new_json_schema(m, schema, slen, &g)) {
        fprintf(stderr, "%s\n", slm_last_error());
        return 1;
    }
    double t_build = now_ms(CLOCK_MONOTONIC) - tb;
    char prompt[8192];
    snprintf(prompt, sizeof prompt,
             "<start_of_turn>user\nReply with a JSON value that follows this JSON Schema:\n%s<end_of_turn>\n"
             "<start_of_turn>model\n", schema);
    slm_token *pt;
    size_t np;
    if (slm_tokenize(m, prompt, strlen(prompt), true, true, &pt, &np)) { fprintf(stderr, "%s\n", slm_last_error()); return 1; }
    acc a[2] = {{0}};
    int ended = 0, truncated = 0;
    for (int r = 0; r < rounds; r++)
        for (int mode = 0; mode < 2; mode++) {
            slm_sampler_params p;
            slm_sampler_default_params(&p);
            p.temperature = 1.0f;
            p.seed = (uint64_t)r;
            slm_sampler *smp;
            slm_sampler_new(&p, slm_vocab_size(m), &smp);
            if (mode) { slm_grammar_reset(g); if (slm_sampler_set_grammar(smp, g)) return 1; }
            slm_session_truncate(s, 0);
            if (slm_session_eval(s, pt, (int)np, false)) { fprintf(stderr, "%s\n", slm_last_error()); return 1; }
            for (int i = 0; i < N; i++) {
                double w0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
                slm_token t = slm_sampler_sample(smp, slm_session_logits(s));
                if (t >= 0) slm_sampler_accept(smp, t);
                if (mode && t >= 0) slm_grammar_accept(g, t);
                double w1 = now_ms(CLOCK_MONOTONIC), c1 = now_ms(CLOCK_THREAD_CPUTIME_ID);
                a[mode].samp_wall += w1 - w0;
                a[mode].samp_cpu += c1 - c0;
                if (t < 0 || slm_token_is_eog(m, t)) break;
                if (slm_session_eval(s, &t, 1, false)) { fprintf(stderr, "%s\n", slm_last_error()); return 1; }
                a[mode].eval_ms += now_ms(CLOCK_MONOTONIC) - w1;
                a[mode].n++;
            }
            if (mode) { if (slm_grammar_ended(g)) ended++; else truncated++; }
            slm_sampler_free(smp);
        }
    const char *name[2] = {"unconstrained", "constrained"};
    for (int k = 0; k < 2; k++)
        printf("%-13s %4d tokens: forward %.2f ms/token, sampling %.3f ms/token wall, %.3f ms/token thread CPU\n",
               name[k], a[k].n, a[k].eval_ms / a[k].n, a[k].samp_wall / a[k].n, a[k].samp_cpu / a[k].n);
    double base = (a[0].eval_ms + a[0].samp_wall) / a[0].n;
    double extra_wall = a[1].samp_wall / a[1].n - a[0].samp_wall / a[0].n;
    double extra_cpu = a[1].samp_cpu / a[1].n - a[0].samp_cpu / a[0].n;
    printf("grammar build (schema -> GBNF -> matcher + vocabulary index): %.1f ms\n", t_build);
    printf("constrained documents: %d complete, %d cut by the token limit\n", ended, truncated);
    printf("overhead per token: %.3f ms wall (%.2f %% of %.2f ms unconstrained), %.3f ms thread CPU (%.2f %%)\n",
           extra_wall, 100 * extra_wall / base, base, extra_cpu, 100 * extra_cpu / base);
    free(pt);
    free(schema);
    slm_grammar_free(g);
    slm_session_free(s);
    slm_model_close(m);
    return 0;
}
