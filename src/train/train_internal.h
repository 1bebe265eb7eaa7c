/* The trainer's private state, shared by trainer.c (set-up, parameters,
 * optimizer, saving) and train_model.c (forward and backward). */
#ifndef SLM_TRAIN_INTERNAL_H
#define SLM_TRAIN_INTERNAL_H

#include "train/trainer.h"

/* A weight matrix as the trainer sees it. */
typedef struct tr_w {
    const slm_mat *mat;        /* the stored (frozen, maybe quantized) weight */
    float *f32;                /* full mode: the trained f32 master; NULL: dequantize mat */
    float *grad;               /* full mode: dW */
    lora_mat *lora;            /* LoRA mode, adapted: A and B */
    float *ga, *gb;            /* their gradients */
    int n_in, n_out;
} tr_w;

/* A vector parameter (norm weight or bias): w is the master in full mode,
 * else the file's own floats; g NULL when not trained. */
typedef struct tr_v {
    const float *w;
    float *g;
} tr_v;

enum { V_ATTN_NORM, V_Q_NORM, V_K_NORM, V_POST_ATTN, V_FFN_NORM, V_POST_FFN, V_BQ, V_BK, V_BV, V_BO, V_N };

typedef struct tr_layer {
    tr_w lin[LORA_N_TARGETS];
    tr_v vec[V_N];
    bool swa;
} tr_layer;

/* A trained stretch of the parameter arena. */
typedef struct tr_seg {
    size_t off, n;
    bool decay;                /* AdamW weight decay applies (matrices) */
    int gguf_index;            /* full mode: the tensor it is a master of (-1: LoRA) */
} tr_seg;

/* Activations one layer keeps for its backward (T rows each). */
typedef struct tr_acts {
    float *xn1, *qlin, *klin, *q, *k, *v, *att, *olin, *hmid, *xn2, *gate, *up, *act, *dlin;
    float *r1, *rq, *rk, *lse, *rpo, *r2, *rpf;
    float *xa[LORA_N_TARGETS];   /* LoRA: A · x, T x rank */
} tr_acts;

struct slm_trainer {
    const struct slm_model *m;
    train_params p;
    slm_pool *pool;
    int nth;
    float lora_scale;
    lora_adapter lora;
    tr_layer *layers;
    tr_w embd, head;             /* head.mat == embd.mat when tied */
    tr_v out_norm;
    bool tied;
    /* parameter arena: params, grads, Adam m and v, n_par floats each */
    size_t n_par;
    float *par, *grad, *adam_m, *adam_v;
    tr_seg *segs;
    int n_segs;
    int64_t step;
    uint64_t calls;              /* accumulate calls: varies the dropout masks */
    /* activations */
    float *hs;                   /* (n_layer + 1) x max_seq x E: every layer's input, and the last output */
    tr_acts *acts;               /* n_layer records, or 1 with checkpointing */
    int n_acts;
    float *act_mem;
    size_t act_floats_tok;       /* floats per token of one record */
    /* scratch */
    float *wbuf, *wbuf2;         /* a weight or head chunk as packed GEMM operands (gemm.h) */
    size_t wbuf_floats, wbuf2_floats;
    float *deq_tmp;              /* nth x 32 rows of deq_tmp_cols: dequantized rows on their way to wbuf */
    int deq_tmp_cols;
    float *rowbuf;               /* one head row */
    float *pack;                 /* GEMM packing, one area per worker */
    float *attn_scratch;
    float *rope_cos, *rope_sin;  /* [2][max_seq][n_rot/2]: global, local */
    float *dh, *dxn, *dtmp, *datt, *dq, *dk, *dv, *dgate, *dup, *dact, *ltmp, *xdrop, *htmp;
    float *dw_part;              /* nth x max(n_embd, head_dim): RMSNorm dw partial sums */
    float *ce_z, *ce_g, *ce_h, *ce_dh, *ce_ms, *ce_rstd, *ce_xf;
    int *ce_rows;
    int32_t *ce_tgt;
    double *ce_loss;
    int ce_chunk;
    double times[4];             /* trainer_times */
    size_t bwd_floats;           /* the backward and loss scratch above, all of it */
};

double tr_now(void);

/* train_model.c */
slm_status tr_run(slm_trainer *t, const int32_t *tokens, const uint8_t *loss_mask, int n, bool backward,
                  double *loss_sum, int *n_scored);
/* f32 rows [r0, r0 + n) of a weight: the master, or dequantized into buf */
const float *tr_weight_rows(slm_trainer *t, const tr_w *w, long r0, int n, float *buf);

#endif
