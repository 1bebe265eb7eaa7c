/* Phi-3 / Phi-3.5 / Phi-4-mini: one fused attn_qkv matrix (Q rows, then K,
 * then V) and one fused ffn_up of 2*n_ff rows (gate, then up), split into
 * views at load; NEOX RoPE, possibly on only part of each head
 * (rope.dimension_count); LongRoPE as rope_factors_long / rope_factors_short
 * tensors with rope.scaling.attn_factor scaling cos and sin. The long factors
 * are used when the session's context exceeds
 * rope.scaling.original_context_length (llama.cpp's rule: fixed for a
 * session, so the KV cache stays consistent; HF switches on the current
 * sequence length instead, which agrees whenever both are on the same side
 * of the original length). The sliding window is applied to every layer
 * when the file sets one > 0, as HF does (llama.cpp currently ignores it for
 * Phi). */
#include "model/model.h"

const slm_arch slm_arch_phi3 = {
    .name = "phi3",
    .act = SLM_ACT_SILU,
    .rope = SLM_ROPE_NEOX,
    .fused_qkv = true,
    .fused_gate_up = true,
    .swa_optional = true,
    .rope_base_default = 10000.0f,
};
