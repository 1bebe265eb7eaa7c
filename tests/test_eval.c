/* Perplexity, KL divergence, task scoring and the imatrix collector, on the
 * tiny random Gemma 3 of tests/fixtures/eval (scripts/gen_eval_fixtures.py).
 * Every number the library reports is recomputed here from the session's
 * raw logits (or, for the imatrix, from the model's tensors) by separate,
 * plain formulas: whole windows evaluated at once, log-sum-exp in double,
 * two-pass variances, full-vocabulary KL sums. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "slm.h"
#include "testlib.h"

#define MODEL "tests/fixtures/eval/tiny_gemma3.gguf"
#define CTX 32
#define CHUNKS 3

static slm_model *model;
static int V;

/* log p(tok) from one row of logits, computed in double from scratch. */
static double ref_logprob(const float *row, slm_token tok) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < V; i++) if (row[i] > mx) mx = row[i];
    for (int i = 0; i < V; i++) s += exp((double)row[i] - mx);
    return (double)row[tok] - mx - log(s);
}

static slm_session *new_session(int n_ctx, bool precise) {
    slm_session_params sp = { .n_ctx = n_ctx, .n_threads = 2, .precise = precise };
    slm_session *s = NULL;
    CHECK(slm_session_new(model, &sp, &s) == SLM_OK);
    return s;
}

/* Every window evaluated whole with all logits: NLLs of the second half. */
static int ref_window_nlls(slm_session *s, const slm_token *toks, int n_chunks, double *nll, float *logits_out) {
    int k = 0;
    slm_token win[CTX];
    for (int c = 0; c < n_chunks; c++) {
        memcpy(win, toks + c * CTX, sizeof win);
        win[0] = slm_token_bos(model);
        slm_session_truncate(s, 0);
        CHECK(slm_session_eval(s, win, CTX, true) == SLM_OK);
        const float *lg = slm_session_logits_all(s);
        for (int pos = CTX / 2; pos < CTX - 1; pos++, k++) {
            nll[k] = -ref_logprob(lg + (size_t)pos * V, win[pos + 1]);
            if (logits_out) memcpy(logits_out + (size_t)k * V, lg + (size_t)pos * V, (size_t)V * sizeof(float));
        }
    }
    return k;
}

