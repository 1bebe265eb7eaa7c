/* The named quantization mixes and the rule table that gives each tensor its
 * type. docs/QUANTIZATION.md ("Types and mixes") states the same rules in
 * prose; tests/test_quantize.c holds this code to that table.
 *
 * The idea (shared with llama.cpp's mixes, not its code): most 2-D weights
 * get the mix's base type; the tensors whose errors hurt most get more
 * bits - the output head (every logit goes through it), attn_v (few
 * parameters under grouped-query attention, so extra bits are cheap) and
 * ffn_down (its input, the gated FFN activation, has the largest outliers),
 * the latter two on the first and last layers and every third one between
 * in the _m mixes. Vectors (norms, biases) stay F32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "quant/quantize.h"

/* llama.cpp's general.file_type numbers (LLAMA_FTYPE_*) */
static const slm_mix g_mixes[] = {
    { "f32", SLM_T_F32, 0 },     { "f16", SLM_T_F16, 1 },       { "bf16", SLM_T_BF16, 32 },
    { "q8_0", SLM_T_Q8_0, 7 },   { "q6_k", SLM_T_Q6_K, 18 },    { "q5_k_m", SLM_T_Q5_K, 17 },
    { "q5_k_s", SLM_T_Q5_K, 16 }, { "q5_1", SLM_T_Q5_1, 9 },    { "q5_0", SLM_T_Q5_0, 8 },
    { "q4_k_m", SLM_T_Q4_K, 15 }, { "q4_k_s", SLM_T_Q4_K, 14 }, { "q4_1", SLM_T_Q4_1, 3 },
    { "q4_0", SLM_T_Q4_0, 2 },   { "q3_k_l", SLM_T_Q3_K, 13 },  { "q3_k_m", SLM_T_Q3_K, 12 },
    { "q3_k_s", SLM_T_Q3_K, 11 }, { "q2_k", SLM_T_Q2_K, 10 },
};
#define N_MIXES (sizeof g_mixes / sizeof g_mixes[0])

const slm_mix *slm_mix_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_MIXES; i++)
        if (strcasecmp(g_mixes[i].name, name) == 0) return &g_mixes[i];
    return NULL;
}

const slm_mix *slm_mix_at(int i) { return i >= 0 && (size_t)i < N_MIXES ? &g_mixes[i] : NULL; }

uint32_t slm_type_fallback(uint32_t type, uint64_t row_len) {
    const slm_type_info *t = slm_type_get(type);
    if (!t) return SLM_T_F16;
    if (row_len % (uint64_t)t->block_size == 0) return type;
    uint32_t alt;
    switch (type) {
    case SLM_T_Q2_K: case SLM_T_Q3_K: alt = SLM_T_Q4_0; break;
    case SLM_T_Q4_K: alt = SLM_T_Q5_0; break;
    case SLM_T_Q5_K: alt = SLM_T_Q5_1; break;
    case SLM_T_Q6_K: alt = SLM_T_Q8_0; break;
    default: alt = SLM_T_F16; break;
    }
    return row_len % QK == 0 ? alt : SLM_T_F16;
}

/* "blk.N." -> N; -1 for tensors outside the blocks. */
static int layer_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    long v = strtol(name + 4, &end, 10);
    return (end != name + 4 && *end == '.' && v >= 0 && v < 1000000) ? (int)v : -1;
}

static bool name_has(const char *name, const char *part) { return strstr(name, part) != NULL; }

/* First and last eighth of the layers, and every third one between. */
static bool more_bits_layer(int i, int n) {
    if (n <= 0 || i < 0) return false;
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static bool is_mix(const slm_mix *m, const char *name) { return strcmp(m->name, name) == 0; }

static uint32_t attn_v_type(const slm_mix *m, int il, int n_layer, int n_gqa) {
    uint32_t t = m->base;
    if (is_mix(m, "q2_k")) t = SLM_T_Q4_K;
    else if (is_mix(m, "q3_k_s")) t = n_gqa >= 4 ? SLM_T_Q4_K : SLM_T_Q3_K;
    else if (is_mix(m, "q3_k_m")) t = il >= 0 && il < 2 ? SLM_T_Q5_K : SLM_T_Q4_K;
    else if (is_mix(m, "q3_k_l")) t = SLM_T_Q5_K;
    else if (is_mix(m, "q4_k_s")) t = il >= 0 && il < 4 ? SLM_T_Q5_K : SLM_T_Q4_K;
    else if (is_mix(m, "q4_k_m")) t = more_bits_layer(il, n_layer) ? SLM_T_Q6_K : SLM_T_Q4_K;
    else if (is_mix(m, "q5_k_m")) t = more_bits_layer(il, n_layer) ? SLM_T_Q6_K : SLM_T_Q5_K;
    /* 8 or more query heads per KV head: attn_v is at most 1/8 of attn_q */
    if (n_gqa >= 8 && (t == SLM_T_Q3_K || t == SLM_T_Q4_K)) t = SLM_T_Q5_K;
    return t;
}

static uint32_t ffn_down_type(const slm_mix *m, int il, int n_layer) {
    if (is_mix(m, "q2_k") || is_mix(m, "q3_k_s")) return SLM_T_Q3_K;
    if (is_mix(m, "q3_k_m")) return il >= 0 && il < 2 ? SLM_T_Q5_K : SLM_T_Q4_K;
    if (is_mix(m, "q3_k_l")) return SLM_T_Q5_K;
    if (is_mix(m, "q4_k_s")) return il >= 0 && il < n_layer / 8 ? SLM_T_Q5_K : SLM_T_Q4_K;
    if (is_mix(m, "q4_k_m")) return more_bits_layer(il, n_layer) ? SLM_T_Q6_K : SLM_T_Q4_K;
    if (is_mix(m, "q5_k_m")) return more_bits_layer(il, n_layer) ? SLM_T_Q6_K : SLM_T_Q5_K;
    return m->base;
}

static uint32_t attn_output_type(const slm_mix *m) {
    if (is_mix(m, "q2_k")) return SLM_T_Q3_K;
    if (is_mix(m, "q3_k_m")) return SLM_T_Q4_K;
    if (is_mix(m, "q3_k_l")) return SLM_T_Q5_K;
    return m->base;
}

static uint32_t choose_raw(const slm_mix *m, const slm_tensor_role *t) {
    const char *n = t->name;
    if (t->n_dims < 2 || name_has(n, "_norm")) return SLM_T_F32;
    if (m->base == SLM_T_F32 || m->base == SLM_T_F16 || m->base == SLM_T_BF16) return m->base;
    bool head = strcmp(n, "output.weight") == 0 || (strcmp(n, "token_embd.weight") == 0 && !t->has_output);
    if (head) return m->base == SLM_T_Q8_0 ? SLM_T_Q8_0 : SLM_T_Q6_K;
    int il = layer_of(n);
    if (name_has(n, "attn_v.weight")) return attn_v_type(m, il, t->n_layer, t->n_gqa);
    if (name_has(n, "ffn_down")) return ffn_down_type(m, il, t->n_layer);
    if (name_has(n, "attn_output.weight")) return attn_output_type(m);
    return m->base;
}

uint32_t slm_mix_choose(const slm_mix *mix, const slm_tensor_role *t) {
    uint32_t type = choose_raw(mix, t);
    return slm_type_fallback(type, t->ne[0]);
}
