/* The state one sequence needs to run the transformer: KV cache and scratch,
 * allocated once so that the decode loop never allocates. */
#ifndef SLM_TRANSFORMER_H
#define SLM_TRANSFORMER_H

#include "model/model.h"

/* Tokens processed per forward chunk; scratch is sized for this many. */
#define SLM_UBATCH 128

/* One row of a forward chunk: the sequence whose KV cache it reads and
 * extends, and its position there. */
typedef struct fwd_row {
    struct slm_fwd *seq;
    int pos;
} fwd_row;

typedef struct slm_fwd {
    const struct slm_model *m;
    slm_pool *pool;
    int n_ctx;
    float *k_cache, *v_cache;   /* [layer][pos][kv_head * head_dim] */
    /* scratch, SLM_UBATCH rows each */
    float *h, *xn, *q, *k, *v, *att, *o, *gate, *up;
    float *scores;              /* [thread][n_ctx] */
    float *rope_cos, *rope_sin; /* [SLM_UBATCH][n_rot/2], per base */
    void *xq;                   /* quantized activations */
    float *last_hidden;         /* normed hidden state of the last token */
    bool precise;               /* f32 activations in every matrix product */
    float *rowbuf;              /* [thread][widest row], precise mode only */
    fwd_row rows[SLM_UBATCH];   /* fwd_eval's rows: all this sequence */
    /* Optional observer of every matrix product's input (the imatrix
     * collector, src/eval/imatrix.c): weight, n rows of x (stride w->cols). */
    void (*observe)(void *ctx, const slm_mat *w, const float *x, int n);
    void *observe_ctx;
} slm_fwd;

/* The forward state of a session (for the imatrix observer; src/engine/session.c). */
slm_fwd *slm_session_fwd(slm_session *s);

slm_status fwd_init(slm_fwd *f, const struct slm_model *m, slm_pool *pool, int n_ctx, bool precise);
void fwd_free(slm_fwd *f);

/* Runs n tokens at positions pos0.. through the layers (any n: chunked
 * internally). If logits_all is non-NULL it gets n rows of logits; else
 * logits_last gets the last token's. */
void fwd_eval(slm_fwd *f, const int32_t *tokens, int n, int pos0, float *logits_all, float *logits_last);

/* Batched evaluation with f's scratch and pool: row t is tokens[t] of
 * rows[t].seq at position rows[t].pos (rows of one sequence in order; every
 * sequence's n_ctx <= f->n_ctx, which sizes the attention scratch). The rows
 * listed in want (ascending) get their logits, in that order, in logits. */
void fwd_eval_rows(slm_fwd *f, const int32_t *tokens, const fwd_row *rows, int n, const int *want, int n_want,
                   float *logits);

#endif
