/* Token sampler: greedy, or repetition/presence/frequency penalties -> top-k -> temperature ->
 * softmax -> top-p -> min-p -> renormalise -> seeded draw.
 *
 * Exactness: every filter is applied exactly as defined (ties between equal
 * logits are broken by the lower token id, so the kept set is well defined);
 * with top_k, top_p and min_p all off the draw is from the full softmax over
 * the whole vocabulary. The tricks below only avoid work, never change which
 * tokens are kept:
 *
 *  - top-k on: a bounded min-heap keeps the k best (logit desc, id asc) in one
 *    pass over the vocabulary, O(V + V' log k) where V' is the number of heap
 *    replacements (small for real logits); then the k candidates are sorted.
 *    The softmax, top-p and min-p then work on those k only.
 *  - top-k off: the softmax is over the whole vocabulary. One pass finds the
 *    max logit M; with d = (M - l) / T, a token's unnormalised weight is
 *    w = exp(-d). min-p keeps exactly the tokens with w >= min_p (p_max has
 *    w = 1), i.e. d <= -log(min_p): tokens beyond that (plus a safety margin)
 *    are never candidates. If top-p is on, a second pass sums Z = sum w over
 *    the whole vocabulary (so top-p sees the true probabilities). When min-p
 *    does not already bound d tightly (min_p < 0.0068 or off), that pass also
 *    builds a histogram of the mass by d: the top-p set is a prefix of the
 *    tokens in d order, so only the tokens in the buckets up to (and one past)
 *    the first bucket where the cumulative mass reaches top_p * Z can be in
 *    it. Only the candidates are sorted; with top-p off nothing is sorted.
 *    Worst case (an almost flat distribution with top-p) sorts most of the
 *    vocabulary; real logits give a few to a few thousand candidates.
 *  - all three off: one pass of block sums (256 tokens each), then the draw
 *    finds its block and recomputes the weights of that block only.
 *  The full-vocabulary passes compute exp on 4 lanes at a time (sample_math.h).
 *
 * All buffers are allocated in slm_sampler_new; sampling allocates nothing.
 *
 * Determinism: the PRNG is xoshiro256** seeded by splitmix64 from the seed,
 * a pure 64-bit integer computation, so the random stream is the same on every
 * platform; each non-greedy sample consumes exactly one 64-bit draw. The
 * weights use slm_exp_neg (sample_math.h: IEEE +, -, * only, no libm), sums
 * are in double in a fixed order and ties are broken by id, so for the same
 * logits the same seed gives the same tokens on any IEEE-754 platform that
 * evaluates float in float (FLT_EVAL_METHOD 0: x86-64 SSE, AArch64).
 *
 * The repetition penalty also applies when greedy (temperature <= 0).
 * NaN logits are treated as -inf. If the best logit is +inf or every logit is
 * -inf/NaN, the result is the argmax (lowest id among the best). */
#include "base/status.h"
#include "grammar/grammar_int.h"
#include "sample/sample_math.h"
#include "slm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    float logit;
    int32_t id;
} cand;

#define HIST_BUCKETS 128
#define HIST_SCALE 4.0f /* buckets per unit of d = (M - l) / T */
#define BLOCK 256       /* tokens per block in the full-vocabulary passes */

struct slm_sampler {
    slm_sampler_params p;
    int n_vocab;
    uint64_t rng[4];
    /* repetition penalty: ring of the last repeat_last_n accepted tokens */
    slm_token *ring;
    int ring_len, ring_pos;
    uint32_t *stamp; /* per token: epoch of the last penalty application */
    uint32_t epoch;
    /* presence/frequency penalties: count per token and the distinct tokens seen */
    int32_t *count;
    slm_token *seen;
    int n_seen;
    cand *cand;      /* n_vocab (or top_k) candidates */
    slm_grammar *grammar; /* borrowed; NULL: unconstrained */
    cand *gcand;     /* with a grammar and top-k: the best candidates checked after a refusal */
    double *bsum;    /* per block of BLOCK tokens: sum of the weights (top-k off) */
    double hist[4][HIST_BUCKETS]; /* 4 interleaved copies: no store-to-load chain */
    float wblk[BLOCK];
};

