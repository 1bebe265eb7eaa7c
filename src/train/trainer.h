/* The training engine's contract (implemented in src/train/, used by the
 * finetune tool, the adapter writer and later by distill/prune).
 *
 * A trainer owns: the trainable parameters (LoRA A/B per target matrix, or
 * f32 master copies of every weight for full fine-tuning), their gradients,
 * and the AdamW moments. The frozen base stays in its quantized GGUF form:
 * a weight is dequantized to f32 per layer, per step, into scratch, never
 * kept as a whole f32 model.
 *
 * Numerics: forward in f32 (dequantized weights, f32 activations: slm's
 * "precise" path), so loss and gradients can be held to PyTorch. */
#ifndef SLM_TRAIN_TRAINER_H
#define SLM_TRAIN_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

/* LoRA target matrices, in the order every per-layer array uses. */
enum { LORA_Q, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, LORA_N_TARGETS };
#define LORA_TARGETS_DEFAULT 0x7Fu    /* bit i set: target i is adapted */

/* One adapted matrix: y = W x + scale * B (A x), scale = alpha / rank.
 * A is rank x n_in (row-major), B is n_out x rank (row-major) — the same
 * shapes as llama.cpp's adapter tensors "<name>.lora_a" (ne0 = n_in,
 * ne1 = rank) and "<name>.lora_b" (ne0 = rank, ne1 = n_out). */
typedef struct lora_mat {
    int rank, n_in, n_out;
    float *a, *b;
} lora_mat;

/* An adapter: mats[layer * LORA_N_TARGETS + target]; a target that is not
 * adapted has a == NULL. */
typedef struct lora_adapter {
    int n_layer, rank;
    float alpha;
    unsigned targets;
    lora_mat *mats;
} lora_adapter;

typedef struct train_params {
    bool full;              /* full fine-tuning (f32 master weights) instead of LoRA */
    int rank;               /* LoRA */
    float alpha;
    float dropout;          /* on the LoRA input; 0 = none */
    unsigned targets;       /* LORA_TARGETS_DEFAULT */
    int max_seq;            /* longest sequence a grad call gets */
    bool checkpoint;        /* activation checkpointing: keep layer inputs only, recompute in backward */
    uint64_t seed;          /* LoRA init (A: Kaiming-uniform as PEFT, B: 0) and dropout masks */
    int n_threads;
    /* AdamW */
    float beta1, beta2, eps, weight_decay;
} train_params;

void train_default_params(train_params *p);   /* rank 16, alpha 32, all targets, AdamW 0.9/0.999/1e-8/0 */

typedef struct slm_trainer slm_trainer;

slm_status trainer_new(const struct slm_model *m, const train_params *p, slm_trainer **out);
void trainer_free(slm_trainer *t);

/* The trainable LoRA adapter (LoRA mode), for saving or to set a known init. */
lora_adapter *trainer_lora(slm_trainer *t);

/* Forward + backward over one sequence tokens[0..n) (n <= max_seq). The loss
 * is cross-entropy of predicting tokens[i+1] from position i, summed over the
 * positions i with loss_mask[i+1] != 0 (NULL: every position). Gradients are
 * ADDED to the accumulators (call several times for accumulation / a batch).
 * *loss_sum and *n_scored get the summed loss and the number of scored tokens. */
slm_status trainer_accumulate(slm_trainer *t, const int32_t *tokens, const uint8_t *loss_mask, int n,
                              double *loss_sum, int *n_scored);

/* Loss only (no gradients), e.g. for validation. Same conventions. */
slm_status trainer_eval_loss(slm_trainer *t, const int32_t *tokens, const uint8_t *loss_mask, int n,
                             double *loss_sum, int *n_scored);

/* Divides the accumulated gradients by grad_div (the number of scored tokens
 * of the step, so the loss is a mean), clips their global L2 norm to
 * clip (0 = no clipping), takes one AdamW step with learning rate lr, zeroes
 * the gradients. Returns the gradient norm before clipping in *grad_norm. */
slm_status trainer_step(slm_trainer *t, double grad_div, float lr, float clip, double *grad_norm);

/* Gradient access for tests: the accumulated gradient of LoRA matrix
 * (layer, target) — *ga rank x n_in, *gb n_out x rank; NULL if not adapted. */
void trainer_lora_grads(slm_trainer *t, int layer, int target, const float **ga, const float **gb);

/* Optimizer state, for checkpoints: every trainable float in a fixed order
 * (params, then m, then v) and the step count. */
size_t trainer_state_floats(const slm_trainer *t);
void trainer_state_get(const slm_trainer *t, float *dst, int64_t *step);
void trainer_state_set(slm_trainer *t, const float *src, int64_t step);

/* ---- additions (engine helper) ---- */

/* Number of trainable floats (LoRA A and B, or every master weight). */
size_t trainer_n_params(const slm_trainer *t);
/* The accumulated gradient of every trainable float (trainer_n_params of
 * them), in the order of trainer_state_get's parameters. */
const float *trainer_grad_data(const slm_trainer *t);

/* A few lines describing the memory the trainer holds (weights scratch,
 * activations with bytes per token, trainable parameters, gradients and
 * AdamW moments), for the CLI to print before the first step. Returns the
 * length it wanted (snprintf-style); writes at most cap bytes. */
size_t trainer_memory_plan(const slm_trainer *t, char *buf, size_t cap);

/* Wall seconds spent so far in: [0] the layers' forward, [1] the loss head
 * (final norm, chunked cross-entropy and its backward), [2] the layers'
 * backward (checkpointing's recomputation included), [3] optimizer steps. */
void trainer_times(const slm_trainer *t, double out[4]);

/* Full fine-tuning: writes a GGUF with the trained weights in F32 (every
 * trained tensor; the others and all metadata copied from the base), through
 * a temporary file renamed over path. SLM_ERR_INVALID_ARG in LoRA mode. */
slm_status trainer_save_full(const slm_trainer *t, const char *path);

#endif
