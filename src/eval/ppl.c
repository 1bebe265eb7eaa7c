/* Perplexity over non-overlapping windows, and the KL divergence against a
 * base model's saved distributions (see slm.h and docs/EVAL.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/status.h"
#include "eval/kl_file.h"
#include "slm.h"

#define PPL_PIECE 64    /* scored positions evaluated per call: bounds the logits buffer */

static double row_lse(const float *logits, int V);

double slm_log_softmax_at(const float *logits, int n_vocab, slm_token tok) {
    return (double)logits[tok] - row_lse(logits, n_vocab);
}

/* Running mean and variance of a series (sums in double). */
typedef struct { double sum, sum2; uint64_t n; } moments;
static void mom_add(moments *m, double x) { m->sum += x; m->sum2 += x * x; m->n++; }
static double mom_mean(const moments *m) { return m->n ? m->sum / m->n : 0; }
/* Standard error of the mean: sample standard deviation / sqrt(n). */
static double mom_se(const moments *m) {
    if (m->n < 2) return 0;
    double mean = mom_mean(m), var = (m->sum2 - m->n * mean * mean) / (m->n - 1);
    return var > 0 ? sqrt(var / m->n) : 0;
}

struct slm_ppl {
    const slm_model *model;
    slm_session *s;
    const slm_token *tokens;
    int n_ctx, first, n_scored_win, n_chunks, done, top_k, n_vocab;
    slm_token *win;
    moments nll, base_nll, dnll, kl, top1;   /* dnll: NLL minus the base's, per token */
    float *kl_vals;                 /* every position's KL, for the percentiles */
    kl_file *save, *base;
    kl_record rec;
};

static uint64_t tokens_hash(const slm_token *t, size_t n, slm_token bos, int n_ctx) {
    uint64_t h = 1469598103934665603ull;   /* FNV-1a over the windows as scored */
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)(i % (size_t)n_ctx == 0 && bos >= 0 ? bos : t[i]);
        for (int b = 0; b < 4; b++) { h ^= (v >> (8 * b)) & 0xff; h *= 1099511628211ull; }
    }
    return h;
}

slm_status slm_ppl_new(const slm_model *model, slm_session *s, const slm_token *tokens, size_t n_tokens,
                       const slm_ppl_params *p, slm_ppl **out) {
    *out = NULL;
    int n_ctx = p && p->n_ctx ? p->n_ctx : 512;
    int top_k = p && p->kl_top_k ? p->kl_top_k : 64;
    int V = slm_vocab_size(model);
    if (n_ctx < 4) return slm_fail(SLM_ERR_INVALID_ARG, "window of %d tokens is too short (at least 4)", n_ctx);
    if (n_ctx > slm_session_n_ctx(s))
        return slm_fail(SLM_ERR_INVALID_ARG, "window of %d tokens exceeds the session's context %d", n_ctx,
                        slm_session_n_ctx(s));
    if (top_k < 1 || top_k > V || top_k > 4096)
        return slm_fail(SLM_ERR_INVALID_ARG, "top-k %d must be between 1 and min(vocabulary, 4096)", top_k);
    if (p && p->kl_save && p->kl_base)
        return slm_fail(SLM_ERR_INVALID_ARG, "saving and comparing base logits in one run is not supported");
    size_t avail = n_tokens / (size_t)n_ctx;
    if (avail == 0)
        return slm_fail(SLM_ERR_INVALID_ARG, "the text has %zu tokens, fewer than one window of %d", n_tokens, n_ctx);
    int n_chunks = p && p->n_chunks > 0 ? p->n_chunks : (int)(avail > 1000000 ? 1000000 : avail);
    if ((size_t)n_chunks > avail)
        return slm_fail(SLM_ERR_INVALID_ARG, "%d windows of %d tokens asked for, but the text holds only %zu",
                        n_chunks, n_ctx, avail);
    slm_ppl *q = calloc(1, sizeof *q);
    if (!q) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    q->model = model;
    q->s = s;
    q->tokens = tokens;
    q->n_ctx = n_ctx;
    q->first = n_ctx / 2;
    q->n_scored_win = n_ctx - 1 - q->first;
    q->n_chunks = n_chunks;
    q->n_vocab = V;
    q->win = malloc((size_t)n_ctx * sizeof *q->win);
    if (!q->win) { slm_ppl_free(q); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
    kl_header h = { .n_vocab = (uint32_t)V, .n_ctx = (uint32_t)n_ctx, .top_k = (uint32_t)top_k,
                    .n_chunks = (uint32_t)n_chunks,
                    .tokens_hash = tokens_hash(tokens, (size_t)n_chunks * n_ctx, slm_token_bos(model), n_ctx),
                    .n_records = (uint64_t)n_chunks * q->n_scored_win };
    slm_status st = SLM_OK;
    if (p && p->kl_save) {
        q->top_k = top_k;
        st = kl_file_create(p->kl_save, &h, &q->save);
    } else if (p && p->kl_base) {
        st = kl_file_open(p->kl_base, &q->base);
        if (!st) st = kl_file_check(q->base, &h);
        if (!st) {
            q->top_k = (int)q->base->h.top_k;
            q->kl_vals = malloc((size_t)h.n_records * sizeof *q->kl_vals);
            if (!q->kl_vals) st = slm_fail(SLM_ERR_NOMEM, "out of memory");
        }
    }
    if (!st && q->top_k) st = kl_record_alloc(&q->rec, q->top_k);
    if (st) { slm_ppl_free(q); return st; }
    *out = q;
    return SLM_OK;
}

bool slm_ppl_more(const slm_ppl *p) { return p->done < p->n_chunks; }

/* log-sum-exp of a row, in double. */
static double row_lse(const float *logits, int V) {
    float mx = logits[0];
    for (int i = 1; i < V; i++) if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < V; i++) sum += expf(logits[i] - mx);
    return mx + log(sum);
}