/* ---- PRNG: splitmix64 seeding, xoshiro256** ------------------------------ */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void seed_rng(slm_sampler *s) {
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

/* uniform in [0, 1) with 53 random bits */
static double rng_uniform(slm_sampler *s) {
    return (double)(xoshiro_next(s->rng) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- parameters ---------------------------------------------------------- */

void slm_sampler_default_params(slm_sampler_params *p) {
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->seed = 0;
    p->presence_penalty = 0.0f;
    p->frequency_penalty = 0.0f;
}

static bool top_p_on(const slm_sampler *s) { return s->p.top_p < 1.0f; }
static bool min_p_on(const slm_sampler *s) { return s->p.min_p > 0.0f; }
static bool top_k_on(const slm_sampler *s) { return s->p.top_k > 0 && s->p.top_k < s->n_vocab; }
static bool counts_on(const slm_sampler *s) {
    return s->p.presence_penalty != 0.0f || s->p.frequency_penalty != 0.0f;
}
static bool penalty_on(const slm_sampler *s) {
    return s->p.repeat_penalty != 1.0f && s->p.repeat_last_n > 0;
}

slm_status slm_sampler_new(const slm_sampler_params *p, int n_vocab, slm_sampler **out) {
    if (!out) return slm_fail(SLM_ERR_INVALID_ARG, "sampler: out is NULL");
    *out = NULL;
    if (!p) return slm_fail(SLM_ERR_INVALID_ARG, "sampler: params are NULL");
    if (n_vocab <= 0) return slm_fail(SLM_ERR_INVALID_ARG, "sampler: n_vocab %d <= 0", n_vocab);
    if (!isfinite(p->temperature))
        return slm_fail(SLM_ERR_INVALID_ARG, "sampler: temperature is not a finite number");
    if (!(p->top_p > 0.0f))  /* also catches NaN; > 1 means off like 1 */
        return slm_fail(SLM_ERR_INVALID_ARG, "sampler: top_p %g must be > 0 (>= 1: off)",
                        (double)p->top_p);
    if (!(p->min_p <= 1.0f) || isnan(p->min_p))
        return slm_fail(SLM_ERR_INVALID_ARG, "sampler: min_p %g must be <= 1 (<= 0: off)",
                        (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty))
        return slm_fail(SLM_ERR_INVALID_ARG, "sampler: repeat_penalty %g must be finite and > 0",
                        (double)p->repeat_penalty);
    if (p->repeat_last_n < 0)
        return slm_fail(SLM_ERR_INVALID_ARG, "sampler: repeat_last_n %d < 0", p->repeat_last_n);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return slm_fail(SLM_ERR_INVALID_ARG, "sampler: presence and frequency penalties must be finite");

    slm_sampler *s = calloc(1, sizeof *s);
    if (!s) return slm_fail(SLM_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    if (s->p.top_k < 0) s->p.top_k = 0;
    if (!isfinite(s->p.top_p) || s->p.top_p > 1.0f) s->p.top_p = 1.0f;
    if (s->p.min_p < 0.0f) s->p.min_p = 0.0f;

    size_t n_cand = top_k_on(s) ? (size_t)s->p.top_k : (size_t)n_vocab;
    s->cand = malloc(n_cand * sizeof *s->cand);
    bool ok = s->cand != NULL;
    if (ok && !top_k_on(s)) {
        s->bsum = malloc(((size_t)n_vocab / BLOCK + 1) * sizeof *s->bsum);
        ok = s->bsum != NULL;
    }
    if (ok && penalty_on(s)) {
        s->ring = malloc((size_t)s->p.repeat_last_n * sizeof *s->ring);
        s->stamp = calloc((size_t)n_vocab, sizeof *s->stamp);
        ok = s->ring && s->stamp;
    }
    if (ok && counts_on(s)) {
        s->count = calloc((size_t)n_vocab, sizeof *s->count);
        s->seen = malloc((size_t)n_vocab * sizeof *s->seen);
        ok = s->count && s->seen;
    }
    if (!ok) {
        slm_sampler_free(s);
        return slm_fail(SLM_ERR_NOMEM, "sampler: out of memory (n_vocab %d)", n_vocab);
    }
    seed_rng(s);
    *out = s;
    return SLM_OK;
}

void slm_sampler_free(slm_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->gcand);
    free(s->bsum);
    free(s->ring);
    free(s->stamp);
    free(s->count);
    free(s->seen);
    free(s);
}

void slm_sampler_accept(slm_sampler *s, slm_token tok) {
    if (!s || tok < 0 || tok >= s->n_vocab) return;
    if (s->count) {
        if (s->count[tok] == 0) s->seen[s->n_seen++] = tok;
        if (s->count[tok] < INT32_MAX) s->count[tok]++;
    }
    if (!s->ring) return;
    s->ring[s->ring_pos] = tok;
    s->ring_pos = (s->ring_pos + 1) % s->p.repeat_last_n;
    if (s->ring_len < s->p.repeat_last_n) s->ring_len++;
}

/* Forgets the accepted tokens and restarts the random stream from the seed:
 * a reset sampler behaves exactly like a new one. */
void slm_sampler_reset(slm_sampler *s) {
    if (!s) return;
    s->ring_len = 0;
    s->ring_pos = 0;
    for (int i = 0; i < s->n_seen; i++) s->count[s->seen[i]] = 0;
    s->n_seen = 0;
    seed_rng(s);
}

/* ---- helpers --------------------------------------------------------------- */

/* llama.cpp-style: each distinct token among the last repeat_last_n accepted
 * ones is penalised once: a positive logit is divided by the penalty, a
 * negative (or zero) one multiplied. */
static void apply_penalty(slm_sampler *s, float *logits) {
    if (!s->ring || s->ring_len == 0) return;
    if (++s->epoch == 0) { /* wrapped: clear the stamps */
        memset(s->stamp, 0, (size_t)s->n_vocab * sizeof *s->stamp);
        s->epoch = 1;
    }
    const float pen = s->p.repeat_penalty;
    for (int i = 0; i < s->ring_len; i++) {
        slm_token t = s->ring[i];
        if (s->stamp[t] == s->epoch) continue;
        s->stamp[t] = s->epoch;
        float l = logits[t];
        logits[t] = l > 0.0f ? l / pen : l * pen;
    }
}

/* OpenAI's definition: each token seen so far loses frequency_penalty per
 * occurrence plus presence_penalty once. */
static void apply_counts(slm_sampler *s, float *logits) {
    for (int i = 0; i < s->n_seen; i++) {
        slm_token t = s->seen[i];
        logits[t] -= s->p.frequency_penalty * (float)s->count[t] + s->p.presence_penalty;
    }
}

/* a ranks before b: higher logit, then lower id */
static int cand_cmp(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->logit > b->logit) return -1;
    if (a->logit < b->logit) return 1;
    return (a->id > b->id) - (a->id < b->id);
}

static bool cand_worse(cand a, cand b) {
    return a.logit < b.logit || (a.logit == b.logit && a.id > b.id);
}

static void heap_sift_down(cand *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && cand_worse(h[l], h[w])) w = l;
        if (r < n && cand_worse(h[r], h[w])) w = r;
        if (w == i) return;
        cand t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

static void heap_sift_up(cand *h, int i) {
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!cand_worse(h[i], h[p])) return;
        cand t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}

/* Largest value of l[0..n) ignoring NaN (-inf if none): eight independent
 * chains so the loop runs at several elements per cycle. */
static float max_value(const float *l, int n) {
    float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                  -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) m[j] = l[i + j] > m[j] ? l[i + j] : m[j];
    for (; i < n; i++) m[0] = l[i] > m[0] ? l[i] : m[0];
    float r = m[0];
    for (int j = 1; j < 8; j++) r = m[j] > r ? m[j] : r;
    return r;
}

