/* Qwen2 / Qwen2.5: Llama's layout with biases on Q, K and V (bound from the
 * file when present) and RoPE on the "NEOX" pairing (i, i + n_rot/2): its
 * converter does not permute Q and K. Qwen2.5's configs leave the sliding
 * window off (use_sliding_window false) and llama.cpp writes no key for it. */
#include "model/model.h"

const slm_arch slm_arch_qwen2 = {
    .name = "qwen2",
    .act = SLM_ACT_SILU,
    .rope = SLM_ROPE_NEOX,
    .rope_base_default = 10000.0f,
};
