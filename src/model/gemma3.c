/* Gemma 3: GELU(tanh)-gated FFN, RMSNorm before and after both attention and
 * FFN, per-head QK-norm, NEOX RoPE, embeddings scaled by sqrt(hidden), and
 * five sliding-window layers to each global one. Files made by llama.cpp's
 * converter carry neither the layer pattern nor the local RoPE base, so the
 * defaults below (period 6, base 10000) are those of the published models. */
#include "model/model.h"

const slm_arch slm_arch_gemma3 = {
    .name = "gemma3",
    .act = SLM_ACT_GELU_TANH,
    .rope = SLM_ROPE_NEOX,
    .qk_norm = true,
    .post_norms = true,
    .embed_scale = true,
    .swa_period = 6,
    .rope_base_default = 1000000.0f,
    .rope_base_swa_default = 10000.0f,
};