/* Index of the first maximum, NaN ignored; 0 if every value is NaN/-inf. */
static int argmax(const float *l, int n) {
    float m = max_value(l, n);
    if (m == -INFINITY || isnan(m)) return 0;
    for (int i = 0; i < n; i++)
        if (l[i] == m) return i;
    return 0; /* unreachable */
}

/* Public: two passes that vectorize (8-lane max, then the first index of it)
 * instead of a compare chain through memory: 262144 logits in 0.13 ms
 * CPU on the 2-vCPU EPYC of docs/PERFORMANCE.md (the chain: 0.19 ms). */
slm_token slm_argmax(const float *logits, int n_vocab) { return argmax(logits, n_vocab); }

/* d = (M - l) / T and w = exp(-d): one definition used everywhere, so a token
 * gets bit-identical values in every pass. NaN logits give d = NaN, w = 0 and
 * fail every `d <= bound` test. */
static inline float scaled_dist(float l, float m, float inv_t) { return (m - l) * inv_t; }

/* The tail of the chain on n candidates, sorted best-first when top-p is on
 * (in id order otherwise); m is the largest logit among them. Softmax (with
 * normaliser z, or the candidates' own sum if z <= 0; only top-p needs it),
 * top-p, min-p, renormalise, draw. */
static slm_token finish(slm_sampler *s, int n, float m, float inv_t, double z) {
    cand *c = s->cand;
    if (top_p_on(s) && z <= 0.0) {
        z = 0.0;
        for (int i = 0; i < n; i++) z += slm_exp_neg(scaled_dist(c[i].logit, m, inv_t));
    }
    int keep = n;
    if (top_p_on(s)) {
        double target = (double)s->p.top_p * z, cum = 0.0;
        for (int i = 0; i < n; i++) {
            cum += slm_exp_neg(scaled_dist(c[i].logit, m, inv_t));
            if (cum >= target) { keep = i + 1; break; }
        }
    }
    /* min-p: drop p < min_p * p_max, i.e. w < min_p (w_max = e^0 = 1) */
    double total = 0.0;
    int kept = 0;
    for (int i = 0; i < keep; i++) {
        float w = slm_exp_neg(scaled_dist(c[i].logit, m, inv_t));
        if (!(w > 0.0f) || (min_p_on(s) && w < s->p.min_p)) continue; /* w = 0: p < 2e-38 */
        c[kept++] = c[i];
        total += w;
    }
    if (kept == 0 || !(total > 0.0)) return c[0].id; /* cannot happen: the max has w = 1 */
    double u = rng_uniform(s) * total, cum = 0.0;
    for (int i = 0; i < kept; i++) {
        cum += slm_exp_neg(scaled_dist(c[i].logit, m, inv_t));
        if (u < cum) return c[i].id;
    }
    return c[kept - 1].id; /* rounding */
}

