/* LoRA adapter files (llama.cpp's GGUF layout) and applying an adapter in the
 * forward pass.
 *
 * File: general.architecture = the base's, general.type = "adapter",
 * adapter.type = "lora", adapter.lora.alpha (f32); per adapted matrix two
 * tensors "<base tensor name>.lora_a" (ne0 = n_in, ne1 = rank) and
 * "<base tensor name>.lora_b" (ne0 = rank, ne1 = n_out), F32 (F16 is read
 * too). The effective scale of a matrix is user_scale * alpha / rank, or
 * user_scale when alpha is 0 (llama.cpp's rule). */
#ifndef SLM_TRAIN_ADAPTER_H
#define SLM_TRAIN_ADAPTER_H

#include "gguf/gguf.h"
#include "train/trainer.h"

/* The base tensor name of target t ("attn_q", ... "ffn_down"). */
const char *lora_target_name(int target);

/* Writes a as an adapter of the model (temporary file + rename). Every
 * adapted matrix must have the shape of its base matrix. */
slm_status adapter_save(const struct slm_model *m, const lora_adapter *a, const char *path);

/* Reads and validates an adapter against a base file: the architecture
 * matches, every tensor is a known target "blk.N.<target>.weight.lora_{a,b}"
 * of a matrix that exists in the base, both halves are present, F32 or F16,
 * shapes agree with the base matrix, the rank of A equals that of B. The
 * result owns its floats (free with adapter_free). */
slm_status adapter_load_gguf(const gguf_file *base, const gguf_file *ad, const char *path, lora_adapter **out);
slm_status adapter_load(const gguf_file *base, const char *path, lora_adapter **out);
lora_adapter *adapter_alloc(int n_layer);
void adapter_free(lora_adapter *a);

/* The scale that multiplies B (A x) for matrix (layer, target): user_scale *
 * alpha / rank, or user_scale if alpha is 0. */
float adapter_mat_scale(const lora_adapter *a, const lora_mat *lm, float user_scale);

/* y[t] += scale * B (A x[t]) for the n rows of x when w is an adapted matrix
 * of f's model; tmp holds n * rank floats. Called by the forward pass. */
struct slm_fwd;
void adapter_apply(const struct slm_fwd *f, const slm_mat *w, const float *x, int n, float *y);

#endif