/* KL(base || model) over the base's top-k tokens plus one bucket for the
 * rest of the vocabulary: the exact divergence of the two distributions
 * coarsened to k+1 outcomes (never more than the full KL; equal to it when
 * k is the vocabulary size). Log-probs are compared as f32 values (the
 * stored precision): differences below ~1e-6 are rounding. */
static double kl_coarse(const kl_record *b, int k, const float *logits, double lse) {
    double kl = 0, pb_sum = 0, q_sum = 0;
    for (int i = 0; i < k; i++) {
        /* both sides rounded to f32 alike, so a model against itself gives 0 */
        double lp = b->logp[i], lq = (float)(logits[b->ids[i]] - lse), pb = exp(lp);
        kl += pb * (lp - lq);
        pb_sum += pb;
        q_sum += exp(lq);
    }
    double pr = 1 - pb_sum, qr = 1 - q_sum;
    if (pr > 1e-12) kl += pr * (log(pr) - log(qr > 1e-30 ? qr : 1e-30));
    return kl > 0 ? kl : 0;
}

/* Fills rec with the top-k entries of the row (descending; ties: lower id),
 * as log-probabilities. */
static void top_k_of(const float *logits, int V, int k, double lse, kl_record *rec) {
    int n = 0;
    for (int i = 0; i < V; i++) {
        float v = logits[i];
        if (n == k && !(v > rec->logp[n - 1])) continue;
        int j = n < k ? n++ : n - 1;
        while (j > 0 && rec->logp[j - 1] < v) {
            rec->logp[j] = rec->logp[j - 1];
            rec->ids[j] = rec->ids[j - 1];
            j--;
        }
        rec->logp[j] = v;
        rec->ids[j] = i;
    }
    for (int j = 0; j < k; j++) rec->logp[j] = (float)(logits[rec->ids[j]] - lse);
}

/* Scores positions pos..pos+n-1 of the window, whose logits are in rows. */
static slm_status score_rows(slm_ppl *p, const float *rows, int pos, int n) {
    int V = p->n_vocab;
    for (int r = 0; r < n; r++) {
        const float *lg = rows + (size_t)r * V;
        slm_token next = p->win[pos + r + 1];
        double lse = row_lse(lg, V), lp = lg[next] - lse;
        mom_add(&p->nll, -lp);
        if (p->save) {
            top_k_of(lg, V, p->top_k, lse, &p->rec);
            p->rec.nll = (float)-lp;
            slm_status st = kl_file_write(p->save, &p->rec);
            if (st) return st;
        } else if (p->base) {
            slm_status st = kl_file_read(p->base, &p->rec);
            if (st) return st;
            double kl = kl_coarse(&p->rec, p->top_k, lg, lse);
            p->kl_vals[p->kl.n] = (float)kl;
            mom_add(&p->kl, kl);
            mom_add(&p->base_nll, p->rec.nll);
            mom_add(&p->dnll, -lp - p->rec.nll);
            mom_add(&p->top1, slm_argmax(lg, V) == p->rec.ids[0] ? 1.0 : 0.0);
        }
    }
    return SLM_OK;
}