static void test_perplexity(void) {
    slm_token toks[CTX * CHUNKS + 5];
    unsigned x = 12345;
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
        x = x * 1103515245u + 12345u;
        toks[i] = 4 + (slm_token)((x >> 8) % (unsigned)(V - 4));
    }
    size_t n_toks = sizeof toks / sizeof toks[0];
    slm_session *s = new_session(CTX, false);
    int n_scored = CHUNKS * (CTX - 1 - CTX / 2);
    double nll[CHUNKS * CTX];
    float *ref_logits = malloc((size_t)n_scored * V * sizeof(float));
    CHECK(ref_window_nlls(s, toks, CHUNKS, nll, ref_logits) == n_scored);
    double mean = 0, var = 0;
    for (int i = 0; i < n_scored; i++) mean += nll[i] / n_scored;
    for (int i = 0; i < n_scored; i++) var += (nll[i] - mean) * (nll[i] - mean) / (n_scored - 1);
    double ppl = exp(mean), ppl_se = ppl * sqrt(var / n_scored);

    /* plain run, then saving the base */
    const char *base = "test_eval_base.kld";
    slm_ppl_params pp = { .n_ctx = CTX, .n_chunks = CHUNKS, .kl_save = base, .kl_top_k = V };
    slm_ppl *p = NULL;
    CHECK(slm_ppl_new(model, s, toks, n_toks, &pp, &p) == SLM_OK);
    while (p && slm_ppl_more(p)) CHECK(slm_ppl_step(p) == SLM_OK);
    slm_ppl_result r;
    if (p) {
        CHECK(slm_ppl_finish(p) == SLM_OK);
        slm_ppl_result_get(p, &r);
        CHECKF(fabs(r.ppl - ppl) <= 1e-4 * ppl, "PPL %.8f, reference %.8f", r.ppl, ppl);
        CHECKF(fabs(r.ppl_se - ppl_se) <= 1e-3 * ppl_se, "SE %.8f, reference %.8f", r.ppl_se, ppl_se);
        CHECK(r.n_scored == (uint64_t)n_scored && r.n_chunks_done == CHUNKS && !r.has_kl);
        printf("tiny model: PPL %.5f +/- %.5f (reference %.5f +/- %.5f)\n", r.ppl, r.ppl_se, ppl, ppl_se);
    }
    slm_ppl_free(p);

    /* the same model against itself: KL 0, full agreement */
    pp.kl_save = NULL;
    pp.kl_base = base;
    CHECK(slm_ppl_new(model, s, toks, n_toks, &pp, &p) == SLM_OK);
    while (p && slm_ppl_more(p)) CHECK(slm_ppl_step(p) == SLM_OK);
    if (p) {
        slm_ppl_result_get(p, &r);
        CHECK(r.has_kl && r.kl_mean == 0 && r.kl_max == 0 && r.top1 == 1.0);
        CHECKF(fabs(r.base_ppl - r.ppl) <= 1e-5 * r.ppl, "base PPL %.8f vs %.8f", r.base_ppl, r.ppl);
        CHECKF(fabs(r.ln_ratio) < 1e-6 && r.ln_ratio_se < 1e-6, "self: ln ratio %g +/- %g", r.ln_ratio, r.ln_ratio_se);
    }
    slm_ppl_free(p);

    /* precise mode against the fast base: full-vocabulary KL (top_k = V, so
     * the saved distribution is complete) recomputed from both logits */
    slm_session *sp = new_session(CTX, true);
    double nll_q[CHUNKS * CTX];
    float *q_logits = malloc((size_t)n_scored * V * sizeof(float));
    ref_window_nlls(sp, toks, CHUNKS, nll_q, q_logits);
    double kl_sum = 0, kl_max = 0, agree = 0;
    double *kls = malloc((size_t)n_scored * sizeof *kls);
    for (int k = 0; k < n_scored; k++) {
        const float *a = ref_logits + (size_t)k * V, *b = q_logits + (size_t)k * V;
        double kl = 0;
        int ia = 0, ib = 0;
        for (int t = 0; t < V; t++) {
            double la = ref_logprob(a, t), lb = ref_logprob(b, t);
            kl += exp(la) * (la - lb);
            if (a[t] > a[ia]) ia = t;
            if (b[t] > b[ib]) ib = t;
        }
        kls[k] = kl;
        kl_sum += kl;
        if (kl > kl_max) kl_max = kl;
        agree += ia == ib;
    }
    CHECK(slm_ppl_new(model, sp, toks, n_toks, &pp, &p) == SLM_OK);
    while (p && slm_ppl_more(p)) CHECK(slm_ppl_step(p) == SLM_OK);
    if (p) {
        slm_ppl_result_get(p, &r);
        double kl_mean = kl_sum / n_scored;
        CHECKF(fabs(r.kl_mean - kl_mean) <= 1e-2 * kl_mean + 1e-6, "KL %.10f, reference %.10f", r.kl_mean, kl_mean);
        CHECKF(fabs(r.kl_max - kl_max) <= 1e-2 * kl_max + 1e-6, "KL max %.10f, reference %.10f", r.kl_max, kl_max);
        CHECKF(fabs(r.top1 - agree / n_scored) < 1e-12, "top-1 %.6f, reference %.6f", r.top1, agree / n_scored);
        CHECK(r.kl_p50 <= r.kl_p90 && r.kl_p90 <= r.kl_p99 && r.kl_p99 <= r.kl_max);
        CHECK(r.kl_mean > 0);   /* precise and fast modes do differ */
        /* the paired PPL difference: mean and standard error of the per-token
         * NLL differences, from the two reference runs */
        double dm = 0, dv = 0;
        for (int k = 0; k < n_scored; k++) dm += (nll_q[k] - nll[k]) / n_scored;
        for (int k = 0; k < n_scored; k++) dv += (nll_q[k] - nll[k] - dm) * (nll_q[k] - nll[k] - dm) / (n_scored - 1);
        double dse = sqrt(dv / n_scored);
        CHECKF(fabs(r.ln_ratio - dm) <= 1e-2 * fabs(dm) + 1e-6, "ln ratio %.10f, reference %.10f", r.ln_ratio, dm);
        CHECKF(fabs(r.ln_ratio_se - dse) <= 1e-2 * dse + 1e-7, "ln ratio SE %.10f, reference %.10f", r.ln_ratio_se,
               dse);
        CHECKF(fabs(r.dppl - (r.ppl - r.base_ppl)) < 1e-12 && fabs(r.dppl_se - r.ppl * r.ln_ratio_se) < 1e-12,
               "PPL - base %g +/- %g", r.dppl, r.dppl_se);
        CHECK(dse > 0);
        printf("precise vs fast: KL %.3g (reference %.3g), top-1 %.4f\n", r.kl_mean, kl_mean, r.top1);
    }
    slm_ppl_free(p);

    /* mismatches and damage are errors, not garbage */
    pp.n_chunks = CHUNKS - 1;
    CHECK(slm_ppl_new(model, s, toks, n_toks, &pp, &p) == SLM_ERR_INVALID_ARG);
    CHECK(strstr(slm_last_error(), "windows") != NULL);
    pp.n_chunks = CHUNKS;
    slm_token other[CTX * CHUNKS + 5];
    memcpy(other, toks, sizeof other);
    other[CTX + 3] ^= 1;
    CHECK(slm_ppl_new(model, s, other, n_toks, &pp, &p) == SLM_ERR_INVALID_ARG);
    CHECK(truncate(base, 100) == 0);
    CHECK(slm_ppl_new(model, s, toks, n_toks, &pp, &p) == SLM_ERR_FORMAT);
    pp.kl_base = "no/such/file.kld";
    CHECK(slm_ppl_new(model, s, toks, n_toks, &pp, &p) == SLM_ERR_IO);
    pp.kl_base = NULL;
    pp.n_chunks = CHUNKS + 1;
    CHECK(slm_ppl_new(model, s, toks, n_toks, &pp, &p) == SLM_ERR_INVALID_ARG);
    pp.n_chunks = 0;
    CHECK(slm_ppl_new(model, s, toks, CTX - 1, &pp, &p) == SLM_ERR_INVALID_ARG);
    remove(base);
    free(kls);
    free(q_logits);
    free(ref_logits);
    slm_session_free(sp);
    slm_session_free(s);
}