/* The k best (logit desc, id asc) into s->cand, sorted; returns how many. A
 * min-heap holds the best so far; blocks of 32 whose maximum cannot beat the
 * heap's worst are skipped after a cheap scan. */
static int select_top_k_into(slm_sampler *s, const float *logits, int k, cand *c) {
    const int nv = s->n_vocab;
    int n = 0;
    float thr = -INFINITY; /* the heap's worst logit once it is full */
    for (int b = 0; b < nv; b += 32) {
        int e = b + 32 < nv ? b + 32 : nv;
        if (n == k && max_value(logits + b, e - b) <= thr) continue;
        for (int i = b; i < e; i++) {
            float l = logits[i];
            if (isnan(l)) l = -INFINITY;
            if (n < k) {
                c[n] = (cand){l, i};
                heap_sift_up(c, n++);
                if (n == k) thr = c[0].logit;
            } else if (l > thr) { /* ids ascend: an equal logit never wins */
                c[0] = (cand){l, i};
                heap_sift_down(c, k, 0);
                thr = c[0].logit;
            }
        }
    }
    qsort(c, (size_t)n, sizeof *c, cand_cmp);
    return n;
}

/* Sum of n weights in double: four chains, combined in a fixed order. */
static double sum_block(const float *w, int n) {
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += w[i];
        a1 += w[i + 1];
        a2 += w[i + 2];
        a3 += w[i + 3];
    }
    for (; i < n; i++) a0 += w[i];
    return (a0 + a1) + (a2 + a3);
}

static inline void hist_add(double *hist, float l, float m, float inv_t, float w) {
    float bf = scaled_dist(l, m, inv_t) * HIST_SCALE; /* >= 0, or +inf / NaN */
    int h = bf < (float)(HIST_BUCKETS - 1) ? (int)bf : HIST_BUCKETS - 1;
    hist[h] += w;
}

/* The chain after the penalties: greedy, or top-k / temperature / top-p /
 * min-p and the draw. Reads the logits only. */
