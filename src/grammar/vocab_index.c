/* The per-model vocabulary index of the grammars (see vocab_index.h). */
#include "grammar/vocab_index.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "model/model.h"

static int cmp_vtok(const void *a, const void *b) {
    const vtok *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

void grammar_vocab_free(grammar_vocab *v) {
    if (!v) return;
    free(v->bytes); free(v->off); free(v->eog); free(v->sorted); free(v->lcp); free(v->grp2_end);
    free(v);
}

static grammar_vocab *fail_nomem(grammar_vocab *v) {
    grammar_vocab_free(v);
    slm_fail(SLM_ERR_NOMEM, "out of memory");
    return NULL;
}

static grammar_vocab *build(const slm_model *model) {
    grammar_vocab *v = calloc(1, sizeof *v);
    if (!v) return fail_nomem(v);
    int nv = slm_vocab_size(model);
    v->n_vocab = nv;
    v->n_words = (nv + 63) / 64;
    v->off = malloc(((size_t)nv + 1) * sizeof *v->off);
    v->eog = calloc((size_t)v->n_words + 1, sizeof *v->eog);
    size_t cap = (size_t)nv * 8 + 1024, n = 0;
    v->bytes = malloc(cap);
    if (!v->off || !v->eog || !v->bytes) return fail_nomem(v);
    char buf[1024];
    int n_text = 0;
    for (int t = 0; t < nv; t++) {
        v->off[t] = (uint32_t)n;
        if (slm_token_is_eog(model, t)) { v->eog[t >> 6] |= 1ull << (t & 63); continue; }
        size_t k = slm_token_to_bytes(model, t, false, buf, sizeof buf);
        if (k > sizeof buf) k = 0;   /* absurdly long: never offered */
        if (n + k > cap) {
            while (n + k > cap) cap *= 2;
            char *nb = realloc(v->bytes, cap);
            if (!nb) return fail_nomem(v);
            v->bytes = nb;
        }
        memcpy(v->bytes + n, buf, k);
        n += k;
        if (k) n_text++;
        if (k > v->max_len) v->max_len = (uint32_t)k;
    }
    v->off[nv] = (uint32_t)n;
    v->sorted = malloc(((size_t)n_text + 1) * sizeof *v->sorted);
    v->lcp = malloc(((size_t)n_text + 1) * sizeof *v->lcp);
    v->grp2_end = malloc(((size_t)n_text + 1) * sizeof *v->grp2_end);
    if (!v->sorted || !v->lcp || !v->grp2_end) return fail_nomem(v);
    int k = 0;
    for (int t = 0; t < nv; t++)
        if (v->off[t + 1] > v->off[t]) v->sorted[k++] = (vtok){ v->bytes + v->off[t], v->off[t + 1] - v->off[t], t };
    qsort(v->sorted, (size_t)k, sizeof *v->sorted, cmp_vtok);
    v->n_sorted = k;
    for (int i = 0; i < k; i++) {
        uint32_t l = 0;
        if (i > 0) {
            const vtok *a = &v->sorted[i - 1], *b = &v->sorted[i];
            uint32_t mx = a->len < b->len ? a->len : b->len;
            while (l < mx && a->p[l] == b->p[l]) l++;
        }
        v->lcp[i] = (uint16_t)(l > 65535 ? 65535 : l);
        v->grp_end[(uint8_t)v->sorted[i].p[0]] = i + 1;
    }
    for (int i = k - 1; i >= 0; i--)
        v->grp2_end[i] = i + 1 < k && v->lcp[i + 1] >= 2 ? v->grp2_end[i + 1] : i + 1;
    return v;
}

const grammar_vocab *grammar_vocab_get(const slm_model *model) {
    /* the index is derived data, not part of the model's value: the const
     * model's lock and cache slot are written here, under the lock */
    struct slm_model *m = (struct slm_model *)model;
    pthread_mutex_lock(&m->cache_lock);
    if (!m->grammar_vocab) m->grammar_vocab = build(model);
    const grammar_vocab *v = m->grammar_vocab;
    pthread_mutex_unlock(&m->cache_lock);
    return v;
}