/* Log-likelihood of `cont` after `ctx`, from one whole evaluation. */
static double ref_choice_ll(slm_session *s, const char *ctx, const char *cont) {
    slm_token *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    char joined[512];
    snprintf(joined, sizeof joined, "%s%s", ctx, cont);
    CHECK(slm_tokenize(model, ctx, strlen(ctx), true, false, &a, &na) == SLM_OK);
    CHECK(slm_tokenize(model, joined, strlen(joined), true, false, &b, &nb) == SLM_OK);
    size_t p = 0;
    while (p < na && p < nb && a[p] == b[p]) p++;
    slm_session_truncate(s, 0);
    CHECK(slm_session_eval(s, b, (int)nb, true) == SLM_OK);
    double ll = 0;
    for (size_t i = p; i < nb; i++) ll += ref_logprob(slm_session_logits_all(s) + (i - 1) * V, b[i]);
    free(a);
    free(b);
    return ll;
}

/* Greedy continuation, one token at a time from a full re-evaluation. */
static void ref_greedy(slm_session *s, const char *prompt, int n, char *out, size_t cap) {
    slm_token *t = NULL;
    size_t nt = 0;
    CHECK(slm_tokenize(model, prompt, strlen(prompt), true, true, &t, &nt) == SLM_OK);
    t = realloc(t, (nt + (size_t)n) * sizeof *t);
    size_t len = 0;
    out[0] = 0;
    for (int k = 0; k < n; k++) {
        slm_session_truncate(s, 0);
        CHECK(slm_session_eval(s, t, (int)nt, true) == SLM_OK);
        const float *row = slm_session_logits_all(s) + (nt - 1) * V;
        int best = 0;
        for (int i = 1; i < V; i++) if (row[i] > row[best]) best = i;
        if (slm_token_is_eog(model, best)) break;
        len += slm_token_to_bytes(model, best, false, out + len, cap - len - 1);
        out[len] = 0;
        t[nt++] = best;
    }
    free(t);
}

