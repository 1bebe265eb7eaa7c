/* With sampling (temperature > 0), speculative decoding must leave the
 * output distribution exactly the model's. The n-gram drafter is
 * deterministic, so the acceptance rule (accept the draft x with
 * probability min(1, p(x)/q(x)), else sample from norm(max(0, p - q))) is,
 * with q a point mass, "sample y from p and keep the draft while y = x".
 *
 * Here: a repetitive prompt, so that the second token is always checked
 * against a draft (kept or rejected), top-k 2 at temperature 1.5 (4
 * outcomes for two tokens). The joint frequencies of the first two tokens
 * over many seeds are held to the model's own probabilities p(t1) p(t2|t1),
 * computed from plain one-token evaluations, by a chi-square test (3
 * degrees of freedom, critical value 16.27 at p = 0.001; the seeds are fixed,
 * so the verdict is reproducible). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "testlib.h"

#define N_SAMPLES 240
#define TEMP 1.5f

static int V;

/* the two most likely tokens and their top-k-2 probabilities at TEMP */
static void top2(const float *l, slm_token id[2], double p[2]) {
    int a = 0, b = -1;
    for (int i = 1; i < V; i++) {
        if (l[i] > l[a]) { b = a; a = i; }
        else if (b < 0 || l[i] > l[b]) b = i;
    }
    id[0] = a;
    id[1] = b;
    double e = exp(((double)l[b] - l[a]) / TEMP);
    p[0] = 1 / (1 + e);
    p[1] = e / (1 + e);
}

int main(void) {
    const char *path = test_model_path();
    if (!path) { test_skip("no model (SLM_TEST_MODEL)"); return test_finish(); }
    slm_model *m = NULL;
    if (slm_model_open(path, &m)) { fprintf(stderr, "%s\n", slm_last_error()); return 1; }
    slm_model_info info;
    slm_model_get_info(m, &info);
    V = info.n_vocab;
    const char *text = "red, green, blue, red, green, blue, red, green, blue, red, green,";
    slm_token *p = NULL;
    size_t np = 0;
    CHECK(!slm_tokenize(m, text, strlen(text), true, false, &p, &np));
    slm_session *s = NULL;
    slm_session_params ssp = { .n_ctx = 128, .n_threads = 2 };
    CHECK(!slm_session_new(m, &ssp, &s));

    /* the model's distribution of the first two tokens */
    slm_token t1[2], t2[2][2];
    double p1[2], p2[2][2];
    CHECK(!slm_session_eval(s, p, np, false));
    top2(slm_session_logits(s), t1, p1);
    for (int a = 0; a < 2; a++) {
        slm_session_truncate(s, (int)np);
        CHECK(!slm_session_eval(s, &t1[a], 1, false));
        top2(slm_session_logits(s), t2[a], p2[a]);
    }

    slm_sampler_params spp;
    slm_sampler_default_params(&spp);
    spp.temperature = TEMP;
    spp.top_k = 2;
    spp.top_p = 1;
    spp.min_p = 0;
    slm_spec *sp = NULL;
    slm_spec_params specp = { .kind = SLM_SPEC_NGRAM, .max_draft = 4 };
    CHECK(!slm_spec_new(m, s, &specp, &sp));
    int count[2][2] = { { 0 } }, other = 0;
    long drafted = 0, accepted = 0;
    for (int i = 0; i < N_SAMPLES; i++) {
        spp.seed = 1000 + (uint64_t)i;
        slm_sampler *smp = NULL;
        CHECK(!slm_sampler_new(&spp, V, &smp));
        for (size_t k = 0; k < np; k++) slm_sampler_accept(smp, p[k]);
        slm_session_truncate(s, (int)np - 1);
        CHECK(!slm_session_eval(s, &p[np - 1], 1, false));
        CHECK(!slm_spec_begin(sp, p, (int)np));
        slm_token out[8];
        int n = 0, got = 0;
        while (n < 2) {
            CHECK(!slm_spec_step(sp, smp, NULL, 8 - n, out + n, &got));
            if (got < 1) break;
            n += got;
        }
        slm_spec_stats st;
        slm_spec_get_stats(sp, &st);
        drafted += st.drafted;
        accepted += st.accepted;
        int a = out[0] == t1[0] ? 0 : out[0] == t1[1] ? 1 : -1;
        int b = a < 0 ? -1 : out[1] == t2[a][0] ? 0 : out[1] == t2[a][1] ? 1 : -1;
        if (a < 0 || b < 0) other++;
        else count[a][b]++;
        slm_sampler_free(smp);
    }
    CHECKF(other == 0, "%d samples outside the top-2 x top-2 outcomes", other);
    double chi2 = 0;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            double e = N_SAMPLES * p1[a] * p2[a][b];
            chi2 += (count[a][b] - e) * (count[a][b] - e) / (e > 0 ? e : 1e-9);
            printf("t1 %d t2 %d: observed %3d, expected %7.2f\n", t1[a], t2[a][b], count[a][b], e);
        }
    printf("chi-square %.2f (3 degrees of freedom; 16.27 at p = 0.001); drafted %ld, kept %ld\n", chi2, drafted,
           accepted);
    CHECKF(chi2 < 16.27, "chi-square %.2f: the speculative output does not follow the model's distribution", chi2);
    /* both branches of the rule ran: drafts kept and drafts rejected */
    CHECKF(accepted > 0 && drafted > accepted, "drafted %ld, kept %ld", drafted, accepted);
    slm_spec_free(sp);
    slm_session_free(s);
    free(p);
    slm_model_close(m);
    return test_finish();
}
