/* Mistral / Ministral under the architecture name "mistral": Llama's layout
 * (RoPE with adjacent pairs on the converter-permuted Q and K) plus the
 * sliding window the model sets in attention.sliding_window, applied to every
 * layer (a query sees itself and the window - 1 positions before it). Files
 * without the key (Mistral 7B v0.2 and later) attend to the whole context. */
#include "model/model.h"

const slm_arch slm_arch_mistral = {
    .name = "mistral",
    .act = SLM_ACT_SILU,
    .rope = SLM_ROPE_NORM,
    .swa_optional = true,
    .rope_base_default = 10000.0f,
};
