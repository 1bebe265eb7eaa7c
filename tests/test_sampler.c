/* Sampler tests: parameters, greedy, determinism, the distribution of the
 * draws against an independent brute-force reference (full sort, double
 * precision), each filter on hand-computed cases, the repetition penalty, and
 * a 262,144-token vocabulary (with the mean time per sample printed). */
#include "slm.h"
#include "sample/sample_math.h"
#include "testlib.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ---------------------------------------------------------------- */

/* Under the sanitizers (several times slower) the statistical checks use a
 * quarter of the draws; their bounds scale with the count. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif
static long draws(long n) { return SANITIZED ? n / 4 : n; }

static uint64_t lcg_state = 12345;
static double frand(void) { /* test-only PRNG, uniform [0,1) */
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(lcg_state >> 11) * (1.0 / 9007199254740992.0);
}
static double grand(void) { /* standard normal */
    double u = frand(), v = frand();
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static slm_sampler_params params(float t, int k, float p, float minp) {
    slm_sampler_params sp;
    slm_sampler_default_params(&sp);
    sp.temperature = t;
    sp.top_k = k;
    sp.top_p = p;
    sp.min_p = minp;
    sp.seed = 1234;
    return sp;
}

static slm_sampler *mk(const slm_sampler_params *sp, int n_vocab) {
    slm_sampler *s = NULL;
    slm_status st = slm_sampler_new(sp, n_vocab, &s);
    CHECKF(st == SLM_OK && s, "slm_sampler_new: %s", slm_last_error());
    return s;
}

static int argmax_ref(const float *l, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

static const float *g_sort_logits;
static int ref_cmp(const void *pa, const void *pb) {
    int a = *(const int *)pa, b = *(const int *)pb;
    float la = g_sort_logits[a], lb = g_sort_logits[b];
    if (la != lb) return la > lb ? -1 : 1;
    return (a > b) - (a < b);
}

/* The exact distribution the chain defines, computed the slow, obvious way:
 * full sort (logit desc, id asc), top-k, softmax with temperature over what is
 * left, top-p (smallest prefix with cumulative >= p), min-p, renormalise. */
static void ref_dist(const float *logits, int n, const slm_sampler_params *sp, double *prob) {
    int *idx = malloc((size_t)n * sizeof *idx);
    double *w = malloc((size_t)n * sizeof *w);
    for (int i = 0; i < n; i++) idx[i] = i;
    g_sort_logits = logits;
    qsort(idx, (size_t)n, sizeof *idx, ref_cmp);
    int m = (sp->top_k > 0 && sp->top_k < n) ? sp->top_k : n;
    double z = 0;
    for (int i = 0; i < m; i++) {
        w[i] = exp(((double)logits[idx[i]] - logits[idx[0]]) / sp->temperature);
        z += w[i];
    }
    int keep = m;
    if (sp->top_p < 1) {
        double c = 0;
        for (int i = 0; i < m; i++) {
            c += w[i] / z;
            if (c >= sp->top_p) { keep = i + 1; break; }
        }
    }
    memset(prob, 0, (size_t)n * sizeof *prob);
    double tot = 0;
    for (int i = 0; i < keep; i++) {
        if (sp->min_p > 0 && w[i] / z < sp->min_p * (w[0] / z)) continue;
        prob[idx[i]] = w[i];
        tot += w[i];
    }
    for (int i = 0; i < n; i++) prob[i] /= tot;
    free(idx);
    free(w);
}

/* Draws n_draws tokens and compares the counts with prob: tokens of
 * probability 0 must never come out; per token within 5 sigma; chi-square
 * far below its 1e-5 tail. Returns the chi-square statistic. */
static double check_freq(const char *what, slm_sampler *s, const float *logits, int n,
                         const double *prob, long n_draws) {
    n_draws = draws(n_draws);
    long *cnt = calloc((size_t)n, sizeof *cnt);
    float *buf = malloc((size_t)n * sizeof *buf);
    int bad_id = 0;
    /* the sampler may modify the logits, so each draw gets a fresh copy --
     * except for huge vocabularies, where the callers pass finite logits and
     * no penalty (nothing is modified then) */
    const int copy = n <= 100000;
    for (long d = 0; d < n_draws; d++) {
        if (copy) memcpy(buf, logits, (size_t)n * sizeof *buf);
        slm_token t = slm_sampler_sample(s, copy ? buf : (float *)logits);
        if (t < 0 || t >= n) { bad_id++; continue; }
        cnt[t]++;
    }
    CHECKF(bad_id == 0, "%s: %d ids out of range", what, bad_id);
    double chi2 = 0;
    int df = -1, zero_hits = 0, sigma_fail = 0;
    for (int i = 0; i < n; i++) {
        double e = prob[i] * (double)n_draws;
        if (prob[i] == 0) {
            if (cnt[i]) { zero_hits++; fprintf(stderr, "  %s: token %d (p=0) drawn %ld times\n", what, i, cnt[i]); }
            continue;
        }
        df++;
        double sd = sqrt(e * (1 - prob[i]));
        if (fabs((double)cnt[i] - e) > 5 * sd + 1) {
            sigma_fail++;
            fprintf(stderr, "  %s: token %d: %ld drawn, %.1f expected\n", what, i, cnt[i], e);
        }
        chi2 += ((double)cnt[i] - e) * ((double)cnt[i] - e) / e;
    }
    CHECKF(zero_hits == 0, "%s: %d tokens outside the kept set were drawn", what, zero_hits);
    CHECKF(sigma_fail == 0, "%s: %d tokens off by more than 5 sigma", what, sigma_fail);
    double bound = df + 6.0 * sqrt(2.0 * (df > 0 ? df : 1)) + 6.0;
    CHECKF(chi2 < bound, "%s: chi-square %.1f for %d dof (bound %.1f)", what, chi2, df, bound);
    free(cnt);
    free(buf);
    return chi2;
}

/* Draws n_draws tokens and checks that exactly the ids with want[i] come out. */
static void check_support(const char *what, slm_sampler *s, const float *logits, int n,
                          const unsigned char *want, long n_draws) {
    n_draws = draws(n_draws);
    unsigned char *seen = calloc((size_t)n, 1);
    float *buf = malloc((size_t)n * sizeof *buf);
    int outside = 0;
    for (long d = 0; d < n_draws; d++) {
        memcpy(buf, logits, (size_t)n * sizeof *buf);
        slm_token t = slm_sampler_sample(s, buf);
        if (t < 0 || t >= n || !want[t]) { outside++; continue; }
        seen[t] = 1;
    }
    int missing = 0;
    for (int i = 0; i < n; i++) missing += want[i] && !seen[i];
    CHECKF(outside == 0, "%s: %d draws outside the expected set", what, outside);
    CHECKF(missing == 0, "%s: %d tokens of the expected set never drawn", what, missing);
    free(seen);
    free(buf);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_exp(void) {
    /* the libm-free e^-d against exp() in double */
    double worst = 0;
    float worst_d = 0;
    for (int i = 0; i <= 2000000; i++) {
        float d = (float)i * (86.99f / 2000000.0f);
        double want = exp(-(double)d), got = slm_exp_neg(d);
        double rel = fabs(got - want) / want;
        if (rel > worst) { worst = rel; worst_d = d; }
    }
    printf("slm_exp_neg: max relative error %.3g (at d = %g)\n", worst, (double)worst_d);
    CHECKF(worst < 2.5e-7, "slm_exp_neg relative error %g at d = %g", worst, (double)worst_d);
    CHECK(slm_exp_neg(0.0f) == 1.0f);
    CHECK(slm_exp_neg(INFINITY) == 0.0f);
    CHECK(slm_exp_neg(NAN) == 0.0f);
    CHECK(slm_exp_neg(87.0f) == 0.0f);
    CHECK(slm_exp_neg(1e30f) == 0.0f);
    float prev = 2.0f; /* monotone (non-increasing) on a fine grid */
    int mono = 1;
    for (int i = 0; i < 100000; i++) {
        float v = slm_exp_neg((float)i * 1e-4f);
        if (v > prev) mono = 0;
        prev = v;
    }
    CHECK(mono);
}

static void test_defaults(void) {
    slm_sampler_params p;
    memset(&p, 0xAB, sizeof p);
    slm_sampler_default_params(&p);
    CHECK(p.temperature == 0.8f);
    CHECK(p.top_k == 40);
    CHECK(p.top_p == 0.95f);
    CHECK(p.min_p == 0.05f);
    CHECK(p.repeat_penalty == 1.0f);
    CHECK(p.repeat_last_n == 64);
    CHECK(p.seed == 0);
}

static void expect_invalid(const char *what, const slm_sampler_params *p, int n_vocab) {
    slm_sampler *s = (slm_sampler *)&s; /* must be overwritten with NULL */
    slm_status st = slm_sampler_new(p, n_vocab, &s);
    CHECKF(st == SLM_ERR_INVALID_ARG, "%s: status %d", what, (int)st);
    CHECKF(s == NULL, "%s: out not NULL", what);
    CHECKF(slm_last_error()[0] != '\0', "%s: no message", what);
    if (st == SLM_OK) slm_sampler_free(s);
}

static void expect_valid(const char *what, const slm_sampler_params *p, int n_vocab) {
    slm_sampler *s = NULL;
    slm_status st = slm_sampler_new(p, n_vocab, &s);
    CHECKF(st == SLM_OK && s, "%s: %s", what, slm_last_error());
    if (s) {
        float l[4] = {0, 1, 3, 2};
        slm_token t = slm_sampler_sample(s, l);
        CHECKF(t >= 0 && t < 4, "%s: sampled %d", what, (int)t);
    }
    slm_sampler_free(s);
}

static void test_invalid(void) {
    slm_sampler_params d, p;
    slm_sampler_default_params(&d);
    expect_invalid("n_vocab 0", &d, 0);
    expect_invalid("n_vocab -5", &d, -5);
    p = d; p.temperature = NAN; expect_invalid("temperature NaN", &p, 4);
    p = d; p.temperature = INFINITY; expect_invalid("temperature inf", &p, 4);
    p = d; p.top_p = 0; expect_invalid("top_p 0", &p, 4);
    p = d; p.top_p = -0.5f; expect_invalid("top_p -0.5", &p, 4);
    p = d; p.top_p = NAN; expect_invalid("top_p NaN", &p, 4);
    p = d; p.min_p = NAN; expect_invalid("min_p NaN", &p, 4);
    p = d; p.min_p = 1.5f; expect_invalid("min_p 1.5", &p, 4);
    p = d; p.repeat_penalty = 0; expect_invalid("repeat_penalty 0", &p, 4);
    p = d; p.repeat_penalty = -1; expect_invalid("repeat_penalty -1", &p, 4);
    p = d; p.repeat_penalty = NAN; expect_invalid("repeat_penalty NaN", &p, 4);
    p = d; p.repeat_penalty = INFINITY; expect_invalid("repeat_penalty inf", &p, 4);
    p = d; p.repeat_last_n = -1; expect_invalid("repeat_last_n -1", &p, 4);
    CHECK(slm_sampler_new(NULL, 4, &(slm_sampler *){NULL}) == SLM_ERR_INVALID_ARG);
    CHECK(slm_sampler_new(&d, 4, NULL) == SLM_ERR_INVALID_ARG);
    /* values documented as "off" are accepted */
    p = d; p.top_p = 1.5f; expect_valid("top_p 1.5 (off)", &p, 4);
    p = d; p.top_k = -3; expect_valid("top_k -3 (off)", &p, 4);
    p = d; p.top_k = 100; expect_valid("top_k > n_vocab", &p, 4);
    p = d; p.min_p = -1; expect_valid("min_p -1 (off)", &p, 4);
    p = d; p.temperature = -1; expect_valid("temperature -1 (greedy)", &p, 4);
    p = d; p.repeat_last_n = 0; p.repeat_penalty = 1.3f; expect_valid("repeat_last_n 0", &p, 4);
    slm_sampler_free(NULL); /* no-op */
    slm_sampler_accept(NULL, 3);
    slm_sampler_reset(NULL);
    CHECK(slm_sampler_sample(NULL, NULL) == -1);
}

static void test_greedy(void) {
    slm_sampler_params p = params(0.0f, 40, 0.95f, 0.05f);
    slm_sampler *s = mk(&p, 5);
    float a[5] = {1, 5, 3, 5, 5};
    CHECK(slm_sampler_sample(s, a) == 1); /* ties -> lowest id */
    float b[5] = {NAN, 2, NAN, 2, -1};
    CHECK(slm_sampler_sample(s, b) == 1); /* NaN ignored */
    float c[5] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    CHECK(slm_sampler_sample(s, c) == 0);
    float d[5] = {-3, -2, -7, -2.5f, -9};
    CHECK(slm_sampler_sample(s, d) == 1);
    slm_sampler_free(s);

    /* random vectors, temperature 0 and negative */
    enum { N = 3000 };
    static float l[N];
    for (int rep = 0; rep < 50; rep++) {
        p.temperature = rep % 2 ? 0.0f : -1.0f;
        s = mk(&p, N);
        for (int i = 0; i < N; i++) l[i] = (float)grand();
        if (rep % 5 == 0) { l[17] = 9; l[2000] = 9; } /* a tie */
        int want = argmax_ref(l, N);
        CHECKF(slm_sampler_sample(s, l) == want, "greedy rep %d", rep);
        slm_sampler_free(s);
    }
}

/* Reference PRNG, written from the published definitions (splitmix64 seeding,
 * xoshiro256**), for a known-answer test of the random stream. */
static uint64_t ref_sm(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t ref_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t ref_xo(uint64_t *s) {
    uint64_t r = ref_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = ref_rotl(s[3], 45);
    return r;
}

static void test_seeds(void) {
    enum { V = 50, N = 2000 };
    float l[V];
    for (int i = 0; i < V; i++) l[i] = (float)grand();
    static slm_token a[N], b[N], c[N], r[N];
    slm_sampler_params p = params(1.0f, 0, 1.0f, 0.0f);
    slm_sampler_params pk = params(0.9f, 20, 0.9f, 0.02f); /* the top-k path too */
    for (int variant = 0; variant < 2; variant++) {
        slm_sampler_params q = variant ? pk : p;
        q.seed = 42;
        slm_sampler *s1 = mk(&q, V), *s2 = mk(&q, V);
        q.seed = 43;
        slm_sampler *s3 = mk(&q, V);
        float buf[V];
        for (int i = 0; i < N; i++) {
            memcpy(buf, l, sizeof buf); a[i] = slm_sampler_sample(s1, buf);
            memcpy(buf, l, sizeof buf); b[i] = slm_sampler_sample(s2, buf);
            memcpy(buf, l, sizeof buf); c[i] = slm_sampler_sample(s3, buf);
        }
        slm_sampler_reset(s1); /* reset restarts the stream */
        for (int i = 0; i < N; i++) { memcpy(buf, l, sizeof buf); r[i] = slm_sampler_sample(s1, buf); }
        int same_ab = 0, same_ac = 0, same_ar = 0;
        for (int i = 0; i < N; i++) {
            same_ab += a[i] == b[i];
            same_ac += a[i] == c[i];
            same_ar += a[i] == r[i];
        }
        CHECKF(same_ab == N, "variant %d: same seed gave %d/%d equal draws", variant, same_ab, N);
        CHECKF(same_ar == N, "variant %d: after reset %d/%d equal draws", variant, same_ar, N);
        CHECKF(same_ac < N / 2, "variant %d: seeds 42 and 43 agree on %d/%d draws", variant, same_ac, N);
        slm_sampler_free(s1); slm_sampler_free(s2); slm_sampler_free(s3);
    }

    /* Known answer: 256 equal logits, no filters -> token = top 8 bits of the
     * xoshiro256** output (seeded by splitmix64), on every platform. */
    uint64_t x = 0;
    CHECK(ref_sm(&x) == 0xE220A8397B1DCDAFull); /* published splitmix64(0) */
    float u[256];
    for (int i = 0; i < 256; i++) u[i] = 0.25f;
    for (int si = 0; si < 3; si++) {
        uint64_t seed = si == 0 ? 0 : si == 1 ? 1 : 0xDEADBEEFCAFEull;
        slm_sampler_params q = params(0.7f, 0, 1.0f, 0.0f);
        q.seed = seed;
        slm_sampler *s = mk(&q, 256);
        uint64_t st[4], sx = seed;
        for (int i = 0; i < 4; i++) st[i] = ref_sm(&sx);
        int ok = 0;
        for (int i = 0; i < 1000; i++) ok += slm_sampler_sample(s, u) == (slm_token)(ref_xo(st) >> 56);
        CHECKF(ok == 1000, "seed %llu: %d/1000 draws match the reference stream",
               (unsigned long long)seed, ok);
        slm_sampler_free(s);
    }
}

static void test_distribution(void) {
    enum { V = 10 };
    const float l[V] = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -2.0f, -3.0f, -5.0f};
    double prob[V];
    struct { const char *name; float t; int k; float p, minp; } cases[] = {
        {"full softmax T=1", 1.0f, 0, 1.0f, 0.0f},
        {"full softmax T=0.7", 0.7f, 0, 1.0f, 0.0f},
        {"full softmax T=2.5", 2.5f, 0, 1.0f, 0.0f},
        {"top-k 5 T=1", 1.0f, 5, 1.0f, 0.0f},
        {"top-p 0.8 T=1", 1.0f, 0, 0.8f, 0.0f},
        {"min-p 0.1 T=0.8", 0.8f, 0, 1.0f, 0.1f},
        {"top-k 7 top-p 0.9 min-p 0.05 T=1.3", 1.3f, 7, 0.9f, 0.05f},
        {"top-p 0.97 min-p 0.02 T=1.1", 1.1f, 0, 0.97f, 0.02f},
        {"defaults", 0.8f, 40, 0.95f, 0.05f},
        {"top-k 8 min-p 0.1 T=1.2", 1.2f, 8, 1.0f, 0.1f},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        slm_sampler_params p = params(cases[ci].t, cases[ci].k, cases[ci].p, cases[ci].minp);
        p.seed = 1000 + ci;
        slm_sampler *s = mk(&p, V);
        ref_dist(l, V, &p, prob);
        check_freq(cases[ci].name, s, l, V, prob, 200000);
        slm_sampler_free(s);
    }
    /* the exact softmax by hand for the first case (guards ref_dist itself) */
    slm_sampler_params p = params(1.0f, 0, 1.0f, 0.0f);
    ref_dist(l, V, &p, prob);
    double z = 0;
    for (int i = 0; i < V; i++) z += exp(l[i]);
    CHECK(fabs(prob[0] - exp(2.0) / z) < 1e-12);
    CHECK(fabs(prob[9] - exp(-5.0) / z) < 1e-12);

    /* a mid-size vocabulary with a long tail: 100k draws of the full softmax
     * and of top-p with many candidates (exercises the histogram cut) */
    enum { M = 2000 };
    static float lm[M];
    static double pm[M];
    for (int i = 0; i < M; i++) lm[i] = (float)(1.5 * grand());
    for (int v = 0; v < 2; v++) {
        slm_sampler_params q = params(1.0f, 0, v ? 0.6f : 1.0f, 0.0f);
        q.seed = 77 + v;
        slm_sampler *s = mk(&q, M);
        ref_dist(lm, M, &q, pm);
        int nz = 0;
        for (int i = 0; i < M; i++) nz += pm[i] > 0;
        if (v) CHECKF(nz > 50 && nz < 400, "top-p set of %d tokens", nz); /* many candidates */
        check_freq(v ? "2000-vocab top-p 0.6" : "2000-vocab full softmax", s, lm, M, pm, 200000);
        slm_sampler_free(s);
    }
}

static void test_top_k(void) {
    enum { V = 1000 };
    static float l[V];
    for (int rep = 0; rep < 40; rep++) {
        for (int i = 0; i < V; i++) l[i] = (float)(3 * grand());
        if (rep % 4 == 0) l[rep * 7] = l[argmax_ref(l, V)]; /* a tie for the max */
        int want = argmax_ref(l, V);
        slm_sampler_params p = params(1.0f + rep * 0.1f, 1, 1.0f, 0.0f);
        p.seed = rep;
        slm_sampler *s = mk(&p, V);
        int ok = 0;
        for (int d = 0; d < 20; d++) ok += slm_sampler_sample(s, l) == want;
        CHECKF(ok == 20, "top-k 1 rep %d: %d/20 equal the argmax %d", rep, ok, want);
        slm_sampler_free(s);
    }

    /* top-k 10 on a flat distribution: exactly the 10 best come out, with the
     * softmax renormalised over them */
    for (int i = 0; i < V; i++) l[i] = (float)grand();
    static double prob[V];
    slm_sampler_params p = params(3.0f, 10, 1.0f, 0.0f);
    slm_sampler *s = mk(&p, V);
    ref_dist(l, V, &p, prob);
    int nz = 0;
    for (int i = 0; i < V; i++) nz += prob[i] > 0;
    CHECK(nz == 10);
    check_freq("top-k 10 of 1000", s, l, V, prob, 100000);
    slm_sampler_free(s);

    /* ties at the boundary go to the lower ids */
    for (int i = 0; i < V; i++) l[i] = 0.5f;
    l[900] = 1.0f;
    unsigned char want[V] = {0};
    want[900] = want[0] = want[1] = 1;
    p = params(1.0f, 3, 1.0f, 0.0f);
    s = mk(&p, V);
    check_support("top-k 3 with ties", s, l, V, want, 5000);
    slm_sampler_free(s);
}

/* probabilities 0.4 0.3 0.2 0.06 0.04 at temperature 1 */
static const float known_l[5] = {-0.91629073f, -1.2039728f, -1.6094379f, -2.8134107f, -3.2188758f};

static void known_set(const char *name, float t, int k, float p, float minp, const char *set) {
    unsigned char want[5] = {0};
    for (const char *c = set; *c; c++) want[*c - '0'] = 1;
    slm_sampler_params sp = params(t, k, p, minp);
    slm_sampler *s = mk(&sp, 5);
    check_support(name, s, known_l, 5, want, 20000);
    /* and the frequencies are the renormalised probabilities */
    double prob[5], z = 0, pk[5] = {0.4, 0.3, 0.2, 0.06, 0.04};
    for (int i = 0; i < 5; i++) z += want[i] ? pk[i] : 0;
    for (int i = 0; i < 5; i++) prob[i] = want[i] ? pk[i] / z : 0;
    if (t == 1.0f) check_freq(name, s, known_l, 5, prob, 100000);
    slm_sampler_free(s);
}

static void test_top_p_min_p(void) {
    known_set("top-p 0.3", 1.0f, 0, 0.3f, 0.0f, "0");
    known_set("top-p 0.65", 1.0f, 0, 0.65f, 0.0f, "01");
    known_set("top-p 0.72", 1.0f, 0, 0.72f, 0.0f, "012");
    known_set("top-p 0.85", 1.0f, 0, 0.85f, 0.0f, "012");
    known_set("top-p 0.95", 1.0f, 0, 0.95f, 0.0f, "0123");
    known_set("top-p 0.99", 1.0f, 0, 0.99f, 0.0f, "01234");
    /* after top-k 4 the softmax is over 4 tokens: 0.4/0.96 + 0.3/0.96 = 0.729 >= 0.72 */
    known_set("top-k 4, top-p 0.72", 1.0f, 4, 0.72f, 0.0f, "01");
    known_set("min-p 0.2", 1.0f, 0, 1.0f, 0.2f, "012");  /* keeps p >= 0.08 */
    known_set("min-p 0.12", 1.0f, 0, 1.0f, 0.12f, "0123"); /* keeps p >= 0.048 */
    known_set("min-p 0.8", 1.0f, 0, 1.0f, 0.8f, "0");
    known_set("top-k 4, min-p 0.12", 1.0f, 4, 1.0f, 0.12f, "0123");
    known_set("top-p 0.95 + min-p 0.2", 1.0f, 0, 0.95f, 0.2f, "012");
    known_set("top-k 3 + min-p 0.12", 1.0f, 3, 1.0f, 0.12f, "012");
    known_set("top-k 4, min-p 0.2", 1.0f, 4, 1.0f, 0.2f, "012"); /* min-p inside top-k */

    /* min-p right at its boundary: p / p_max = 0.1999 goes, 0.2001 stays */
    {
        const float lb[6] = {0.0f, logf(0.1999f), logf(0.2001f), -5.0f, logf(0.1999f), logf(0.2001f)};
        unsigned char wb[6] = {1, 0, 1, 0, 0, 1};
        for (int k = 0; k <= 5; k += 5) { /* top-k off, and top-k 5 of 6 */
            slm_sampler_params q = params(1.0f, k, 1.0f, 0.2f);
            slm_sampler *s = mk(&q, 6);
            check_support(k ? "min-p boundary, top-k 5" : "min-p boundary", s, lb, 6, wb, 20000);
            slm_sampler_free(s);
            q.top_p = 0.999f; /* the same with top-p on (sorted candidates) */
            s = mk(&q, 6);
            check_support(k ? "min-p boundary, top-k 5, top-p" : "min-p boundary, top-p", s, lb, 6, wb, 20000);
            slm_sampler_free(s);
        }
    }

    /* flat: 1000 equal logits, top-p 0.4995 -> ids 0..499 exactly (ties by id) */
    enum { V = 1000 };
    static float l[V];
    static unsigned char want[V];
    for (int i = 0; i < V; i++) { l[i] = -1.25f; want[i] = i < 500; }
    slm_sampler_params p = params(1.0f, 0, 0.4995f, 0.0f);
    slm_sampler *s = mk(&p, V);
    check_support("flat top-p", s, l, V, want, 30000);
    slm_sampler_free(s);
    /* min-p 1: only the tied maxima survive */
    for (int i = 0; i < V; i++) { l[i] = (float)grand(); want[i] = 0; }
    l[10] = l[500] = l[999] = 8;
    want[10] = want[500] = want[999] = 1;
    p = params(1.0f, 0, 1.0f, 1.0f);
    s = mk(&p, V);
    check_support("min-p 1", s, l, V, want, 3000);
    slm_sampler_free(s);
}

/* OpenAI's presence and frequency penalties, worked by hand:
 * logit -= frequency * count + presence * (count > 0). */
static void test_presence_frequency(void) {
    slm_sampler_params p = params(0.0f, 0, 1.0f, 0.0f);
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    const float base[4] = {3.0f, 2.5f, 1.0f, 0.9f};
    float l[4];
    slm_sampler *s = mk(&p, 4);
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 0 && l[0] == 3.0f); /* nothing seen yet */
    slm_sampler_accept(s, 0);
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 1); /* 3 - 0.25 - 0.5 = 2.25 < 2.5 */
    CHECKF(fabsf(l[0] - 2.25f) < 1e-6f, "logit %g", (double)l[0]);
    slm_sampler_accept(s, 1);
    slm_sampler_accept(s, 1);
    slm_sampler_accept(s, 1);
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 0); /* 2.25 vs 2.5 - 0.75 - 0.5 = 1.25 */
    CHECKF(fabsf(l[1] - 1.25f) < 1e-6f, "logit %g", (double)l[1]);
    CHECK(l[2] == 1.0f && l[3] == 0.9f);
    slm_sampler_reset(s); /* forgets the counts */
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 0 && l[0] == 3.0f && l[1] == 2.5f);
    slm_sampler_free(s);

    /* negative values encourage repetition; in the sampling chain too */
    p = params(1.0f, 1, 1.0f, 0.0f);
    p.presence_penalty = -3.0f;
    s = mk(&p, 4);
    slm_sampler_accept(s, 3);
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 3); /* 0.9 + 3 = 3.9 > 3.0 */
    slm_sampler_free(s);

    p = params(0.0f, 0, 1.0f, 0.0f);
    p.frequency_penalty = NAN;
    expect_invalid("frequency_penalty NaN", &p, 4);
    p.frequency_penalty = 0;
    p.presence_penalty = INFINITY;
    expect_invalid("presence_penalty inf", &p, 4);
}