static slm_token draw(slm_sampler *s, const float *logits);

slm_status slm_sampler_set_grammar(slm_sampler *s, slm_grammar *g) {
    if (!s) return slm_fail(SLM_ERR_INVALID_ARG, "slm_sampler_set_grammar: no sampler");
    if (g && grammar_n_vocab(g) != s->n_vocab)
        return slm_fail(SLM_ERR_INVALID_ARG, "slm_sampler_set_grammar: the grammar was built for %d tokens, the sampler has %d",
                        grammar_n_vocab(g), s->n_vocab);
    s->grammar = g;
    return SLM_OK;
}

/* With a grammar: the token is drawn as usual and kept when the grammar
 * allows it (the common case, one token check); otherwise the chain runs
 * again over the allowed tokens only: with top-k on, over the k best allowed
 * ones when the best GRAMMAR_SCAN tokens hold them, else over the logits
 * with every refused token masked (as llama.cpp's sampler does). With no
 * truncation (top-k, top-p, min-p off) the result is exactly a draw from the
 * softmax restricted to the allowed tokens. */
static int select_top_k(slm_sampler *s, const float *logits, int k) {
    return select_top_k_into(s, logits, k, s->cand);
}

#define GRAMMAR_TOPK_MAX 256   /* larger top-k: the mask decides */
#define GRAMMAR_SCAN 128       /* candidates checked one by one before masking (at least 2 k) */

/* After a refusal with top-k on (and no mask cached for the state): the
 * chain over the allowed tokens keeps the k best allowed ones, so when the
 * best max(2k, GRAMMAR_SCAN) tokens hold k allowed ones, those are exactly its
 * candidates (same order, ties by id) and no mask is needed: inside a JSON
 * string, where nearly every token is allowed, this spares a walk over the
 * whole vocabulary. -2: fewer than k among them; the mask decides. */
static slm_token draw_allowed_top_k(slm_sampler *s, const float *logits) {
    const int k = s->p.top_k;
    const float inv_t = 1.0f / s->p.temperature;
    if (k > GRAMMAR_TOPK_MAX || !isfinite(inv_t)) return -2;
    int m = k * 2 > GRAMMAR_SCAN ? k * 2 : GRAMMAR_SCAN;
    if (m > s->n_vocab) m = s->n_vocab;
    if (!s->gcand && !(s->gcand = malloc((size_t)m * sizeof *s->gcand))) return -2;
    int n = select_top_k_into(s, logits, m, s->gcand), got = 0;
    for (int i = 0; i < n && got < k; i++)
        if (slm_grammar_allows(s->grammar, s->gcand[i].id)) s->cand[got++] = s->gcand[i];
    if (got < k) return -2;
    float mx = s->cand[0].logit;
    if (!isfinite(mx)) return s->cand[0].id;
    return finish(s, got, mx, inv_t, 0.0);
}

slm_token slm_sampler_sample(slm_sampler *s, float *logits) {
    if (!s || !logits) return -1; /* a caller bug: no token */
    if (penalty_on(s)) apply_penalty(s, logits);
    if (s->count) apply_counts(s, logits);
    slm_token t = draw(s, logits);
    if (!s->grammar || slm_grammar_allows(s->grammar, t)) return t;
    if (top_k_on(s) && s->p.temperature > 0.0f && !grammar_mask_cached(s->grammar) &&
        (t = draw_allowed_top_k(s, logits)) != -2)
        return t;
    if (slm_grammar_apply(s->grammar, logits) == 0) return -1;
    t = draw(s, logits);
    return slm_grammar_allows(s->grammar, t) ? t : -1;
}

