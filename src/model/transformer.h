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

/* Watches the forward pass without changing it: the imatrix collector
 * (src/imatrix/imatrix_collect.c), and the fine-tuning engine's activation
 * statistics and pruning importance scores. Either callback may be NULL.
 * Both run on the thread that drives the pass, in evaluation order; the
 * pointers are valid only during the call. */
typedef struct slm_fwd_observer {
    void *ctx;
    /* The input of every matrix product with w (the layers' and the output
     * head's): n rows of w->cols floats. */
    void (*matmul_input)(void *ctx, const slm_mat *w, const float *x, int n);
    /* The residual stream after layer il: n rows of n_embd floats; rows[t]
     * names row t's sequence and position. */
    void (*layer_output)(void *ctx, int il, const float *h, int n, const fwd_row *rows);
} slm_fwd_observer;

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
    /* every row's results bit-identical to a one-token pass (op_matmul_ex);
     * set around a speculative verification step */
    bool row_exact;
    float *rowbuf;              /* [thread][widest row], precise mode only */
    fwd_row rows[SLM_UBATCH];   /* fwd_eval's rows: all this sequence */
    const slm_fwd_observer *observer;  /* NULL: none (fwd_set_observer) */
    /* Optional LoRA adapter (src/train/adapter_apply.c): every adapted matrix
     * product gets y += scale * B (A x). NULL: none. */
    const struct lora_adapter *lora;
    float lora_scale;
    float *lora_tmp;            /* [SLM_UBATCH][rank] */
} slm_fwd;

slm_status fwd_init(slm_fwd *f, const struct slm_model *m, slm_pool *pool, int n_ctx, bool precise);
void fwd_free(slm_fwd *f);
/* Sets (or with NULL removes) the observer; it must outlive its use. */
void fwd_set_observer(slm_fwd *f, const slm_fwd_observer *obs);

/* Runs n tokens at positions pos0.. through the layers (any n: chunked
 * internally). If logits_all is non-NULL it gets n rows of logits; else
 * logits_last gets the last token's. */
void fwd_eval(slm_fwd *f, const int32_t *tokens, int n, int pos0, float *logits_all, float *logits_last);

/* The output head over n rows of normed hidden states (as fwd_eval leaves
 * in last_hidden): n rows of logits. */
void fwd_head(slm_fwd *f, const float *hidden, int n, float *logits);

/* Batched evaluation with f's scratch and pool: row t is tokens[t] of
 * rows[t].seq at position rows[t].pos (rows of one sequence in order; every
 * sequence's n_ctx <= f->n_ctx, which sizes the attention scratch). The rows
 * listed in want (ascending) get their logits, in that order, in logits. */
void fwd_eval_rows(slm_fwd *f, const int32_t *tokens, const fwd_row *rows, int n, const int *want, int n_want,
                   float *logits);

#endif