slm_status slm_ppl_step(slm_ppl *p) {
    if (!slm_ppl_more(p)) return slm_fail(SLM_ERR_INVALID_ARG, "every window has been scored");
    size_t start = (size_t)p->done * p->n_ctx;
    memcpy(p->win, p->tokens + start, (size_t)p->n_ctx * sizeof *p->win);
    slm_token bos = slm_token_bos(p->model);
    if (bos >= 0) p->win[0] = bos;
    slm_session_truncate(p->s, 0);
    slm_status st = slm_session_eval(p->s, p->win, p->first, false);
    /* the last token predicts nothing inside the window: it is never run */
    for (int pos = p->first; !st && pos < p->n_ctx - 1; pos += PPL_PIECE) {
        int n = p->n_ctx - 1 - pos < PPL_PIECE ? p->n_ctx - 1 - pos : PPL_PIECE;
        st = slm_session_eval(p->s, p->win + pos, n, true);
        if (!st) st = score_rows(p, slm_session_logits_all(p->s), pos, n);
    }
    if (st) return st;
    p->done++;
    return SLM_OK;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const float *sorted, uint64_t n, double q) {
    if (!n) return 0;
    uint64_t r = (uint64_t)ceil(q * n);
    return sorted[r ? r - 1 : 0];
}

void slm_ppl_result_get(const slm_ppl *p, slm_ppl_result *r) {
    memset(r, 0, sizeof *r);
    r->n_chunks_done = p->done;
    r->n_chunks = p->n_chunks;
    r->n_scored = p->nll.n;
    /* PPL = exp(mean NLL); its standard error by the delta method:
     * se(PPL) = PPL * se(mean NLL). */
    r->ppl = exp(mom_mean(&p->nll));
    r->ppl_se = r->ppl * mom_se(&p->nll);
    if (!p->base) return;
    r->has_kl = true;
    r->base_ppl = exp(mom_mean(&p->base_nll));
    r->base_ppl_se = r->base_ppl * mom_se(&p->base_nll);
    /* Paired over the same tokens: ln(PPL/base PPL) is the mean per-token
     * difference of NLLs, whose spread is far smaller than either NLL's, so
     * a difference between two files is resolved long before their PPLs'
     * own error bars part. se(PPL - base) = PPL * se(mean difference). */
    r->ln_ratio = mom_mean(&p->dnll);
    r->ln_ratio_se = mom_se(&p->dnll);
    r->dppl = r->ppl - r->base_ppl;
    r->dppl_se = r->ppl * r->ln_ratio_se;
    r->kl_mean = mom_mean(&p->kl);
    r->kl_se = mom_se(&p->kl);
    r->top1 = mom_mean(&p->top1);
    r->top1_se = mom_se(&p->top1);
    uint64_t n = p->kl.n;
    float *sorted = n ? malloc(n * sizeof *sorted) : NULL;
    if (sorted) {
        memcpy(sorted, p->kl_vals, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_float);
        r->kl_p50 = percentile(sorted, n, 0.50);
        r->kl_p90 = percentile(sorted, n, 0.90);
        r->kl_p99 = percentile(sorted, n, 0.99);
        r->kl_max = sorted[n - 1];
        free(sorted);
    }
}

slm_status slm_ppl_finish(slm_ppl *p) {
    if (slm_ppl_more(p)) return slm_fail(SLM_ERR_INVALID_ARG, "%d of %d windows are not scored yet",
                                         p->n_chunks - p->done, p->n_chunks);
    if (!p->save) return SLM_OK;
    slm_status st = kl_file_commit(p->save);
    p->save = NULL;
    return st;
}

void slm_ppl_free(slm_ppl *p) {
    if (!p) return;
    kl_file_close(p->save);   /* unfinished: the temporary file is removed */
    kl_file_close(p->base);
    kl_record_free(&p->rec);
    free(p->kl_vals);
    free(p->win);
    free(p);
}
