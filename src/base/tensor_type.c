/* The tensor type table (name, block size, block bytes): see tensor_type.h. */
#include "base/tensor_type.h"

static const slm_type_info g_types[SLM_TYPE_SLOTS] = {
    [SLM_T_F32]  = { "f32", 1, 4, true },
    [SLM_T_F16]  = { "f16", 1, 2, true },
    [SLM_T_Q4_0] = { "q4_0", QK, Q4_0_BYTES, true },
    [SLM_T_Q4_1] = { "q4_1", QK, Q4_1_BYTES, true },
    [SLM_T_Q5_0] = { "q5_0", QK, Q5_0_BYTES, true },
    [SLM_T_Q5_1] = { "q5_1", QK, Q5_1_BYTES, true },
    [SLM_T_Q8_0] = { "q8_0", QK, Q8_0_BYTES, true },
    [SLM_T_Q8_1] = { "q8_1", QK, Q8_1_BYTES, false },
    [SLM_T_Q2_K] = { "q2_K", QK_K, Q2_K_BYTES, true },
    [SLM_T_Q3_K] = { "q3_K", QK_K, Q3_K_BYTES, true },
    [SLM_T_Q4_K] = { "q4_K", QK_K, Q4_K_BYTES, true },
    [SLM_T_Q5_K] = { "q5_K", QK_K, Q5_K_BYTES, true },
    [SLM_T_Q6_K] = { "q6_K", QK_K, Q6_K_BYTES, true },
    [SLM_T_Q8_K] = { "q8_K", QK_K, Q8_K_BYTES, false },
    [SLM_T_BF16] = { "bf16", 1, 2, true },
};

const slm_type_info *slm_type_get(uint32_t type) {
    if (type >= SLM_TYPE_SLOTS || g_types[type].name == NULL) return NULL;
    return &g_types[type];
}

size_t slm_row_bytes(uint32_t type, int64_t n) {
    const slm_type_info *t = slm_type_get(type);
    if (!t || n <= 0 || n % t->block_size != 0) return 0;
    uint64_t blocks = (uint64_t)n / (uint64_t)t->block_size;
    if (blocks > SIZE_MAX / t->block_bytes) return 0;
    return (size_t)blocks * t->block_bytes;
}
