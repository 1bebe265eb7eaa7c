/* Applying a LoRA adapter in the forward pass, and the public slm_lora API.
 *
 * The forward pass calls adapter_apply after every matrix product when an
 * adapter is set (one pointer test otherwise). The weight's position inside
 * the model's layer array names the layer and the target; the low-rank
 * update is two small f32 products, x -> A x (rank values) -> B (A x). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "base/threadpool.h"
#include "engine/engine.h"   /* slm_session_fwd, slm_batch_fwd */
#include "model/transformer.h"
#include "train/adapter.h"

struct slm_lora {
    const struct slm_model *model;
    lora_adapter *a;
};

/* Which target a field of slm_layer is, or -1. */
static int target_of(size_t field) {
    if (field == offsetof(slm_layer, wq)) return LORA_Q;
    if (field == offsetof(slm_layer, wk)) return LORA_K;
    if (field == offsetof(slm_layer, wv)) return LORA_V;
    if (field == offsetof(slm_layer, wo)) return LORA_O;
    if (field == offsetof(slm_layer, w_gate)) return LORA_GATE;
    if (field == offsetof(slm_layer, w_up)) return LORA_UP;
    if (field == offsetof(slm_layer, w_down)) return LORA_DOWN;
    return -1;
}

typedef struct {
    const lora_mat *lm;
    const float *x;
    float *y, *tmp;
    int n;
    float scale;
} lora_job;

/* stage 1: tmp[t] = A x[t], split over (token, rank row) pairs */
static void lora_down_worker(void *ctx, int ith, int nth) {
    const lora_job *j = ctx;
    const lora_mat *lm = j->lm;
    long total = (long)j->n * lm->rank, lo, hi;
    slm_split_range(total, ith, nth, &lo, &hi);
    for (long w = lo; w < hi; w++) {
        int t = (int)(w / lm->rank), r = (int)(w % lm->rank);
        const float *x = j->x + (size_t)t * lm->n_in, *a = lm->a + (size_t)r * lm->n_in;
        float s = 0;
        for (int c = 0; c < lm->n_in; c++) s += a[c] * x[c];
        j->tmp[(size_t)t * lm->rank + r] = s;
    }
}

/* stage 2: y[t] += scale * B tmp[t], split over output rows */
static void lora_up_worker(void *ctx, int ith, int nth) {
    const lora_job *j = ctx;
    const lora_mat *lm = j->lm;
    long lo, hi;
    slm_split_range(lm->n_out, ith, nth, &lo, &hi);
    for (int t = 0; t < j->n; t++) {
        const float *u = j->tmp + (size_t)t * lm->rank;
        float *y = j->y + (size_t)t * lm->n_out;
        for (long o = lo; o < hi; o++) {
            const float *b = lm->b + (size_t)o * lm->rank;
            float s = 0;
            for (int r = 0; r < lm->rank; r++) s += b[r] * u[r];
            y[o] += j->scale * s;
        }
    }
}

void adapter_apply(const slm_fwd *f, const slm_mat *w, const float *x, int n, float *y) {
    const struct slm_model *m = f->m;
    uintptr_t base = (uintptr_t)m->layers, p = (uintptr_t)w;
    if (p < base || p >= base + (uintptr_t)m->cfg.n_layer * sizeof(slm_layer)) return;  /* the output head */
    size_t off = (size_t)(p - base);
    int il = (int)(off / sizeof(slm_layer)), t = target_of(off % sizeof(slm_layer));
    if (t < 0) return;
    const lora_mat *lm = &f->lora->mats[il * LORA_N_TARGETS + t];
    if (!lm->a) return;
    lora_job j = { lm, x, y, f->lora_tmp, n, adapter_mat_scale(f->lora, lm, f->lora_scale) };
    /* a decode step's update is a few thousand multiply-adds: not worth waking the pool */
    bool small = (long)n * lm->rank * (lm->n_in + lm->n_out) < 200000;
    if (small) { lora_down_worker(&j, 0, 1); lora_up_worker(&j, 0, 1); }
    else { slm_pool_run(f->pool, lora_down_worker, &j); slm_pool_run(f->pool, lora_up_worker, &j); }
}

/* Sets (or with a == NULL clears) the adapter of a forward state. */
static slm_status fwd_set_lora(slm_fwd *f, const lora_adapter *a, float scale) {
    free(f->lora_tmp);
    f->lora_tmp = NULL;
    f->lora = NULL;
    if (!a) return SLM_OK;
    f->lora_tmp = malloc(sizeof(float) * SLM_UBATCH * (size_t)(a->rank > 0 ? a->rank : 1));
    if (!f->lora_tmp) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    f->lora = a;
    f->lora_scale = scale;
    return SLM_OK;
}

/* ---- public API -------------------------------------------------------------- */

slm_status slm_lora_load(const slm_model *model, const char *path, slm_lora **out) {
    *out = NULL;
    if (!model || !path) return slm_fail(SLM_ERR_INVALID_ARG, "slm_lora_load: NULL argument");
    slm_lora *l = calloc(1, sizeof *l);
    if (!l) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    slm_status st = adapter_load(model->gguf, path, &l->a);
    if (st) { free(l); return st; }
    l->model = model;
    *out = l;
    return SLM_OK;
}

void slm_lora_free(slm_lora *lora) {
    if (!lora) return;
    adapter_free(lora->a);
    free(lora);
}

void slm_lora_get_info(const slm_lora *lora, slm_lora_info *out) {
    memset(out, 0, sizeof *out);
    out->alpha = lora->a->alpha;
    out->rank = lora->a->rank;
    for (int i = 0; i < lora->a->n_layer * LORA_N_TARGETS; i++) out->n_matrices += lora->a->mats[i].a != NULL;
}

static slm_status check_model(const slm_fwd *f, const slm_lora *lora) {
    if (lora && lora->model != f->m)
        return slm_fail(SLM_ERR_INVALID_ARG, "the adapter was loaded for another model");
    return SLM_OK;
}

slm_status slm_session_set_lora(slm_session *s, const slm_lora *lora, float scale) {
    slm_fwd *f = slm_session_fwd(s);
    slm_status st = check_model(f, lora);
    return st ? st : fwd_set_lora(f, lora ? lora->a : NULL, scale);
}

slm_status slm_batch_set_lora(slm_batch *b, const slm_lora *lora, float scale) {
    slm_fwd *f = slm_batch_fwd(b);
    slm_status st = check_model(f, lora);
    return st ? st : fwd_set_lora(f, lora ? lora->a : NULL, scale);
}