static void test_repetition_penalty(void) {
    slm_sampler_params p = params(0.0f, 0, 1.0f, 0.0f);
    p.repeat_penalty = 1.1f;
    p.repeat_last_n = 3;
    slm_sampler *s = mk(&p, 6);
    const float base[6] = {2.0f, 1.9f, -1.0f, -1.05f, 0.5f, -4.0f};
    float l[6];
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 0);
    slm_sampler_accept(s, 0);
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 1); /* 2.0 / 1.1 = 1.818 < 1.9 */
    CHECK(fabsf(l[0] - 2.0f / 1.1f) < 1e-6f);
    slm_sampler_accept(s, 0); /* twice in the window: still penalised once */
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 1);
    CHECKF(fabsf(l[0] - 2.0f / 1.1f) < 1e-6f, "logit %g", (double)l[0]);
    slm_sampler_accept(s, 4);
    slm_sampler_accept(s, 5);
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 1); /* window: 0 4 5 */
    CHECK(fabsf(l[5] - (-4.0f * 1.1f)) < 1e-6f); /* negative: multiplied */
    CHECK(fabsf(l[4] - 0.5f / 1.1f) < 1e-6f);
    slm_sampler_accept(s, 4); /* window now 4 5 4: token 0 left it */
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 0);
    CHECK(l[0] == 2.0f);
    slm_sampler_accept(s, 0);
    slm_sampler_reset(s);
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 0);
    slm_sampler_accept(s, -1); /* out of range: ignored */
    slm_sampler_accept(s, 6);
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 0);
    slm_sampler_free(s);

    /* negative logits: multiplying pushes the repeated token down */
    const float neg[3] = {-1.0f, -1.05f, -3.0f};
    p.repeat_last_n = 64;
    s = mk(&p, 3);
    memcpy(l, neg, sizeof neg);
    CHECK(slm_sampler_sample(s, l) == 0);
    slm_sampler_accept(s, 0);
    memcpy(l, neg, sizeof neg);
    CHECK(slm_sampler_sample(s, l) == 1); /* -1.1 < -1.05 */
    slm_sampler_free(s);

    /* also in the sampling chain (top-k 1 at temperature 1) */
    p = params(1.0f, 1, 1.0f, 0.0f);
    p.repeat_penalty = 1.1f;
    s = mk(&p, 6);
    slm_sampler_accept(s, 0);
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 1);
    slm_sampler_free(s);

    /* penalty 1 or window 0: off */
    p = params(0.0f, 0, 1.0f, 0.0f);
    s = mk(&p, 6);
    slm_sampler_accept(s, 0);
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 0 && l[0] == 2.0f);
    slm_sampler_free(s);
    p.repeat_penalty = 1.5f;
    p.repeat_last_n = 0;
    s = mk(&p, 6);
    slm_sampler_accept(s, 0);
    memcpy(l, base, sizeof l);
    CHECK(slm_sampler_sample(s, l) == 0 && l[0] == 2.0f);
    slm_sampler_free(s);
}

