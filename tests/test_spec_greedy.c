/* Speculative decoding, with each drafter (n-gram, restricted head, both),
 * gives token for token what the plain loop gives: greedy, greedy with a repetition penalty, and sampling at temperature 0.9
 * with a fixed seed, on prose, code, JSON and a repetitive text, for every
 * model the test can find (SLM_TEST_MODEL, and SLM_TEST_MODEL2 if set).
 * The drafter must actually have drafted and been right (accepted > 0) for
 * the test to mean anything, and also wrong somewhere (drafted > accepted),
 * so that the rollback path runs. */
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "testlib.h"

#define N_GEN 40

static const char *prompts[] = {
    "The history of the lighthouse begins in the ancient world, when",
    "def quicksort(xs):\n    if len(xs) <= 1:\n        return xs\n    pivot = xs[0]\n",
    "Extract the event as JSON.\nText: On 12 March 1887 a storm sank the ship Mary near Dover; 14 sailors "
    "were rescued.\nJSON: {\"event\": \"storm\", \"date\": \"1887-03-12\", \"place\": \"Dover\", \"ship\": \"Mary\", "
    "\"rescued\": 14}\nText: On 3 May 1901 a fire destroyed the mill at Leeds; 2 workers died.\nJSON:",
    "one two three four five six seven eight nine ten one two three four five six seven eight nine ten one two",
};

/* the plain loop of tools/slm (cli_generate), without the output */
static int plain(slm_model *m, slm_session *s, slm_sampler *smp, const slm_token *p, int np, slm_token *out) {
    slm_sampler_reset(smp);
    slm_session_truncate(s, 0);
    for (int i = 0; i < np; i++) slm_sampler_accept(smp, p[i]);
    CHECK(!slm_session_eval(s, p, np, false));
    int n = 0;
    for (int i = 0; i < N_GEN; i++) {
        slm_token t = slm_sampler_sample(smp, slm_session_logits(s));
        out[n++] = t;
        if (slm_token_is_eog(m, t)) break;
        slm_sampler_accept(smp, t);
        if (i + 1 >= N_GEN) break;
        CHECK(!slm_session_eval(s, &t, 1, false));
    }
    return n;
}

static int spec(slm_model *m, slm_session *s, slm_sampler *smp, slm_spec *sp, const slm_token *p, int np,
                slm_token *out) {
    slm_sampler_reset(smp);
    slm_session_truncate(s, 0);
    for (int i = 0; i < np; i++) slm_sampler_accept(smp, p[i]);
    CHECK(!slm_session_eval(s, p, np, false));
    CHECK(!slm_spec_begin(sp, p, np));
    int n = 0;
    bool done = false;
    while (!done && n < N_GEN) {
        slm_token buf[16];
        int got = 0;
        CHECK(!slm_spec_step(sp, smp, NULL, N_GEN - n < 16 ? N_GEN - n : 16, buf, &got));
        CHECK(got >= 1);
        if (got < 1) break;
        for (int i = 0; i < got; i++) {
            out[n++] = buf[i];
            if (slm_token_is_eog(m, buf[i])) { done = true; break; }
        }
    }
    slm_spec_end(sp, n);
    /* the session now holds what the plain loop leaves: prompt + all used tokens but the last */
    CHECK(slm_session_n_past(s) == np + n - 1);
    return n;
}

static void run_model(const char *path) {
    slm_model *m = NULL;
    if (slm_model_open(path, &m)) { CHECKF(0, "%s: %s", path, slm_last_error()); return; }
    slm_model_info info;
    slm_model_get_info(m, &info);
    slm_session *s = NULL;
    slm_session_params ssp = { .n_ctx = 512, .n_threads = 2 };
    CHECK(!slm_session_new(m, &ssp, &s));
    const slm_spec_kind kinds[] = { SLM_SPEC_NGRAM, SLM_SPEC_HEAD, SLM_SPEC_MIXED };
    /* Under the sanitizers (SLM_TEST_LIGHT) one drafter, two prompts, and
     * greedy and sampled decoding without the repeat-penalty mode: the same
     * checks, a fraction of the forward passes. */
    bool light = getenv("SLM_TEST_LIGHT") != NULL;
    size_t n_prompts = light ? 2 : sizeof prompts / sizeof prompts[0];
    for (int ki = 0; ki < (light ? 1 : 3); ki++) {
    slm_spec *sp = NULL;
    slm_spec_params specp = { .kind = kinds[ki] };
    CHECK(!slm_spec_new(m, s, &specp, &sp));
    long drafted = 0, accepted = 0;
    for (int mode = 0; mode < 3; mode++) {
        if (light && mode == 1) continue;
        slm_sampler_params smpp;
        slm_sampler_default_params(&smpp);
        smpp.temperature = mode == 2 ? 0.9f : 0.f;
        smpp.repeat_penalty = mode == 1 ? 1.3f : 1.f;
        smpp.seed = 1234;
        slm_sampler *smp = NULL;
        CHECK(!slm_sampler_new(&smpp, info.n_vocab, &smp));
        for (size_t pi = 0; pi < n_prompts; pi++) {
            slm_token *p = NULL;
            size_t np = 0;
            CHECK(!slm_tokenize(m, prompts[pi], strlen(prompts[pi]), true, false, &p, &np));
            slm_token a[N_GEN], b[N_GEN];
            int na = plain(m, s, smp, p, (int)np, a);
            int nb = spec(m, s, smp, sp, p, (int)np, b);
            slm_spec_stats st;
            slm_spec_get_stats(sp, &st);
            drafted += st.drafted;
            accepted += st.accepted;
            CHECKF(na == nb && !memcmp(a, b, (size_t)na * sizeof *a),
                   "%s, %s, mode %d, prompt %zu: speculative output differs (%d vs %d tokens)", info.arch,
                   slm_spec_kind_name(kinds[ki]), mode, pi, na, nb);
            printf("%s %s mode %d prompt %zu: %d tokens, %ld steps, drafted %ld, accepted %ld\n", info.arch,
                   slm_spec_kind_name(kinds[ki]), mode, pi, nb, st.steps, st.drafted, st.accepted);
            free(p);
        }
        slm_sampler_free(smp);
    }
    CHECKF(accepted > 0 && drafted > accepted, "%s, %s: drafted %ld, accepted %ld: both paths must run", info.arch,
           slm_spec_kind_name(kinds[ki]), drafted, accepted);
    slm_spec_free(sp);
    }
    slm_session_free(s);
    slm_model_close(m);
}

int main(void) {
    const char *path = test_model_path();
    if (!path) { test_skip("no model (SLM_TEST_MODEL)"); return test_finish(); }
    run_model(path);
    const char *second = getenv("SLM_TEST_MODEL2");
    if (second && *second) run_model(second);
    return test_finish();
}