static void test_tasks(void) {
    slm_session *s = new_session(64, false);
    const char *ctx[3] = { "the lord", "and he shall", "in the" };
    const char *ch[3][3] = { { " unto them", " is", "xyz;" }, { " be", " not the", " go" }, { " a", " b", " all of" } };
    /* answers: the choice the reference scores best, so acc must be 1 */
    int best[3];
    double ref_ll[3][3];
    for (int i = 0; i < 3; i++) {
        best[i] = 0;
        for (int c = 0; c < 3; c++) {
            ref_ll[i][c] = ref_choice_ll(s, ctx[i], ch[i][c]);
            if (ref_ll[i][c] > ref_ll[i][best[i]]) best[i] = c;
        }
    }
    char gen[256], jsonl[4096];
    ref_greedy(s, "the lord", 12, gen, sizeof gen);
    char gen_json[512];   /* the reference text as a JSON string */
    size_t gj = 0;
    for (const char *c = gen; *c && gj < sizeof gen_json - 8; c++) {
        if (*c == '"' || *c == '\\') gen_json[gj++] = '\\';
        if (*c == '\n') { gen_json[gj++] = '\\'; gen_json[gj++] = 'n'; continue; }
        gen_json[gj++] = *c;
    }
    gen_json[gj] = 0;
    int n = 0;
    for (int i = 0; i < 3; i++)
        n += snprintf(jsonl + n, sizeof jsonl - (size_t)n,
                      "{\"type\": \"mc\", \"context\": \"%s\", \"choices\": [\"%s\", \"%s\", \"%s\"], \"answer\": %d}\n",
                      ctx[i], ch[i][0], ch[i][1], ch[i][2], i == 2 ? (best[i] + 1) % 3 : best[i]);
    n += snprintf(jsonl + n, sizeof jsonl - (size_t)n,
                  "\n{\"prompt\": \"the lord\", \"answer\": \"%s\", \"stop\": [], \"max_tokens\": 12}\n"
                  "{\"prompt\": \"the lord\", \"answers\": [\"nothing like it\"], \"stop\": [], \"max_tokens\": 12}\n",
                  gen_json);
    slm_task *t = NULL;
    CHECKF(slm_task_parse(jsonl, (size_t)n, &t) == SLM_OK, "%s", slm_last_error());
    if (t) {
        CHECK(slm_task_n_items(t) == 5 && slm_task_n_choices(t, 0) == 3 && slm_task_n_choices(t, 3) == 0);
        for (size_t i = 0; i < 5; i++) {
            double ll[3] = { 0 };
            slm_task_item_result r;
            CHECKF(slm_task_score(t, i, model, s, ll, &r) == SLM_OK, "%s", slm_last_error());
            if (i < 3) {
                for (int c = 0; c < 3; c++)
                    CHECKF(fabs(ll[c] - ref_ll[i][c]) <= 1e-3 * (1 + fabs(ref_ll[i][c])), "item %zu choice %d: %.6f vs %.6f",
                           i, c, ll[c], ref_ll[i][c]);
                CHECK(r.is_mc && r.pred == best[i] && r.correct == (i != 2));
                int bn = 0;
                for (int c = 1; c < 3; c++)
                    if (ref_ll[i][c] / strlen(ch[i][c]) > ref_ll[i][bn] / strlen(ch[i][bn])) bn = c;
                CHECK(r.pred_norm == bn);
            } else {
                CHECKF(!strcmp(r.generated, gen), "generated \"%s\", reference \"%s\"", r.generated, gen);
                CHECK(r.correct == (i == 3));
            }
        }
        slm_task_summary sum;
        slm_task_summary_get(t, &sum);
        CHECK(sum.n_mc == 3 && sum.n_gen == 2);
        CHECK(fabs(sum.acc - 2.0 / 3) < 1e-12 && fabs(sum.acc_se - sqrt(2.0 / 9 / 2)) < 1e-12);
        CHECK(fabs(sum.em - 0.5) < 1e-12 && fabs(sum.em_se - sqrt(0.25)) < 1e-12);
        slm_task_free(t);
    }

    /* stop strings cut the text: stop at the reference's second byte */
    if (strlen(gen) >= 3) {
        char stop[4] = { gen[1], gen[2], 0 };
        char line[600];
        char esc[16];
        snprintf(esc, sizeof esc, "%s", stop[0] == '"' || stop[0] == '\\' || stop[1] == '"' || stop[1] == '\\' ? "" : stop);
        if (*esc) {
            n = snprintf(line, sizeof line, "{\"prompt\": \"the lord\", \"answer\": \"%c\", \"stop\": [\"%s\"]}", gen[0], esc);
            CHECK(slm_task_parse(line, (size_t)n, &t) == SLM_OK);
            slm_task_item_result r;
            if (t && slm_task_score(t, 0, model, s, NULL, &r) == SLM_OK) {
                char *first = strstr(gen, esc);
                CHECK(first && strlen(r.generated) == (size_t)(first - gen) && r.correct == (first == gen + 1));
            }
            slm_task_free(t);
        }
    }

    /* bad input: named line, clear status */
    static const struct { const char *text, *needle; } bad[] = {
        { "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"answer\": 0}\n{\"context\": \"a\", \"choices\": [\" b\"", "line 2" },
        { "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"answer\": 2}", "answer" },
        { "{\"context\": \"a\", \"choices\": [\" b\", \"\"], \"answer\": 0}", "empty" },
        { "{\"type\": \"qa\", \"prompt\": \"x\", \"answer\": \"y\"}", "unknown type" },
        { "{\"prompt\": \"x\"}", "answers" },
        { "{\"prompt\": \"x\", \"answer\": \"y\", \"max_tokens\": 0}", "max_tokens" },
        { "[1, 2]", "object" },
        { "{\"context\": \"\\ud800\", \"choices\": [\"a\", \"b\"], \"answer\": 0}", "surrogate" },
        { "\n\n   \n", "no items" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = NULL;
        CHECKF(slm_task_parse(bad[i].text, strlen(bad[i].text), &t) == SLM_ERR_FORMAT && !t, "bad case %zu", i);
        CHECKF(strstr(slm_last_error(), bad[i].needle) != NULL, "case %zu: message \"%s\" lacks \"%s\"", i,
               slm_last_error(), bad[i].needle);
    }
    /* an item longer than the context */
    char longj[2048];
    n = snprintf(longj, sizeof longj, "{\"context\": \"");
    for (int i = 0; i < 80; i++) n += snprintf(longj + n, sizeof longj - (size_t)n, " the");
    snprintf(longj + n, sizeof longj - (size_t)n, "\", \"choices\": [\" a\", \" b\"], \"answer\": 0}");
    CHECK(slm_task_parse(longj, strlen(longj), &t) == SLM_OK);
    if (t) {
        slm_task_item_result r;
        CHECK(slm_task_score(t, 0, model, s, NULL, &r) == SLM_ERR_CONTEXT_FULL);
        CHECK(strstr(slm_last_error(), "context") != NULL);
        slm_task_free(t);
    }
    slm_session_free(s);
}

/* blk.0.attn_q's input is RMSNorm(embedding * sqrt(n_embd)) * attn_norm:
 * recomputed from the file's tensors. */
static void test_imatrix(void) {
    gguf_file *g = NULL;
    CHECK(gguf_open(MODEL, &g) == SLM_OK);
    if (!g) return;
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    const gguf_tensor *nw = gguf_find_tensor(g, "blk.0.attn_norm.weight");
    int E = (int)emb->ne[0];
    slm_token toks[20];
    for (int i = 0; i < 20; i++) toks[i] = i == 0 ? slm_token_bos(model) : 4 + (i * 37) % (V - 4);
    double ref[64] = { 0 };
    for (int i = 0; i < 20; i++) {
        const float *e = (const float *)emb->data + (size_t)toks[i] * E;
        double ss = 0;
        for (int c = 0; c < E; c++) ss += (double)e[c] * e[c] * E;
        double inv = 1 / sqrt(ss / E + 1e-6);
        for (int c = 0; c < E; c++) {
            double v = e[c] * sqrt((double)E) * inv * ((const float *)nw->data)[c];
            ref[c] += v * v;
        }
    }
    slm_session *s = new_session(32, false);
    slm_imcollect *im = NULL;
    CHECK(slm_imcollect_new(model, &im) == SLM_OK);
    if (!im) { slm_session_free(s); gguf_close(g); return; }
    CHECK(slm_imcollect_attach(im, s) == SLM_OK);
    CHECK(slm_session_eval(s, toks, 20, false) == SLM_OK);
    slm_imcollect_add_chunk(im);
    CHECK(slm_imcollect_attach(NULL, s) == SLM_OK);
    CHECK(slm_imcollect_n_entries(im) == 14);
    bool found = false;
    for (int i = 0; i < slm_imcollect_n_entries(im); i++) {
        const char *name;
        int n_in;
        const double *sum2;
        uint64_t count;
        CHECK(slm_imcollect_entry(im, i, &name, &n_in, &sum2, &count) == SLM_OK);
        CHECK(count == 20);
        if (strcmp(name, "blk.0.attn_q.weight")) continue;
        found = true;
        CHECK(n_in == E);
        for (int c = 0; c < E; c++) CHECKF(fabs(sum2[c] - ref[c]) <= 1e-4 * ref[c] + 1e-6, "column %d: %g vs %g", c, sum2[c], ref[c]);
    }
    CHECK(found);
    /* the file: llama.cpp's layout, read back with our reader */
    const char *path = "test_eval_imatrix.gguf";
    CHECK(slm_imcollect_save(im, path, "calib.txt", 20) == SLM_OK);
    gguf_file *o = NULL;
    CHECK(gguf_open(path, &o) == SLM_OK);
    if (o) {
        gguf_str ty;
        int64_t cc = 0, cs = 0;
        CHECK(gguf_get_str(o, "general.type", &ty) && gguf_str_eq(ty, "imatrix"));
        CHECK(gguf_get_i64(o, "imatrix.chunk_count", &cc) && cc == 1);
        CHECK(gguf_get_i64(o, "imatrix.chunk_size", &cs) && cs == 20);
        CHECK(o->n_tensors == 28);
        const gguf_tensor *ts = gguf_find_tensor(o, "blk.0.attn_q.weight.in_sum2");
        const gguf_tensor *tc = gguf_find_tensor(o, "blk.0.attn_q.weight.counts");
        CHECK(ts && ts->ne[0] == (uint64_t)E && ts->type == 0 && tc && ((const float *)tc->data)[0] == 20.0f);
        if (ts) CHECK(fabs(((const float *)ts->data)[3] - ref[3]) <= 1e-4 * ref[3]);
        gguf_close(o);
    }
    remove(path);
    slm_imcollect_free(im);
    slm_session_free(s);
    gguf_close(g);
}

int main(void) {
    if (slm_model_open(MODEL, &model) != SLM_OK) {
        fprintf(stderr, "cannot open %s: %s\n", MODEL, slm_last_error());
        return 1;
    }
    V = slm_vocab_size(model);
    test_perplexity();
    test_tasks();
    test_imatrix();
    slm_model_close(model);
    return test_finish();
}