static void test_temperature_half(void) {
    /* T 0.5: p ~ {.16 .09 .04 .0036 .0016}/.2952 = .542 .305 .136 .012 .005:
     * top-p 0.85 needs three tokens (.847 < .85), top-p 0.84 two */
    unsigned char w3[5] = {1, 1, 1, 0, 0}, w2[5] = {1, 1, 0, 0, 0};
    slm_sampler_params p = params(0.5f, 0, 0.85f, 0.0f);
    slm_sampler *s = mk(&p, 5);
    check_support("T 0.5 top-p 0.85", s, known_l, 5, w3, 20000);
    slm_sampler_free(s);
    p.top_p = 0.84f;
    s = mk(&p, 5);
    check_support("T 0.5 top-p 0.84", s, known_l, 5, w2, 20000);
    slm_sampler_free(s);
}

static void test_big_vocab(void) {
    enum { V = 262144 };
    float *l = malloc(V * sizeof *l);
    double *prob = malloc(V * sizeof *prob);
    unsigned char *want = malloc(V);
    /* logit-like values: a broad bulk plus a few dozen strong candidates */
    for (int i = 0; i < V; i++) l[i] = (float)(2.0 * grand() - 4.0);
    for (int j = 0; j < 40; j++) l[(j * 7919 + 13) % V] = (float)(8.0 + 4.0 * frand());

    /* exactness on the full vocabulary: all logits 0 but one with e^x = V:
     * that token has probability V / (2V - 1) ~ 0.5 only if the whole tail
     * is counted */
    float *flat = malloc(V * sizeof *flat);
    for (int i = 0; i < V; i++) flat[i] = 0.0f;
    flat[1000] = logf((float)V);
    slm_sampler_params p = params(1.0f, 0, 1.0f, 0.0f);
    slm_sampler *s = mk(&p, V);
    int hits = 0, n = 4000;
    for (int d = 0; d < n; d++) hits += slm_sampler_sample(s, flat) == 1000;
    double e = n * (double)V / (2.0 * V - 1), sd = sqrt(e * 0.5);
    CHECKF(fabs(hits - e) < 5 * sd, "full softmax over 262144: %d hits, %.0f expected", hits, e);
    slm_sampler_free(s);
    /* the same with top-p 0.75: the histogram must see the tail mass too ->
     * token 1000 plus the first ~131k tied tokens; check the id range */
    p = params(1.0f, 0, 0.75f, 0.0f);
    s = mk(&p, V);
    ref_dist(flat, V, &p, prob);
    int maxid = 0;
    for (int i = 0; i < V; i++)
        if (prob[i] > 0 && i != 1000) maxid = i;
    int outside = 0, hit1000 = 0;
    n = 100; /* the worst case: ~196k tied candidates sorted per draw */
    for (int d = 0; d < n; d++) {
        slm_token t = slm_sampler_sample(s, flat);
        outside += t < 0 || t >= V || prob[t] == 0;
        hit1000 += t == 1000;
    }
    CHECKF(outside == 0, "flat 262144 top-p 0.75: %d draws outside the set (last id %d)", outside, maxid);
    e = n * prob[1000];
    CHECKF(fabs(hit1000 - e) < 5 * sqrt(e) + 1, "flat 262144 top-p: token 1000 %d vs %.0f", hit1000, e);
    slm_sampler_free(s);
    free(flat);

    /* realistic logits: every configuration draws only from the reference set */
    struct { const char *name; float t; int k; float p, minp; } cases[] = {
        {"defaults (T .8, k 40, p .95, min-p .05)", 0.8f, 40, 0.95f, 0.05f},
        {"k 0, p .95, min-p .05", 0.8f, 0, 0.95f, 0.05f},
        {"k 0, p .95", 1.0f, 0, 0.95f, 0.0f},
        {"k 0, min-p .05", 1.0f, 0, 1.0f, 0.05f},
        {"full softmax", 1.0f, 0, 1.0f, 0.0f},
        {"greedy", 0.0f, 40, 0.95f, 0.05f},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        p = params(cases[ci].t, cases[ci].k, cases[ci].p, cases[ci].minp);
        s = mk(&p, V);
        int reps = 100;
        slm_token first = -1;
        double t0 = now_us();
        for (int r = 0; r < reps; r++) {
            slm_token t = slm_sampler_sample(s, l); /* finite, no penalty: l is not modified */
            if (r == 0) first = t;
        }
        double us = (now_us() - t0) / reps;
        printf("262144-token vocabulary, %-40s %8.1f us/sample\n", cases[ci].name, us);
        if (p.temperature > 0) {
            ref_dist(l, V, &p, prob);
            int nset = 0;
            for (int i = 0; i < V; i++) { want[i] = prob[i] > 0; nset += want[i]; }
            int out = 0;
            for (int r = 0; r < 200; r++) {
                slm_token t = slm_sampler_sample(s, l);
                out += t < 0 || t >= V || !want[t];
            }
            CHECKF(out == 0, "%s: %d of 200 draws outside the reference set (%d tokens)",
                   cases[ci].name, out, nset);
            if (nset <= 60) { /* small set: compare the frequencies too */
                slm_sampler_reset(s);
                check_freq(cases[ci].name, s, l, V, prob, 3000);
            }
        } else {
            CHECK(first == argmax_ref(l, V));
        }
        slm_sampler_free(s);
    }
    free(l);
    free(prob);
    free(want);
}

int main(void) {
    test_exp();
    test_defaults();
    test_invalid();
    test_greedy();
    test_seeds();
    test_distribution();
    test_top_k();
    test_top_p_min_p();
    test_temperature_half();
    test_repetition_penalty();
    test_presence_frequency();
    test_big_vocab();
    return test_finish();
}
