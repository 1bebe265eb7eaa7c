/* Exact rollback for speculative decoding: after a verification step that
 * is partly rejected, the session is truncated and decoding goes on; every
 * later row of logits must be byte-identical to plain one-token decoding.
 * Cases: rejection at the first drafted token, rejection in the middle of a
 * draft whose rows cross Gemma 3's sliding-window boundary (512: the local
 * layers' window starts moving there), and speculative generation up to the
 * very end of the context (the last step must fit, and the next one fails
 * with SLM_ERR_CONTEXT_FULL). */
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "testlib.h"

#define WINDOW 512 /* Gemma 3's sliding window */
#define SPAN 24    /* positions checked around it */

static slm_model *m;
static int V;

static int row_eq(const float *a, const float *b) { return !memcmp(a, b, (size_t)V * sizeof(float)); }

/* Verification steps with drafts that are right for `good` tokens, then
 * wrong, over positions pos0.. (the reference rows ref[i] are the logits
 * after tokens[i], decoded one at a time). */
static void window_case(slm_session *s, const slm_token *toks, int pos0, const float *ref) {
    const int goods[] = { 0, 3, 1, 5, 0, 2, 7 };
    int at = 0; /* tokens of toks[] evaluated */
    slm_session_truncate(s, pos0);
    for (size_t gi = 0; at < SPAN; gi++) {
        int good = goods[gi % (sizeof goods / sizeof goods[0])];
        int n = good + 2 < SPAN - at ? good + 2 : SPAN - at; /* the pending token, good ones, one wrong */
        slm_token buf[16];
        memcpy(buf, toks + at, (size_t)n * sizeof *buf);
        if (n == good + 2) buf[n - 1] = (toks[at + n - 1] + 1) % V; /* the draft goes wrong here */
        CHECK(!slm_session_eval_exact(s, buf, n));
        const float *all = slm_session_logits_all(s);
        int keep = n == good + 2 ? n - 1 : n;
        for (int r = 0; r < keep; r++)
            CHECKF(row_eq(all + (size_t)r * V, ref + (size_t)(at + r) * V), "position %d (kept %d of %d rows)",
                   pos0 + at + r, keep, n);
        slm_session_truncate(s, pos0 + at + keep); /* the rollback */
        at += keep;
    }
    CHECK(slm_session_n_past(s) == pos0 + SPAN);
}

static void ctx_end_case(const slm_token *p, int np) {
    const int n_ctx = np + 13;
    slm_session *s = NULL;
    slm_session_params ssp = { .n_ctx = n_ctx, .n_threads = 2 };
    CHECK(!slm_session_new(m, &ssp, &s));
    /* plain: emit, stop once the cache is full */
    slm_token a[64], b[64];
    int na = 0, nb = 0;
    CHECK(!slm_session_eval(s, p, np, false));
    for (;;) {
        slm_token t = slm_argmax(slm_session_logits(s), V);
        a[na++] = t;
        if (slm_session_n_past(s) >= n_ctx) break;
        CHECK(!slm_session_eval(s, &t, 1, false));
    }
    CHECK(na == n_ctx - np + 1);
    slm_sampler_params spp;
    slm_sampler_default_params(&spp);
    spp.temperature = 0;
    slm_sampler *smp = NULL;
    CHECK(!slm_sampler_new(&spp, V, &smp));
    slm_spec *sp = NULL;
    slm_spec_params specp = { .kind = SLM_SPEC_NGRAM, .max_draft = 8 };
    CHECK(!slm_spec_new(m, s, &specp, &sp));
    slm_session_truncate(s, 0);
    CHECK(!slm_session_eval(s, p, np, false));
    CHECK(!slm_spec_begin(sp, p, np));
    while (nb < na) {
        int got = 0;
        CHECK(!slm_spec_step(sp, smp, NULL, na - nb, b + nb, &got));
        if (got < 1) break;
        nb += got;
    }
    CHECK(nb == na && !memcmp(a, b, (size_t)na * sizeof *a));
    CHECK(slm_session_n_past(s) == n_ctx);
    int got = 0;
    slm_token extra;
    CHECK(slm_spec_step(sp, smp, NULL, 1, &extra, &got) == SLM_ERR_CONTEXT_FULL);
    slm_spec_stats st;
    slm_spec_get_stats(sp, &st);
    CHECKF(st.accepted > 0, "no draft was kept near the context end");
    slm_spec_free(sp);
    slm_sampler_free(smp);
    slm_session_free(s);
}

int main(void) {
    const char *path = test_model_path();
    if (!path) { test_skip("no model (SLM_TEST_MODEL)"); return test_finish(); }
    if (slm_model_open(path, &m)) { fprintf(stderr, "%s\n", slm_last_error()); return 1; }
    slm_model_info info;
    slm_model_get_info(m, &info);
    V = info.n_vocab;
    /* a text a little shorter than the window, then SPAN tokens across it */
    const char *unit = "The tide came in over the flat sand, and the gulls rose from the posts one by one. ";
    size_t ul = strlen(unit), reps = 40;
    char *text = malloc(ul * reps + 1);
    for (size_t i = 0; i < reps; i++) memcpy(text + i * ul, unit, ul);
    text[ul * reps] = 0;
    slm_token *toks = NULL;
    size_t nt = 0;
    CHECK(!slm_tokenize(m, text, strlen(text), true, false, &toks, &nt));
    int pos0 = WINDOW - SPAN / 2;
    CHECK(nt >= (size_t)(pos0 + SPAN));
    if (nt < (size_t)(pos0 + SPAN)) return test_finish();
    slm_session *s = NULL;
    slm_session_params ssp = { .n_ctx = WINDOW + 64, .n_threads = 2 };
    CHECK(!slm_session_new(m, &ssp, &s));
    float *ref = malloc((size_t)SPAN * V * sizeof(float));
    /* positions 1.. (rejections from the first step on) and across the window */
    const int starts[] = { 1, pos0 };
    for (int si = 0; si < 2; si++) {
        int at = starts[si];
        slm_session_truncate(s, 0);
        CHECK(!slm_session_eval(s, toks, at, false));
        for (int i = 0; i < SPAN; i++) {
            CHECK(!slm_session_eval(s, toks + at + i, 1, false));
            memcpy(ref + (size_t)i * V, slm_session_logits(s), (size_t)V * sizeof(float));
        }
        window_case(s, toks + at, at, ref);
    }
    free(ref);
    slm_session_free(s);
    ctx_end_case(toks, 40);
    free(toks);
    free(text);
    slm_model_close(m);
    return test_finish();
}