static slm_token draw(slm_sampler *s, const float *logits) {
    const int nv = s->n_vocab;
    if (!(s->p.temperature > 0.0f)) return argmax(logits, nv);
    const float inv_t = 1.0f / s->p.temperature;
    if (!isfinite(inv_t)) return argmax(logits, nv); /* T so small 1/T overflows */

    if (top_k_on(s)) {
        int n = select_top_k(s, logits, s->p.top_k);
        float m = s->cand[0].logit;
        if (!isfinite(m)) return s->cand[0].id;
        return finish(s, n, m, inv_t, 0.0);
    }

    /* the whole vocabulary */
    int best = argmax(logits, nv);
    float m = logits[best];
    if (!isfinite(m)) return best;

    if (!top_p_on(s) && !min_p_on(s)) {
        /* plain softmax over everything, drawn without candidates: block sums,
         * then the block the draw falls in, then the token inside it */
        double tot = 0.0;
        int nb = 0;
        for (int b = 0; b < nv; b += BLOCK, nb++) {
            int e = b + BLOCK < nv ? b + BLOCK : nv;
            slm_exp_neg_scaled(logits + b, e - b, m, inv_t, s->wblk);
            s->bsum[nb] = sum_block(s->wblk, e - b);
            tot += s->bsum[nb];
        }
        double u = rng_uniform(s) * tot, cum = 0.0;
        int blk = nb - 1;
        for (int b = 0; b < nb; b++) {
            if (s->bsum[b] > 0.0 && u < cum + s->bsum[b]) { blk = b; break; }
            cum += s->bsum[b];
        }
        while (blk > 0 && !(s->bsum[blk] > 0.0)) blk--; /* rounding: last block with mass */
        int b0 = blk * BLOCK, e = b0 + BLOCK < nv ? b0 + BLOCK : nv, last = b0;
        for (int i = b0; i < e; i++) {
            float w = slm_exp_neg(scaled_dist(logits[i], m, inv_t));
            if (w > 0.0f) last = i;
            cum += w;
            if (w > 0.0f && u < cum) return i;
        }
        return last; /* rounding */
    }

    /* candidate bound from min-p: it keeps d <= -log(min_p) (the bound has a
     * margin; finish applies the exact test w >= min_p) */
    float d_max = INFINITY;
    if (min_p_on(s)) d_max = -logf(s->p.min_p) * 1.001f + 1e-3f;

    double z = 0.0;
    if (top_p_on(s)) {
        /* Z over the whole vocabulary; and, unless min-p already bounds the
         * candidates tightly (d_max <= 5: min_p >= 0.0068), the mass per
         * bucket of d */
        const bool use_hist = d_max > 5.0f;
        if (use_hist) memset(s->hist, 0, sizeof s->hist);
        for (int b = 0; b < nv; b += BLOCK) {
            int e = b + BLOCK < nv ? b + BLOCK : nv;
            slm_exp_neg_scaled(logits + b, e - b, m, inv_t, s->wblk);
            z += sum_block(s->wblk, e - b);
            if (!use_hist) continue;
            int i = b;
            for (; i + 4 <= e; i += 4)
                for (int j = 0; j < 4; j++) hist_add(s->hist[j], logits[i + j], m, inv_t, s->wblk[i + j - b]);
            for (; i < e; i++) hist_add(s->hist[0], logits[i], m, inv_t, s->wblk[i - b]);
        }
        if (use_hist) {
            double target = (double)s->p.top_p * z, cum = 0.0;
            int b = 0;
            for (; b < HIST_BUCKETS; b++) {
                cum += (s->hist[0][b] + s->hist[1][b]) + (s->hist[2][b] + s->hist[3][b]);
                if (cum >= target) break;
            }
            b += 1; /* one bucket of slack against rounding */
            if (b < HIST_BUCKETS - 1) {
                /* buckets 0..b hold the tokens with d * SCALE < b + 1 (exact: SCALE is 4) */
                float d_hist = (float)(b + 1) / HIST_SCALE;
                if (d_hist < d_max) d_max = d_hist;
            }
        }
    }

    /* the candidates: d <= d_max; blocks whose best logit is too far are skipped */
    cand *c = s->cand;
    int n = 0;
    for (int b = 0; b < nv; b += 32) {
        int e = b + 32 < nv ? b + 32 : nv;
        if (!(scaled_dist(max_value(logits + b, e - b), m, inv_t) <= d_max)) continue;
        for (int i = b; i < e; i++)
            if (scaled_dist(logits[i], m, inv_t) <= d_max) c[n++] = (cand){logits[i], i};
    }
    if (top_p_on(s)) qsort(c, (size_t)n, sizeof *c, cand_cmp);
    return finish(s, n, m, inv_t, top_p_on(s) ? z : 0.0);
}
