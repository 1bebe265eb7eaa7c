/* Llama (Llama 3.x, SmolLM2, and Mistral models converted as "llama"):
 * SiLU-gated FFN, RMSNorm before attention and FFN only, no QK-norm, no
 * embedding scale. llama.cpp's converter permutes the rows of Q and K so that
 * the rotated pairs are adjacent: in GGUF, Llama's RoPE is the "normal"
 * pairing (HF's rotate_half on the unpermuted weights is the same rotation).
 * Llama 3's frequency scaling comes as the rope_freqs tensor; optional Q/K/V/O
 * biases (attention_bias) and a sliding window key are honoured when present. */
#include "model/model.h"

const slm_arch slm_arch_llama = {
    .name = "llama",
    .act = SLM_ACT_SILU,
    .rope = SLM_ROPE_NORM,
    .swa_optional = true,
    .rope_base_default = 10000.0f,
};
