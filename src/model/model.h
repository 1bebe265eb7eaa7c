/* One generic decoder-only transformer. An architecture is a small
 * description (slm_arch) of what differs: activations, norms, RoPE pairing,
 * sliding-window layout. Hyper-parameters come from the file's metadata. */
#ifndef SLM_MODEL_H
#define SLM_MODEL_H

#include <pthread.h>
#include <stdbool.h>

#include "gguf/gguf.h"
#include "ops/ops.h"
#include "slm.h"
#include "tokenizer/tokenizer.h"

typedef enum { SLM_ACT_GELU_TANH, SLM_ACT_SILU } slm_act;
typedef enum { SLM_ROPE_NORM, SLM_ROPE_NEOX } slm_rope_style;

typedef struct slm_arch {
    const char *name;            /* value of general.architecture */
    slm_act act;                 /* gated FFN: act(gate) * up */
    slm_rope_style rope;
    bool qk_norm;                /* per-head RMSNorm on Q and K */
    bool post_norms;             /* RMSNorm on the attention and FFN outputs */
    bool embed_scale;            /* input embedding times sqrt(n_embd) */
    bool fused_qkv;              /* one attn_qkv matrix: the Q rows, then K, then V */
    bool fused_gate_up;          /* ffn_up holds 2*n_ff rows: gate, then up */
    /* attention.sliding_window is optional; when the file sets it (> 0) every
     * layer is local (Mistral, Phi-3). Ignored when swa_period is set. */
    bool swa_optional;
    /* Sliding-window layout when the file does not state one: every
     * swa_period-th layer (1-based) is global, the others local. 0: none. */
    int swa_period;
    float rope_base_default;
    float rope_base_swa_default; /* local layers' RoPE base if the key is absent (0: the global one) */
} slm_arch;

/* NULL if no description has that name. */
const slm_arch *slm_arch_find(gguf_str name);

typedef struct slm_config {
    int n_vocab, n_embd, n_layer, n_ff;
    int n_head, n_head_kv, head_dim, head_dim_v;
    int n_rot;                   /* dimensions rotated by RoPE (= head_dim here) */
    int n_ctx_train;
    int sliding_window;          /* 0: no local layers */
    float eps, rope_base, rope_base_swa;
    float attn_scale;            /* multiplies q·k */
    float rope_freq_scale;       /* 1 / rope.scaling.factor for "linear" scaling, else 1 */
    float rope_attn_factor;      /* rope.scaling.attn_factor: multiplies cos and sin */
    int n_ctx_orig;              /* rope.scaling.original_context_length */
} slm_config;

typedef struct slm_layer {
    bool swa;                    /* local (sliding-window) layer */
    const float *attn_norm, *q_norm, *k_norm, *post_attn_norm;
    const float *ffn_norm, *post_ffn_norm;
    const float *bq, *bk, *bv, *bo;  /* optional biases (NULL: none) */
    slm_mat wq, wk, wv, wo, w_gate, w_up, w_down;
} slm_layer;

struct slm_model {
    gguf_file *gguf;
    slm_tokenizer *tok;
    const slm_arch *arch;
    slm_config cfg;
    slm_mat tok_embd, output;    /* output == tok_embd when tied */
    const float *output_norm;
    /* RoPE frequency divisors, [n_rot/2] each, NULL when absent: Llama 3's
     * rope_freqs, or Phi-3's long/short factors (long when the context used
     * exceeds n_ctx_orig). */
    const float *rope_freqs, *rope_factors_long, *rope_factors_short;
    slm_layer *layers;
    void *packed_mem;            /* the packed copies' memory (model_pack.c) */
    size_t packed_len;
    uint64_t n_params;
    char name[128];
    /* Built on first use and kept for the model's life, under cache_lock:
     * the grammars' vocabulary index (src/grammar/vocab_index.c). */
    pthread_mutex_t cache_lock;
    struct grammar_vocab *grammar_vocab;
};

/* Binds the architecture, reads the hyper-parameters and checks every tensor
 * (presence, type, shape) so that the forward pass never has to. */
slm_status slm_model_bind(struct slm_model *m);

/* Copies every weight matrix (the output head and each layer's) whose type
 * the kernels have a packed layout for into that layout (model_pack.c);
 * frees the copies. */
slm_status model_pack_weights(struct slm_model *m);
void model_free_packed(struct slm_model *m);

#endif
