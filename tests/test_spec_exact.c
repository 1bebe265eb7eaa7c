/* The verification step of speculative decoding must compute exactly what
 * the one-token decode step computes, or greedy speculative output drifts
 * from plain greedy output. Here: a continuation is evaluated one token at a
 * time (the reference), then again in chunks of k tokens with
 * slm_session_eval_exact, for k from 2 (the few-token kernels) to past 8
 * (the GEMM tiles); every row of logits must equal
 * the reference byte for byte (memcmp), with 1 and 2 threads.
 *
 * For the record the test also counts how many rows plain
 * slm_session_eval(all_logits) gets bit-identical (not a requirement: it
 * uses the few-token and GEMM kernels, whose rounding differs). */
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "testlib.h"

static const char *prompt = "The old lighthouse keeper climbed the stairs every evening";
static const char *cont =
    " and lit the lamp, and while it turned he wrote in his logbook: the wind, the ships that passed, "
    "the birds that rested on the rail. def count(xs):\n    return {x: xs.count(x) for x in set(xs)}\n"
    "{\"event\": \"storm\", \"date\": \"1887-03-12\", \"ships\": [\"Mary\", \"Dawn\"]}";

static int run(slm_model *m, int n_threads) {
    slm_model_info info;
    slm_model_get_info(m, &info);
    const int V = info.n_vocab;
    slm_session *s = NULL;
    slm_session_params sp = { .n_ctx = 512, .n_threads = n_threads };
    if (slm_session_new(m, &sp, &s)) { fprintf(stderr, "%s\n", slm_last_error()); return 1; }
    slm_token *p = NULL, *c = NULL;
    size_t np = 0, nc = 0;
    CHECK(!slm_tokenize(m, prompt, strlen(prompt), true, false, &p, &np));
    CHECK(!slm_tokenize(m, cont, strlen(cont), false, false, &c, &nc));
    CHECK(nc > 40);
    float *ref = malloc(nc * (size_t)V * sizeof(float));
    CHECK(ref != NULL);
    CHECK(!slm_session_eval(s, p, (int)np, false));
    for (size_t i = 0; i < nc; i++) {
        CHECK(!slm_session_eval(s, &c[i], 1, false));
        memcpy(ref + i * V, slm_session_logits(s), (size_t)V * sizeof(float));
    }
    const int ks[] = { 2, 4, 8, 13 };
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        int k = ks[ki], bad_exact = 0, bad_plain = 0;
        for (int pass = 0; pass < 2; pass++) {
            slm_session_truncate(s, (int)np);
            for (size_t i = 0; i < nc; i += (size_t)k) {
                int n = nc - i < (size_t)k ? (int)(nc - i) : k;
                slm_status st = pass == 0 ? slm_session_eval_exact(s, c + i, n) : slm_session_eval(s, c + i, n, true);
                CHECK(!st);
                const float *all = slm_session_logits_all(s);
                for (int r = 0; r < n; r++)
                    if (memcmp(all + (size_t)r * V, ref + (i + r) * V, (size_t)V * sizeof(float)))
                        *(pass == 0 ? &bad_exact : &bad_plain) += 1;
                CHECK(slm_session_n_past(s) == (int)(np + i) + n);
            }
        }
        CHECKF(bad_exact == 0, "%d threads, chunks of %d: %d of %zu rows differ from one-token decoding",
               n_threads, k, bad_exact, nc);
        printf("threads %d, chunks of %2d: exact %zu/%zu rows identical; plain all-logits eval %zu/%zu\n", n_threads,
               k, nc - bad_exact, nc, nc - bad_plain, nc);
    }
    free(ref);
    free(p);
    free(c);
    slm_session_free(s);
    return 0;
}

int main(void) {
    const char *path = test_model_path();
    if (!path) { test_skip("no model (SLM_TEST_MODEL)"); return test_finish(); }
    slm_model *m = NULL;
    if (slm_model_open(path, &m)) { fprintf(stderr, "%s\n", slm_last_error()); return 1; }
    run(m, 1);
    run(m, 2);
    slm_model_close(m);
    return test_finish();
}
