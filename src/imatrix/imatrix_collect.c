/* The importance-matrix collector: for every weight matrix of the layers
 * (blk.*), the sum over all evaluated tokens of the squared activations
 * entering each input column, and the token count, gathered by a forward-pass
 * observer (slm_fwd_observer) and saved by the imatrix writer
 * (imatrix_file.c) in llama.cpp's layout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "engine/engine.h"
#include "imatrix/imatrix.h"
#include "model/model.h"
#include "model/transformer.h"
#include "slm.h"

typedef struct im_entry {
    const slm_mat *mat;
    char name[96];           /* the weight tensor's name in the file */
    int n_in;
    double *sum2;
    uint64_t n_rows;
} im_entry;

struct slm_imcollect {
    const slm_model *model;
    im_entry *e;
    int n;
    int n_chunks;
    slm_fwd_observer obs;    /* what slm_imcollect_attach sets on a session */
};

/* The tensor of the file whose data the matrix maps, or NULL. */
static const gguf_tensor *tensor_of(const gguf_file *f, const slm_mat *m) {
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].data == (const void *)m->data) return &f->tensors[i];
    return NULL;
}

static void observe_input(void *ctx, const slm_mat *w, const float *x, int n);

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const im_entry *)a)->name, ((const im_entry *)b)->name);
}

slm_status slm_imcollect_new(const slm_model *model, slm_imcollect **out) {
    *out = NULL;
    slm_imcollect *im = calloc(1, sizeof *im);
    int cap = model->cfg.n_layer * 7;
    if (!im || !(im->e = calloc((size_t)cap, sizeof *im->e))) {
        free(im);
        return slm_fail(SLM_ERR_NOMEM, "out of memory");
    }
    im->model = model;
    for (int il = 0; il < model->cfg.n_layer; il++) {
        const slm_layer *L = &model->layers[il];
        const slm_mat *mats[7] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (int k = 0; k < 7; k++) {
            const gguf_tensor *t = mats[k]->data ? tensor_of(model->gguf, mats[k]) : NULL;
            if (!t || t->name.len >= sizeof im->e[0].name || t->name.len < 4 || memcmp(t->name.ptr, "blk.", 4))
                continue;
            im_entry *e = &im->e[im->n];
            e->mat = mats[k];
            memcpy(e->name, t->name.ptr, t->name.len);
            e->n_in = (int)mats[k]->cols;
            e->sum2 = calloc((size_t)e->n_in, sizeof *e->sum2);
            im->n++;
            if (!e->sum2) { slm_imcollect_free(im); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
        }
    }
    if (im->n == 0) { slm_imcollect_free(im); return slm_fail(SLM_ERR_UNSUPPORTED, "the model has no layer weights"); }
    qsort(im->e, (size_t)im->n, sizeof *im->e, cmp_entry);   /* the file lists tensors by name */
    im->obs = (slm_fwd_observer){ .ctx = im, .matmul_input = observe_input };
    *out = im;
    return SLM_OK;
}

void slm_imcollect_free(slm_imcollect *im) {
    if (!im) return;
    for (int i = 0; i < im->n; i++) free(im->e[i].sum2);
    free(im->e);
    free(im);
}

static void observe_input(void *ctx, const slm_mat *w, const float *x, int n) {
    slm_imcollect *im = ctx;
    for (int i = 0; i < im->n; i++) {
        im_entry *e = &im->e[i];
        if (e->mat != w) continue;
        for (int r = 0; r < n; r++) {
            const float *row = x + (size_t)r * e->n_in;
            for (int c = 0; c < e->n_in; c++) e->sum2[c] += (double)row[c] * row[c];
        }
        e->n_rows += (uint64_t)n;
        return;
    }
}

slm_status slm_imcollect_attach(slm_imcollect *im, slm_session *s) {
    slm_fwd *f = slm_session_fwd(s);
    if (im && f->m != im->model)
        return slm_fail(SLM_ERR_INVALID_ARG, "the session runs another model than the importance matrix's");
    fwd_set_observer(f, im ? &im->obs : NULL);
    return SLM_OK;
}

void slm_imcollect_add_chunk(slm_imcollect *im) { im->n_chunks++; }

int slm_imcollect_n_entries(const slm_imcollect *im) { return im->n; }

slm_status slm_imcollect_entry(const slm_imcollect *im, int i, const char **name, int *n_in, const double **sum2,
                             uint64_t *count) {
    if (i < 0 || i >= im->n) return slm_fail(SLM_ERR_INVALID_ARG, "entry %d does not exist", i);
    *name = im->e[i].name;
    *n_in = im->e[i].n_in;
    *sum2 = im->e[i].sum2;
    *count = im->e[i].n_rows;
    return SLM_OK;
}

slm_status slm_imcollect_save(slm_imcollect *im, const char *path, const char *dataset, int chunk_size) {
    slm_imatrix_sums *s = malloc((size_t)im->n * sizeof *s);
    if (!s) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < im->n; i++)
        s[i] = (slm_imatrix_sums){ im->e[i].name, im->e[i].n_in, im->e[i].sum2, im->e[i].n_rows };
    slm_status st = slm_imatrix_write(path, s, im->n, dataset, (uint32_t)im->n_chunks, (uint32_t)chunk_size);
    free(s);
    return st;
}
